"""`bonecds batch`: cohorts in, one report per line out (library: cohort/run.py,
runners: cohort/runners.py).

Imported by cli/app.py at start-up, so this module imports only typer at the top: the batch
machinery (and Dask) load when the command runs, keeping `bonecds --help` fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bonecds.cli._options import AsOfOption, LangOption, Language, RulesOption, as_of_date

__all__ = ["register"]

if TYPE_CHECKING:
    from bonecds.cohort.output import OutputShape
    from bonecds.cohort.run import BatchOptions, RunnerFactory, Summary

EXIT_INTERRUPTED = 130
TOP_ERRORS_SHOWN = 10


class Engine(StrEnum):
    local = "local"
    dask = "dask"


class BatchFormat(StrEnum):
    json = "json"
    summary = "summary"
    parquet = "parquet"
    html = "html"


def register(app: typer.Typer, errors_as_exit: Callable[[], AbstractContextManager[None]]) -> None:
    """Add the `batch` command to the CLI."""

    @app.command("batch")
    def batch_command(
        input_path: Annotated[
            Path,
            typer.Argument(
                metavar="INPUT", help="NDJSON file: one patient profile (JSON object) per line."
            ),
        ],
        out: Annotated[
            Path,
            typer.Option(
                "--out",
                "-o",
                help="Output: NDJSON (json), CSV (summary), Parquet file, or HTML directory.",
            ),
        ],
        errors: Annotated[
            Path | None,
            typer.Option(help="Errors file (default: OUTPUT.errors.jsonl): line, field, message."),
        ] = None,
        workers: Annotated[
            int | None,
            typer.Option("--workers", "-w", min=1, help="Worker processes (default: all cores)."),
        ] = None,
        as_of: AsOfOption = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue an interrupted run from its checkpoint.")
        ] = False,
        engine: Annotated[
            Engine, typer.Option("--engine", help="local processes, or a Dask cluster.")
        ] = Engine.local,
        scheduler: Annotated[
            str | None,
            typer.Option(help="Dask scheduler address (default: a LocalCluster on this machine)."),
        ] = None,
        rules: RulesOption = None,
        output_format: Annotated[
            BatchFormat,
            typer.Option(
                "--format",
                "-f",
                help="json: the full report per line; summary: one CSV row per patient; "
                "parquet: the same rows (needs bonecds[parquet]); html: one page per patient.",
            ),
        ] = BatchFormat.json,
        lang: LangOption = Language.en,
    ) -> None:
        """Evaluate a cohort: NDJSON profiles in, one JSON report per line out, input order."""
        with errors_as_exit():
            from bonecds.api import load_knowledge
            from bonecds.cohort.run import BatchInterrupted, run_batch

            shape = _shape(output_format, lang, out)
            options = _options(input_path, out, errors, workers, as_of, resume, shape)
            knowledge = load_knowledge(rules)
            factory = _runner(engine, scheduler, options)
            try:
                with _progress_bar(options) as progress:
                    summary = run_batch(options, knowledge, runner=factory, progress=progress)
            except BatchInterrupted as stop:
                sys.stderr.write(f"{stop}; continue with --resume\n")
                raise typer.Exit(EXIT_INTERRUPTED) from None
        sys.stdout.write(format_summary(summary, options))


def _options(
    input_path: Path,
    out: Path,
    errors: Path | None,
    workers: int | None,
    as_of: str | None,
    resume: bool,
    shape: OutputShape,
) -> BatchOptions:
    from bonecds.cohort.run import BatchOptions
    from bonecds.cohort.runners import default_workers

    return BatchOptions(
        input=input_path,
        output=out,
        as_of=as_of_date(as_of),
        errors=errors,
        workers=workers or default_workers(),
        resume=resume,
        shape=shape,
    )


def _shape(output_format: BatchFormat, language: Language, out: Path) -> OutputShape:
    from bonecds.cohort.output import OutputShape

    directory = str(out) if output_format == "html" else ""
    return OutputShape(output_format.value, directory, language.value)


def _runner(engine: Engine, scheduler: str | None, options: BatchOptions) -> RunnerFactory | None:
    from bonecds.errors import InputError

    if engine is Engine.local:
        if scheduler:
            raise InputError("--scheduler needs --engine dask")
        return None  # batch.run_batch's default: this process or a local process pool

    from bonecds._extras import require_extra

    require_extra("dask")
    from bonecds.cohort.runners import dask_runner

    workers, shape = options.workers, options.shape
    return lambda knowledge, as_of: dask_runner(knowledge, as_of, scheduler, workers, shape)


@contextmanager
def _progress_bar(options: BatchOptions) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr with rate and ETA, only when stderr is a terminal (so
    logs and pipes stay clean; the bar never touches OUTPUT)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    from bonecds.cohort.run import count_records

    total = count_records(options.input)
    columns = (
        TextColumn("evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]} profiles/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    # Redrawn when a chunk is written, not by rich's refresh thread: with no other thread,
    # the pool may fork its workers, which start several times faster (cohort/runners.py).
    with Progress(*columns, console=Console(stderr=True), auto_refresh=False) as bar:
        task = bar.add_task("batch", total=total, rate="-")
        started: list[int] = []

        def update(done: int) -> None:
            if not started:  # the first call carries the records of a resumed run
                started.append(done)
                bar.reset(task, completed=done, total=total, rate="-")
            else:
                speed = bar.tasks[0].speed
                bar.update(task, completed=done, rate=f"{speed:,.0f}" if speed else "-")
            bar.refresh()

        yield update


def format_summary(summary: Summary, options: BatchOptions) -> str:
    """Counts by first-ranked option and by error, most frequent first."""
    lines = [
        f"{summary.records} records: {summary.reports} reports in {options.output}, "
        f"{summary.bad_records} bad records"
        + (f" (see {options.errors_path})" if summary.bad_records else ""),
        "first-ranked option:",
        *_counted(summary.by_top_option),
    ]
    if summary.by_error:
        lines.append("errors:")
        lines.extend(_counted(summary.by_error, TOP_ERRORS_SHOWN))
    return "\n".join(lines) + "\n"


def _counted(counts: dict[str, int], limit: int | None = None) -> list[str]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"  {count:>9}  {name}" for name, count in ordered[:limit]]
    if limit is not None and len(ordered) > limit:
        shown.append(f"  ... and {len(ordered) - limit} more kinds (see the errors file)")
    return shown
