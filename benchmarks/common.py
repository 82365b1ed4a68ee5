"""Shared pieces of the benchmarks: the pipelines compared, interleaved timing, statistics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.floor import Floor
from bonecds import Knowledge, evaluate
from bonecds.cohort.runners import _evaluate_record
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import Facts, to_facts
from bonecds.engine.firing import Firing
from bonecds.knowledge.model import (
    All,
    Any_,
    Condition,
    Derive,
    Derived,
    KnowledgeBase,
    Not,
    ReferenceDefaults,
    Rule,
)
from bonecds.profile.model import parse_profile

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
SAMPLE = ROOT / "patient_fixtures" / "sample-breast-bone-mets.yaml"
AS_OF = dt.date(2026, 11, 23)
SEED = 2026


@dataclass(frozen=True)
class Timing:
    """Per-call latencies of one pipeline, in microseconds: wall clock and this thread's CPU."""

    wall: list[float]
    cpu: list[float]

    def median(self, cpu: bool = False) -> float:
        return statistics.median(self.cpu if cpu else self.wall)

    def p99(self, cpu: bool = False) -> float:
        values = sorted(self.cpu if cpu else self.wall)
        return values[min(len(values) - 1, int(0.99 * len(values)))]

    def rate(self, cpu: bool = False) -> float:
        """Evaluations per second on one core (1 / mean latency)."""
        return 1e6 / statistics.fmean(self.cpu if cpu else self.wall)


def interleaved(
    pipelines: dict[str, Callable[[Any], Any]], items: Sequence[Any], block: int = 50
) -> dict[str, Timing]:
    """Time each pipeline on each item, alternating pipelines every `block` items, so that load
    from other processes on a shared machine hits all of them alike and their ratio stays fair,
    while each runs a stretch with its own working set in the CPU caches, as a batch worker does
    (alternating item by item made every pipeline pay for the other's cache misses)."""
    walls: dict[str, list[float]] = {name: [] for name in pipelines}
    cpus: dict[str, list[float]] = {name: [] for name in pipelines}
    for start in range(0, len(items), block):
        for name, run in pipelines.items():
            for item in items[start : start + block]:
                wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
                run(item)
                cpus[name].append((time.thread_time_ns() - cpu) / 1000)
                walls[name].append((time.perf_counter_ns() - wall) / 1000)
    return {name: Timing(walls[name], cpus[name]) for name in pipelines}


class Pipelines:
    """What is compared. End to end, a record is one JSON line of a profile:
    - engine: what a batch worker does (validate, facts, durable_rules, rank, one JSON line);
    - floor: validate, facts, and the floor's firings (the decisions, no report);
    - floor+report: the floor's firings through the same ranking, giving the same report.
    Matching alone compares durable_rules with the floor on ready facts."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.floor = Floor(knowledge)
        self.defaults = ReferenceDefaults(**knowledge.base.defaults)

    def engine_line(self, line: bytes) -> object:
        return _evaluate_record(line, self.knowledge, AS_OF)

    def floor_line(self, line: bytes) -> list[Firing]:
        return self.floor.firings(self.facts(json.loads(line)))

    def facts(self, data: dict[str, Any]) -> Facts:
        return to_facts(parse_profile(data), self.defaults)

    def engine_match(self, facts: Facts) -> list[Firing]:
        return run_engine(self.knowledge, facts)

    def floor_match(self, facts: Facts) -> list[Firing]:
        return self.floor.firings(facts)

    def evaluate(self, data: dict[str, Any]) -> object:
        return evaluate(data, self.knowledge, AS_OF)


def machine() -> dict[str, str]:
    """Where and when the figures were measured (the load average matters on shared hosts)."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        model = names[0] if names else model
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": f"{model}, {len(os.sched_getaffinity(0))} cores available",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "system": f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        "packages": ", ".join(
            f"{name} {metadata.version(name)}" for name in ("durable_rules", "pydantic", "dask")
        ),
        "load": load,
    }


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def scaled_knowledge(base: KnowledgeBase, copies: int) -> KnowledgeBase:
    """A generated knowledge base of `copies` x the rules of `base`, for scaling: copy k
    derives its facts under its own names (`name@k`) and its joins read copy k+1's (mod
    copies), so derived facts cross the engine's rulesets however the rules are split, and
    every copy fires exactly what `base` fires (options are shared: identical facts merge)."""
    rules = tuple(
        _copy_rule(rule, copy, (copy + 1) % copies) for copy in range(copies) for rule in base.rules
    )
    return dataclasses.replace(base, rules=rules)


def _copy_rule(rule: Rule, copy: int, reads: int) -> Rule:
    branches = tuple(
        dataclasses.replace(
            branch,
            when=None if branch.when is None else _read_copy(branch.when, reads),
            effects=tuple(
                Derive(derive=f"{effect.derive}@{copy}") if isinstance(effect, Derive) else effect
                for effect in branch.effects
            ),
        )
        for branch in rule.branches
    )
    when = _read_copy(rule.when, reads)
    return dataclasses.replace(rule, id=f"{rule.id}@{copy}", when=when, branches=branches)


def _read_copy(node: Condition, copy: int) -> Condition:
    if isinstance(node, Derived):
        return dataclasses.replace(node, name=f"{node.name}@{copy}")
    if isinstance(node, All | Any_):
        return type(node)(tuple(_read_copy(item, copy) for item in node.items))
    if isinstance(node, Not):
        return Not(_read_copy(node.item, copy))
    return node
