"""`bonecds rules ...`: check, list, show, docs and sync the knowledge base (rules/README.md is
the rule author's guide to them)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from bonecds.cli._options import RulesOption
from bonecds.errors import Diagnostic, RuleError

__all__ = ["register"]

if TYPE_CHECKING:
    from bonecds.knowledge.model import KnowledgeBase, Rule

rules_app = typer.Typer(no_args_is_help=True, help="Inspect and check the knowledge base.")


class ListFormat(StrEnum):
    text = "text"
    json = "json"


def register(app: typer.Typer, errors_as_exit: Callable[[], AbstractContextManager[None]]) -> None:
    """Add the `rules` command group to the CLI, with the CLI's one translation of errors."""
    global _errors_as_exit
    _errors_as_exit = errors_as_exit
    app.add_typer(rules_app, name="rules")


_errors_as_exit: Callable[[], AbstractContextManager[None]]


def _fail(message: str, code: int) -> NoReturn:
    sys.stderr.write(message.rstrip() + "\n")
    raise typer.Exit(code)


def _load_rules(rules: Path | None) -> KnowledgeBase:
    """The rules as written (not compiled), for the commands that show them."""
    from bonecds.api import default_rules_dir
    from bonecds.knowledge.load import load_rules

    return load_rules(rules or default_rules_dir())


@rules_app.command("check")
def rules_check(
    path: Annotated[
        Path | None,
        typer.Argument(help="Rules directory, or one rule file of it (default: ./rules)."),
    ] = None,
) -> None:
    """Check every rule file; print every problem as file:line:column: severity[code] message."""
    with _errors_as_exit():
        from bonecds.api import default_rules_dir

        target = path or default_rules_dir()
        if not target.exists():
            _fail(f"error: {target}: no such rules directory or rule file", 2)
        only = target if target.is_file() else None
        problems, summary = _problems(target.parent if only else target)
        shown = [d for d in problems if only is None or Path(d.file) == only]
        lines = [str(diagnostic) for diagnostic in shown]
        if only is not None and len(problems) > len(shown):
            lines.append(f"{len(problems) - len(shown)} more in other files of {only.parent}")
        errors = [d for d in problems if d.severity == "error"]
        if errors:
            _fail("\n".join([*lines, f"{len(shown)} problem(s) found"]), 2)
        if lines:
            sys.stderr.write("\n".join([*lines, f"{len(shown)} warning(s)"]) + "\n")
    sys.stdout.write(summary)


def _problems(directory: Path) -> tuple[list[Diagnostic], str]:
    """Every error (loading, compiling) and lint finding of a rules directory, and a summary."""
    from bonecds.api import load_knowledge
    from bonecds.knowledge.lint import lint_knowledge

    try:
        knowledge = load_knowledge(directory)
    except RuleError as error:
        return list(error.diagnostics), ""
    summary = (
        f"ok: {len(knowledge.base.rules)} rules, {len(knowledge.rules)} compiled engine "
        f"rules, knowledge {knowledge.base.version}\n"
    )
    return [*knowledge.base.lint, *lint_knowledge(knowledge.base)], summary


@rules_app.command("list")
def rules_list(
    rules: RulesOption = None,
    output_format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.text,
) -> None:
    """List the rules: id, catalogue entry, kind, status and title (or JSON, one object each)."""
    with _errors_as_exit():
        knowledge = _load_rules(rules)
        if output_format is ListFormat.json:
            text = json.dumps([_summary(rule) for rule in knowledge.rules], indent=2) + "\n"
        else:
            text = "".join(
                f"{r.id}\t{r.catalogue}\t{r.kind}\t{r.status}\t{r.title}\n" for r in knowledge.rules
            )
    sys.stdout.write(text)


def _summary(rule: Rule) -> dict[str, object]:
    return {
        "id": rule.id,
        "catalogue": rule.catalogue,
        "kind": rule.kind,
        "status": rule.status,
        "version": rule.version,
        "title": rule.title,
        "file": Path(rule.file).name,
        "line": rule.line,
        "branches": [branch.name for branch in rule.branches if branch.name],
        "citations": [citation.source for citation in rule.citations],
    }


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="Rule id.")], rules: RulesOption = None
) -> None:
    """Show one rule in plain words: conditions, effects, evidence and citations."""
    with _errors_as_exit():
        from bonecds.knowledge.conditions import suggest
        from bonecds.report.catalogue import describe_rule

        knowledge = _load_rules(rules)
        matches = [rule for rule in knowledge.rules if rule.id == rule_id]
        if not matches:
            hint = suggest(rule_id, [rule.id for rule in knowledge.rules])
            _fail(f"error: no rule '{rule_id}'" + (f"; {hint}" if hint else ""), 2)
        text = describe_rule(matches[0], knowledge, plain=True)
    sys.stdout.write(text)


@rules_app.command("docs")
def rules_docs(rules: RulesOption = None) -> None:
    """Print the knowledge catalogue (Markdown): every rule in plain words, with citations."""
    with _errors_as_exit():
        from bonecds.report.catalogue import render_catalogue

        text = render_catalogue(_load_rules(rules))
    sys.stdout.write(text)


@rules_app.command("sync")
def rules_sync(
    check: Annotated[
        bool, typer.Option("--check", help="Only report what is out of date; write nothing.")
    ] = False,
    root: Annotated[
        Path, typer.Option("--root", help="The repository (default: the current directory).")
    ] = Path("."),
) -> None:
    """After a rule edit: rewrite the generated files (catalogue, rule schema), and list what
    must be reviewed by hand (README ids, golden snapshots that change)."""
    with _errors_as_exit():
        from bonecds.testing.sync import sync

        lines, stale = sync(root, write=not check)
    sys.stdout.write("\n".join(lines) + "\n")
    if stale:
        raise typer.Exit(1)
