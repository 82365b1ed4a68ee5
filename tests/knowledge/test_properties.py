"""Rule-file mutations (bounded, seeded): each mutated knowledge base loads cleanly or is
refused with every problem at file:line, never another exception and never a hang. The large
budget is `python -m benchmarks.fuzz` (benchmarks/fuzz_rules.py)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from benchmarks.fuzz_rules import MUTATIONS, RULES, SUPPORT, outcome, run, trial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_mutated_knowledge_base_loads_or_is_refused_at_file_line(
    seed: int, tmp_path: Path
) -> None:
    assert trial(tmp_path, random.Random(seed)) in ("ok", "refused")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m.__name__.strip("_") for m in MUTATIONS])
def test_each_kind_of_mutation_loads_or_is_refused(
    mutation: Callable[[list[str], random.Random], None], tmp_path: Path
) -> None:
    for name in SUPPORT:
        shutil.copy(RULES / name, tmp_path / name)
    text = (RULES / "d-bone-modifying-agents.yaml").read_text(encoding="utf-8")
    for seed in range(6):  # seed 5 nests 600 levels deep
        lines = text.split("\n")
        mutation(lines, random.Random(seed))
        mutated = "\n".join(lines)
        (tmp_path / "d.yaml").write_text(mutated, encoding="utf-8", errors="surrogatepass")
        assert outcome(tmp_path) in ("ok", "refused"), seed


def test_the_runner_interface_counts_every_trial() -> None:
    counts = run(3, seed=7)
    assert set(counts) == {"tried", "ok", "refused", "crashed", "hung", "http_500"}
    assert counts["tried"] == counts["ok"] + counts["refused"] == 3


def test_the_unmutated_rules_load_cleanly() -> None:
    assert outcome(RULES) == "ok"
