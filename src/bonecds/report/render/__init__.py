"""Pure functions Report -> text: one module per output format."""

from __future__ import annotations

from collections.abc import Mapping

from bonecds.report.model import Report
from bonecds.report.render.data import render_json, render_yaml
from bonecds.report.render.html import render_html
from bonecds.report.render.layout import PIPE_WIDTH, terminal_width
from bonecds.report.render.markdown import render_markdown
from bonecds.report.render.text import render_text

FORMATS = {
    "text": render_text,
    "json": render_json,
    "yaml": render_yaml,
    "markdown": render_markdown,
    "html": render_html,
}


def render(
    report: Report,
    output_format: str,
    explain: bool = False,
    *,
    width: int = PIPE_WIDTH,
    links: Mapping[str, str] | None = None,
) -> str:
    """One report in one format: `width` is for text, `links` (source key -> URL) for HTML."""
    if output_format == "text":
        return render_text(report, explain, width)
    if output_format == "html":
        return render_html(report, explain, links or {})
    return FORMATS[output_format](report, explain)


__all__ = [
    "FORMATS",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "render_text",
    "render_yaml",
    "terminal_width",
]
