"""CDS Hooks models and card rendering: spec examples, invariants, no empty JSON, stable uuids."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from bonecds import Knowledge, evaluate
from bonecds.cds_hooks._cards import CardContext, order_cards, patient_view_cards
from bonecds.cds_hooks._models import (
    Action,
    Card,
    CdsRequest,
    CdsResponse,
    Coding,
    Feedback,
    Link,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    ServiceDescriptor,
    Source,
    Suggestion,
    classify_prefetch,
    resolve_template,
)
from bonecds.fhir.orders import DraftOrder
from bonecds.report.model import Report
from bonecds.testing.scenarios import load_scenario
from tests.conftest import AS_OF, DATA, FIXTURES, ROOT

EXAMPLES = DATA / "fhir" / "cds-hooks-examples"
SOURCE = Source(label="bonecds (research prototype)", url="https://bonecds.example/about")


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def report_for(knowledge: Knowledge, profile: dict[str, Any]) -> Report:
    return evaluate(profile, knowledge, AS_OF)


def ctx(hook_instance: str = "hook-1") -> CardContext:
    return CardContext(hook_instance=hook_instance, source=SOURCE)


BREAST = {
    "patient_id": "p1",
    "age_years": 58,
    "sex": "female",
    "weight_kg": 60,
    "pregnant": False,
    "primary": {"site": "breast"},
    "bone": {"metastases_present": True},
    "labs": {"scr": {"value": 1.3, "unit": "mg/dL"}},
    "dental": {"exam_done": True, "unhealed_oral_lesion": False},
    "meds": {"current_bma": []},
}


def zoledronic_order(
    dose: float | None = 4.0, reference: str = "MedicationRequest/z1"
) -> DraftOrder:
    resource = {
        "resourceType": "MedicationRequest",
        "id": reference.split("/")[-1],
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"text": "zoledronic acid"},
        "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": dose, "code": "mg"}}]}],
    }
    return DraftOrder(reference, "zoledronic_acid", dose, 4.0, resource, ())


def walk(value: Any, path: str = "$") -> list[str]:
    """Every path holding null or an empty string, list or object."""
    if value is None or value in ("", [], {}):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in walk(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in walk(item, f"{path}[{index}]")]
    return []


# ---- the spec's own examples ----------------------------------------------------------------


def test_spec_examples_parse() -> None:
    response = CdsResponse.model_validate(
        example("response-cards-with-links-and-override-reasons.json")
    )
    assert [card.indicator for card in response.cards] == ["info", "warning"]
    assert CdsResponse.model_validate(example("response-no-guidance.json")).to_data() == {
        "cards": []
    }
    for service in example("discovery-response.json")["services"]:
        ServiceDescriptor.model_validate(service)
    request = CdsRequest.model_validate(example("patient-view-request.json"))
    assert PatientViewContext.model_validate(request.context).patientId == "1288992"
    OrderSignContext.model_validate(example("order-sign-context-r4.json")["context"])
    assert OrderSelectContext.model_validate(
        example("order-select-context-r4.json")["context"]
    ).selections
    for name in (
        "feedback-accepted.json",
        "feedback-overridden-no-reason.json",
        "feedback-overridden-with-reason.json",
    ):
        Feedback.model_validate(example(name))
    Action.model_validate(example("action-delete.json"))
    assert all(
        Coding.model_validate(c).display
        for c in example("card-override-reasons.json")["overrideReasons"]
    )


def test_the_spec_example_response_round_trips_without_empty_members() -> None:
    data = example("response-cards-with-links-and-override-reasons.json")
    assert CdsResponse.model_validate(data).to_data() == data


# ---- invariants ------------------------------------------------------------------------------


def card(**fields: Any) -> dict[str, Any]:
    return {"summary": "ok", "indicator": "info", "source": {"label": "s"}, **fields}


SUGGESTION = {
    "label": "do it",
    "actions": [{"type": "delete", "description": "d", "resourceId": "MedicationRequest/1"}],
}
TOKEN = {"access_token": "t", "token_type": "Bearer", "expires_in": 1, "scope": "s", "subject": "s"}
ORDER_CONTEXT = {"userId": "Practitioner/1", "patientId": "1"}


def feedback(outcome: str, stamp: str = "2021-12-11T10:05:31Z", **item: Any) -> dict[str, Any]:
    return {"feedback": [{"card": "c", "outcome": outcome, "outcomeTimestamp": stamp, **item}]}


INVALID: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "summary of 140 characters": (Card, card(summary="x" * 140)),
    "empty summary": (Card, card(summary="")),
    "unknown indicator": (Card, card(indicator="hard-stop")),
    "suggestions without selectionBehavior": (Card, card(suggestions=[SUGGESTION])),
    "two recommended, at-most-one": (
        Card,
        card(
            suggestions=[{**SUGGESTION, "isRecommended": True}] * 2,
            selectionBehavior="at-most-one",
        ),
    ),
    "override reason without display": (Card, card(overrideReasons=[{"system": "s", "code": "c"}])),
    "relative source url": (Card, card(source={"label": "s", "url": "/about"})),
    "appContext on an absolute link": (
        Link,
        {"label": "l", "url": "https://x", "type": "absolute", "appContext": "a"},
    ),
    "delete without resourceId": (Action, {"type": "delete", "description": "d"}),
    "update without resource": (Action, {"type": "update", "description": "d"}),
    "token without fhirServer": (
        CdsRequest,
        {"hook": "h", "hookInstance": "i", "context": {}, "fhirAuthorization": TOKEN},
    ),
    "hookInstance a number": (CdsRequest, {"hook": "h", "hookInstance": 1, "context": {}}),
    "accepted without suggestions": (Feedback, feedback("accepted")),
    "empty override reason": (Feedback, feedback("overridden", overrideReason={})),
    "timestamp without zone": (Feedback, feedback("overridden", "2021-12-11T10:05:31")),
    "unknown outcome": (Feedback, feedback("ignored")),
    "selections not references": (
        OrderSelectContext,
        {**ORDER_CONTEXT, "selections": ["103"], "draftOrders": {"resourceType": "Bundle"}},
    ),
    "draftOrders not a Bundle": (
        OrderSignContext,
        {**ORDER_CONTEXT, "draftOrders": {"resourceType": "List"}},
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invariants_are_enforced(case: str) -> None:
    model, data = INVALID[case]
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_a_summary_is_counted_in_characters_not_bytes() -> None:
    assert Card.model_validate(card(summary="骨" * 139)).summary == "骨" * 139


def test_rendered_summaries_are_shortened_to_one_sentence() -> None:
    from bonecds.cds_hooks._cards import _summary

    assert _summary("First sentence. Second one.") == "First sentence."
    long = _summary("word " * 60)
    assert len(long) < 140
    assert long.endswith("…")


def test_no_null_or_empty_member_is_ever_serialised(knowledge: Knowledge) -> None:
    report = report_for(knowledge, BREAST)
    rendered = patient_view_cards(report, ctx()).to_data()
    assert rendered["cards"]
    assert walk(rendered) == []
    orders = order_cards(report, [zoledronic_order()], ctx()).to_data()
    assert walk(orders) == []


# ---- Report -> cards -------------------------------------------------------------------------


def test_emergencies_are_critical_and_first(knowledge: Knowledge) -> None:
    _, profile = load_scenario(FIXTURES / "a1-escc-2-fires.yaml")
    cards = patient_view_cards(evaluate(profile, knowledge, AS_OF), ctx()).cards
    assert cards[0].indicator == "critical"
    assert cards[0].summary.startswith("Emergency: ")
    assert {c.indicator for c in cards[1:]} <= {"warning", "info"}


def test_every_card_carries_source_rules_citations_and_the_notice(knowledge: Knowledge) -> None:
    for rendered in patient_view_cards(report_for(knowledge, BREAST), ctx()).cards:
        assert rendered.source == SOURCE
        assert rendered.detail is not None
        assert "research prototype, not a medical device" in rendered.detail
        assert rendered.overrideReasons
        if rendered.indicator == "warning":
            assert "**Rules**: `" in rendered.detail
            assert "**Sources**" in rendered.detail


def test_card_uuids_are_derived_from_content(knowledge: Knowledge) -> None:
    report = report_for(knowledge, BREAST)
    first = [c.uuid for c in patient_view_cards(report, ctx("a")).cards]
    again = [c.uuid for c in patient_view_cards(report, ctx("a")).cards]
    other = [c.uuid for c in patient_view_cards(report, ctx("b")).cards]
    assert first == again
    assert len(set(first)) == len(first)
    assert set(first).isdisjoint(other)


def test_text_from_the_record_cannot_inject_html(knowledge: Knowledge) -> None:
    report = report_for(knowledge, BREAST)
    poisoned = report.cautions[0].model_copy(update={"text": "<script>alert(1)</script> & more."})
    report = report.model_copy(update={"cautions": [poisoned]})
    detail = patient_view_cards(report, ctx()).cards[0].detail or ""
    assert "<script>" not in detail
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more." in detail


def test_a_renal_dose_mismatch_suggests_the_adjusted_dose(knowledge: Knowledge) -> None:
    cards = order_cards(report_for(knowledge, BREAST), [zoledronic_order()], ctx()).cards
    dose = next(c for c in cards if c.suggestions)
    assert dose.summary == "Zoledronic acid 4 mg ordered; 3.3 mg IV over at least 15 min"
    action = dose.suggestions[0].actions[0]
    assert action.resource is not None
    assert action.resource["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 3.3
    matching = order_cards(report_for(knowledge, BREAST), [zoledronic_order(3.3)], ctx()).cards
    assert not any(c.suggestions for c in matching)


def test_an_order_without_indication_is_said_to_be_unchecked(knowledge: Knowledge) -> None:
    report = report_for(knowledge, {**BREAST, "bone": {}, "primary": {}})
    cards = order_cards(report, [zoledronic_order()], ctx()).cards
    assert any(c.summary.startswith("Zoledronic acid order not checked") for c in cards)


def test_no_orders_means_no_cards(knowledge: Knowledge) -> None:
    assert order_cards(report_for(knowledge, BREAST), [], ctx()).to_data() == {"cards": []}


def test_suggestion_model_accepts_recommendation_flags() -> None:
    suggestion = Suggestion.model_validate({**SUGGESTION, "uuid": "u", "isRecommended": True})
    assert suggestion.isRecommended is True


# ---- prefetch --------------------------------------------------------------------------------


def bundle(*types: str, **extra: Any) -> dict[str, Any]:
    entries = [{"resource": {"resourceType": kind}} for kind in types]
    return {"resourceType": "Bundle", "entry": entries, **extra}


@pytest.mark.parametrize(
    ("value", "present", "state", "count"),
    [
        (None, False, "absent", 0),
        (None, True, "null", 0),
        (bundle(), True, "empty", 0),
        (bundle("OperationOutcome"), True, "empty", 0),
        (bundle("Condition"), True, "data", 1),
        ({"resourceType": "Patient", "id": "1"}, True, "data", 1),
        ({"resourceType": "OperationOutcome", "issue": []}, True, "error", 0),
        (bundle("Condition", link=[{"relation": "next", "url": "x"}]), True, "partial", 1),
    ],
)
def test_prefetch_states(value: Any, present: bool, state: str, count: int) -> None:
    found = classify_prefetch(value, present)
    assert (found.state, len(found.resources)) == (state, count)
    assert found.usable == (state in ("null", "empty", "data"))


def test_prefetch_values_must_be_resources_or_null() -> None:
    with pytest.raises(ValueError, match="not a FHIR resource"):
        classify_prefetch("Patient/1", True)


def test_templates_resolve_the_patient_id() -> None:
    context = PatientViewContext(userId="Practitioner/1", patientId="abc-1")
    assert (
        resolve_template("Condition?patient={{context.patientId}}", context)
        == "Condition?patient=abc-1"
    )


# ---- the embedding example -------------------------------------------------------------------


def test_the_embedding_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "embed.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "not a medical device" in lines[0]
    assert "2. zoledronic-acid - 3.3 mg IV over at least 15 min" in lines
    assert any(
        line.startswith("[info] Bone-health options, best first: Denosumab") for line in lines
    )
