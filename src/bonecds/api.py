"""The whole job in two calls: load the knowledge base once, then evaluate profiles with it."""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
from pathlib import Path
from typing import Any, cast

import orjson

from bonecds._digests import input_digest
from bonecds._json import compact_bytes
from bonecds.engine.compile import Knowledge, compile_rules
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import SIGNED_DERIVED, Facts, to_facts
from bonecds.errors import InputError, ProfileError
from bonecds.knowledge.cache import cached
from bonecds.knowledge.i18n import LANGUAGES
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.fields import FIELDS
from bonecds.profile.model import PatientProfile, check_plausible, parse_profile
from bonecds.report.model import PatientValue, Report, WhyNot
from bonecds.report.rank import rank

__all__ = [
    "ENGINE_VERSION",
    "Knowledge",
    "ProfileInput",
    "__version__",
    "default_rules_dir",
    "evaluate",
    "evaluate_data",
    "load_knowledge",
    "shared_report_data",
    "why_not",
]

__version__ = "0.1.0"
ENGINE_VERSION = f"bonecds {__version__} (durable_rules 2.0.28)"

# What the entry points take as a patient: a profile, or its data to validate into one.
ProfileInput = PatientProfile | dict[str, Any]

_HERE = Path(__file__).resolve().parent


def default_rules_dir() -> Path:
    """`$BONECDS_RULES`, else `./rules`, else the rules directory of this source checkout, else
    the copy an installed wheel carries (setup.py); the loader names a missing one."""
    configured = os.environ.get("BONECDS_RULES")
    if configured:
        return Path(configured)
    candidates = (Path("rules"), _HERE.parents[1] / "rules", _HERE / "_rules")
    return next((path for path in candidates if (path / "settings.yaml").is_file()), candidates[0])


def load_knowledge(directory: Path | str | None = None) -> Knowledge:
    """Load, check and compile a rules directory (RuleError lists every problem found); an
    unchanged directory comes from the compiled-knowledge cache (knowledge/cache.py).

    >>> knowledge = load_knowledge("rules")  # doctest: +SKIP
    """
    path = Path(directory) if directory is not None else default_rules_dir()
    if not path.is_dir():
        return _build(path)  # the loader names the problem
    return cached(path, _build)


def _build(directory: Path) -> Knowledge:
    from bonecds.knowledge.load import (
        load_rules,  # YAML and checks: only when the cache has no entry
    )

    return compile_rules(load_rules(directory))


def evaluate(
    profile: ProfileInput,
    knowledge: Knowledge,
    as_of: dt.date,
    *,
    explain: bool = False,
    language: str = "en",
) -> Report:
    """Evaluate one patient; the same profile, rules and date always give the same report.

    >>> evaluate({"ecog": 1}, load_knowledge(), dt.date(2026, 11, 23))  # doctest: +SKIP
    """
    _check_arguments(as_of, language)
    report, values = _evaluated(_profile(profile), knowledge, as_of, language, keep=explain)
    if not explain:
        return report
    fired = [(item.rule, item.branch) for item in report.rules_fired]
    from bonecds.report.explain import explain_fired  # presentation only, when asked for

    explanations = explain_fired(fired, knowledge.base, values, language)
    return report.model_copy(update={"explanations": explanations})


def evaluate_data(
    profile: ProfileInput, knowledge: Knowledge, as_of: dt.date, *, language: str = "en"
) -> dict[str, Any]:
    """`evaluate(...).to_data()` without building the Report model: plain JSON-ready data.
    The caller owns it: changing it changes no later report."""
    data = shared_report_data(profile, knowledge, as_of, language=language)
    # A JSON round trip (exact for this JSON-ready data) is the fastest deep copy.
    return cast(dict[str, Any], orjson.loads(compact_bytes(data)))


def shared_report_data(
    profile: ProfileInput, knowledge: Knowledge, as_of: dt.date, *, language: str = "en"
) -> dict[str, Any]:
    """The same data, sharing citations, values and texts with the ranking memo (report/rank.py)
    and so with later reports: for a writer that serialises it at once and never changes it
    (batch), saving the copy."""
    _check_arguments(as_of, language)
    profile = _profile(profile)
    return _report_data(profile, _facts(profile, knowledge), knowledge, as_of, language)


def _check_arguments(as_of: Any, language: str) -> None:
    """Bad arguments are InputErrors, like bad profiles, never a ValueError deep inside."""
    if not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime):
        raise InputError(f"as_of must be a datetime.date, not {type(as_of).__name__}")
    if language not in LANGUAGES:
        raise InputError(f"language must be one of {', '.join(LANGUAGES)}")


def _profile(profile: ProfileInput) -> PatientProfile:
    if isinstance(profile, PatientProfile):
        return check_plausible(profile)
    return parse_profile(profile)


def _facts(profile: PatientProfile, knowledge: Knowledge) -> Facts:
    base = knowledge.base
    facts = to_facts(profile, ReferenceDefaults(**base.defaults), base.comparisons)
    for item in facts.derived:
        impossible = item.value < 0 and item.field not in SIGNED_DERIVED
        if not math.isfinite(item.value) or impossible:
            # Plausible inputs one by one can still combine into an impossible value.
            inputs = ", ".join(_input_path(name) for name in item.inputs) or "its inputs"
            raise ProfileError(
                [f"<profile>: {item.field}: impossible value from {inputs}; check their units"]
            )
    return facts


def _input_path(fact: str) -> str:
    spec = FIELDS.get(fact)
    return spec.input_path if spec is not None and spec.input_path else fact


def _evaluated(
    profile: PatientProfile, knowledge: Knowledge, as_of: dt.date, language: str, *, keep: bool
) -> tuple[Report, dict[str, Any]]:
    """The validated report, and (`keep`) the fact values it was evaluated on.

    What is no longer needed goes before the Report's models are made, and the report's data
    after: a large report is some 600 objects the garbage collector tracks, and with the
    profile, the facts and the data still alive around them, every evaluation of the sample
    patient set off a collection (benchmarks/api_ratio.py --breakdown)."""
    facts = _facts(profile, knowledge)
    data = _report_data(profile, facts, knowledge, as_of, language)
    lists = any(value.__class__ is list for value in facts.values.values())
    values = facts.values if keep else {}
    del profile, facts
    report = Report.model_validate(data)
    del data
    if lists:
        _own_lists(report)
    return report, values


def _own_lists(report: Report) -> None:
    """Validation copies every list of the report's data but keeps a patient value (`Any`) as
    it is, and a list value (`meds.current_bma`) a rule branch showed comes from the ranking
    memo, shared with other reports: give the report its own copies. Only a patient with a
    list value can be shown one (the memo's key holds the values)."""
    for items in (report.ranked, report.cautions):
        for item in items:
            _own(item.patient_values)
    for banned in report.contraindicated:
        for reason in banned.reasons:
            _own(reason.patient_values)


def _own(values: list[PatientValue]) -> None:
    for shown in values:
        if shown.value.__class__ is list:
            object.__setattr__(shown, "value", _copied(shown.value))


def _copied(value: Any) -> Any:
    """A deep copy of JSON-ready data, several times faster than copy.deepcopy."""
    if value.__class__ is list:
        return [_copied(item) for item in value]
    if value.__class__ is dict:
        return {key: _copied(item) for key, item in value.items()}
    return value


def _report_data(
    profile: PatientProfile, facts: Facts, knowledge: Knowledge, as_of: dt.date, language: str
) -> dict[str, Any]:
    data = rank(
        run_engine(knowledge, facts),
        knowledge.base,
        facts,
        as_of=as_of.isoformat(),
        patient_id=profile.patient_id,
        engine_version=ENGINE_VERSION,
        language=language,
    )
    data["knowledge_digest"] = knowledge.base.digest
    data["input_digest"] = input_digest(profile)
    return data


def why_not(
    profile: ProfileInput,
    knowledge: Knowledge,
    option: str,
    as_of: dt.date,
    *,
    language: str = "en",
) -> WhyNot:
    """Why `option` was or was not proposed: every rule that could have, condition by condition
    (its texts in `language`).

    >>> why_not({"ecog": 2}, load_knowledge(), "sbrt", dt.date(2026, 11, 23))  # doctest: +SKIP
    """
    _check_arguments(as_of, language)
    if option not in knowledge.base.vocabulary:
        close = difflib.get_close_matches(option, list(knowledge.base.vocabulary), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InputError(f"'{option}' is not an option id{hint}")
    report, values = _evaluated(_profile(profile), knowledge, as_of, language, keep=True)
    from bonecds.report.explain import why_not as explain_why_not

    return explain_why_not(option, report, knowledge.base, values)
