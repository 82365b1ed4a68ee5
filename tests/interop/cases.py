"""The interop corpus: Bundles built from unmodified published example resources.

Each case is a FHIR Bundle. Published Bundles are used as they are; the other cases are
assembled here from published resources, and every change made to a resource is written out
below (the resources themselves stay unmodified under `published/`; see README.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
MCODE = HERE / "published" / "mcode-4.0.0"
R4 = HERE / "published" / "r4-examples-4.0.1"
US_CORE = HERE / "published" / "us-core-7.0.0"
SYNTHEA = HERE / "published" / "synthea-r4-smart"
TIMESTAMP = "2026-11-23T00:00:00Z"  # ages are taken on this day (Bundle.timestamp)
JENNY = "cancer-patient-jenny-m"


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _collection(resources: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"http://example.org/fhir/{r['resourceType']}/{r['id']}", "resource": r}
        for r in resources
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": TIMESTAMP,
        "entry": entries,
    }


def jenny_m() -> dict[str, Any]:
    """mCODE 4.0.0 `Bundle-mcode-patient-bundle-jenny-m`, unmodified but for Bundle.timestamp
    (added, so that her age is reproducible)."""
    return {**_read(MCODE / "Bundle-mcode-patient-bundle-jenny-m.json"), "timestamp": TIMESTAMP}


def john_anyperson() -> dict[str, Any]:
    """Every mCODE 4.0.0 example resource whose subject is John Anyperson, unmodified, in one
    collection Bundle (the resources a FHIR server would return for him)."""
    files = sorted(MCODE.glob("*.json"))
    found = [_read(f) for f in files]
    john = [
        r
        for r in found
        if r["resourceType"] == "Patient" and r["id"] == "cancer-patient-john-anyperson"
    ]
    about = [
        r for r in found if "cancer-patient-john-anyperson" in json.dumps(r.get("subject") or {})
    ]
    return _collection(john + about)


def r4_f201() -> dict[str, Any]:
    """FHIR R4 examples Patient/f201 and Condition/f201, unmodified, in one Bundle."""
    return _collection([_read(R4 / "Patient-f201.json"), _read(R4 / "Condition-f201.json")])


def r4_lab_101() -> dict[str, Any]:
    """FHIR R4 examples `Bundle-101` (a CBC report; no Patient resource), unmodified but for
    Bundle.timestamp."""
    return {**_read(R4 / "Bundle-101.json"), "timestamp": TIMESTAMP}


def r4_transaction() -> dict[str, Any]:
    """FHIR R4 examples `Bundle-bundle-transaction`, unmodified: request-only entries and
    several Patients (refused: one patient per record)."""
    return {**_read(R4 / "Bundle-bundle-transaction.json"), "timestamp": TIMESTAMP}


def r4_transaction_response() -> dict[str, Any]:
    """FHIR R4 examples `Bundle-bundle-response`, unmodified: what a server answers to a
    transaction, one entry with its Patient and six with a response and no resource."""
    return {**_read(R4 / "Bundle-bundle-response.json"), "timestamp": TIMESTAMP}


def bone_metastasis() -> dict[str, Any]:
    """Jenny M with bone metastases: her mCODE Bundle plus mCODE's brain-metastasis
    SecondaryCancerCondition changed as follows (the only changes):
    id -> `secondary-cancer-condition-bone-jenny-m`; subject -> Jenny M; code -> SNOMED
    128462008 (secondary malignant neoplastic disease, mCODE's secondary-cancer root);
    bodySite -> vertebral column 421060004 and femur 71341001; the condition-related
    extension -> her primary; the narrative `text` removed (it described the brain)."""
    bundle = jenny_m()
    metastasis = copy.deepcopy(
        _read(MCODE / "Condition-secondary-cancer-condition-brain-mets.json")
    )
    metastasis.pop("text", None)
    metastasis["id"] = "secondary-cancer-condition-bone-jenny-m"
    metastasis["subject"] = {"reference": f"Patient/{JENNY}"}
    metastasis["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "128462008"}]}
    metastasis["bodySite"] = [
        {"coding": [{"system": "http://snomed.info/sct", "code": code}]}
        for code in ("421060004", "71341001")
    ]
    metastasis["extension"][0]["valueReference"] = {
        "reference": "Condition/primary-cancer-condition-jenny-m"
    }
    url = "http://example.org/fhir/Condition/secondary-cancer-condition-bone-jenny-m"
    bundle["entry"] = [*bundle["entry"], {"fullUrl": url, "resource": metastasis}]
    return bundle


def _us_core_about(patient: str) -> list[dict[str, Any]]:
    """The US Core 7.0.0 examples kept here whose subject (or patient) is `Patient/<patient>`,
    with that Patient first and the Medications (they have no subject) last."""
    found = [_read(f) for f in sorted(US_CORE.glob("*.json"))]
    own = [r for r in found if r["resourceType"] == "Patient" and r["id"] == patient]
    about = [
        r
        for r in found
        if (r.get("subject") or r.get("patient") or {}).get("reference") == f"Patient/{patient}"
    ]
    return own + about + [r for r in found if r["resourceType"] == "Medication"]


def us_core_amy_shaw() -> dict[str, Any]:
    """Every US Core 7.0.0 example kept here about Amy Shaw (`Patient/example`), unmodified,
    in one collection Bundle with the two Medications her requests reference."""
    return _collection(_us_core_about("example"))


def us_core_child() -> dict[str, Any]:
    """US Core 7.0.0 `Patient/child-example` (a boy born 2016) and his pediatric BMI, unmodified."""
    return _collection(_us_core_about("child-example"))


def us_core_deceased() -> dict[str, Any]:
    """US Core 7.0.0 `Patient/deceased-example`, unmodified (refused: deceased)."""
    return _collection([_read(US_CORE / "patient-deceased-example.json")])


def _synthea(name: str) -> dict[str, Any]:
    """A Synthea R4 patient Bundle (a transaction, `urn:uuid` references), unmodified but for
    Bundle.timestamp (added: ages are taken on that day)."""
    return {**_read(SYNTHEA / f"{name}.json"), "timestamp": TIMESTAMP}


def synthea_andy_schaden() -> dict[str, Any]:
    """Synthea: a man born 1932 with prostate neoplasm codes, docetaxel and leuprolide."""
    return _synthea("Andy_Schaden_d630c6ca-046c-470a-8f3a-4dbc3850e7ae")


def synthea_luis_miguel_delarosa() -> dict[str, Any]:
    """Synthea: a man born 1948 with an active colon cancer on oxaliplatin and leucovorin, a
    blood creatinine (38483-4) of renal impairment, an eGFR and an albumin."""
    return _synthea("Luis_Miguel_Delarosa_f118c1b4-27e0-4de5-bc04-b51e14ea5bbd")


def oversized() -> dict[str, Any]:
    """Not a case: Andy Schaden's Synthea Bundle with every entry but his Patient seven times
    over, which is over the 2 MiB input limit (README, Input limits), also as the one Bundle
    batch assembles for him from a Bulk Data export: refused in one line, never evaluated."""
    bundle = synthea_andy_schaden()
    patient, *rest = bundle["entry"]
    return {**bundle, "entry": [patient, *rest * 7]}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "jenny-m": jenny_m,
    "john-anyperson": john_anyperson,
    "r4-f201": r4_f201,
    "r4-lab-101": r4_lab_101,
    "r4-transaction": r4_transaction,
    "r4-transaction-response": r4_transaction_response,
    "bone-metastasis": bone_metastasis,
    "us-core-amy-shaw": us_core_amy_shaw,
    "us-core-child": us_core_child,
    "us-core-deceased": us_core_deceased,
    "synthea-andy-schaden": synthea_andy_schaden,
    "synthea-luis-miguel-delarosa": synthea_luis_miguel_delarosa,
}
