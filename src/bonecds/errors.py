"""The one error family of bonecds.

    BonecdsError
    ├── InputError         the user can fix it; the CLI exits 2 and prints nothing on stdout
    │   ├── ProfileError   a patient profile is invalid; names the field path (and file:line)
    │   └── RuleError      the knowledge base is invalid; carries every Diagnostic found
    └── InternalError      a bug or an engine failure; never carries patient values

Messages never contain patient values: they name fields, files, lines and rule ids only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BonecdsError",
    "Diagnostic",
    "InputError",
    "InternalError",
    "Problem",
    "ProfileError",
    "RuleError",
    "printable",
]

# C0 and C1 controls, DEL, line/paragraph separators and lone surrogates: anything that could
# break a one-line message or drive a terminal.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` on one line: control characters shown as escapes (\\n, \\x1b), never acted on."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a rule file, printed the way compilers do so editors can jump to it."""

    code: str
    message: str
    file: str
    line: int = 0
    column: int = 0
    rule_id: str = ""
    hint: str = ""
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        text = f"{where}: {self.severity}[{self.code}] {self.message}"
        return f"{text}; {self.hint}" if self.hint else text


class BonecdsError(Exception):
    """Base of every error bonecds raises on purpose."""


class InputError(BonecdsError):
    """Bad input the user can correct."""


@dataclass(frozen=True)
class Problem:
    """One problem with a patient profile: where in the input (a file, `file:line:column`, or
    empty), the field path (empty for the input as a whole), and what is wrong."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return ": ".join(part for part in (self.where, self.field, self.message) if part)


class ProfileError(InputError):
    """An invalid patient profile: `items` has one Problem per bad field, naming its path;
    `problems` the same as lines. A plain string is a problem of the input as a whole."""

    def __init__(self, problems: Sequence[str | Problem]) -> None:
        self.items = [
            _one_line(p if isinstance(p, Problem) else Problem("", "", p)) for p in problems
        ]
        self.problems = [str(problem) for problem in self.items]
        problems = self.problems
        first = problems[0] if problems else "invalid patient profile"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


def _one_line(problem: str | Problem) -> Problem:
    if isinstance(problem, str):
        return Problem("", "", printable(problem))
    return Problem(printable(problem.where), printable(problem.field), printable(problem.message))


class RuleError(InputError):
    """An invalid knowledge base. `diagnostics` lists every problem found in one pass."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = str(diagnostics[0]) if diagnostics else "invalid knowledge base"
        more = f" (and {len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(f"{first}{more}")


class InternalError(BonecdsError):
    """A bug or an engine failure. Please report it; it never includes patient data."""
