"""Clinical scenario files: a patient, a fixed date, and the expectations to check.

A scenario lists only what it checks; anything it does not mention is ignored. A scenario may
start from a base patient (`base: bases/breast-bone-mets.yaml`, relative to the scenario file)
and override fields with `profile:`, merged key by key, so a boundary series need not copy a
whole patient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bonecds.errors import ProfileError
from bonecds.profile.model import (
    PatientProfile,
    load_profile,
    parse_profile,
    read_structured,
    read_text,
)
from bonecds.report.model import RankedItem, Report

__all__ = [
    "Mismatch",
    "check_expectations",
    "load_scenario",
    "scenario_from",
]


class Expectation(BaseModel):
    """What a scenario checks. Every key is optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    first: str | None = None
    ranked: list[str] = []
    not_ranked: list[str] = []
    emergencies: list[str] = []
    contraindicated: list[str] = []
    not_contraindicated: list[str] = []
    conditional: dict[str, list[str]] = {}
    not_conditional: list[str] = []
    cautions: list[str] = []
    not_cautions: list[str] = []
    data_requests: list[str] = []
    not_data_requests: list[str] = []
    context: list[str] = []
    not_context: list[str] = []
    rules_fired: list[str] = []
    rules_silent: list[str] = []
    order: list[tuple[str, str]] = []
    dose_mg: dict[str, float | None] = {}
    schedule_weeks: dict[str, float | None] = {}
    score: dict[str, int] = {}
    notes: int | None = None


class Scenario(BaseModel):
    """A named clinical case with its expected outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    as_of: dt.date
    base: str | None = None
    profile: dict[str, Any] = Field(default_factory=dict)
    expect: Expectation


def load_scenario(path: Path) -> tuple[Scenario, PatientProfile]:
    """Read a scenario and build its patient (base merged with overrides)."""
    data, _ = read_structured(read_text(path, str(path)), str(path))
    return scenario_from(data, path, str(path))


def scenario_from(data: Any, path: Path, source: str) -> tuple[Scenario, PatientProfile]:
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProfileError([f"{source}: {where}: {first['msg']}"]) from None
    profile_data = scenario.profile
    if scenario.base:
        base_path = path.parent / scenario.base
        base = load_profile(base_path).model_dump(exclude_none=True, exclude_defaults=True)
        profile_data = _merge(base, scenario.profile)
    return scenario, parse_profile(profile_data, f"{source}: profile")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class Mismatch:
    """One expectation the report does not meet, with both sides to compare."""

    check: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.check}\n    expected: {self.expected}\n    actual:   {self.actual}"


def _show(value: Any) -> str:
    if isinstance(value, list | set | tuple):
        return ", ".join(str(v) for v in sorted(value, key=str)) or "(none)"
    return "(none)" if value is None else str(value)


def check_expectations(report: Report, expect: Expectation) -> list[Mismatch]:
    """Every way the report differs from the expectation, each with expected and actual."""
    ranked = [item.id for item in report.ranked]
    by_id = {item.id: item for item in report.ranked}
    sets = {
        "ranked": (set(ranked), expect.ranked, expect.not_ranked),
        "contraindicated": (
            {i.id for i in report.contraindicated},
            expect.contraindicated,
            expect.not_contraindicated,
        ),
        "cautions": ({i.id for i in report.cautions}, expect.cautions, expect.not_cautions),
        "data_requests": (
            {i.field for i in report.data_requests},
            expect.data_requests,
            expect.not_data_requests,
        ),
        "context": ({i.id for i in report.context}, expect.context, expect.not_context),
        "rules_fired": (
            {i.rule for i in report.rules_fired},
            expect.rules_fired,
            expect.rules_silent,
        ),
    }
    problems = [
        m
        for name, (actual, wanted, unwanted) in sets.items()
        for m in _membership(name, actual, wanted, unwanted)
    ]
    if expect.first is not None and ranked[:1] != [expect.first]:
        problems.append(Mismatch("first ranked", expect.first, _show(ranked[:1])))
    problems += _per_option(expect, by_id)
    for before, after in expect.order:
        if not (
            before in ranked and after in ranked and ranked.index(before) < ranked.index(after)
        ):
            problems.append(Mismatch("order", f"{before} before {after}", " > ".join(ranked)))
    if expect.notes is not None and len(report.notes) != expect.notes:
        problems.append(Mismatch("number of notes", str(expect.notes), str(len(report.notes))))
    return problems


def _membership(
    name: str, actual: set[str], wanted: list[str], unwanted: list[str]
) -> list[Mismatch]:
    missing = [item for item in wanted if item not in actual]
    extra = [item for item in unwanted if item in actual]
    problems = []
    if missing:
        problems.append(
            Mismatch(
                f"{name}: missing {_show(missing)}", f"includes {_show(wanted)}", _show(actual)
            )
        )
    if extra:
        problems.append(
            Mismatch(
                f"{name}: unexpected {_show(extra)}", f"excludes {_show(unwanted)}", _show(actual)
            )
        )
    return problems


def _per_option(expect: Expectation, by_id: dict[str, Any]) -> list[Mismatch]:
    problems = []
    for option in expect.emergencies:
        kind = by_id[option].kind if option in by_id else "not ranked"
        if kind != "emergency":
            problems.append(Mismatch(f"emergency {option}", "ranked as emergency", kind))
    for option, fields in expect.conditional.items():
        actual = by_id[option].conditional_on if option in by_id else None
        if actual is None or not set(fields) <= set(actual):
            shown = "not ranked" if actual is None else _show(actual)
            problems.append(Mismatch(f"{option} conditional on", _show(fields), shown))
    for option in expect.not_conditional:
        actual = by_id[option].conditional_on if option in by_id else None
        if actual != []:
            shown = "not ranked" if actual is None else _show(actual)
            problems.append(Mismatch(f"{option} conditional on", "(nothing: decided)", shown))
    checks = (
        ("dose_mg", expect.dose_mg),
        ("schedule_weeks", expect.schedule_weeks),
        ("score", expect.score),
    )
    for name, wanted in checks:
        for option, value in wanted.items():
            actual = _measure(name, by_id[option]) if option in by_id else "not ranked"
            if actual != value:
                problems.append(Mismatch(f"{name} of {option}", _show(value), _show(actual)))
    return problems


def _measure(name: str, item: RankedItem) -> float | int | None:
    if name == "dose_mg":
        return item.dose.amount if item.dose else None
    if name == "schedule_weeks":
        return item.schedule.interval_weeks if item.schedule else None
    return item.score
