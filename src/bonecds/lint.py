"""Logic lint of a knowledge base (placeholder, filled in below)."""

from __future__ import annotations

from bonecds.errors import Diagnostic
from bonecds.rules import KnowledgeBase


def lint_knowledge(knowledge: KnowledgeBase) -> list[Diagnostic]:
    return []
