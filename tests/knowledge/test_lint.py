"""Logic lint: each warning code on a broken example, the project's rules clean (or waived)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bonecds.knowledge.lint import Domain, field_domain, lint_knowledge
from bonecds.knowledge.load import load_rules
from tests.conftest import DATA, RULES

EXAMPLES = sorted((DATA / "lint_rules").glob("*.yaml"))
SUPPORT = ("settings.yaml", "sources.yaml", "vocabulary.yaml", "d-bone-modifying-agents.yaml")


def _expected(path: Path) -> tuple[str, int]:
    match = re.match(r"# expect: (\S+) line (\d+)", path.read_text(encoding="utf-8"))
    assert match, f"{path.name} lacks its '# expect: CODE line N' header"
    return match.group(1), int(match.group(2))


def _warnings(directory: Path) -> set[tuple[str, str, int]]:
    found = lint_knowledge(load_rules(directory))
    assert {d.severity for d in found} <= {"warning"}
    return {(Path(d.file).name, d.code, d.line) for d in found}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_each_warning_code_is_found_at_its_line(path: Path, tmp_path: Path) -> None:
    for name in SUPPORT:
        shutil.copy(RULES / name, tmp_path / name)
    shutil.copy(path, tmp_path / path.name)
    assert (path.name, *_expected(path)) in _warnings(tmp_path)


def test_every_warning_code_has_an_example() -> None:
    import bonecds.knowledge.lint

    documented = set(re.findall(r"^    ([a-z-]+) ", bonecds.knowledge.lint.__doc__ or "", re.M))
    shown_elsewhere = {"unused-id", "unused-waiver"}  # need a whole directory: tested below
    assert documented - shown_elsewhere == {_expected(p)[0] for p in EXAMPLES}


def test_the_project_rules_have_no_unwaived_warning() -> None:
    assert _warnings(RULES) == set()


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    return copy


def test_unused_vocabulary_id_and_stale_waiver(tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    vocabulary = rules / "vocabulary.yaml"
    text = vocabulary.read_text(encoding="utf-8")
    vocabulary.write_text(
        text.rstrip() + '\n  never-used: {kind: caution, label: "Unused", label_zh: "未用"}\n',
        encoding="utf-8",
    )
    (rules / "lint-waivers.yaml").write_text(
        "waivers:\n  - {code: never-fires, rule: no-such-rule, reason: gone}\n", encoding="utf-8"
    )
    found = _warnings(rules)
    line = len(text.rstrip().splitlines()) + 1
    assert ("vocabulary.yaml", "unused-id", line) in found
    assert ("lint-waivers.yaml", "unused-waiver", 2) in found


def test_crcl_dosing_bands_with_a_gap_are_found(tmp_path: Path) -> None:
    rules = _copy(tmp_path)
    path = rules / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    assert "{field: derived.crcl_ml_min, gte: 40}" in text
    path.write_text(
        text.replace(
            "{field: derived.crcl_ml_min, gte: 40}", "{field: derived.crcl_ml_min, gte: 41}"
        ),
        encoding="utf-8",
    )
    gaps = [w for w in _warnings(rules) if w[1] == "threshold-gap"]
    assert [name for name, _, _ in gaps] == ["d-bone-modifying-agents.yaml"]


def test_an_integer_score_split_at_12_and_13_has_no_gap(tmp_path: Path) -> None:
    for name in SUPPORT:
        shutil.copy(RULES / name, tmp_path / name)
    example = (DATA / "lint_rules" / "threshold-gap.yaml").read_text("utf-8")
    example = example.replace("derived.crcl_ml_min", "spine.sins")
    example = example.replace("gte: 50}", "gte: 13}").replace("lte: 60}", "lte: 18}")
    example = example.replace("gte: 30}", "gte: 7}").replace("lt: 45}", "lte: 12}")
    (tmp_path / "x.yaml").write_text(example, encoding="utf-8")
    assert [w for w in _warnings(tmp_path) if w[1].startswith("threshold")] == []


def test_a_fields_domain_is_its_plausible_range() -> None:
    # The model carries no bounds: the linter reads the one table of ranges.
    assert field_domain("ecog") == Domain(0, 4, True)
    assert field_domain("meds.bma_interval_weeks") == Domain(0, 104, False)
    assert field_domain("mets.liver_lesion_count") == Domain(0, float("inf"), True)
