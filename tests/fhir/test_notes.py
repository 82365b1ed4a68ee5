"""The FHIR mapping notes in every report language: each English template has its translation
with the same slots, every word a slot may hold is translated, and a translated mapping lists its
notes in the English order (tests/interop/expected holds the English text itself)."""

from __future__ import annotations

import json
from string import Formatter

import pytest
from typer.testing import CliRunner

from bonecds.cli.app import app
from bonecds.fhir.codes import DISEASE_STATUS, OTHER_SITES
from bonecds.fhir.notes import SEPARATORS, TEMPLATES, TERMS, in_english_order, note, render_note
from bonecds.fhir.read import FhirMapping, bundle_mapping
from bonecds.knowledge.i18n import LANGUAGES, TRANSLATED
from bonecds.profile.model import PatientProfile
from tests.conftest import DATA, RULES
from tests.interop.cases import CASES

# The reader's own words that fill a `:t` slot, besides the code tables' values.
READER_WORDS = {"unrecognised", "uncoded", "stage-group", "Input should be a finite number"}


def _slots(template: str) -> set[tuple[str, str]]:
    """(name, format spec) of every slot: `{status:t}` is ("status", "t")."""
    return {(name, spec or "") for _, name, spec, _ in Formatter().parse(template) if name}


def test_every_report_language_has_its_mapping_notes() -> None:
    assert set(TEMPLATES) == set(TERMS) == set(SEPARATORS) == set(LANGUAGES)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_template_has_a_translation_with_the_same_slots(language: str) -> None:
    english, translated = TEMPLATES["en"], TEMPLATES[language]
    assert sorted(translated) == sorted(english), "a note key without (or with no) English"
    differing = {
        key: (_slots(text), _slots(translated[key]))
        for key, text in english.items()
        if _slots(text) != _slots(translated[key])
    }
    assert differing == {}


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_word_a_slot_may_hold_is_translated(language: str) -> None:
    words = {*DISEASE_STATUS.values(), *OTHER_SITES.values(), *READER_WORDS}
    assert sorted(words - TERMS[language].keys()) == []
    assert sorted(TERMS[language].keys() - words) == [], "a translated word no note uses"


def test_a_slot_shows_codes_and_input_as_they_are_and_our_words_translated() -> None:
    item = note("metastasis-elsewhere", name="Condition/c-1", places=("liver", "lung"))
    assert (
        render_note(item)
        == "Condition/c-1: metastasis outside bone (liver, lung): lesion count unknown"
    )
    assert render_note(item, "zh") == "Condition/c-1：骨外转移（liver、肺）：转移灶数目未知"


def test_a_note_is_one_line_whatever_its_input() -> None:
    item = note("entry-without-resource", position=3, method="DELETE\n")
    assert render_note(item) == "Bundle.entry[3]: a DELETE\\n request without a resource: not used"


def test_every_language_lists_the_notes_in_the_english_order() -> None:
    """Sorted on the Chinese text, the two notes would swap (已 sorts before 未)."""
    found = [
        note("superseded", name="Observation/o-1"),
        note("loinc-33914-3", name="Observation/o-1"),
    ]
    mapping = FhirMapping(PatientProfile(), in_english_order([*found, found[0]]))
    assert mapping.texts() == [
        "Observation/o-1: LOINC 33914-3 not used: eGFR is not a Cockcroft-Gault CrCl",
        "Observation/o-1: superseded by a later one",
    ]
    assert mapping.texts("zh") == [
        "Observation/o-1：未使用 LOINC 33914-3：eGFR 不是 Cockcroft-Gault 公式计算的 CrCl",
        "Observation/o-1：已被更新的结果取代",
    ]


@pytest.mark.parametrize("name", ["jenny-m", "synthea-andy-schaden", "us-core-amy-shaw"])
def test_a_translated_mapping_has_a_note_for_each_english_one(name: str) -> None:
    mapping = bundle_mapping(CASES[name](), name)
    english, chinese = mapping.texts(), mapping.texts("zh")
    assert english == sorted(set(english))
    for en, zh in zip(english, chinese, strict=True):  # the same note: the same resource first
        resource = en.split(":")[0].split(" ")[0]
        assert zh.startswith(resource) or "/" not in resource, (en, zh)


def test_the_sample_bundle_in_chinese() -> None:
    bundle = json.loads((DATA / "fhir" / "breast-bone-mets.json").read_text(encoding="utf-8"))
    assert bundle_mapping(bundle, "sample").texts("zh") == [
        "Observation/o-egfr：未使用 LOINC 98979-8：eGFR 不是 Cockcroft-Gault 公式计算的 CrCl",
        "Observation/o-scr-old：已被更新的结果取代",
    ]


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_the_cli_writes_the_mapping_notes_in_the_report_language(output_format: str) -> None:
    args = ["evaluate", str(DATA / "fhir" / "breast-bone-mets.json"), "--as-of", "2026-11-23"]
    args += ["-f", output_format, "--rules", str(RULES)]
    chinese = CliRunner().invoke(app, [*args, "--lang", "zh"])
    assert chinese.exit_code == 0, chinese.stderr
    assert "FHIR: Observation/o-scr-old：已被更新的结果取代" in chinese.stdout
    assert "superseded" not in chinese.stdout
    english = CliRunner().invoke(app, args)
    assert "FHIR: Observation/o-scr-old: superseded by a later one" in english.stdout
