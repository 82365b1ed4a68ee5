"""The clinician's text and Markdown reports: what a reader sees first, widths, words."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from bonecds import Knowledge, evaluate
from bonecds.cli.app import app
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES

SAMPLE = str(FIXTURES / "sample-breast-bone-mets.yaml")
EMERGENCY = str(FIXTURES / "a1-escc-2-fires.yaml")


def _evaluate(*args: str, columns: int | None = None) -> str:
    env = {"COLUMNS": str(columns)} if columns else {}
    result = CliRunner().invoke(app, ["evaluate", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("columns", [80, 120, 200])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_line_fits_the_terminal_width(columns: int, lang: str) -> None:
    text = _evaluate(SAMPLE, "--explain", "--lang", lang, columns=columns)
    too_wide = [line for line in text.splitlines() if cell_len(line) > columns]
    assert not too_wide, too_wide[:3]


def test_a_wide_terminal_is_used_not_a_fixed_width() -> None:
    text = _evaluate(SAMPLE, columns=200)
    assert max(cell_len(line) for line in text.splitlines()) > 120


def test_width_comes_from_columns_then_the_terminal_then_a_pipe_default() -> None:
    from bonecds.report.render.layout import MAX_WIDTH, MIN_WIDTH, PIPE_WIDTH, terminal_width

    pipe = io.StringIO()
    assert terminal_width(pipe, {"COLUMNS": "93"}) == 93
    assert terminal_width(pipe, {}) == PIPE_WIDTH
    assert terminal_width(pipe, {"COLUMNS": "5000"}) == MAX_WIDTH
    assert terminal_width(pipe, {"COLUMNS": "10"}) == MIN_WIDTH
    assert terminal_width(pipe, {"COLUMNS": "wide"}) == PIPE_WIDTH


def test_wrap_never_splits_a_word_and_breaks_between_cjk_characters() -> None:
    from bonecds.report.render.layout import wrap

    lines = wrap("aaa bma-solid-tumour-bone-metastases bbb", 20, "- ")
    assert lines == ["- aaa", "  bma-solid-tumour-bone-metastases", "  bbb"]
    assert all(cell_len(line) <= 10 for line in wrap("对实体瘤骨转移患者地舒单抗", 10))


@pytest.mark.parametrize("scenario", [SAMPLE, EMERGENCY], ids=["sample", "emergency"])
def test_ids_are_never_broken_at_80_columns(scenario: str) -> None:
    text = _evaluate(scenario, "--explain", columns=80)
    report = _evaluate(scenario, "-f", "json")
    ids = set(re.findall(r'"(?:id|rule|field)": "([^"]+)"', report))
    assert ids
    for item_id in ids:
        assert item_id in text, f"{item_id} missing or broken across lines"


def test_first_screen_answers_what_now_in_order() -> None:
    text = _evaluate(EMERGENCY, columns=80)
    first_screen = "\n".join(text.splitlines()[:40])
    emergencies = first_screen.index("Emergencies:")
    options = first_screen.index("Options, best first:")
    missing = first_screen.index("Data still needed, and what each would decide:")
    assert emergencies < first_screen.index("EMERGENCY: ") < options < missing
    assert first_screen.index("WHAT NOW") < emergencies
    assert text.index("DETAILS") > missing


def test_sample_first_screen_shows_status_dose_one_caution_and_what_data_decides() -> None:
    text = _evaluate(SAMPLE, columns=80)
    first_screen = "\n".join(text.splitlines()[:40])
    assert "conditional on dental.exam_done" in first_screen
    assert "dose: 120 mg SC every 4 weeks" in first_screen
    assert "caution: renal-dose-adjustment (+3 more" in first_screen
    assert "dental.exam_done: decides denosumab" in first_screen


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_dose_and_schedule_text_is_not_repeated(fmt: str) -> None:
    text = _evaluate(SAMPLE, "-f", fmt, columns=200)
    assert "every 4 weeks; every 4 weeks" not in text
    assert "120 mg SC every 4 weeks" in text


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_status_never_reads_as_a_decision_already_taken(fmt: str) -> None:
    english = _evaluate(SAMPLE, "-f", fmt)
    chinese = _evaluate(SAMPLE, "-f", fmt, "--lang", "zh")
    assert "decided" not in english
    assert "已确定" not in chinese
    assert "no data pending" in english  # sbrt waits for no data
    assert "无待补数据" in chinese


def test_default_reference_range_caution_does_not_repeat_the_calcium_citations() -> None:
    text = _evaluate(SAMPLE, columns=200)
    report = json.loads(_evaluate(SAMPLE, "-f", "json"))
    calcium = next(c for c in report["cautions"] if c["id"] == "calcium-vitamin-d")
    last = calcium["citations"][-1]
    assert text.count(f"{last['source']} ({last['locator']})") == 1
    assert "same sources as calcium-vitamin-d" in text


def test_explain_prints_each_rationale_once() -> None:
    text = _evaluate(SAMPLE, "--explain", columns=200)
    sentence = "Ibandronic acid is licensed in some regions only for bone metastases"
    assert text.count(sentence) == 1


def test_sources_are_named_by_their_work() -> None:
    text = _evaluate(SAMPLE, columns=200)
    sources = text[text.index("\nSources\n") :]
    assert "R3:   Van Poznak C, Somerfield MR, et al." in sources
    assert "R1:   " in sources  # the review cited by "000 ref [33]" is named, not left as R1


def test_a_comparison_with_a_limit_shows_the_limits_value() -> None:
    text = _evaluate(SAMPLE, "--explain", columns=200)
    line = next(
        line
        for line in text.splitlines()
        if "derived.corrected_calcium_mg_dl <= derived.calcium_uln_mg_dl" in line
    )
    assert "(patient: 9.54; derived.calcium_uln_mg_dl: 10.5 mg/dL)" in line


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_chinese_report_has_no_english_words_of_the_renderer(fmt: str) -> None:
    text = _evaluate(SAMPLE, "-f", fmt, "--lang", "zh", "--explain", columns=200)
    english = [
        "Cautions",
        "applies to",
        "method:",
        "inputs",
        "Values bonecds computed",
        "Sources",
        "rules:",
        "score",
        "conditional on",
        "NOTICE",
        "[met]",
        "[not met]",
        "(patient:",
        "computed (Cockcroft-Gault",
        "default (laboratory range not supplied)",
        "Rationale",
        "| option |",
        "all of:",
        "any of:",
        " holds",
        " is unknown",
    ]
    assert [word for word in english if word in text] == []
    if fmt == "text":
        assert "[满足] 已提出方案 denosumab" in text


def test_every_method_bonecds_computes_with_has_a_chinese_wording(knowledge: Knowledge) -> None:
    from bonecds.report.render._words import METHODS_ZH

    methods = set()
    for scenario in sorted(FIXTURES.glob("*.yaml")):
        loaded, profile = load_scenario(scenario)
        report = evaluate(profile, knowledge, loaded.as_of)
        methods |= {value.method for value in report.derived}
    assert methods
    assert methods <= set(METHODS_ZH), methods - set(METHODS_ZH)


def test_markdown_escapes_report_text_that_would_become_markup() -> None:
    from bonecds.report.render.markdown import _md

    assert _md("a | b *c* <script>") == "a \\| b \\*c\\* \\<script\\>"
