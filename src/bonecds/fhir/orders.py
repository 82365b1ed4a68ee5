"""Draft orders for the order-select and order-sign hooks: the bone-modifying agents ordered.

Kept apart from the patient mapping in `bonecds.fhir.read`: draft orders are read leniently, one
order at a time, and describe what is about to be signed rather than the patient's record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bonecds.fhir.codes import (
    BMA_AGENTS,
    as_dict,
    as_list,
    identify_drug,
    is_dental_procedure,
    resolve_medication,
)
from bonecds.fhir.read import dosing_interval_weeks, index_resources, validation_problems

__all__ = ["DraftOrder", "dose_mg", "read_draft_orders"]


@dataclass(frozen=True)
class DraftOrder:
    """A draft MedicationRequest for a bone-modifying agent, read leniently (checklist R-10)."""

    reference: str
    agent: str
    dose_mg: float | None
    interval_weeks: float | None
    resource: dict[str, Any]
    problems: tuple[str, ...]


@dataclass
class DraftOrders:
    """What the order hooks need from `draftOrders`: BMA orders, dental surgery, problems."""

    orders: list[DraftOrder] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)
    dental_planned: bool = False
    problems: list[str] = field(default_factory=list)


def read_draft_orders(
    bundle: dict[str, Any], selections: list[str] | None, index: dict[str, Any]
) -> DraftOrders:
    """BMA orders in focus (`selections`, or all for order-sign) and the context they sit in.

    Re-signed revisions need not be `draft` (order-sign 1.1.0, checklist R-12), so status is
    not filtered. A malformed entry is reported and still read where it can be (R-10).
    """
    result = DraftOrders()
    entries = [e for e in as_list(bundle.get("entry")) if isinstance(e, dict)]
    resources: list[dict[str, Any]] = [
        e["resource"] for e in entries if isinstance(e.get("resource"), dict)
    ]
    index = {**index, **index_resources([r for r in resources if "resourceType" in r])}
    for position, resource in enumerate(resources):
        kind = resource.get("resourceType")
        ident = resource.get("id")
        label = f"{kind}/{ident}" if isinstance(ident, str) and ident else f"{kind}[{position}]"
        if kind == "ServiceRequest" and is_dental_procedure(resource):
            result.dental_planned = True
        if kind != "MedicationRequest":
            continue
        agent = identify_drug(resource, index)
        reference = as_dict(resource.get("medicationReference"))
        if reference and resolve_medication(resource, index) is None:  # checklist R-11
            how = "read from its display text" if reference.get("display") else "not identifiable"
            result.problems.append(f"{label}: medicationReference: not resolved; drug {how}")
        if agent in BMA_AGENTS:
            problems = tuple(validation_problems(resource, "draftOrders"))
            result.problems.extend(problems)
            result.agents.add(agent)
            if selections is None or label in selections:
                weeks = dosing_interval_weeks(resource)
                order = DraftOrder(label, agent, dose_mg(resource), weeks, resource, problems)
                result.orders.append(order)
    return result


def dose_mg(request: dict[str, Any]) -> float | None:
    """The ordered dose in mg, read from the R4 `doseAndRate` array only; any other shape
    (a string, an empty or nested value) is no dose, so the dose check asks rather than guesses."""
    dosages = as_list(request.get("dosageInstruction"))
    rates = as_list(as_dict(dosages[0] if dosages else None).get("doseAndRate"))
    quantity = as_dict(as_dict(rates[0] if rates else None).get("doseQuantity"))
    value = quantity.get("value")
    if quantity.get("code") != "mg" or isinstance(value, bool):
        return None
    if not isinstance(value, int | float) or not 0 <= value < float("inf"):
        return None
    return float(value)
