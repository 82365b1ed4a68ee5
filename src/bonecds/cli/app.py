"""The `bonecds` command line: parse arguments, call the library, render, write once.

Exit codes: 0 success; 2 invalid input (profile, rules, arguments), one line on stderr naming
the field or file:line; 1 internal error. Output is written only after everything succeeded, so
a failure never leaves partial output. No patient value is ever logged.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

__all__ = ["app", "main"]

# pydantic plugins (observability hooks found through package entry points) would see every
# validated profile, that is patient data; the command line runs without them, unless the user
# set PYDANTIC_DISABLE_PLUGINS.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer

from bonecds.cli._options import AsOfOption, LangOption, Language, RulesOption, as_of_date
from bonecds.errors import InputError, InternalError, printable

if TYPE_CHECKING:
    from bonecds.profile.model import PatientProfile

# The library is imported inside each command, so that `bonecds --help` and argument errors
# answer without loading pydantic models, the rules machinery or durable_rules.

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,  # locals would include patient data
    no_args_is_help=True,
    help="Clinical decision support for bone metastasis and bone-tumour care. "
    "Research prototype, not a medical device.",
)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    yaml = "yaml"
    markdown = "markdown"
    html = "html"


class SchemaName(StrEnum):
    patient = "patient"
    rules = "rules"


def _fail(message: str, code: int) -> NoReturn:
    lines = [printable(line) for line in message.rstrip().split("\n")]
    sys.stderr.write("\n".join(lines) + "\n")
    raise typer.Exit(code)


@contextmanager
def _errors_as_exit() -> Iterator[None]:
    """Translate library errors once, at the edge: one line on stderr, never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except InputError as error:
        _fail(f"error: {error}", 2)
    except InternalError as error:
        _fail(f"internal error: {error}. Please report it (no patient data was logged).", 1)
    except Exception as error:  # a bug: still no traceback, no patient values
        _fail(f"internal error ({error.__class__.__name__}). Please report it.", 1)


def _read_patient(
    path: str, as_of: dt.date | None, language: str
) -> tuple[PatientProfile, dt.date | None, list[str]]:
    from bonecds.cli._patients import read_patient

    if path == "-":
        return read_patient(None, _read_stdin(), as_of, language)
    return read_patient(Path(path), as_of=as_of, language=language)


def _read_stdin() -> str:
    from bonecds.profile.model import MAX_INPUT_BYTES, decode_text

    if sys.stdin is None:  # started with standard input closed
        raise InputError("standard input is closed; give a file path instead of -")
    try:
        raw = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read standard input ({error.__class__.__name__})") from None
    return decode_text(raw, "<stdin>")


def _require_existing(paths: list[Path]) -> None:
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or directory")


@app.command("evaluate")
def evaluate_command(
    path: Annotated[
        str, typer.Argument(help="Patient profile or scenario (YAML or JSON), or - for stdin.")
    ],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show the conditions and values behind each output.")
    ] = False,
    lang: LangOption = Language.en,
    as_of: AsOfOption = None,
    why_not_option: Annotated[
        str | None, typer.Option("--why-not", help="Explain why OPTION was or was not proposed.")
    ] = None,
    audit: Annotated[
        Path | None,
        typer.Option("--audit", help="Also write a replayable audit record (JSON) to this file."),
    ] = None,
    rules: RulesOption = None,
) -> None:
    """Evaluate one patient and print the ranked management options."""
    with _errors_as_exit():
        from bonecds.api import load_knowledge
        from bonecds.report.render import terminal_width
        from bonecds.testing.audit import OutputOptions, make_record, record_json, render

        given = as_of_date(as_of)
        profile, scenario_date, mapping_notes = _read_patient(path, given, lang.value)
        date = given or scenario_date or dt.date.today()
        knowledge = load_knowledge(rules)
        options = OutputOptions(
            format=output_format.value,
            language=lang.value,
            explain=explain,
            why_not=why_not_option,
            width=terminal_width() if output_format.value == "text" else None,
        )
        text, report = render(profile, knowledge, date, options, mapping_notes)
        if audit is not None:
            record = make_record(profile, knowledge, date, options, text, report, mapping_notes)
            _write_audit(audit, record_json(record))
    sys.stdout.write(text)


def _write_audit(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(f"error: cannot write the audit record {path} ({error.__class__.__name__})", 1)


@app.command("replay")
def replay_command(
    path: Annotated[
        Path, typer.Argument(help="An audit record (evaluate --audit, or the service).")
    ],
    rules: RulesOption = None,
) -> None:
    """Evaluate an audit record again: "same bytes", or what changed (knowledge, output, items)."""
    with _errors_as_exit():
        from bonecds.api import load_knowledge
        from bonecds.testing.audit import read_record, replay

        outcome = replay(read_record(path), load_knowledge(rules))
    sys.stdout.write("\n".join(outcome.lines) + "\n")
    if not outcome.same:
        raise typer.Exit(1)


@app.command("test")
def run_scenarios_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenario files or directories.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Rewrite the golden snapshots that exist (and create one for each scenario "
            "file named).",
        ),
    ] = False,
    show_coverage: Annotated[
        bool, typer.Option("--coverage", help="Report rule coverage.")
    ] = False,
    fail_under: Annotated[
        float | None, typer.Option("--fail-under", help="Fail below this rule coverage (%).")
    ] = None,
    rules: RulesOption = None,
) -> None:
    """Run clinical scenarios: PASS/FAIL each with a readable diff; exit 1 on any failure."""
    with _errors_as_exit():
        from bonecds.api import load_knowledge
        from bonecds.testing.regression import coverage, junit_xml, run_scenario, scenario_files

        paths = paths or [Path("patient_fixtures")]
        _require_existing(paths)
        knowledge = load_knowledge(rules)
        files = scenario_files(paths)
        if not files:
            _fail("error: no scenario files found", 2)
        named = {path for path in paths or [] if path.is_file()}
        results = [
            run_scenario(f, knowledge, golden=True, update=update, create=f in named) for f in files
        ]
        lines = [result.describe() for result in results]
        found = coverage(results, knowledge) if show_coverage or fail_under is not None else None
        if found is not None:
            lines.append(found.describe())
        failed = sum(not result.passed for result in results)
        lines.append(f"{len(results) - failed} passed, {failed} failed")
        if junit is not None:
            junit.write_text(junit_xml(results), encoding="utf-8")
    sys.stdout.write("\n".join(lines) + "\n")
    below = found is not None and fail_under is not None and found.percent < fail_under
    if below:
        sys.stderr.write(f"rule coverage {found.percent:.1f}% is below {fail_under}%\n")  # type: ignore[union-attr]
    if failed or below:
        raise typer.Exit(1)


@app.command("diff")
def diff_command(
    rules_a: Annotated[Path, typer.Argument(help="Rules directory before.")],
    rules_b: Annotated[Path, typer.Argument(help="Rules directory after.")],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Scenarios (default: patient_fixtures).")
    ] = None,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when outputs change.")
    ] = False,
) -> None:
    """Run the scenarios on two versions of the rules and list every output that changes."""
    with _errors_as_exit():
        from bonecds.api import load_knowledge
        from bonecds.testing.regression import diff_knowledge, scenario_files

        paths = paths or [Path("patient_fixtures")]
        _require_existing(paths)
        files = scenario_files(paths)
        changes = diff_knowledge(files, load_knowledge(rules_a), load_knowledge(rules_b))
        lines = []
        for change in changes:
            lines.append(f"{change.path}")
            lines += [
                f"  {line}" for line in change.lines if line not in ("--- before", "+++ after")
            ]
        lines.append(f"{len(changes)} of {len(files)} scenarios change")
    sys.stdout.write("\n".join(lines) + "\n")
    if exit_code and changes:
        raise typer.Exit(1)


@app.command("schema")
def schema_command(name: Annotated[SchemaName, typer.Argument(help="patient or rules")]) -> None:
    """Print a JSON Schema: the patient profile, or the rule-file format."""
    from bonecds.knowledge.schema import dump, patient_schema, rule_file_schema

    builders: dict[str, Callable[[], dict[str, object]]] = {
        "patient": patient_schema,
        "rules": rule_file_schema,
    }
    sys.stdout.write(dump(builders[name.value]()))


def _register_extensions() -> None:
    """Commands that live beside their stage: `serve` (cli/_serve.py), `batch` (cli/_batch.py)
    and `rules` (cli/_rules.py)."""
    from bonecds.cli import _batch as cli_batch
    from bonecds.cli import _rules as cli_rules
    from bonecds.cli import _serve as cli_serve

    cli_serve.register(app, _errors_as_exit)
    cli_batch.register(app, _errors_as_exit)
    cli_rules.register(app, _errors_as_exit)


_register_extensions()


def main() -> None:
    """Console-script entry point. Output that cannot be written (a full disk, a closed pipe)
    is one line on stderr and exit 1, not a traceback at shutdown."""
    code: int | str | None = 0
    try:
        app()
    except SystemExit as stop:
        code = stop.code
    except OSError as error:
        _unwritable(error)
    try:
        sys.stdout.flush()
    except OSError as error:
        _unwritable(error)
    sys.exit(code)


def _unwritable(error: OSError) -> NoReturn:
    # Later flushes of the same stream would fail again at exit: send them nowhere.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    reason = os.strerror(error.errno) if error.errno else error.__class__.__name__
    sys.stderr.write(f"error: cannot write the output ({reason})\n")
    sys.exit(1)
