"""The API path against the batch path for the same reports (issue 14, section 1).

- API: `bonecds.evaluate(profile, ...)` then `Report.to_json()`: the validated Report model and
  its canonical JSON, what a library caller or `bonecds evaluate -f json` gets.
- batch: `api.shared_report_data(profile, ...)` then `cohort.output.report_line`: the plain
  report data, shared with the ranking memo, written at once as one sorted JSON line.

Both start from the same profile data (a dict) and give the same report. Timed interleaved in
blocks (benchmarks/common.py), median CPU per report, after a warm-up of another seed; target
<= 1.3x. Two cohorts: the sample patient (one report, every part from the ranking memo: the
API's extra work weighs most there) and distinct synthetic patients.
`python -m benchmarks.api_ratio [--patients N] [--rounds N]`.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
from collections.abc import Callable
from typing import Any

from benchmarks.common import AS_OF, RULES, SAMPLE, SEED, interleaved, machine
from bonecds import evaluate, load_knowledge
from bonecds.api import Knowledge, shared_report_data
from bonecds.cohort.output import report_line
from bonecds.report.model import Report
from bonecds.testing.scenarios import load_scenario
from bonecds.testing.synthetic import synthetic_cohort


def pipelines(knowledge: Knowledge) -> dict[str, Callable[[Any], Any]]:
    def api(profile: dict[str, Any]) -> str:
        return evaluate(profile, knowledge, AS_OF).to_json()

    def batch(profile: dict[str, Any]) -> bytes:
        return report_line(shared_report_data(profile, knowledge, AS_OF))

    return {"api": api, "batch": batch}


def measure(knowledge: Knowledge, profiles: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Median CPU µs of the API and batch paths, and their ratio."""
    timed = interleaved(pipelines(knowledge), profiles)
    api, batch = timed["api"].median(cpu=True), timed["batch"].median(cpu=True)
    return api, batch, api / batch


def breakdown(knowledge: Knowledge, profiles: list[dict[str, Any]]) -> None:
    """Where the API path's extra time goes: each stage timed in the same interleaved run, and
    the garbage collections each path sets off (the Report is some 200 models for the sample
    patient, 3 GC-tracked objects each, so that the collector runs about once per report)."""
    collections = {"count": 0}

    def counted(phase: str, info: dict[str, Any]) -> None:
        collections["count"] += phase == "start"

    stages: dict[str, Callable[[Any], Any]] = {
        **pipelines(knowledge),
        "report data only": lambda p: shared_report_data(p, knowledge, AS_OF),
        "report data + Report.model_validate": lambda p: Report.model_validate(
            shared_report_data(p, knowledge, AS_OF)
        ),
        "evaluate() only": lambda p: evaluate(p, knowledge, AS_OF),
    }
    for name, stage in stages.items():
        gc.callbacks.append(counted)
        for profile in profiles[:200]:
            stage(profile)
        gc.callbacks.remove(counted)
        print(f"  {name}: {collections['count'] / 200:.2f} collections per report")
        collections["count"] = 0
    for collect in (True, False):
        if not collect:
            gc.disable()
        timed = interleaved(stages, profiles)
        gc.enable()
        label = "collector on" if collect else "collector off"
        for name, timing in timed.items():
            print(f"  {label}, {name}: {timing.median(cpu=True):,.0f} µs median CPU")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--breakdown", action="store_true", help="time each stage too")
    args = parser.parse_args(argv)
    knowledge = load_knowledge(RULES)
    _, sample = load_scenario(SAMPLE)
    sample_data = sample.model_dump(mode="json", exclude_none=True)
    cohorts = {
        "sample patient": [sample_data] * args.patients,
        "synthetic patients": synthetic_cohort(args.patients, SEED),
    }
    run = pipelines(knowledge)
    for profile in [*synthetic_cohort(300, SEED - 1), sample_data]:
        run["api"](profile)  # warm-up: the ruleset registered, the memo filled
        run["batch"](profile)
    same = _indented(shared_report_data(sample_data, knowledge, AS_OF))
    if run["api"](sample_data).encode() != same:
        raise SystemExit("the two paths give different reports")
    print(f"machine: {machine()}")
    for label, profiles in cohorts.items():
        ratios = []
        for _ in range(args.rounds):
            api, batch, ratio = measure(knowledge, profiles)
            ratios.append(ratio)
            print(f"{label}: API {api:,.0f} µs, batch {batch:,.0f} µs (median CPU): {ratio:.2f}x")
        print(f"{label}: median of {args.rounds} rounds {statistics.median(ratios):.2f}x")
        if args.breakdown:
            breakdown(knowledge, profiles)


def _indented(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


if __name__ == "__main__":
    main()
