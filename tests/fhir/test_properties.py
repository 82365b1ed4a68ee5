"""Property tests: FHIR resources of every mapped type, with wrong shapes and nulls anywhere,
give a profile with notes or a clear ProfileError; never another exception (issue 11, 13)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bonecds.errors import ProfileError
from bonecds.fhir.codes import LOINC, SNOMED, UCUM
from bonecds.fhir.orders import dose_mg, read_draft_orders
from bonecds.fhir.read import dosing_interval_weeks, map_resources, parse_resources
from tests.conftest import AS_OF

SUBJECT = {"reference": "Patient/p1"}
BASE: list[dict[str, Any]] = [
    {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1960-01-01"},
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": SUBJECT,
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": "128462008"}]},
        "bodySite": [{"coding": [{"system": SNOMED, "code": "421060004"}]}],
        "extension": [{"url": "x", "valueCodeableConcept": {"coding": [{"code": "8000/6"}]}}],
    },
    {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": SUBJECT,
        "code": {"coding": [{"system": LOINC, "code": "2160-0"}]},
        "effectiveDateTime": "2026-11-01",
        "valueQuantity": {"value": 1.1, "system": UCUM, "code": "mg/dL"},
        "referenceRange": [{"low": {"value": 0.5, "system": UCUM, "code": "mg/dL"}}],
    },
    {
        "resourceType": "Observation",
        "id": "o2",
        "status": "final",
        "subject": SUBJECT,
        "code": {"coding": [{"system": LOINC, "code": "69548-6"}]},
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9633-4"}]},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "48018-6"}]},
                "valueCodeableConcept": {"coding": [{"system": "x", "code": "HGNC:427"}]},
            }
        ],
    },
    {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "intent": "order",
        "subject": SUBJECT,
        "medicationCodeableConcept": {"text": "zoledronic acid"},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"period": 4, "periodUnit": "wk"}},
                "doseAndRate": [{"doseQuantity": {"value": 4, "code": "mg"}}],
            }
        ],
    },
    {
        "resourceType": "MedicationStatement",
        "id": "s1",
        "status": "active",
        "subject": SUBJECT,
        "medicationReference": {"reference": "#med"},
        "contained": [{"resourceType": "Medication", "id": "med", "code": {"text": "x"}}],
    },
    {
        "resourceType": "Procedure",
        "id": "pr1",
        "status": "completed",
        "subject": SUBJECT,
        "code": {"text": "tooth extraction"},
        "performedDateTime": "2026-10-01",
    },
]

ODD = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> list[dict[str, Any]]:
    """The base record with 1-3 elements replaced by values of any shape."""
    record = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(record))
        paths = [p for p in _paths(target) if p[0] not in ("resourceType", "id")]
        path = draw(st.sampled_from(paths))
        node = target
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = draw(ODD)
    return record


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated())
def test_wrong_shapes_give_a_profile_or_a_clear_error(record: list[dict[str, Any]]) -> None:
    problems: list[str] = []
    try:
        mapping = map_resources(parse_resources(record, "record"), AS_OF, patient_id="p1")
        problems = mapping.texts()
    except ProfileError as error:  # the clear refusal: one line per problem, naming where
        problems = error.problems
    assert all(isinstance(p, str) and ": " in p and "\n" not in p for p in problems), problems


@settings(max_examples=150, derandomize=True, deadline=None)
@given(mutated())
def test_draft_orders_of_any_shape_are_read_without_an_exception(
    record: list[dict[str, Any]],
) -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": r} for r in record]}
    read_draft_orders(bundle, None, {})
    for resource in record:
        weeks, dose = dosing_interval_weeks(resource), dose_mg(resource)
        assert weeks is None or weeks > 0
        assert dose is None or dose >= 0
