"""Scenario suites: run them, compare with golden snapshots, measure rule coverage, diff
two versions of the knowledge base, and write JUnit XML for CI.
"""

from __future__ import annotations

import difflib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bonecds.api import Knowledge, evaluate
from bonecds.errors import BonecdsError
from bonecds.report.model import Report
from bonecds.testing.scenarios import Mismatch, check_expectations, load_scenario

__all__ = [
    "coverage",
    "diff_knowledge",
    "golden_path",
    "junit_xml",
    "outcome_lines",
    "run_scenario",
    "scenario_files",
]

SKIPPED_DIRS = ("bases", "golden")


@dataclass
class ScenarioResult:
    """The outcome of one scenario: its mismatches, or the error that stopped it."""

    path: Path
    name: str
    problems: list[Mismatch] = field(default_factory=list)
    golden_diff: list[str] = field(default_factory=list)
    error: str = ""
    report: Report | None = None
    updated: bool = False

    @property
    def passed(self) -> bool:
        return not (self.problems or self.golden_diff or self.error)

    def describe(self) -> str:
        lines = [f"{'PASS' if self.passed else 'FAIL'} {self.path.stem}: {self.name}"]
        if self.updated:
            lines.append(f"  wrote {golden_path(self.path)}")
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  {problem}" for problem in self.problems]
        if self.golden_diff:
            lines.append(
                "  output differs from its golden snapshot (bonecds test --update to accept):"
            )
            lines += [f"    {line}" for line in self.golden_diff]
        return "\n".join(lines)


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """Scenario files named directly, or every *.yaml of a directory (not bases/ or golden/)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.glob("*.yaml")) if p.parent.name not in SKIPPED_DIRS
            )
        else:
            found.append(path)
    return found


def golden_path(scenario: Path) -> Path:
    return scenario.parent / "golden" / f"{scenario.stem}.json"


def run_scenario(
    path: Path,
    knowledge: Knowledge,
    *,
    golden: bool = False,
    update: bool = False,
    create: bool = False,
) -> ScenarioResult:
    """Evaluate one scenario and check it; `golden` also compares with its snapshot beside it
    in `golden/`, which `update` rewrites when it exists (and `create` writes when it does
    not: snapshots are kept for a chosen few scenarios, not created in bulk)."""
    try:
        scenario, profile = load_scenario(path)
        report = evaluate(profile, knowledge, scenario.as_of)
    except BonecdsError as error:
        return ScenarioResult(path, path.stem, error=str(error))
    result = ScenarioResult(
        path, scenario.name, check_expectations(report, scenario.expect), report=report
    )
    if update and (create or golden_path(path).exists()):
        text = snapshot(report)
        if not golden_path(path).exists() or golden_path(path).read_text("utf-8") != text:
            golden_path(path).parent.mkdir(exist_ok=True)
            golden_path(path).write_text(text, encoding="utf-8")
            result.updated = True
    elif golden and golden_path(path).exists():
        result.golden_diff = _diff(golden_path(path).read_text(encoding="utf-8"), snapshot(report))
    return result


UNPINNED = "(not pinned in snapshots)"


def snapshot(report: Report) -> str:
    """The report's canonical JSON, less its knowledge digest, which changes with any edit of
    any rule file: snapshots pin what a scenario's patient is told; audit records and
    `bonecds replay` pin the knowledge base itself."""
    return report.model_copy(update={"knowledge_digest": UNPINNED}).to_json()


def _diff(expected: str, actual: str, limit: int = 40) -> list[str]:
    lines = list(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "actual", lineterm="", n=1
        )
    )
    return lines[:limit] + ([f"... {len(lines) - limit} more lines"] if len(lines) > limit else [])


@dataclass(frozen=True)
class RuleCoverage:
    rule: str
    fired_in: int
    silent_in: int

    @property
    def covered(self) -> bool:
        return self.fired_in > 0 and self.silent_in > 0


@dataclass(frozen=True)
class OptionCoverage:
    option: str
    ranked: int
    contraindicated: int
    conditional: int


@dataclass(frozen=True)
class Coverage:
    rules: list[RuleCoverage]
    options: list[OptionCoverage]

    @property
    def percent(self) -> float:
        covered = sum(rule.covered for rule in self.rules)
        return 100.0 * covered / len(self.rules) if self.rules else 100.0

    def describe(self) -> str:
        lines = ["rule coverage (fired in / silent in, scenarios):"]
        for rule in self.rules:
            mark = "ok " if rule.covered else "-- "
            lines.append(f"  {mark}{rule.rule}: fired {rule.fired_in}, silent {rule.silent_in}")
        lines.append("option coverage (seen ranked / contraindicated / conditional):")
        for option in self.options:
            lines.append(
                f"  {option.option}: ranked {option.ranked}, contraindicated "
                f"{option.contraindicated}, conditional {option.conditional}"
            )
        covered = sum(rule.covered for rule in self.rules)
        lines.append(f"rules fired and silent: {covered}/{len(self.rules)} ({self.percent:.1f}%)")
        return "\n".join(lines)


def coverage(results: list[ScenarioResult], knowledge: Knowledge) -> Coverage:
    """Which active rules fired in some scenario and stayed silent in another, and how each
    option was seen."""
    reports = [result.report for result in results if result.report is not None]
    fired = [{item.rule for item in report.rules_fired} for report in reports]
    rules = [
        RuleCoverage(
            rule.id, sum(rule.id in f for f in fired), sum(rule.id not in f for f in fired)
        )
        for rule in knowledge.base.rules
        if rule.active
    ]
    options = []
    for option, item in sorted(knowledge.base.vocabulary.items()):
        if item.kind not in ("option", "emergency"):
            continue
        ranked = [i for r in reports for i in r.ranked if i.id == option]
        contra = sum(any(c.id == option for c in r.contraindicated) for r in reports)
        conditional = sum(bool(i.conditional_on) for i in ranked)
        options.append(OptionCoverage(option, len(ranked), contra, conditional))
    return Coverage(rules, options)


def junit_xml(results: list[ScenarioResult]) -> str:
    """JUnit XML with one test case per scenario, failures carrying the readable diff."""
    failures = sum(not result.passed for result in results)
    suite = ET.Element(
        "testsuite",
        name="bonecds-scenarios",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
    )
    for result in results:
        case = ET.SubElement(suite, "testcase", classname="scenarios", name=result.path.stem)
        if not result.passed:
            failure = ET.SubElement(case, "failure", message=result.name)
            failure.text = result.describe()
    return ET.tostring(suite, encoding="unicode") + "\n"


@dataclass(frozen=True)
class ScenarioChange:
    path: Path
    lines: list[str]


def outcome_lines(report: Report) -> list[str]:
    """A report as the lines a reviewer compares: what is proposed, blocked, cautioned, asked."""
    lines = []
    for item in report.ranked:
        dose = (
            f" dose {item.dose.amount} {item.dose.unit}" if item.dose and item.dose.amount else ""
        )
        status = f" conditional on {', '.join(item.conditional_on)}" if item.conditional_on else ""
        lines.append(
            f"ranked {item.rank}: {item.id} ({item.kind}, score {item.score}){dose}{status}"
        )
    lines += [
        f"contraindicated: {c.id} ({', '.join(r.rule for r in c.reasons)})"
        for c in report.contraindicated
    ]
    lines += [f"caution: {c.id} on {', '.join(c.applies_to)}" for c in report.cautions]
    lines += [
        f"data request: {r.field} (decides {', '.join(r.gates) or '-'})"
        for r in report.data_requests
    ]
    lines += [f"context: {c.id}" for c in report.context]
    lines += [f"note: {', '.join(n.rules)}" for n in report.notes]
    return lines


def diff_knowledge(paths: list[Path], before: Knowledge, after: Knowledge) -> list[ScenarioChange]:
    """Every scenario whose outcome changes between two knowledge bases, with the change."""
    changes = []
    for path in paths:
        scenario, profile = load_scenario(path)
        old = outcome_lines(evaluate(profile, before, scenario.as_of))
        new = outcome_lines(evaluate(profile, after, scenario.as_of))
        if old != new:
            diff = difflib.unified_diff(old, new, "before", "after", lineterm="", n=0)
            changes.append(
                ScenarioChange(path, [line for line in diff if not line.startswith("@@")])
            )
    return changes
