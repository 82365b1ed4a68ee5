"""Plain-text layout: the terminal's width, and wrapping that never splits an id.

Lines break only at spaces, and between CJK characters (which carry no spaces); widths count
terminal cells, so Chinese text (two cells a character) fits as well as English.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TextIO

from rich.cells import cell_len

__all__ = ["MAX_WIDTH", "MIN_WIDTH", "PIPE_WIDTH", "terminal_width", "wrap"]

MIN_WIDTH = 60
MAX_WIDTH = 200
PIPE_WIDTH = 100  # a pipe or file has no width of its own: a page most viewers show whole

# One CJK character (breakable on either side), or a run of anything else up to a space.
_TOKEN = re.compile(
    r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]|[^\s\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]+"
)


def terminal_width(stream: TextIO | None = None, environ: dict[str, str] | None = None) -> int:
    """`COLUMNS` when set, else the terminal's width, else a fixed width for pipes; always
    within MIN_WIDTH..MAX_WIDTH."""
    env = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    columns = env.get("COLUMNS", "").strip()
    if columns.isdigit():
        width = int(columns)
    elif stream.isatty():
        try:
            width = os.get_terminal_size(stream.fileno()).columns
        except OSError:
            width = PIPE_WIDTH
    else:
        width = PIPE_WIDTH
    return max(MIN_WIDTH, min(MAX_WIDTH, width))


def wrap(text: str, width: int, first: str = "", rest: str | None = None) -> list[str]:
    """Lines of at most `width` cells: `first` prefixes the first line, `rest` (default: as
    many spaces as `first` is wide) the others. A single word wider than the line stands
    alone rather than being split."""
    rest = " " * cell_len(first) if rest is None else rest
    lines: list[str] = []
    line, used = first, cell_len(first)
    fresh = True  # nothing but the prefix on this line yet
    for match in _TOKEN.finditer(text):
        token = match.group()
        spaced = match.start() > 0 and text[match.start() - 1].isspace()
        gap = " " if spaced and not fresh else ""
        size = cell_len(gap + token)
        if not fresh and used + size > width:
            lines.append(line.rstrip())
            line, used, gap = rest, cell_len(rest), ""
            size = cell_len(token)
        line += gap + token
        used += size
        fresh = False
    lines.append(line.rstrip())
    return lines
