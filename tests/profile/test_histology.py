"""Histology classes: free text and ICD-O-3 codes map into one vocabulary, unknown stays unknown."""

from __future__ import annotations

import itertools
import typing

import pytest

from bonecds.engine.facts import to_facts
from bonecds.knowledge.model import ReferenceDefaults
from bonecds.profile.histology import classify, histology_classes
from bonecds.profile.model import HistologyClassId, parse_profile

DEFAULTS = ReferenceDefaults(8.9, 10.5, 4.69, 5.21)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Diffuse large B-cell lymphoma", "lymphoma"),
        ("Hodgkin lymphoma, nodular sclerosis", "lymphoma"),
        ("Acute myeloid leukemia", "leukaemia"),
        ("Plasma cell leukaemia", "myeloma"),
        ("Solitary plasmacytoma of bone", "myeloma"),
        ("Seminoma", "germ_cell_tumour"),
        ("Non-seminomatous germ-cell tumour", "germ_cell_tumour"),
        ("Small-cell lung cancer", "small_cell_carcinoma"),
        ("Non-small cell lung carcinoma", "non_small_cell_lung_cancer"),
        ("Invasive ductal carcinoma", "adenocarcinoma"),
        ("Clear cell renal cell carcinoma", "renal_cell_carcinoma"),
        ("squamous cell carcinoma", "squamous_cell_carcinoma"),
        ("Spindle-cell neoplasm, unclassified", None),
        ("", None),
    ],
)
def test_free_text_maps_to_its_class(text: str, expected: str | None) -> None:
    assert classify(text) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("9680/3", "lymphoma"),
        ("9650/3", "lymphoma"),
        ("9732/3", "myeloma"),
        ("9731/3", "myeloma"),
        ("9861/3", "leukaemia"),
        ("9061/3", "germ_cell_tumour"),
        ("8041/3", "small_cell_carcinoma"),
        ("8140/3", "adenocarcinoma"),
        ("8312/3", "renal_cell_carcinoma"),
        ("8720/3", "melanoma"),
        ("9180/3", None),  # osteosarcoma: no class here, the primary site carries it
        ("not a code", None),
    ],
)
def test_icdo3_morphology_maps_to_its_class(code: str, expected: str | None) -> None:
    assert classify(icdo3=code) == expected


def test_code_wins_over_text() -> None:
    assert classify("adenocarcinoma", "9680/3") == "lymphoma"


def test_radiosensitive_classes_are_the_cord_compression_ones() -> None:
    marked = {name for name, entry in histology_classes().items() if entry.radiosensitive}
    assert marked == {
        "lymphoma",
        "leukaemia",
        "myeloma",
        "germ_cell_tumour",
        "small_cell_carcinoma",
    }


def test_profile_literal_matches_the_data_table() -> None:
    assert list(typing.get_args(HistologyClassId)) == list(histology_classes())


def test_icdo3_ranges_do_not_overlap() -> None:
    ranges = sorted(r for entry in histology_classes().values() for r in entry.icdo3)
    assert all(high < low for (_, high), (low, _) in itertools.pairwise(ranges))


def _facts(primary: dict[str, object]) -> dict[str, object]:
    return to_facts(parse_profile({"primary": primary}), DEFAULTS).values


def test_facts_derive_class_and_radiosensitivity_from_text() -> None:
    values = _facts({"site": "other", "histology": "Diffuse large B-cell lymphoma"})
    assert values["derived.histology_class"] == "lymphoma"
    assert values["derived.histology_radiosensitive"] is True


def test_recorded_class_wins_and_unknown_stays_absent() -> None:
    recorded = _facts({"histology": "lymphoma", "histology_class": "adenocarcinoma"})
    assert recorded["derived.histology_class"] == "adenocarcinoma"
    assert recorded["derived.histology_radiosensitive"] is False
    unknown = _facts({"histology": "undifferentiated tumour"})
    assert "derived.histology_class" not in unknown
    assert "derived.histology_radiosensitive" not in unknown
