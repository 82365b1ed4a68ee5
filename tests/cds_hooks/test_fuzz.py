"""A smoke run of the service fuzz target (`benchmarks/fuzz_service.py`), so that it keeps
working: its interface for `python -m benchmarks.fuzz`, and a few dozen requests against a real
`bonecds serve`. The large budget is run by hand (README, benchmarks/RESULTS.md)."""

from __future__ import annotations

import inspect

from benchmarks import fuzz_service


def test_the_fuzz_target_keeps_its_interface_and_finds_no_crash() -> None:
    assert fuzz_service.NAME == "service"
    assert fuzz_service.DEFAULT_COUNT == 10_000
    assert list(inspect.signature(fuzz_service.run).parameters) == ["count", "seed"]
    counts = fuzz_service.run(40, seed=7)
    assert counts["tried"] >= 40
    assert counts["tried"] == sum(v for k, v in counts.items() if k != "tried")
    assert (counts["crashed"], counts["hung"], counts["wrong_answer"]) == (0, 0, 0)
    assert counts["refused"] > 0
