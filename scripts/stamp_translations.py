"""Record in a rule's Chinese translation which English it translates (`en_digest`).

`bonecds rules check` reports `stale-translation` when a rule's English texts no longer give the
digest its translation records (the English changed after the translation was written), or when
a translation records none. This script writes the digest into the rule file:

    python scripts/stamp_translations.py [RULES_DIR]             # translations that record none
    python scripts/stamp_translations.py [RULES_DIR] --rule ID   # after reviewing ID's texts

Without --rule it only fills in missing digests (new rules, or translations merged from a branch
written before digests existed); it never overwrites one, since a changed digest means some
Chinese text may no longer say what the English says. Re-stamp a rule with --rule only once every
Chinese text of it has been compared with its English.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from bonecds.knowledge.i18n import english_digest
from bonecds.knowledge.load import load_rules

_RULE_START = re.compile(r"^\s*- id:")
_TRANSLATIONS = re.compile(r"^\s*translations:\s*$")
_LANGUAGE = re.compile(r"^(\s*)zh:\s*$")
_DIGEST = re.compile(r"^\s*en_digest:")


def _stamp(lines: list[str], start: int, digest: str) -> bool:
    """Set en_digest under the `zh:` of the rule starting at line index `start`."""
    index = start + 1
    while index < len(lines) and not _RULE_START.match(lines[index]):
        if _TRANSLATIONS.match(lines[index]):
            break
        index += 1
    else:
        return False
    for zh in range(index + 1, len(lines)):
        if _RULE_START.match(lines[zh]):
            return False
        match = _LANGUAGE.match(lines[zh])
        if match:
            indent = match.group(1) + "  "
            entry = f'{indent}en_digest: "{digest}"\n'
            if zh + 1 < len(lines) and _DIGEST.match(lines[zh + 1]):
                lines[zh + 1] = entry
            else:
                lines.insert(zh + 1, entry)
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rules", nargs="?", default="rules", help="rules directory")
    parser.add_argument("--rule", action="append", default=[], help="re-stamp this rule id")
    args = parser.parse_args(argv)
    knowledge = load_rules(Path(args.rules))
    chosen = set(args.rule)
    unknown = chosen - {rule.id for rule in knowledge.rules}
    if unknown:
        sys.stderr.write(f"no such rule: {', '.join(sorted(unknown))}\n")
        return 2
    by_file: dict[str, list[tuple[int, str, str]]] = {}
    for rule in knowledge.rules:
        translation = rule.translations.get("zh")
        if translation is None:
            continue
        if rule.id in chosen or (not chosen and translation.en_digest is None):
            by_file.setdefault(rule.file, []).append((rule.line, rule.id, english_digest(rule)))
    for file, stamps in by_file.items():
        path = Path(file)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for line, rule_id, digest in sorted(stamps, reverse=True):  # bottom up: lines stay put
            if not _stamp(lines, line - 1, digest):
                where = f"{file}:{line}: {rule_id}"
                sys.stderr.write(f"{where}: no block 'zh:' under 'translations:'\n")
                return 1
            sys.stdout.write(f"{file}:{line}: {rule_id}: en_digest {digest}\n")
        path.write_text("".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
