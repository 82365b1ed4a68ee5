"""Reading one knowledge-base file and reporting problems at positions inside it.

Parser messages are rewritten in words a rule author reads ("the '{' opened at line 3 is not
closed"), and the ids a file names (options, cautions, sources, catalogue entries...) are
recorded with their positions, so that cross-file checks point at the offending key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bonecds._yaml import YamlDocument, YamlProblem, parse_yaml
from bonecds.errors import Diagnostic

__all__ = ["Reader", "Reference"]

# Deeper documents are refused before they are built: the YAML composer and every reader
# of conditions recurse, and no rule needs more than a dozen levels.
MAX_DEPTH = 64


@dataclass(frozen=True)
class Reference:
    """An id named in a rule file (kind: option, caution, context, source, catalogue, rule,
    derived, derives), where it was written, to be resolved once every file is read."""

    kind: str
    name: str
    file: str
    line: int
    column: int
    rule_id: str


class Reader:
    """Reads one file and records diagnostics (and named ids) at positions inside it."""

    def __init__(
        self,
        path: Path,
        diagnostics: list[Diagnostic],
        references: list[Reference] | None = None,
    ) -> None:
        self.file = str(path)
        self.diagnostics = diagnostics
        self.references = references if references is not None else []
        self.doc = YamlDocument(None)
        self.empty = False
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else "cannot read it"
            self.report("unreadable-file", f"cannot read this file ({reason})")
            return
        self._parse(text)

    def _parse(self, text: str) -> None:
        try:
            _check_depth(text)
            self.doc = parse_yaml(text)
        except YamlProblem as problem:
            message = plain_yaml_message(problem.message) if problem.code == "yaml-syntax" else ""
            self.report(
                problem.code, message or problem.message, line=problem.line, column=problem.column
            )
            return
        except yaml.YAMLError as error:  # e.g. an unknown tag, found while building values
            mark: Any = getattr(error, "problem_mark", None)
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem_text = str(getattr(error, "problem", "") or error)
            message = plain_yaml_message(problem_text) or "YAML cannot read this value"
            self.report("yaml-syntax", message, line=line, column=column)
            return
        except RecursionError:
            self.report("too-deep", f"the file is nested more than {MAX_DEPTH} levels deep")
            return
        self.empty = self.doc.data is None
        _report_non_finite(self, self.doc.data, ())

    def report(
        self,
        code: str,
        message: str,
        path: tuple[Any, ...] = (),
        rule_id: str = "",
        hint: str = "",
        line: int = 0,
        column: int = 0,
    ) -> None:
        if not line:
            line, column = self.doc.position(path)
        self.diagnostics.append(Diagnostic(code, message, self.file, line, column, rule_id, hint))

    def refer(self, kind: str, name: Any, path: tuple[Any, ...], rule_id: str) -> None:
        """Record that this file names `name` (of `kind`) at `path`, to be checked later."""
        line, column = self.doc.position(path)
        self.references.append(Reference(kind, str(name), self.file, line, column, rule_id))

    def validate(
        self, model: type[BaseModel], data: Any, path: tuple[Any, ...], rule_id: str = ""
    ) -> Any:
        try:
            return model.model_validate(data)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                loc = (*path, *item["loc"])
                code = "unknown-key" if item["type"] == "extra_forbidden" else "invalid-value"
                name = ".".join(str(part) for part in item["loc"])
                self.report(code, f"{name}: {item['msg']}", loc, rule_id)
            return None


def _check_depth(text: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, from the parser's events (which do
    not recurse), before anything recursive sees it."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark: Any = event.start_mark
                    message = f"nested more than {MAX_DEPTH} levels deep"
                    raise YamlProblem("too-deep", message, mark.line + 1, mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return  # a syntax error: parse_yaml reports it with its position


def _report_non_finite(reader: Reader, value: Any, path: tuple[Any, ...]) -> None:
    """`.nan` and `.inf` are valid YAML but no threshold or dose: a NaN comparison is never
    true, so a rule with one would silently never fire."""
    if isinstance(value, float) and not math.isfinite(value):
        reader.report("invalid-value", f"{value} is not a finite number", path)
    elif isinstance(value, dict):
        for key, item in value.items():
            _report_non_finite(reader, item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _report_non_finite(reader, item, (*path, index))


_STARTED = re.compile(r" \((?:while \w+ an? )?([\w ]+?) started at line (\d+)\)$")

# (fragment of PyYAML's problem text, what it means to someone editing a rule file)
_PLAIN_MESSAGES = (
    ("expected <block end>", "this line is not indented like the lines above it{block}"),
    ("did not find expected key", "this line is not indented like the lines above it{block}"),
    ("did not find expected '-'", "this list item is not indented like the items above it"),
    ("expected ',' or '}'", "the '{{' opened at line {start} is not closed by '}}'"),
    ("expected ',' or ']'", "the '[' opened at line {start} is not closed by ']'"),
    ("mapping values are not allowed", "a second ': ' on one line; quote text containing ': '"),
    ("could not find expected ':'", "a line here is neither 'key: value' nor a '- ' item"),
    ("end of stream", "the file ends inside a quote or bracket opened at line {start}"),
    ("'\\t'", "a tab character: indent with spaces"),
    ("tab character", "a tab character: indent with spaces"),
    ("cannot start any token", "a value cannot start with this character; put it in quotes"),
    ("constructor for the tag", "an unknown YAML tag ('!...'); remove it or quote the value"),
    ("unknown escape", "an unknown '\\' escape in double quotes; use single quotes instead"),
    ("expected a comment or a line break", "text after a closed value; quote the whole value"),
    ("expected the node content", "a value is missing here"),
)


def plain_yaml_message(problem: str) -> str:
    """The parser's message in plain words, or "" when there is no better wording."""
    context = _STARTED.search(problem)
    start = context.group(2) if context else "?"
    block = f" (the block starting at line {start})" if context else ""
    for fragment, plain in _PLAIN_MESSAGES:
        if fragment in problem:
            return plain.format(start=start, block=block)
    return ""
