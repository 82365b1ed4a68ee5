"""The fuzz command (issue 11): every target hammers one boundary with generated input and
counts what came back. Not part of CI (minutes, not seconds); CI runs the seeded property tests.

    python -m benchmarks.fuzz                      # every target at its full budget
    python -m benchmarks.fuzz --count-scale 0.05   # a quick smoke run
    python -m benchmarks.fuzz --only profiles cli --seed 7

A target is a module `benchmarks/fuzz_<name>.py` with `NAME: str`, `DEFAULT_COUNT: int` and
`run(count, seed) -> dict[str, int]` returning `tried`, `ok`, `refused`, `crashed`, `hung` and
`http_500` (0 where not applicable; other keys are shown as notes). Exit 1 on any crash, hang
or HTTP 500.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from types import ModuleType

import benchmarks

COLUMNS = ("tried", "ok", "refused", "crashed", "hung", "http_500")
# A target may count more failures of its own (fuzz_service: `wrong_answer`, a token attack
# accepted or a 4xx without an OperationOutcome); they fail the run too.
FAILURES = ("crashed", "hung", "http_500", "wrong_answer")


def targets() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__))
    return [importlib.import_module(f"benchmarks.{n}") for n in names if n.startswith("fuzz_")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count-scale", type=float, default=1.0, help="multiply every budget")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", nargs="*", default=None, help="target names to run")
    args = parser.parse_args(argv)
    print(f"| target | {' | '.join(COLUMNS)} | seconds | notes |")
    print(f"|---|{'---:|' * len(COLUMNS)}---:|---|")
    failed = False
    for module in targets():
        if args.only and module.NAME not in args.only:
            continue
        count = max(1, round(module.DEFAULT_COUNT * args.count_scale))
        started = time.monotonic()
        counts = module.run(count, args.seed)
        seconds = time.monotonic() - started
        notes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in COLUMNS)
        cells = " | ".join(f"{counts.get(column, 0):,}" for column in COLUMNS)
        print(f"| {module.NAME} | {cells} | {seconds:,.0f} | {notes} |", flush=True)
        failed = failed or any(counts.get(column, 0) for column in FAILURES)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
