"""Golden snapshots of the human-readable renderings, beside the JSON ones in golden/.

For every scenario with a JSON snapshot, its text (at the pipe width) and Markdown renderings
are pinned too, and the sample patient also in Chinese, with --explain, and as HTML. A missing
snapshot fails. After a deliberate change, regenerate and review the diff:

    BONECDS_UPDATE_GOLDEN=1 python -m pytest tests/report/test_render_golden.py -p no:cacheprovider
    git diff patient_fixtures/golden
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from bonecds import Knowledge, evaluate
from bonecds.report.render import render
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES

GOLDEN = FIXTURES / "golden"
SAMPLE = "sample-breast-bone-mets"
# (scenario, language, explain, format, snapshot suffix)
CASES = [
    *((s, "en", False, "text", ".txt") for s in sorted(p.stem for p in GOLDEN.glob("*.json"))),
    *((s, "en", False, "markdown", ".md") for s in sorted(p.stem for p in GOLDEN.glob("*.json"))),
    (SAMPLE, "en", True, "text", ".explain.txt"),
    (SAMPLE, "zh", False, "text", ".zh.txt"),
    (SAMPLE, "zh", True, "markdown", ".zh.explain.md"),
    (SAMPLE, "en", True, "html", ".html"),
]


@pytest.mark.parametrize(("scenario", "language", "explain", "fmt", "suffix"), CASES)
def test_rendering_matches_its_golden_snapshot(
    knowledge: Knowledge, scenario: str, language: str, explain: bool, fmt: str, suffix: str
) -> None:
    loaded, profile = load_scenario(FIXTURES / f"{scenario}.yaml")
    report = evaluate(profile, knowledge, loaded.as_of, explain=explain, language=language)
    links = {key: s.url for key, s in knowledge.base.sources.items() if s.url}
    actual = render(report, fmt, explain, links=links)
    snapshot = GOLDEN / f"{scenario}{suffix}"
    if os.environ.get("BONECDS_UPDATE_GOLDEN") == "1":
        snapshot.write_text(actual, encoding="utf-8")
    assert snapshot.exists(), f"{_name(snapshot)} is missing: see this module's docstring"
    expected = snapshot.read_text(encoding="utf-8")
    assert actual == expected, "\n".join(_diff(expected, actual))


def _name(path: Path) -> str:
    return str(path.relative_to(FIXTURES.parent))


def _diff(expected: str, actual: str) -> list[str]:
    lines = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "golden", "actual", lineterm="", n=1
    )
    return list(lines)[:60]
