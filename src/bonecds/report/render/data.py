"""Machine-readable renderings: canonical JSON and YAML with the same content."""

from __future__ import annotations

import yaml

from bonecds.report.model import Report

__all__ = ["render_json", "render_yaml"]


def render_json(report: Report, explain: bool = False) -> str:
    """Sorted keys, two-space indent, final newline: the same report gives the same bytes."""
    return report.to_json()


def render_yaml(report: Report, explain: bool = False) -> str:
    return yaml.safe_dump(report.to_data(), sort_keys=True, allow_unicode=True, width=100)
