"""Content digests that name what a report was computed from: the knowledge base's files and
the patient profile as evaluated."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bonecds.profile.model import PatientProfile

__all__ = ["canonical_input", "digest", "files_digest", "input_digest"]


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def files_digest(paths: Iterable[Path]) -> str:
    """Names and contents of the files, in name order; not where they are, so a copy of a
    rules directory has the digest of the original."""
    whole = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        whole.update(path.name.encode("utf-8") + b"\0")
        whole.update(hashlib.sha256(path.read_bytes()).digest())
    return "sha256:" + whole.hexdigest()


def canonical_input(profile: PatientProfile) -> dict[str, Any]:
    """The profile as evaluated, as JSON-ready data that parses back to the same profile;
    fields left at their default are left out, so a new optional field changes no digest."""
    data: dict[str, Any] = profile.model_dump(mode="json", exclude_defaults=True)
    return data


def input_digest(profile: PatientProfile) -> str:
    """Equal for equal profiles, whatever the source format (YAML, JSON, FHIR) or key order."""
    text = json.dumps(canonical_input(profile), sort_keys=True, ensure_ascii=False)
    return digest(text.encode("utf-8"))
