"""No English prose in a Chinese report: every scenario, every human-readable format.

Each scenario is rendered with `--lang zh --explain` as text, Markdown and HTML, and its
contraindicated options (and, for one patient, every option) through `--why-not`; every
Latin-script word left is then one of what legitimately stays Latin:

- what the reader looks up, named as the knowledge base and the profile name it: ids of
  options, cautions, rules, branches, purposes and derived facts, field paths, enum values,
  source keys (R32), the values a condition compares with (histology synonyms);
- what the patient's record says (the patient id, free-text values): shown as entered;
- bibliographic titles of the sources, which stay in the language they were published in;
- codes and abbreviations: a word with a digit (NG234, ESCC 1b, q4w, PD-L1) or in capitals
  (MRI, SBRT, ASCO), unless it is one of our own English words (NOTICE, URGENT);
- units, and the short list ALLOWED below (names of people, products and formulas).

A FHIR input's mapping notes (what it held that was not used, and why) are scanned the same way,
for every Bundle of tests/data/fhir and the interop corpus, and every Chinese note template on its
own; there, what the record says is every text and element name of the Bundle, and FHIR element
paths (`valueQuantity.code`) stay as the record spells them.

Anything else is English a Chinese reader would see, and fails here with where it was found.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from string import Formatter
from typing import Any

import pytest
from typer.testing import CliRunner

from bonecds import Knowledge, evaluate, why_not
from bonecds.cli.app import app
from bonecds.errors import ProfileError
from bonecds.fhir.notes import TEMPLATES, TERMS, MappingNote, one_line, render_note
from bonecds.fhir.read import bundle_mapping
from bonecds.knowledge.i18n import WORDS as TEXT_WORDS
from bonecds.knowledge.model import All, Any_, Condition, Derive, FieldTest, Not, Propose
from bonecds.profile.fields import FIELDS
from bonecds.report.render import render
from bonecds.report.render._words import METHODS_ZH
from bonecds.report.render._words import WORDS as RENDER_WORDS
from bonecds.report.render.text import render_why_not
from bonecds.testing.scenarios import load_scenario
from tests.conftest import AS_OF, DATA, FIXTURES, RULES
from tests.interop.cases import CASES

SCENARIOS = sorted(FIXTURES.glob("*.yaml"))
SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"

UNITS = {
    "mg",
    "dL",
    "mL",
    "min",
    "L",
    "g",
    "kg",
    "µmol",
    "mmol",
    "nmol",
    "mol",
    "ng",
    "Gy",
    "IU",
    "h",
}
# Names that have no Chinese form in the knowledge base's texts, and notation.
ALLOWED = {
    "bonecds",  # the program, and its engine in the version line
    "durable_rules",
    "CrCl",  # creatinine clearance, as the Chinese texts of the rules write it
    "n",  # sample size: n = 811
    "Ins",  # an evidence grade (MASCC/ISOO/ASCO: FC, Ins, M)
    "Glut-1",  # a research marker (beside iNOS, RANKL)
    "iNOS",
    "Xgeva",  # product names
    "Zometa",
    "Cockcroft-Gault",  # eponyms of formulas, scores and criteria
    "Payne",
    "Patchell",
    "Mirels",
    "Campanacci",
    "Flatiron",  # a source of real-world data (Flatiron Health records)
    "Karnofsky",  # the performance score, as the FHIR notes name it
    "eGFR",  # estimated GFR, beside CrCl
    "Synthea",  # the synthetic-patient generator whose codes a FHIR note names
}
# What FHIR notes name in any language, besides the Bundle's own element names: resource types
# and elements of the record (looked up there), and the one source a note cites.
FHIR_NAMES = {"Bundle", "entry", "Patient", "gender", "birthDate", "subject", "value", "code"}
FHIR_NAMES |= {"medicationCodeableConcept", "medicationReference", "dataAbsentReason"}
FHIR_NAMES |= {"verificationStatus", "clinicalStatus", "valueQuantity", "referenceRange"}
FHIR_NAMES |= {"low", "high"}
CITED = {"Prasad KT", "World J Clin Oncol", "doi:10.5306/wjco.v9.i7.140"}

_LATIN = re.compile(r"[A-Za-z0-9µ_.\-/+']*[A-Za-zµ][A-Za-z0-9µ_.\-/+']*")
_MD_ESCAPE = re.compile(r"\\([\\|*_`\[\]<>])")


def _english_words() -> set[str]:
    """Our own English words in capitals (NOTICE, URGENT): they look like abbreviations."""
    texts = [*RENDER_WORDS["en"].values(), *TEXT_WORDS["en"].values()]
    return {word for text in texts for word in re.findall(r"\b[A-Z]{2,}\b", text)}


def _conditions(condition: Condition | None) -> Iterator[Condition]:
    if condition is None:
        return
    yield condition
    if isinstance(condition, All | Any_):
        for item in condition.items:
            yield from _conditions(item)
    elif isinstance(condition, Not):
        yield from _conditions(condition.item)


def _codes(knowledge: Knowledge) -> tuple[set[str], list[str]]:
    """Ids and field paths (whole words), and the values conditions compare with (phrases)."""
    kb = knowledge.base
    ids = {*kb.vocabulary, *kb.sources, *FIELDS, "patient"}
    ids |= {spec.input_path for spec in FIELDS.values() if spec.input_path}
    ids |= {str(value) for spec in FIELDS.values() for value in spec.values}
    phrases: set[str] = set()
    for rule in kb.rules:
        ids.add(rule.id)
        for branch in rule.branches:
            ids.add(branch.name)
            for effect in branch.effects:
                if isinstance(effect, Derive):
                    ids.add(effect.derive)
                if isinstance(effect, Propose):
                    ids.add(effect.purpose)
            for condition in [*_conditions(rule.when), *_conditions(branch.when)]:
                if isinstance(condition, FieldTest):
                    values = condition.value if isinstance(condition.value, list) else []
                    phrases |= {v for v in values if isinstance(v, str)}
                    if isinstance(condition.value, str):
                        phrases.add(condition.value)
    return ids, sorted(phrases, key=len, reverse=True)


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def _keys(data: Any) -> set[str]:
    """Every object key in a JSON document (the FHIR element names a record uses)."""
    if isinstance(data, dict):
        return set(data).union(*(_keys(value) for value in data.values()))
    return set().union(*(_keys(value) for value in data)) if isinstance(data, list) else set()


def _fhir_paths(text: str, names: set[str]) -> set[str]:
    """The Latin tokens of `text` made only of FHIR names (`valueQuantity.code`, `Bundle.entry`)."""
    tokens = {match.strip(".-/+'") for match in _LATIN.findall(text)}
    return {token for token in tokens if set(token.split(".")) <= names}


def _phrases(phrases: set[str]) -> re.Pattern[str]:
    """Any of the phrases as a whole (never the middle of an id), the longest first."""
    alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_.\-])(?:{alternatives})(?![A-Za-z0-9_\-]|\.[A-Za-z0-9])")


def _visible_html(page: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def leaks(text: str, ids: set[str], english: set[str]) -> list[str]:
    """The Latin-script words of `text` that are none of what may stay Latin."""
    return [token for token, _ in _leaks_at(text, ids, english)]


def _leaks_at(text: str, ids: set[str], english: set[str]) -> list[tuple[str, int]]:
    found = []
    for match in _LATIN.finditer(text):
        token = match.group().strip(".-/+'")
        if token in ids or token in ALLOWED:
            continue
        for part in re.split(r"[.\-/+']", token):
            if not part or part in UNITS or part in ALLOWED or any(c.isdigit() for c in part):
                continue
            if part.isupper() and part not in english:
                continue  # an abbreviation (MRI), a grade (S, L) or vitamin D
            found.append((token, match.start()))
            break
    return found


class Scanner:
    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        self.ids, self.phrases = _codes(knowledge)
        self.titles = {s.title for s in knowledge.base.sources.values()}
        self.english = _english_words()
        # Compiled once: the titles and compared values every scan blanks first.
        self.shared = _phrases({*self.titles, *self.phrases})

    def outputs(self, path: Path, options: list[str] | None = None) -> Iterator[tuple[str, str]]:
        """(where, text) for each Chinese rendering of a scenario."""
        scenario, profile = load_scenario(path)
        report = evaluate(profile, self.knowledge, scenario.as_of, explain=True, language="zh")
        links = {k: s.url for k, s in self.knowledge.base.sources.items() if s.url}
        yield "text --explain", render(report, "text", True, width=10_000)
        yield "markdown --explain", render(report, "markdown", True)
        yield "html", _visible_html(render(report, "html", True, links=links))
        for option in options or [c.id for c in report.contraindicated]:
            answer = why_not(profile, self.knowledge, option, scenario.as_of, language="zh")
            yield f"--why-not {option}", render_why_not(answer, "zh")

    def scan(self, path: Path, options: list[str] | None = None) -> list[str]:
        _, profile = load_scenario(path)
        own = [s for s in _strings(profile.model_dump(mode="json")) if re.search("[A-Za-z]", s)]
        phrases = (self.shared, _phrases(set(own))) if own else (self.shared,)
        problems = []
        for where, text in self.outputs(path, options):
            problems += self.found(f"{path.name} ({where})", text, phrases, self.ids)
        return problems

    def found(
        self, where: str, text: str, phrases: tuple[re.Pattern[str], ...], ids: set[str]
    ) -> list[str]:
        """Leaks in `text` once every allowed phrase is blanked: each pattern's matches in the
        text as it is (one pattern's blanks never hide another's phrase)."""
        text = _MD_ESCAPE.sub(r"\1", text)  # Markdown as read
        # Blanked to the same length, so that a leak's position is its place in the text.
        chars = list(text)
        for pattern in phrases:
            for match in pattern.finditer(text):
                chars[match.start() : match.end()] = " " * (match.end() - match.start())
        blanked = "".join(chars)
        problems, shown = [], set()
        for token, at in _leaks_at(blanked, ids, self.english):
            if token not in shown:
                shown.add(token)
                context = text[max(0, at - 50) : at + len(token) + 30].replace("\n", " ")
                problems.append(f"{where}: '{token}' in ...{context}...")
        return problems

    def scan_notes(self, where: str, notes: list[str], record: Any = None) -> list[str]:
        """Leaks in FHIR mapping notes; the record's own texts and element names may stay."""
        # As notes show them: control and zero-width characters escaped (fhir/notes.py).
        own = {one_line(s) for s in [*_strings(record), *_keys(record)] if re.search("[A-Za-z]", s)}
        names = FHIR_NAMES | _keys(record)
        text = "\n".join(notes)
        ids = self.ids | _fhir_paths(text, names | self.ids)
        return self.found(where, text, (_phrases({*own, *CITED}),), ids)


@pytest.fixture(scope="module")
def scanner(knowledge: Knowledge) -> Scanner:
    return Scanner(knowledge)


def test_no_english_prose_in_any_chinese_report(scanner: Scanner) -> None:
    problems = [problem for path in SCENARIOS for problem in scanner.scan(path)]
    assert problems == [], f"{len(problems)} English words:\n" + "\n".join(problems[:40])


def test_why_not_in_chinese_for_every_option(scanner: Scanner, knowledge: Knowledge) -> None:
    options = [
        item_id
        for item_id, item in knowledge.base.vocabulary.items()
        if item.kind in ("option", "emergency")
    ]
    problems = scanner.scan(SAMPLE, options)
    assert problems == [], "\n".join(problems[:40])


def test_the_scan_finds_english(scanner: Scanner) -> None:
    """The scan itself: prose is found, codes, units, names and titles are not."""
    text = (
        "R6 (dosing table); 唑来膦酸 4 mg/dL (88 µmol/L) CrCl, ESCC≤1b, PD-L1, SBRT; "
        "zoledronic-acid [满足] primary.site 为 lung_nsclc; NOTICE; Payne 公式 n = 811"
    )
    assert leaks(text, scanner.ids, scanner.english) == ["dosing", "table", "NOTICE"]


def test_chinese_method_strings_carry_no_latin_operator() -> None:
    assert not [m for m in METHODS_ZH.values() if re.search(r"\sx\s", m)]


def test_cli_why_not_and_explain_follow_lang() -> None:
    base = ["evaluate", str(FIXTURES / "a1-escc-2-fires.yaml"), "--rules", str(RULES)]
    why = CliRunner().invoke(app, [*base, "--lang", "zh", "--why-not", "sbrt"])
    assert why.exit_code == 0
    assert why.stdout.splitlines()[0].endswith(" [sbrt]: 禁忌")
    assert "依据规则 sbrt-not-eligible: 脊髓压迫" in why.stdout
    english = CliRunner().invoke(app, [*base, "--why-not", "sbrt"])
    assert "  contraindicated by sbrt-not-eligible: Spinal cord compression" in english.stdout
    explained = CliRunner().invoke(app, [*base, "--lang", "zh", "--explain"])
    assert "sbrt-not-eligible / cord-compression: 不适合寡转移意图的SABR" in explained.stdout


def _bundles() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((DATA / "fhir").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("resourceType") == "Bundle":
            yield path.name, data
    for name in sorted(CASES):
        yield name, CASES[name]()


def test_no_english_in_the_chinese_fhir_mapping_notes(scanner: Scanner, tmp_path: Path) -> None:
    """Every Bundle through `bonecds evaluate --lang zh`: its mapping notes as reported."""
    problems, mapped = [], 0
    for name, bundle in _bundles():
        try:
            bundle_mapping(bundle, name)
        except ProfileError:
            continue  # refused whole: a problem, not notes (cli tests)
        source = tmp_path / f"{name}.json"
        source.write_text(json.dumps(bundle), encoding="utf-8")
        args = ["evaluate", str(source), "-f", "json", "--lang", "zh", "--as-of", str(AS_OF)]
        result = CliRunner().invoke(app, [*args, "--rules", str(RULES)])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        notes = [n["text"] for n in report["notes"] if n["rules"] == ["fhir-mapping"]]
        mapped += bool(notes)
        problems += scanner.scan_notes(name, notes, bundle)
    assert mapped >= 9, "the Bundles with notes were not all read"
    assert problems == [], f"{len(problems)} English words:\n" + "\n".join(problems[:40])


def test_every_chinese_mapping_note_template_is_chinese(scanner: Scanner) -> None:
    """Each template with a stand-in for each value (what the corpus above may never write)."""
    problems = []
    for key, template in TEMPLATES["zh"].items():
        names = {name for _, name, _, _ in Formatter().parse(template) if name}
        text = render_note(MappingNote(key, tuple((name, "①") for name in sorted(names))), "zh")
        problems += scanner.scan_notes(key, [text])
    problems += scanner.scan_notes("TERMS", list(TERMS["zh"].values()))
    assert problems == [], "\n".join(problems)
