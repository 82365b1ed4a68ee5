"""Cards in the clinician's language: `Accept-Language` chooses the report language, and a
Chinese request gets Chinese cards with no English prose (the same scan as the Chinese reports).
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bonecds import Knowledge, evaluate
from bonecds.cds_hooks._cards import CardContext, order_cards, patient_view_cards
from bonecds.cds_hooks._models import PREFETCH, Source
from bonecds.cds_hooks._words import AGENT_NAMES
from bonecds.cds_hooks.app import report_language
from bonecds.fhir.orders import DraftOrder
from bonecds.testing.scenarios import load_scenario
from tests.cds_hooks.test_app import (  # the running service and its helpers
    Running,
    call,
    cards,
    denosumab,
    recent_extraction,
    request,
    service,
    severe_renal,
)
from tests.conftest import FIXTURES
from tests.report.test_i18n_leaks import FHIR_NAMES, Scanner, _keys, _phrases, _strings

__all__ = ["service"]  # a fixture these tests use


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("ZH-hant-TW", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("fr", "en"),
        ("fr-FR, zh;q=0.5", "zh"),
        ("en;q=0.1, zh;q=0.2", "zh"),
        ("zh;q=0.5, en;q=0.5", "zh"),  # a tie: the first named
        ("zh;q=0", "en"),
        ("zh;q=2", "en"),  # no such weight: the range counts for nothing
        ("zh;q=abc, en", "en"),
        ("zh;q=0.9;level=1, en;q=0.5", "en"),  # a weight with another parameter: malformed
        ("*", "en"),
        ("zhx, chinese", "en"),  # other languages, not zh
        (" zh-CN ; q=0.7 ", "zh"),
    ],
)
def test_accept_language_chooses_the_report_language(header: str | None, language: str) -> None:
    assert report_language(header) == language


@given(st.text(max_size=300))
def test_any_accept_language_header_gives_a_report_language(header: str) -> None:
    assert report_language(header) in ("en", "zh")


def _zh(service: Running, body: dict[str, Any], path: str) -> httpx.Response:
    return call(service, f"/cds-services/{path}", body, **{"Accept-Language": "zh-CN,zh;q=0.9"})


def _card_text(found: list[dict[str, Any]]) -> str:
    """What a clinician reads on the cards, as Markdown shows it (entities decoded, emphasis
    marks gone); override-reason displays are the HL7 code system's own (terminology, shown as
    published) and are left out."""
    texts = []
    for card in found:
        texts += [card["summary"], card["detail"], card["source"]["label"]]
        for suggestion in card.get("suggestions", []):
            texts.append(suggestion["label"])
            texts += [action["description"] for action in suggestion["actions"]]
    return re.sub(r"(?<![\w`])_|_(?![\w`])", " ", html.unescape("\n".join(texts)))


def _leaks(
    scanner: Scanner, where: str, found: list[dict[str, Any]], record: Any, ids: set[str]
) -> list[str]:
    """English on the cards beyond the ids and the record's own texts, which stay as they are."""
    own = {s for s in _strings(record) if re.search("[A-Za-z]", s)}
    phrases = (scanner.shared, _phrases(own)) if own else (scanner.shared,)
    return scanner.found(where, _card_text(found), phrases, scanner.ids | ids)


def _english_in(
    found: list[dict[str, Any]], body: dict[str, Any], knowledge: Knowledge
) -> list[str]:
    record = [body["prefetch"], body["context"]]
    # Prefetch keys and the FHIR words of the data card name what the EHR sent.
    ids = FHIR_NAMES | _keys(record) | set(PREFETCH) | {"null", "OperationOutcome"}
    return _leaks(Scanner(knowledge), "cards", found, record, ids)


def test_a_chinese_request_gets_chinese_cards(service: Running, knowledge: Knowledge) -> None:
    body = request("patient-view")
    response = _zh(service, body, "bonecds-patient-view")
    found = cards(response)
    assert response.headers["content-language"] == "zh"
    assert "accept-language" in response.headers["vary"].lower()
    summaries = [card["summary"] for card in found]
    assert any(s.startswith("骨健康处理方案（按优先级）：地舒单抗") for s in summaries)
    assert "唑来膦酸" in "\n".join(summaries)
    for card in found:
        assert len(card["summary"]) < 140
        assert card["detail"].endswith("_bonecds 是研究原型，不是医疗器械：请核对每张卡片。_")
    problems = _english_in(found, body, knowledge)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("change", [severe_renal, recent_extraction, denosumab])
def test_chinese_order_checks(service: Running, knowledge: Knowledge, change: Any) -> None:
    body = request("order-sign")
    change(body)
    found = cards(_zh(service, body, "bonecds-order-sign"))
    assert found
    problems = _english_in(found, body, knowledge)
    assert problems == [], "\n".join(problems)


def test_english_stays_the_default(service: Running) -> None:
    body = request("patient-view")
    plain = call(service, "/cds-services/bonecds-patient-view", body)
    english = call(
        service, "/cds-services/bonecds-patient-view", body, **{"Accept-Language": "fr, en;q=0.5"}
    )
    assert plain.headers["content-language"] == "en"
    assert english.content == plain.content
    assert cards(plain)[0]["detail"].endswith("check every card._")


def test_every_scenarios_chinese_cards_have_no_english(knowledge: Knowledge) -> None:
    """Every card kind, in process: each scenario's patient-view cards (emergencies included)
    and its order checks for a draft of each agent (contraindications, dose checks, orders
    not checked), from its Chinese report."""
    scanner = Scanner(knowledge)
    source = Source(label="bonecds（研究原型，不是医疗器械）", url="https://bonecds.example/about")
    ctx = CardContext("hook-zh", source, language="zh")
    drafts = [DraftOrder(f"MedicationRequest/{a}", a, 1.0, 4.0, {}, ()) for a in AGENT_NAMES["en"]]
    problems, kinds = [], set()
    for path in sorted(FIXTURES.glob("*.yaml")):
        scenario, profile = load_scenario(path)
        report = evaluate(profile, knowledge, scenario.as_of, language="zh")
        found = [
            card.model_dump(mode="json", exclude_none=True)
            for response in (patient_view_cards(report, ctx), order_cards(report, drafts, ctx))
            for card in response.cards
        ]
        kinds |= {card["summary"].split("：")[0] for card in found if card["indicator"] != "info"}
        problems += _leaks(scanner, path.name, found, profile.model_dump(mode="json"), set())
    assert {"急症", "唑来膦酸医嘱", "地舒单抗医嘱"} <= kinds  # emergencies and order checks seen
    assert problems == [], f"{len(problems)} English words:\n" + "\n".join(problems[:40])
