"""Options several commands share, declared once, and the parsing of their values."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bonecds.errors import InputError

__all__ = ["AsOfOption", "LangOption", "Language", "RulesOption", "as_of_date"]

RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules directory (default: $BONECDS_RULES or ./rules)."),
]


class Language(StrEnum):
    en = "en"
    zh = "zh"


LangOption = Annotated[Language, typer.Option("--lang", help="Report language: en or zh.")]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Evaluation date YYYY-MM-DD (default: today).")
]


def as_of_date(text: str | None) -> dt.date | None:
    """The `--as-of` date, or None when it was not given."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of '{text}' is not a date (use YYYY-MM-DD)") from None
