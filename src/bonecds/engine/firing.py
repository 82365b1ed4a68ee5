"""What the engine returns: the rule branches that fired, as plain data.

Kept apart from the engine (durable.py) so that ranking and reporting never load durable_rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Firing", "firing_key"]


@dataclass(frozen=True, order=True)
class Firing:
    """One rule branch that fired for this patient, and the needed fields it assumed unknown."""

    order: tuple[int, int]
    rule_id: str
    branch: str
    assumes: tuple[str, ...]
    tolerant: tuple[str, ...]


def firing_key(firing: Firing) -> tuple[Any, ...]:
    """Firing's own order (its fields in turn), without a Python-level __lt__ per comparison."""
    return (firing.order, firing.rule_id, firing.branch, firing.assumes, firing.tolerant)
