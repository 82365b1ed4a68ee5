"""`bonecds rules sync`: after a rule edit, rewrite what is generated from the rules and list
what a person must review (rules/README.md walks a rule author through it).

Generated, rewritten here: docs/knowledge-catalogue.md (`bonecds rules docs`) and
rules/rule-file.schema.json (`bonecds schema rules`). Reviewed by hand, listed here: ids the
README does not document, and golden snapshots whose report changes (accepted one by one with
`bonecds test --update PATH`, never in bulk).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

__all__ = ["CONTRACT_IDS", "sync"]

if TYPE_CHECKING:
    from bonecds.api import Knowledge

# The ids of the output contract (docs/contract.md); every other vocabulary id must be
# documented in README.md.
CONTRACT_IDS = frozenset(
    {
        "mscc-emergency",
        "mscc-surgery-plus-rt",
        "mscc-radiotherapy",
        "hypercalcaemia-treatment",
        "spine-surgery-consult",
        "prophylactic-fixation",
        "orthopaedic-opinion",
        "palliative-ebrt",
        "sbrt",
        "denosumab",
        "zoledronic-acid",
        "zoledronic-acid-12-weekly",
        "pamidronate",
        "ibandronate",
        "gctb-surgery",
        "gctb-biopsy-review",
        "sarcoma-mdt-referral",
        "molecular-testing",
        "egfr-tki",
        "alk-tki",
        "immune-checkpoint-inhibitor",
        "mronj-risk",
        "dental-evaluation",
        "dental-surgery-defer",
        "renal-dose-adjustment",
        "renal-monitoring",
        "hypocalcaemia-risk",
        "calcium-vitamin-d",
        "pregnancy",
        "duplicate-bma",
        "gctb-denosumab-recurrence",
        "gctb-malignant-transformation",
        "gctb-skeletal-immaturity",
        "default-reference-range",
    }
)


def sync(root: Path, *, write: bool) -> tuple[list[str], bool]:
    """(lines to print, whether anything is left out of date or to review)."""
    from bonecds.api import load_knowledge
    from bonecds.knowledge.schema import dump, rule_file_schema
    from bonecds.report.catalogue import render_catalogue

    knowledge = load_knowledge(root / "rules")
    generated = {
        root / "docs" / "knowledge-catalogue.md": render_catalogue(knowledge.base),
        root / "rules" / "rule-file.schema.json": dump(rule_file_schema()),
    }
    lines: list[str] = []
    stale = False
    for path, text in generated.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        name = path.relative_to(root).as_posix()
        if current == text:
            lines.append(f"up to date: {name}")
        elif write:
            path.write_text(text, encoding="utf-8")
            lines.append(f"rewrote: {name} (review the diff)")
        else:
            lines.append(f"out of date: {name} (run: bonecds rules sync)")
            stale = True
    review = _undocumented_ids(root, knowledge.base.vocabulary) + _changed_goldens(root, knowledge)
    lines += review
    lines.append("nothing to review" if not review else f"{len(review)} item(s) to review")
    return lines, stale or bool(review)


def _undocumented_ids(root: Path, vocabulary: Iterable[str]) -> list[str]:
    readme = (root / "README.md").read_text(encoding="utf-8")
    return [
        f"README.md: document the id `{name}` (with the ids added to the contract's)"
        for name in vocabulary
        if name not in CONTRACT_IDS and f"`{name}`" not in readme
    ]


def _changed_goldens(root: Path, knowledge: Knowledge) -> list[str]:
    from bonecds.testing.regression import golden_path, run_scenario, scenario_files

    changed = []
    for path in scenario_files([root / "patient_fixtures"]):
        if golden_path(path).exists() and run_scenario(path, knowledge, golden=True).golden_diff:
            shown = path.relative_to(root).as_posix()
            changed.append(
                f"golden changes: {shown} (see: bonecds test {shown}; "
                f"accept: bonecds test --update {shown})"
            )
    return changed
