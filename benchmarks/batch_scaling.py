"""How `bonecds batch` scales from one worker to two, per output format.

    python -m benchmarks.batch_scaling [--size 6000] [--rounds 3]

The full report (~15 KiB a line) is written by the parent for every worker, which caps the
speed-up; a summary row (~0.3 KiB) takes that writing off the critical path. Each figure is a
ratio of wall times measured in the same run, rounds interleaved (1 and 2 workers, each
format, in turn) so that load from other processes falls on both sides; the best of the rounds
is kept. Run on an otherwise idle machine for absolute figures; the ratios are what is checked.

The parent's own CPU time per record (reading, receiving results, writing) is shown too: with
two workers the parent must keep up with both, and unlike wall time it hardly depends on what
else the machine runs, so it shows the effect of the format even on a busy machine. So is the
workers' CPU time per record against the one-worker run's: what starting each worker costs
(a fresh interpreter importing bonecds, the first evaluation registering the rules with
durable_rules) and two busy cores slowing each other down, which the CPU ceiling leaves out.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.common import AS_OF, RULES
from bonecds import Knowledge, load_knowledge
from bonecds.cohort.output import OutputShape
from bonecds.cohort.run import BatchOptions, run_batch
from bonecds.testing.synthetic import synthetic_cohort

TARGET = 1.8  # summary format: 2 workers at least this many times one worker's throughput
FORMATS = ("json", "summary")


Timing = tuple[float, float, float]  # (wall, parent CPU, workers' CPU), seconds


def timed_run(knowledge: Knowledge, source: Path, out: Path, fmt: str, workers: int) -> Timing:
    options = BatchOptions(source, out, as_of=AS_OF, workers=workers, shape=OutputShape(fmt))
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    run_batch(options, knowledge)  # the pool's workers have ended (and been waited for) after
    return time.perf_counter() - wall, time.process_time() - cpu, _children_cpu() - children


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(size: int, rounds: int, directory: Path) -> dict[tuple[str, int], Timing]:
    """Best (wall, parent CPU) per (format, workers) over interleaved rounds."""
    knowledge = load_knowledge(RULES)
    source = directory / "cohort.ndjson"
    lines = (json.dumps(p) for p in synthetic_cohort(size, seed=7))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    best: dict[tuple[str, int], Timing] = {}
    for _ in range(rounds):
        for fmt in FORMATS:
            for workers in (1, 2):
                out = directory / f"out-{fmt}-{workers}"
                timing = timed_run(knowledge, source, out, fmt, workers)
                best[fmt, workers] = min(timing, best.get((fmt, workers), timing))
    return best


def report(best: dict[tuple[str, int], Timing], size: int) -> tuple[list[str], float]:
    rows = [
        "| format | 1 worker evals/s | 2 workers evals/s | speed-up (wall) "
        "| parent CPU µs/record, 2 workers | CPU ceiling on 2 cores "
        "| CPU µs/record: 1 worker, 2 workers' |",
        "|---|---|---|---|---|---|---|",
    ]
    for fmt in FORMATS:
        one, two = size / best[fmt, 1][0], size / best[fmt, 2][0]
        alone, pooled = best[fmt, 1][1] / size * 1e6, best[fmt, 2][2] / size * 1e6
        rows.append(
            f"| {fmt} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x "
            f"| {best[fmt, 2][1] / size * 1e6:,.0f} | {ceiling(best, fmt):.2f}x "
            f"| {alone:,.0f}, {pooled:,.0f} |"
        )
    speedup = best["summary", 1][0] / best["summary", 2][0]
    verdict = "met" if speedup >= TARGET else "NOT met"
    rows.append(
        f"\nSummary format, 2 workers vs 1: {speedup:.2f}x wall (target >= {TARGET}x: {verdict}); "
        f"CPU ceiling {ceiling(best, 'summary'):.2f}x."
    )
    return rows, speedup


def ceiling(best: dict[tuple[str, int], Timing], fmt: str) -> float:
    """The speed-up two cores allow when the parent shares them with the two workers: each
    record costs a worker's CPU (bounded by the one-worker run's, which did everything in one
    process) plus the parent's. Load on the machine barely moves CPU times, so this ratio
    stays meaningful on a busy machine where the wall-time ratio does not."""
    one_worker = best[fmt, 1][1]
    parent = best[fmt, 2][1]
    return 2 * one_worker / (one_worker + parent)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=6000, help="synthetic profiles")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        best = measure(args.size, args.rounds, Path(directory))
    rows, _ = report(best, args.size)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
