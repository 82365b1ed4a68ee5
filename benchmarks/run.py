"""The bonecds benchmark: the engine and the plain-Python floor, measured in one run.

    python -m benchmarks.run            # full run (about 10 minutes on 2 cores)
    python -m benchmarks.run --quick    # smaller cohorts, for a smoke test
    python -m benchmarks.run --write benchmarks/RESULTS.md

Every cohort is synthetic and seeded (bonecds.testing.synthetic, seed 2026): never patient
data. Figures are printed as Markdown; `--write` replaces the generated part of RESULTS.md and
keeps what follows its end marker (the analysis). A benchmark, not a test: nothing here fails
on a target.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import gc
import json
import multiprocessing
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

import bonecds
from benchmarks.common import (
    AS_OF,
    RULES,
    SAMPLE,
    SEED,
    Pipelines,
    fmt,
    interleaved,
    machine,
    scaled_knowledge,
)
from benchmarks.floor import Floor
from bonecds import Knowledge, load_knowledge
from bonecds.cohort.run import BatchOptions, read_chunks, run_batch
from bonecds.cohort.runners import default_workers
from bonecds.engine.compile import compile_rules, partition_rules
from bonecds.testing.synthetic import synthetic_cohort, synthetic_profile

END_MARKER = "<!-- end of generated figures: the analysis below is kept by --write -->"


@dataclasses.dataclass(frozen=True)
class Sizes:
    latency: int = 5000
    throughput: int = 20000
    soak: int = 100_000
    scaling: int = 1000


WARM_UP = 200  # records per pipeline before latency is timed, from another seed
QUICK = Sizes(latency=500, throughput=2000, soak=5000, scaling=200)


def lines_of(profiles: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(profile).encode() + b"\n" for profile in profiles]


def latency_section(pipes: Pipelines, size: int) -> tuple[list[str], dict[str, float]]:
    lines = lines_of(synthetic_cohort(size, SEED))
    # Steady state: one-time costs (registering the ruleset with durable_rules, filling the
    # caches) are start-up, measured by the throughput and cold-start sections instead.
    for line in lines_of(synthetic_cohort(WARM_UP, SEED - 1)):
        pipes.engine_line(line)
        pipes.floor_line(line)
    end_to_end = interleaved({"engine": pipes.engine_line, "floor": pipes.floor_line}, lines)
    facts = [pipes.facts(json.loads(line)) for line in lines]
    matching = interleaved({"engine": pipes.engine_match, "floor": pipes.floor_match}, facts)
    rows = [
        "| pipeline | median µs | p99 µs | median CPU µs | p99 CPU µs | evals/s (1 core, CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for label, timing in (
        ("bonecds end to end (JSON line in, report line out)", end_to_end["engine"]),
        ("floor end to end (JSON line in, firings out)", end_to_end["floor"]),
        ("bonecds matching only (durable_rules)", matching["engine"]),
        ("floor matching only", matching["floor"]),
    ):
        rows.append(
            f"| {label} | {fmt(timing.median())} | {fmt(timing.p99())} | "
            f"{fmt(timing.median(True))} | {fmt(timing.p99(True))} | {fmt(timing.rate(True))} |"
        )
    ratios = {
        "end_to_end": end_to_end["engine"].median(True) / end_to_end["floor"].median(True),
        "matching": matching["engine"].median(True) / matching["floor"].median(True),
        "rate": end_to_end["engine"].rate(True),
        "rate_wall": end_to_end["engine"].rate(),
        "p99": end_to_end["engine"].p99(),
        "p99_cpu": end_to_end["engine"].p99(True),
    }
    rows.append("")
    rows.append(
        f"Ratios (median CPU, same run, interleaved): end to end {ratios['end_to_end']:.1f}x the "
        f"floor; matching {ratios['matching']:.1f}x the floor."
    )
    return rows, ratios


_floor_state: dict[str, Any] = {}


def _init_floor(knowledge_bytes: bytes) -> None:
    _floor_state["pipes"] = Pipelines(pickle.loads(knowledge_bytes))


def _floor_chunk(chunk: list[tuple[int, bytes]]) -> int:
    pipes: Pipelines = _floor_state["pipes"]
    return sum(len(pipes.floor_line(line)) for _, line in chunk)


def floor_rate(knowledge: Knowledge, source: Path, workers: int) -> float:
    """The floor over the same file on `workers` processes (reading, IPC, no output)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_floor, (pickle.dumps(knowledge),)) as pool:
        pool.map(_floor_chunk, [[(0, b"{}")]] * workers)  # start-up is not measured
        started = time.perf_counter()
        records = sum(len(chunk) for chunk in read_chunks(source, 0, 200, AS_OF))
        pool.map(_floor_chunk, read_chunks(source, 0, 200, AS_OF))
        return records / (time.perf_counter() - started)


def throughput_section(knowledge: Knowledge, size: int, directory: Path) -> tuple[list[str], float]:
    source = directory / "cohort.ndjson"
    source.write_bytes(b"".join(lines_of(synthetic_cohort(size, SEED + 1))))
    cores = default_workers()
    rows = ["| workers | bonecds batch evals/s (file to file) | floor evals/s |", "|---|---|---|"]
    rates = {}
    for workers in sorted({1, cores}):
        rates[workers] = size / _batch_seconds(knowledge, source, directory, workers)
        rows.append(
            f"| {workers} | {fmt(rates[workers])} | {fmt(floor_rate(knowledge, source, workers))} |"
        )
    same = (directory / "out-1.ndjson").read_bytes() == (
        directory / f"out-{cores}.ndjson"
    ).read_bytes()
    report_size = (directory / "out-1.ndjson").stat().st_size / size / 1024
    # A run costs start-up (worker processes, knowledge, first chunks) plus a time per record:
    # a run of a few records measures the first, so 10^6 is not charged 50 start-ups.
    tiny = directory / "tiny.ndjson"
    tiny.write_bytes(b"".join(lines_of(synthetic_cohort(2 * cores, SEED + 4))))
    start_up = min(_batch_seconds(knowledge, tiny, directory, cores) for _ in range(3))
    per_record = (size / rates[cores] - start_up) / size
    million = start_up + 1e6 * per_record
    rows += [
        "",
        f"Output identical on 1 and {cores} workers: {'yes' if same else 'NO'}. Batch rates "
        f"include start-up and writing {fmt(report_size, 1)} KiB per report. 10^6 profiles on "
        f"{cores} cores: {million / 60:.1f} min (extrapolated: start-up {start_up:.2f} s, "
        f"measured on {2 * cores} records, plus {fmt(1e6 * per_record)} µs per record; "
        f"{1e6 / rates[cores] / 60:.1f} min at the {fmt(size)}-record rate, start-up included).",
    ]
    return rows, million


def _batch_seconds(knowledge: Knowledge, source: Path, directory: Path, workers: int) -> float:
    out = directory / f"out-{workers}.ndjson"
    started = time.perf_counter()
    run_batch(BatchOptions(source, out, as_of=AS_OF, workers=workers), knowledge)
    return time.perf_counter() - started


def _bonecds() -> str:
    """The `bonecds` command of this Python's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "bonecds"
    return str(beside) if beside.exists() else shutil.which("bonecds") or "bonecds"


def million_section(directory: Path) -> tuple[list[str], float]:
    """A real run of `bonecds batch` over 10^6 synthetic records on all cores, as a user starts
    it (needs about 17 GB of disk: 0.7 GB in, 15.5 GB of reports out, both deleted after)."""
    source, out = directory / "million.ndjson", directory / "million-reports.ndjson"
    rng = random.Random(SEED + 6)
    with source.open("wb") as stream:
        for index in range(1_000_000):
            stream.write(json.dumps(synthetic_profile(rng, index)).encode() + b"\n")
    executable = _bonecds()
    command = [executable, "batch", str(source), "--out", str(out), "--as-of", AS_OF.isoformat()]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    with out.open("rb") as reports:
        lines = sum(1 for _ in reports)
    errors = Path(f"{out}.errors.jsonl").stat().st_size
    for path in directory.glob("million*"):
        path.unlink()
    return [
        f"`bonecds batch` over 1,000,000 synthetic records, {default_workers()} workers (the "
        f"default), file to file: {seconds / 60:.1f} min ({fmt(1e6 / seconds)} evaluations/s); "
        f"{fmt(lines)} report lines, {errors} bytes of errors."
    ], seconds


def cold_start_section() -> tuple[list[str], float]:
    executable = _bonecds()
    commands = {
        "bonecds --help": [executable, "--help"],
        "bonecds evaluate (sample)": [executable, "evaluate", str(SAMPLE), "--rules", str(RULES)],
        "bonecds evaluate (sample), knowledge cache off": [
            "env",
            "BONECDS_CACHE_DIR=off",
            executable,
            "evaluate",
            str(SAMPLE),
            "--rules",
            str(RULES),
        ],
        "python -c 'import bonecds.cli.app'": [sys.executable, "-c", "import bonecds.cli.app"],
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
    }
    # The first `evaluate` fills the compiled-knowledge cache (bonecds.knowledge.cache); the
    # median is the warm figure a user sees from the second run on; the cache-off row is every
    # run cold.
    # bonecds' bytecode is compiled first, as pip does when it installs a wheel and Python does
    # on a first run: where PYTHONDONTWRITEBYTECODE is set (it is on the machines here) an
    # editable install would otherwise compile every bonecds module from source at each start.
    compileall.compile_dir(str(Path(bonecds.__file__).parent), quiet=1)
    rows = ["| command | median wall s (7 runs) |", "|---|---|"]
    medians = {}
    for label, command in commands.items():
        times = []
        for _ in range(7):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
        medians[label] = statistics.median(times)
        rows.append(f"| `{label}` | {medians[label]:.3f} |")
    return rows, max(medians["bonecds --help"], medians["bonecds evaluate (sample)"])


def rss_section(pipes: Pipelines, total: int) -> tuple[list[str], float]:
    """Resident memory across `total` evaluations of distinct patients in this process, after
    a warm-up: distinct, so that every cache (the report memo, value tables) is seen filling."""
    chunk = 2000
    for profile in synthetic_cohort(chunk, SEED + 2):
        pipes.evaluate(profile)
    gc.collect()
    process = psutil.Process()
    start = process.memory_info().rss
    samples = []
    for index in range(total // chunk):
        for profile in synthetic_cohort(chunk, SEED + 3 + index):
            pipes.evaluate(profile)
        if (index + 1) % max(1, total // chunk // 5) == 0:
            samples.append((process.memory_info().rss - start) / 2**20)
    growth = samples[-1]
    shape = ", ".join(f"{value:+.1f}" for value in samples)
    evaluated = total // chunk * chunk
    rows = [
        f"RSS growth over {fmt(evaluated)} evaluations of distinct synthetic patients (after "
        f"{fmt(chunk)} warm-up): {growth:+.1f} MB (per fifth: {shape} MB); "
        f"{growth * 100_000 / evaluated:+.1f} MB per 100,000."
    ]
    return rows, growth * 100_000 / evaluated


def subset(knowledge: Knowledge, fraction: float) -> Knowledge:
    rules = knowledge.base.rules
    kept = rules[: max(1, round(len(rules) * fraction))]
    return compile_rules(dataclasses.replace(knowledge.base, rules=kept))


COPIES = (2, 5, 20)  # generated knowledge bases: today's rules copied, up to 1,000 rules


def rules_section(knowledge: Knowledge, size: int) -> list[str]:
    """Matching latency against rule count: parts of today's rules, and generated knowledge
    bases beyond one durable_rules ruleset (benchmarks.common.scaled_knowledge), each timed
    interleaved with today's, so the ratio holds on a loaded machine; and checked against the
    floor on every profile."""
    profiles = synthetic_cohort(size, SEED + 3)
    today = Pipelines(knowledge)
    facts = [today.facts(profile) for profile in profiles]
    rows = [
        "| rules (compiled) | rulesets | bonecds matching median CPU µs | x today's | "
        "floor matching µs | bonecds / floor | profiles differing from the floor | "
        "bonecds end to end µs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    variants = [subset(knowledge, fraction) for fraction in (0.25, 0.5, 0.75)] + [knowledge]
    variants += [compile_rules(scaled_knowledge(knowledge.base, copies)) for copies in COPIES]
    for part in variants:
        pipes = Pipelines(part)
        timed = interleaved(
            {"today": today.engine_match, "engine": pipes.engine_match, "floor": pipes.floor_match},
            facts,
        )
        differing = sum(1 for item in facts if pipes.engine_match(item) != pipes.floor_match(item))
        whole = interleaved({"engine": pipes.engine_line}, lines_of(profiles))["engine"]
        engine, floor = timed["engine"].median(True), timed["floor"].median(True)
        rows.append(
            f"| {fmt(len(part.base.rules))} ({fmt(len(part.rules))}) | "
            f"{len(partition_rules(part.rules))} | {fmt(engine)} | "
            f"{engine / timed['today'].median(True):.2f}x | {fmt(floor)} | {engine / floor:.1f}x | "
            f"{differing} of {fmt(len(facts))} | {fmt(whole.median(True))} |"
        )
    return rows


def fields_section(pipes: Pipelines, size: int) -> list[str]:
    rows = [
        "| profile | known fields | rules fired | bonecds end to end median CPU µs | "
        "bonecds matching µs | floor matching µs |",
        "|---|---|---|---|---|---|",
    ]
    for known, lesions in (
        (0.1, None),
        (0.4, None),
        (0.7, None),
        (1.0, None),
        (0.7, 10),
        (0.7, 100),
        (0.7, 1000),
    ):
        profiles = synthetic_cohort(size, SEED + 4, known=known, lesions=lesions)
        facts = [pipes.facts(profile) for profile in profiles]
        fired = statistics.fmean(len(pipes.floor_match(f)) for f in facts)
        fields = statistics.fmean(len(f.values) for f in facts)
        whole = interleaved({"engine": pipes.engine_line}, lines_of(profiles))["engine"]
        matching = interleaved({"engine": pipes.engine_match, "floor": pipes.floor_match}, facts)
        label = f"known={known}" + (f", {lesions} lesion sites" if lesions is not None else "")
        rows.append(
            f"| {label} | {fields:.0f} | {fired:.1f} | {fmt(whole.median(True))} | "
            f"{fmt(matching['engine'].median(True))} | {fmt(matching['floor'].median(True))} |"
        )
    return rows


def targets(figures: dict[str, float]) -> list[str]:
    checks = [
        (
            "evaluations/s per core, end to end",
            f"{fmt(figures['rate'])} (CPU), {fmt(figures['rate_wall'])} (wall)",
            ">= 2,500",
            figures["rate"] >= 2500,
        ),
        (
            "p99 latency, end to end",
            f"{figures['p99'] / 1000:.2f} ms wall, {figures['p99_cpu'] / 1000:.2f} ms CPU",
            "<= 1.5 ms",
            figures["p99_cpu"] <= 1500,
        ),
        (
            "bonecds / floor (median CPU)",
            f"{figures['matching']:.1f}x matching, {figures['end_to_end']:.1f}x end to end",
            "<= 12x",
            figures["end_to_end"] <= 12,
        ),
        (
            "10^6 profiles on all cores",
            f"{figures['million'] / 60:.1f} min"
            + (" (measured)" if figures.get("million_measured") else " (extrapolated)"),
            "<= 5 min",
            figures["million"] <= 300,
        ),
        (
            "CLI cold start (slowest of --help, evaluate)",
            f"{figures['cold']:.2f} s",
            "<= 0.4 s",
            figures["cold"] <= 0.4,
        ),
        (
            "RSS growth per 100,000 evaluations",
            f"{figures['rss']:+.1f} MB",
            "<= 5 MB",
            figures["rss"] <= 5,
        ),
    ]
    rows = ["| target | measured | goal | met |", "|---|---|---|---|"]
    rows += [
        f"| {name} | {value} | {goal} | {'yes' if ok else 'no'} |"
        for name, value, goal, ok in checks
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small cohorts (smoke test)")
    parser.add_argument(
        "--million", action="store_true", help="also run a real batch of 10^6 records (~5 min)"
    )
    parser.add_argument("--write", type=Path, help="write the figures into this Markdown file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    where = machine()
    knowledge = load_knowledge(RULES)
    pipes = Pipelines(knowledge)
    Floor(knowledge)  # compiled once before timing
    report = [f"# Benchmark results ({'quick' if args.quick else 'full'} run)", ""]
    report += [f"- {key}: {value}" for key, value in where.items()]
    report += [
        "",
        f"Knowledge: {len(knowledge.base.rules)} rules, {len(knowledge.rules)} "
        f"compiled; synthetic cohorts seeded from {SEED}.",
        "",
    ]
    latency, figures = latency_section(pipes, sizes.latency)
    with tempfile.TemporaryDirectory() as directory:
        throughput, figures["million"] = throughput_section(
            knowledge, sizes.throughput, Path(directory)
        )
    million: list[str] = []
    if args.million:
        with tempfile.TemporaryDirectory() as directory:
            million, figures["million"] = million_section(Path(directory))
        figures["million_measured"] = 1.0
    cold, figures["cold"] = cold_start_section()
    rss, figures["rss"] = rss_section(pipes, sizes.soak)
    scaling = fmt(sizes.scaling)
    sections = {
        "Targets": targets(figures),
        f"Latency per evaluation ({fmt(sizes.latency)} profiles, one process, "
        f"after {WARM_UP} warm-up records)": latency,
        f"Throughput ({fmt(sizes.throughput)} profiles)": throughput
        + (["", *million] if million else []),
        "CLI cold start": cold,
        "Memory": rss,
        f"Latency as rules grow ({scaling} profiles)": rules_section(knowledge, sizes.scaling),
        f"Latency as fields and lesions grow ({scaling} profiles)": fields_section(
            pipes, sizes.scaling
        ),
    }
    for title, rows in sections.items():
        report += [f"## {title}", "", *rows, ""]
    report.append(f"Load average at the end: {machine()['load']}.")
    text = "\n".join(report) + "\n"
    sys.stdout.write(text)
    if args.write:
        kept = ""
        if args.write.exists() and END_MARKER in args.write.read_text():
            kept = args.write.read_text().split(END_MARKER, 1)[1]
        args.write.write_text(text + "\n" + END_MARKER + kept)


if __name__ == "__main__":
    main()
