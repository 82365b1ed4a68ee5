"""Histology classes: free text and ICD-O-3 morphology codes -> one vocabulary of classes.

The table is `data/histology.yaml` (`histology_classes()`): each class with its label, whether the
cord-compression evidence treats it as radiosensitive, its synonyms and its ICD-O-3 morphology
ranges. `classify` is the one way into it, for the profile's free text and for FHIR codings alike.
An unrecognised text or code gives None (unknown), never a guess.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

import yaml

__all__ = ["classify", "histology_classes"]

_DATA = "data/histology.yaml"
_SEPARATORS = re.compile(r"[-_/,;:()]+")
_SPACES = re.compile(r"\s+")
_MORPHOLOGY = re.compile(r"^\s*(?:M-?)?(\d{4})(?:/?\d)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class HistologyClass:
    """One class of the vocabulary."""

    id: str
    label: str
    radiosensitive: bool
    synonyms: tuple[str, ...]
    icdo3: tuple[tuple[int, int], ...]


@functools.cache
def histology_classes() -> dict[str, HistologyClass]:
    """The table, in file order read once."""
    text = resources.files("bonecds").joinpath(_DATA).read_text(encoding="utf-8")
    raw = yaml.safe_load(text)["classes"]
    return {
        name: HistologyClass(
            id=name,
            label=str(entry["label"]),
            radiosensitive=bool(entry["radiosensitive"]),
            synonyms=tuple(_normalise(str(s)) for s in entry["synonyms"]),
            icdo3=tuple((int(low), int(high)) for low, high in entry["icdo3"]),
        )
        for name, entry in raw.items()
    }


def classify(text: str | None = None, icdo3: str | None = None) -> str | None:
    """The class id of an ICD-O-3 morphology code (preferred) or a free-text histology, or None."""
    by_code = _by_morphology(icdo3) if icdo3 else None
    return by_code if by_code is not None else _by_text(text) if text else None


def _by_morphology(code: str) -> str | None:
    match = _MORPHOLOGY.match(code)
    if match is None:
        return None
    number = int(match.group(1))
    for entry in histology_classes().values():
        if any(low <= number <= high for low, high in entry.icdo3):
            return entry.id
    return None


def _by_text(text: str) -> str | None:
    # The longest matching synonym wins: "non small cell lung cancer" is not "small cell".
    words = f" {_normalise(text)} "
    best: tuple[int, str] | None = None
    for entry in histology_classes().values():
        for synonym in entry.synonyms:
            if f" {synonym} " in words and (best is None or len(synonym) > best[0]):
                best = (len(synonym), entry.id)
    return best[1] if best else None


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", _SEPARATORS.sub(" ", text.lower())).strip()
