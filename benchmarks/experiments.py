"""Where the time goes: CPU per stage of the per-record path, cold start, and a profile.

    python -m benchmarks.experiments [--size N]
    python -m benchmarks.experiments --before REV [--size N]   # this engine.py against REV's

A diagnostic to read before optimising, not a benchmark of targets (that is benchmarks.run).
Every cohort is synthetic and seeded.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import importlib.util
import io
import json
import pickle
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    AS_OF,
    RULES,
    SAMPLE,
    SEED,
    Pipelines,
    fmt,
    interleaved,
    machine,
)
from bonecds import Knowledge, api
from bonecds.cohort.runners import _report_line
from bonecds.engine import durable as engine
from bonecds.engine.compile import compile_rules
from bonecds.engine.durable import run_engine
from bonecds.engine.facts import to_facts
from bonecds.knowledge.load import load_rules
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.model import parse_profile
from bonecds.report import rank as ranking
from bonecds.testing.synthetic import synthetic_cohort

KEPT = engine.SESSION_EVALUATIONS


def stages(knowledge: Knowledge, size: int) -> list[str]:
    """CPU per stage of the batch worker's path, each stage timed on its own, record by record."""
    defaults = ReferenceDefaults(**knowledge.base.defaults)
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
            firings, knowledge.base, facts, as_of=AS_OF.isoformat(),
            patient_id=None, engine_version=api.ENGINE_VERSION,
        )  # fmt: skip
    return _report_line(value)


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
        "- heaviest imports of `import bonecds.cli.app` (cumulative, -X importtime):",
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
from bonecds.report.render import FORMATS
from bonecds.testing.scenarios import read_patient
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
    command = [sys.executable, "-X", "importtime", "-c", "import bonecds.cli.app"]
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


def session_cost(knowledge: Knowledge, size: int) -> list[str]:
    """The engine with a fresh durable_rules session per patient (the notes' pattern; making
    one initialises frame pools and 512-entry indexes for every beta and action node, state.c
    createStateNode) against one session kept and emptied between patients (engine.py)."""
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    facts = [to_facts(parse_profile(p), defaults) for p in synthetic_cohort(size, SEED + 7)]
    spent = {}
    for label, quota in (("fresh session per patient", 1), ("kept session", None)):
        engine.SESSION_EVALUATIONS = quota or KEPT
        started = time.thread_time_ns()
        for item in facts:
            run_engine(knowledge, item)
        spent[label] = (time.thread_time_ns() - started) / size / 1000
    engine.SESSION_EVALUATIONS = KEPT
    rows = ["| run_engine with | mean CPU µs |", "|---|---|"]
    return rows + [f"| {label} | {fmt(value)} |" for label, value in spent.items()]


def engine_before(knowledge: Knowledge, size: int, revision: str) -> list[str]:
    """run_engine of this tree against the engine.py of `revision` (git), on the same facts,
    interleaved in one process: a change's cost measured where load hits both alike."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/bonecds/engine/durable.py"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as file:
        file.write(source)
    spec = importlib.util.spec_from_file_location("bonecds_engine_before", file.name)
    assert spec is not None
    assert spec.loader is not None
    before = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = before
    spec.loader.exec_module(before)
    Path(file.name).unlink()
    # Its own ruleset name: each module registers and keeps its own sessions.
    theirs = dataclasses.replace(knowledge, ruleset_name=f"{knowledge.ruleset_name}_before")
    defaults = ReferenceDefaults(**knowledge.base.defaults)
    facts = [to_facts(parse_profile(p), defaults) for p in synthetic_cohort(size, SEED + 9)]
    differing = sum(
        1
        for f in facts
        if [dataclasses.astuple(x) for x in run_engine(knowledge, f)]
        != [dataclasses.astuple(x) for x in before.run_engine(theirs, f)]
    )
    timed = interleaved(
        {
            "before": lambda f: before.run_engine(theirs, f),
            "now": lambda f: run_engine(knowledge, f),
        },
        facts,
    )
    rows = ["| run_engine | median CPU µs | mean CPU µs | median wall µs |", "|---|---|---|---|"]
    rows += [
        f"| {label} | {fmt(t.median(True))} | {fmt(1e6 / t.rate(True))} | {fmt(t.median())} |"
        for label, t in (("before (" + revision + ")", timed["before"]), ("now", timed["now"]))
    ]
    ratio = timed["now"].median(True) / timed["before"].median(True)
    return [*rows, "", f"now / before: {ratio:.2f}x (median CPU); firings differing: {differing}"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2000, help="profiles per experiment")
    parser.add_argument("--before", metavar="REV", help="only: this engine against REV's")
    args = parser.parse_args(argv)
    knowledge = api.load_knowledge(RULES)
    where = machine()
    if args.before:
        rows = engine_before(knowledge, args.size, args.before)
        sys.stdout.write("\n".join([f"load {where['load']}", *rows]) + "\n")
        return
    sections = {
        "Where the time goes (CPU per stage)": stages(knowledge, args.size),
        "What a durable_rules session costs": session_cost(knowledge, args.size),
        "Cold start": start_up(),
        "Profile of the per-record path": profile(knowledge, min(args.size, 2000)),
    }
    text = [f"# Experiments ({where['date']}, load {where['load']})", ""]
    for title, rows in sections.items():
        text += [f"## {title}", "", *rows, ""]
    sys.stdout.write("\n".join(text))


if __name__ == "__main__":
    main()
