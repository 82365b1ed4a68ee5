"""Evidence for the core changes proposed in benchmarks/RESULTS.md, measured, never applied.

    python -m benchmarks.experiments [--size N]

Each experiment patches a core function *in this process only*, checks that the results are
identical to the unpatched code on a seeded synthetic cohort, and times both interleaved (CPU
time, so that other processes on a shared machine weigh on both alike). The patches here are
sketches of the proposed change, kept small; the lead applies the real change in the core.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import itertools
import json
import pickle
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import durable_rules_engine

from benchmarks.common import AS_OF, RULES, SAMPLE, SEED, Pipelines, fmt, interleaved, machine
from bonecds import Knowledge, api, ranking
from bonecds.compiler import CompiledKnowledge, compile_rules
from bonecds.engine import Firing, encode_facts, run_engine
from bonecds.facts import Facts, ReferenceDefaults, to_facts
from bonecds.loader import load_rules
from bonecds.profile import parse_profile
from bonecds.report import CitationOut, PatientValue
from bonecds.rules import condition_fields
from bonecds.synthetic import synthetic_cohort


class DirectEngine:
    """Proposal 1 (engine.py): drive durable_rules' C module directly.

    The same compiled ruleset, the same facts asserted one at a time, the same sentinel rule and
    phase markers, state deleted in `finally`; what goes is durable.engine's Python layer per
    action (a Closure, two datetime calls, the state re-serialised by update_state). The loop
    runs every action inside the caller's call, so no dispatcher thread exists at all.
    """

    def __init__(self, compiled: CompiledKnowledge) -> None:
        self.compiled = compiled
        definition: dict[str, Any] = {rule.name: rule.pattern for rule in compiled.rules}
        definition["session"] = {"all": [{"p": {"t": "p"}}]}
        name = f"{compiled.ruleset_name}_direct"
        self.handle = durable_rules_engine.create_ruleset(name, json.dumps(definition))
        self.actions = {
            rule.name: (
                Firing(rule.order, rule.rule_id, rule.branch, rule.assumes, rule.tolerant),
                [json.dumps(fact)[:-1] for fact in rule.produces],  # '{...' awaiting the sid
            )
            for rule in compiled.rules
        }
        self.sessions = itertools.count()

    def run(self, facts: Facts) -> list[Firing]:
        sid = f"d{next(self.sessions)}"
        fired: set[Firing] = set()
        try:
            self._assert({"t": "p", **encode_facts(facts.values), "sid": sid}, sid, fired)
            for stratum in range(1, self.compiled.max_stratum + 1):
                self._assert({"t": "ph", "n": stratum, "sid": sid}, sid, fired)
        finally:
            durable_rules_engine.delete_state(self.handle, sid)
        return sorted(fired)

    def _assert(self, fact: dict[str, Any], sid: str, fired: set[Firing]) -> None:
        code, state = durable_rules_engine.assert_fact(self.handle, json.dumps(fact))[:2]
        if code != 0:  # 1: no rule matched, 2: an identical fact exists
            return
        result = durable_rules_engine.start_action_for_state(self.handle, state)
        message = result[1] if result else None
        while message:
            name = next(iter(json.loads(message)))
            if name != "session":
                firing, produces = self.actions[name]
                fired.add(firing)
                for text in produces:  # matched actions queue up for the loop below
                    durable_rules_engine.assert_fact(self.handle, f'{text}, "sid": "{sid}"}}')
            message = durable_rules_engine.complete_and_start_action(self.handle, state)


def joined_only(compiled: CompiledKnowledge) -> CompiledKnowledge:
    """Proposal 2 (compiler.py): assert only produced facts that some rule joins on."""

    def watch(expression: dict[str, Any]) -> tuple[Any, Any]:
        terms = [expression, *expression.get("$and", ())]
        fixed = {key: term[key] for term in terms for key in ("t", "n") if key in term}
        return fixed.get("t"), fixed.get("n")

    joined = {
        watch(next(iter(element.values())))
        for rule in compiled.rules
        for element in rule.pattern["all"][1:]
    }
    rules = tuple(
        dataclasses.replace(
            rule, produces=tuple(f for f in rule.produces if (f["t"], f["n"]) in joined)
        )
        for rule in compiled.rules
    )
    return dataclasses.replace(compiled, rules=rules, ruleset_name=compiled.ruleset_name + "_j")


_static: dict[tuple[int, int], tuple[Any, list[str], list[str], list[CitationOut]]] = {}


def cached_hit(
    rule: Any, branch_index: int, missing: list[str], knowledge: Any, facts: Facts
) -> Any:
    """Proposal 3 (ranking.py): what a branch reads and cites is computed once per knowledge
    base, and patient values are built with model_construct (their fields are known valid)."""
    key = (id(rule), branch_index)
    if key not in _static:
        branch = rule.branches[branch_index]
        needs = list(dict.fromkeys((*rule.needs, *branch.needs)))
        read = [*condition_fields(rule.when), *condition_fields(branch.when), *needs]
        names = list(dict.fromkeys(read))
        citations = [
            CitationOut(source=c.source, title=knowledge.sources[c.source].title, locator=c.locator)
            for c in rule.citations
        ]
        _static[key] = (branch, names, [ranking.FIELDS[n].unit for n in names], citations)
    branch, names, units, citations = _static[key]
    values = [
        PatientValue.model_construct(field=name, value=facts.values.get(name), unit=unit)
        for name, unit in zip(names, units, strict=True)
    ]
    missing = list(dict.fromkeys(ranking._input_path(name) for name in missing))
    return ranking._Hit(rule, branch, missing, values, list(citations))


@contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, original)


def compare(
    label: str, items: list[Any], before: Callable[[Any], Any], after: Callable[[Any], Any]
) -> str:
    """Identical results on every item, then median CPU per call of both, interleaved."""
    mismatched = sum(before(item) != after(item) for item in items)
    timing = interleaved({"before": before, "after": after}, items)
    old, new = timing["before"].median(True), timing["after"].median(True)
    return (
        f"| {label} | {len(items) - mismatched}/{len(items)} | {fmt(old)} | {fmt(new)} | "
        f"{100 * (new - old) / old:+.0f}% |"
    )


def proposals(knowledge: Knowledge, size: int) -> list[str]:
    pipes = Pipelines(knowledge)
    profiles = synthetic_cohort(size, SEED + 7)
    facts = [pipes.facts(profile) for profile in profiles]
    lines = [json.dumps(profile).encode() for profile in profiles]
    direct = DirectEngine(knowledge)
    trimmed = joined_only(knowledge)
    rows = [
        "| proposal | identical | before median CPU µs | after | change |",
        "|---|---|---|---|---|",
        compare("1. engine.py drives the C engine", facts, pipes.engine_match, direct.run),
        compare(
            "2. compiler.py asserts only joined facts",
            facts,
            pipes.engine_match,
            lambda f: run_engine(trimmed, f),
        ),
    ]
    firings = [run_engine(knowledge, f) for f in facts]
    pairs = list(zip(firings, facts, strict=True))

    def rank(pair: tuple[list[Firing], Facts]) -> object:
        return ranking.rank(
            pair[0],
            knowledge.knowledge,
            pair[1],
            as_of=AS_OF.isoformat(),
            patient_id=None,
            engine_version=api.ENGINE_VERSION,
        )  # fmt: skip  (Report equality compares every field)

    def rank_cached(pair: tuple[list[Firing], Facts]) -> object:
        with patched(ranking, "_hit", cached_hit):  # per call, so both run interleaved
            return rank(pair)

    combined = DirectEngine(trimmed)

    def all_three(line: bytes) -> object:
        with (
            patched(api, "run_engine", lambda _, f: combined.run(f)),
            patched(ranking, "_hit", cached_hit),
        ):
            return pipes.engine_line(line)

    rows.append(compare("3. ranking.py caches per branch", pairs, rank, rank_cached))
    rows.append(compare("1+2+3, end to end (batch line)", lines, pipes.engine_line, all_three))
    return rows


def stages(knowledge: Knowledge, size: int) -> list[str]:
    """CPU per stage of the batch worker's path, each stage timed on its own, record by record."""
    defaults = ReferenceDefaults(**knowledge.knowledge.defaults)
    spent: dict[str, list[float]] = {name: [] for name in STAGES}
    for profile in synthetic_cohort(size, SEED + 9):
        value: Any = json.dumps(profile).encode()
        for name in STAGES:
            started = time.thread_time_ns()
            value = _stage(name, value, knowledge, defaults)
            spent[name].append((time.thread_time_ns() - started) / 1000)
    total = sum(statistics.fmean(values) for values in spent.values())
    rows = ["| stage | mean CPU µs | share |", "|---|---|---|"]
    for name, values in spent.items():
        mean = statistics.fmean(values)
        rows.append(f"| {name} | {fmt(mean)} | {100 * mean / total:.0f}% |")
    return [*rows, f"| total | {fmt(total)} | {fmt(1e6 / total)} evaluations/s per core |"]


STAGES = (
    "json.loads",
    "parse_profile (validation)",
    "to_facts",
    "run_engine (durable_rules)",
    "rank (report)",
    "report to one JSON line",
)


def _stage(name: str, value: Any, knowledge: Knowledge, defaults: ReferenceDefaults) -> Any:
    if name == "json.loads":
        return json.loads(value)
    if name == "parse_profile (validation)":
        return parse_profile(value)
    if name == "to_facts":
        return to_facts(value, defaults)
    if name == "run_engine (durable_rules)":
        return value, run_engine(knowledge, value)
    if name == "rank (report)":
        facts, firings = value
        return ranking.rank(
            firings, knowledge.knowledge, facts, as_of=AS_OF.isoformat(),
            patient_id=None, engine_version=api.ENGINE_VERSION,
        )  # fmt: skip
    data = value.model_dump(mode="json", exclude={"explanations"})
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def start_up() -> list[str]:
    """Where `bonecds evaluate` spends its cold start: imports, then loading the rules."""
    started = time.perf_counter()
    knowledge_base = load_rules(RULES)
    loaded = time.perf_counter()
    compiled = compile_rules(knowledge_base)
    done = time.perf_counter()
    blob = pickle.dumps(compiled)
    unpickle = time.perf_counter()
    pickle.loads(blob)
    end = time.perf_counter()
    rows = [
        f"- load_rules (YAML with positions, validation): {loaded - started:.3f} s; "
        f"compile_rules: {done - loaded:.3f} s; unpickling the compiled knowledge "
        f"({len(blob) // 1024} KiB): {end - unpickle:.3f} s",
        *_sketches(blob),
        "- heaviest imports of `import bonecds.cli` (cumulative, -X importtime):",
    ]
    return rows + [f"  - {line}" for line in _imports()]


# What the two start-up proposals would cost, run as fresh processes (median of 5):
# --help with the library imported only inside commands (a typer app and nothing else), and
# evaluate with the compiled knowledge read from a cache instead of parsing the YAML.
_HELP_SKETCH = """
import typer
app = typer.Typer(add_completion=False)
for name in ("evaluate", "batch", "serve", "schema"):
    app.command(name)(lambda: None)
app(["--help"])
"""
_EVALUATE_SKETCH = """
import datetime, pickle, sys
from bonecds.api import evaluate
from bonecds.render import FORMATS
from bonecds.scenarios import read_patient
knowledge = pickle.loads(open(sys.argv[1], "rb").read())
profile, when = read_patient(__import__("pathlib").Path(sys.argv[2]))
report = evaluate(profile, knowledge, when or datetime.date.today())
sys.stdout.write(FORMATS["text"](report, False))
"""


def _sketches(blob: bytes) -> list[str]:
    with tempfile.NamedTemporaryFile(suffix=".pickle") as cache:
        cache.write(blob)
        cache.flush()
        help_s = _median_run([sys.executable, "-c", _HELP_SKETCH])
        evaluate_s = _median_run([sys.executable, "-c", _EVALUATE_SKETCH, cache.name, str(SAMPLE)])
    return [
        f"- sketch, `--help` importing nothing but typer: {help_s:.3f} s",
        f"- sketch, `evaluate` with the compiled knowledge cached: {evaluate_s:.3f} s",
    ]


def _median_run(command: list[str]) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _imports(top: int = 12) -> list[str]:
    command = [sys.executable, "-X", "importtime", "-c", "import bonecds.cli"]
    stderr = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    entries = []
    for line in stderr.splitlines()[1:]:
        _, cumulative, name = (part.strip() for part in line.split("|"))
        entries.append((int(cumulative), name))
    entries.sort(reverse=True)
    return [f"{name}: {micros / 1000:.0f} ms" for micros, name in entries[:top]]


def profile(knowledge: Knowledge, size: int) -> list[str]:
    """cProfile of the batch worker's per-record path, by internal time."""
    pipes = Pipelines(knowledge)
    lines = [json.dumps(p).encode() for p in synthetic_cohort(size, SEED + 8)]
    profiler = cProfile.Profile()
    profiler.enable()
    for line in lines:
        pipes.engine_line(line)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(r"bonecds|durable|json|pydantic", 30)
    return ["```", *stream.getvalue().strip().splitlines()[-36:], "```"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="profiles per experiment")
    args = parser.parse_args(argv)
    knowledge = api.load_knowledge(RULES)
    where = machine()
    sections = {
        "Where the time goes (CPU per stage)": stages(knowledge, args.size),
        "Proposed core changes, measured": proposals(knowledge, args.size),
        "Cold start": start_up(),
        "Profile of the per-record path": profile(knowledge, min(args.size, 2000)),
    }
    text = [f"# Experiments ({where['date']}, load {where['load']})", ""]
    for title, rows in sections.items():
        text += [f"## {title}", "", *rows, ""]
    sys.stdout.write("\n".join(text))


if __name__ == "__main__":
    main()
