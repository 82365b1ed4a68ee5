"""Pure functions Report -> text: one module per output format."""

from bonecds.render.data import render_json, render_yaml
from bonecds.render.markdown import render_markdown
from bonecds.render.text import render_text

FORMATS = {
    "text": render_text,
    "json": render_json,
    "yaml": render_yaml,
    "markdown": render_markdown,
}

__all__ = ["FORMATS", "render_json", "render_markdown", "render_text", "render_yaml"]
