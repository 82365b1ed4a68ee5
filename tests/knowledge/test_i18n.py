"""Chinese reports: every clinician-facing text of the knowledge base has a translation."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from bonecds import Knowledge, evaluate
from bonecds.cli.app import app
from bonecds.knowledge.i18n import DISCLAIMERS, english_digest
from bonecds.knowledge.load import load_rules
from bonecds.report.model import Report
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES, RULES, ScenarioReport

HAN = re.compile(r"[\u4e00-\u9fff]")
SCENARIOS = sorted(FIXTURES.glob("*.yaml"))


def test_project_rules_have_no_missing_translation(knowledge: Knowledge) -> None:
    assert [str(d) for d in knowledge.base.lint] == []


def test_every_scenario_renders_its_clinical_texts_in_chinese(
    scenario_report: ScenarioReport,
) -> None:
    for path in SCENARIOS:
        report = scenario_report(path, "zh")
        assert report.disclaimer == DISCLAIMERS["zh"]
        texts = [item.label for item in report.ranked] + [item.rationale for item in report.ranked]
        texts += [c.text for c in report.cautions] + [n.text for n in report.notes]
        texts += [r.text for c in report.contraindicated for r in c.reasons]
        texts += [r.reason for r in report.data_requests] + [c.label for c in report.context]
        untranslated = [text for text in texts if not HAN.search(text)]
        assert untranslated == [], f"{path.name}: {untranslated[:3]}"


def test_english_is_the_default_and_ids_do_not_change(knowledge: Knowledge) -> None:
    scenario, profile = load_scenario(FIXTURES / "sample-breast-bone-mets.yaml")
    english = evaluate(profile, knowledge, scenario.as_of)
    chinese = evaluate(profile, knowledge, scenario.as_of, language="zh")
    texts = [i.label for i in english.ranked] + [i.rationale for i in english.ranked]
    texts += [c.text for c in english.cautions] + [english.disclaimer]
    assert not [text for text in texts if HAN.search(text)]
    assert [i.id for i in english.ranked] == [i.id for i in chinese.ranked]
    assert [i.score for i in english.ranked] == [i.score for i in chinese.ranked]


def test_cli_lang_zh() -> None:
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(FIXTURES / "sample-breast-bone-mets.yaml"),
            "--lang",
            "zh",
            "--rules",
            str(RULES),
        ],
    )
    assert result.exit_code == 0
    assert DISCLAIMERS["zh"][:10] in result.stdout
    assert "急症与处理方案" in result.stdout


def test_missing_translation_fails_rules_check(tmp_path: Path) -> None:
    for name in (
        "settings.yaml",
        "sources.yaml",
        "vocabulary.yaml",
        "d-bone-modifying-agents.yaml",
    ):
        shutil.copy(RULES / name, tmp_path / name)
    path = tmp_path / "d-bone-modifying-agents.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("          renal-monitoring: >-", "          renal-monitorin: >-"),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 2
    assert "error[missing-translation] no Chinese translation for cautions.renal-monitoring" in (
        result.stderr
    )


def _zh_cautions(knowledge: Knowledge, name: str, caution: str) -> list[str]:
    scenario, profile = load_scenario(FIXTURES / name)
    report = evaluate(profile, knowledge, scenario.as_of, language="zh")
    return [c.text for c in report.cautions if c.id == caution]


def test_hypercalcaemic_patient_is_told_to_withhold_calcium_in_chinese(
    knowledge: Knowledge,
) -> None:
    (text,) = _zh_cautions(
        knowledge, "d9-corrected-calcium-above-uln-withhold.yaml", "calcium-vitamin-d"
    )
    assert "暂停" in text
    assert "至少500 mg" not in text


def test_mronj_risk_lists_only_the_patients_own_factors_in_chinese(knowledge: Knowledge) -> None:
    # The base patient smokes and has chemotherapy; no head and neck radiotherapy.
    (text,) = _zh_cautions(
        knowledge, "d12-hypercalcaemia-and-sre-agent-one-dose-fires.yaml", "mronj-risk"
    )
    assert "吸烟" in text
    assert "头颈部放疗" not in text


def _check_with_edit(tmp_path: Path, name: str, old: str, new: str) -> str:
    for copied in (
        "settings.yaml",
        "sources.yaml",
        "vocabulary.yaml",
        "d-bone-modifying-agents.yaml",
        name,
    ):
        shutil.copy(RULES / copied, tmp_path / copied)
    path = tmp_path / name
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "check", str(tmp_path)])
    assert result.exit_code == 2
    return result.stderr


def test_a_text_that_differs_by_branch_needs_its_own_translation(tmp_path: Path) -> None:
    stderr = _check_with_edit(
        tmp_path,
        "d2-bma-safety-and-schedules.yaml",
        "          on-pamidronate/duplicate-bma:",
        "          duplicate-bma:",
    )
    expected = "cautions.on-pamidronate/duplicate-bma (the text differs by branch)"
    assert f"error[missing-translation] no Chinese translation for {expected}" in stderr


def test_an_adjusted_option_reason_needs_a_translation(tmp_path: Path) -> None:
    stderr = _check_with_edit(
        tmp_path,
        "d-bone-modifying-agents.yaml",
        "          crcl-30-to-39/zoledronic-acid:",
        "          crcl-30-to-39/zoledronic-acd:",
    )
    assert "no Chinese translation for adjustments.crcl-30-to-39/zoledronic-acid" in stderr


def _zh_report(knowledge: Knowledge, name: str) -> Report:
    scenario, profile = load_scenario(FIXTURES / name)
    return evaluate(profile, knowledge, scenario.as_of, language="zh")


def test_dose_schedule_and_option_texts_are_translated(knowledge: Knowledge) -> None:
    report = _zh_report(knowledge, "f2-unresectable-spine-fires.yaml")
    denosumab = next(item for item in report.ranked if item.id == "denosumab")
    assert denosumab.dose is not None
    assert denosumab.schedule is not None
    assert "第8天和第15天" in denosumab.dose.text
    assert HAN.search(denosumab.schedule.text)
    assert denosumab.rationale.startswith("同时补充钙和维生素D")


def test_chinese_hypercalcaemia_regimen_gives_si_units(knowledge: Knowledge) -> None:
    report = _zh_report(knowledge, "a4-corrected-14-0-emergency.yaml")
    treatment = next(item for item in report.ranked if item.id == "hypercalcaemia-treatment")
    assert "µmol/L" in treatment.rationale
    assert "补液后单剂4 mg" in treatment.rationale


def test_a_missing_dose_translation_fails_rules_check(tmp_path: Path) -> None:
    stderr = _check_with_edit(
        tmp_path,
        "d2-bma-safety-and-schedules.yaml",
        "          severe-renal-impairment/pamidronate:",
        "          severe-renal-impairment/pamidronat:",
    )
    expected = "doses.severe-renal-impairment/pamidronate (the text differs by branch)"
    assert f"no Chinese translation for {expected}" in stderr


def _zh_texts(knowledge: Knowledge) -> list[tuple[str, str]]:
    found = []
    for rule in knowledge.base.rules:
        zh = rule.translations["zh"]
        found += [(rule.id, zh.title), (rule.id, zh.rationale)]
        found += [(rule.id, note) for note in zh.notes]
        for group in (
            "cautions",
            "reasons",
            "requests",
            "context",
            "adjustments",
            "doses",
            "texts",
        ):
            found += [(rule.id, text) for text in getattr(zh, group).values()]
    return found


def test_chinese_texts_give_si_units_beside_mg_dl(knowledge: Knowledge) -> None:
    si = re.compile(r"mmol/L|µmol/L")
    missing = [
        rule for rule, text in _zh_texts(knowledge) if "mg/dL" in text and not si.search(text)
    ]
    assert missing == []


def test_a_reworded_english_text_makes_its_translation_stale(tmp_path: Path) -> None:
    # The English now says 0.3 mg/dL; the Chinese written for 0.5 mg/dL must be reviewed.
    stderr = _check_with_edit(
        tmp_path,
        "d-bone-modifying-agents.yaml",
        "rises by >= 0.5 mg/dL from a normal baseline",
        "rises by >= 0.3 mg/dL from a normal baseline",
    )
    (line,) = [line for line in stderr.splitlines() if "stale-translation" in line]
    knowledge = load_rules(tmp_path)
    (rule,) = [rule for rule in knowledge.rules if rule.id == "zoledronic-acid-renal-dosing"]
    assert line.startswith(f"{rule.file}:{rule.line}:1: error[stale-translation] ")
    old = RULES_DIGESTS["zoledronic-acid-renal-dosing"]
    assert f"en_digest {old}; the English texts now give {english_digest(rule)}" in line
    assert line.endswith(f"then set translations.zh.en_digest: {english_digest(rule)}")


def test_a_translation_must_record_the_english_it_translates(tmp_path: Path) -> None:
    digest = RULES_DIGESTS["zoledronic-acid-renal-dosing"]
    stderr = _check_with_edit(
        tmp_path, "d-bone-modifying-agents.yaml", f'        en_digest: "{digest}"\n', ""
    )
    assert "error[stale-translation] translations.zh does not record the English" in stderr


def test_refolding_english_or_editing_chinese_keeps_the_translation_current(
    tmp_path: Path,
) -> None:
    for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
        shutil.copy(RULES / name, tmp_path / name)
    text = (RULES / "d-bone-modifying-agents.yaml").read_text(encoding="utf-8")
    edits = [
        # re-folded, and a doubled space: the same English words
        ("withhold if it\n          rises by", "withhold\n          if it  rises by"),
        ("输注时间不少于15分钟", "输注时间至少15分钟"),
    ]
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "d-bone-modifying-agents.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["rules", "check", str(tmp_path)])
    assert "stale-translation" not in result.stderr


RULES_DIGESTS = {
    rule.id: rule.translations["zh"].en_digest
    for rule in load_rules(RULES).rules
    if "zh" in rule.translations
}
