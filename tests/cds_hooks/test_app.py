"""The CDS Hooks service over HTTP: a real uvicorn server on loopback, called like a CDS client.

The client signs ES384 JWTs with a key generated here (no private key is committed); a second
uvicorn server plays the EHR's FHIR server for the `fhirServer` fallback.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from bonecds import Knowledge
from bonecds.cds_hooks._feedback import open_store
from bonecds.cds_hooks.app import SERVER_OPTIONS, ServiceConfig, create_app
from bonecds.cds_hooks.auth import TokenVerifier, TrustedIssuer, load_issuers
from bonecds.cli.app import app as cli
from bonecds.errors import InputError
from tests.conftest import AS_OF, DATA, RULES

FHIR = DATA / "fhir"
EXAMPLES = FHIR / "cds-hooks-examples"  # copied spec examples: see the README there
ISS = "https://ehr.test.example/"
KID = "test-es384"
KEY = ec.generate_private_key(ec.SECP384R1())
FHIR_TOKEN = "fhir-access-secret"
PATIENT = "pt-breast-1"
SPEC_JKU = "https://fhir-ehr.example.com/jwk_uri"  # the spec token's jku; its JWKS is pinned


def _jwks(public_key: Any, kid: str, alg: str) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(public_key))
    return {"keys": [{**jwk, "kid": kid, "alg": alg, "use": "sig"}]}


@dataclass
class Running:
    """A uvicorn server on an already bound loopback socket, in a daemon thread."""

    base: str
    server: uvicorn.Server
    thread: threading.Thread
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    db: Path | None = None


def _bind() -> tuple[socket.socket, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _start(app: FastAPI, sock: socket.socket, base: str) -> Running:
    # log_config=None: records reach pytest's caplog, so the no-PHI-in-logs test sees them.
    config = uvicorn.Config(
        app, log_config=None, log_level="info", lifespan="off", **SERVER_OPTIONS
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    return Running(base, server, thread)


def _stop(running: Running) -> None:
    running.server.should_exit = True
    running.thread.join(10)


def _fhir_stub(seen: list[tuple[str, str | None]]) -> FastAPI:
    """The EHR's FHIR server: the breast-cancer patient, Conditions in two pages."""
    resources = [
        e["resource"] for e in json.loads((FHIR / "breast-bone-mets.json").read_text())["entry"]
    ]
    stub = FastAPI()

    @stub.get("/fhir/{path:path}")
    def fhir(path: str, request: Request) -> JSONResponse:
        seen.append((f"{path}?{request.url.query}", request.headers.get("authorization")))
        if request.headers.get("authorization") != f"Bearer {FHIR_TOKEN}":
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, 401)
        kind, _, ident = path.partition("/")
        found = [r for r in resources if r["resourceType"] == kind]
        if ident:
            match = [r for r in found if r["id"] == ident]
            return JSONResponse(match[0] if match else {}, 200 if match else 404)
        codes = request.query_params.get("code", "")
        if kind == "Observation":
            found = [r for r in found if r["code"]["coding"][0]["code"] in codes]
        page = int(request.query_params.get("page", "1"))
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if kind == "Condition":  # paginated: one per page, like the 3.0-ballot example
            found = found[page - 1 : page]
            if page == 1:
                url = f"{request.base_url}fhir/Condition?patient={PATIENT}&page=2"
                bundle["link"] = [{"relation": "next", "url": url}]
        bundle["entry"] = [{"resource": r} for r in found]
        return JSONResponse(bundle)

    return stub


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[Running]:
    sock, base = _bind()
    seen: list[tuple[str, str | None]] = []
    running = _start(_fhir_stub(seen), sock, base)
    running.seen = seen
    yield running
    _stop(running)


@pytest.fixture(scope="module")
def service(knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    sock, base = _bind()
    spec_jwks = json.loads((EXAMPLES / "jwks-public.json").read_text())
    db = tmp_path_factory.mktemp("feedback") / "feedback.sqlite3"
    config = ServiceConfig(
        base_url=base,
        issuers=(
            TrustedIssuer(ISS, _jwks(KEY.public_key(), KID, "ES384")),
            TrustedIssuer("https://fhir-ehr.example.com/", spec_jwks, jku=(SPEC_JKU,)),
        ),
        feedback_db=db,
        cors_origins=("https://sandbox.cds-hooks.org",),
        max_body_bytes=200_000,
        allow_http_fhir=True,  # the stub FHIR server is plain HTTP on loopback
        today=lambda: AS_OF,
        knowledge=knowledge,
    )
    running = _start(create_app(config), sock, base)
    running.db = db
    yield running
    _stop(running)


def token(aud: str, **overrides: Any) -> str:
    """A CDS client's JWT (2.0 §Trusting CDS Clients), with any claim or header overridden."""
    now = int(time.time())
    claims = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    claims.update({k: v for k, v in overrides.items() if k in claims or k == "tenant"})
    for name in overrides.get("drop", ()):
        claims.pop(name)
    headers = {"kid": KID, "typ": "JWT", **overrides.get("headers", {})}
    return jwt.encode(
        claims, overrides.get("key", KEY), algorithm=overrides.get("alg", "ES384"), headers=headers
    )


def call(
    service: Running, path: str, body: Any = None, *, auth: str | None = "sign", **headers: str
) -> httpx.Response:
    url = f"{service.base}{path}"
    sent = dict(headers)
    if auth == "sign":
        sent["Authorization"] = f"Bearer {token(url)}"
    elif auth is not None:
        sent["Authorization"] = auth
    if body is None:
        return httpx.get(url, headers=sent, timeout=30)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent.setdefault("Content-Type", "application/json")
    return httpx.post(url, content=content, headers=sent, timeout=30)


def request(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FHIR / f"{name}-request.json").read_text())
    data["hookInstance"] = str(uuid.uuid4())
    return data


def cards(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["cards"]
    return found


def _outcome(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issues: list[dict[str, Any]] = body["issue"]
    return issues


# ---- discovery and authentication -------------------------------------------------------------


def test_discovery_lists_the_three_services_with_their_prefetch(service: Running) -> None:
    services = call(service, "/cds-services").json()["services"]
    assert {s["hook"] for s in services} == {"patient-view", "order-select", "order-sign"}
    for entry in services:
        assert entry["id"].startswith("bonecds-")
        assert entry["description"]
        assert entry["title"]
        assert entry["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "_sort=-date" in entry["prefetch"]["labs"]  # checklist P-5
        assert "{{context.draftOrders" not in json.dumps(entry["prefetch"])  # P-3


def test_missing_token_is_401_with_no_detail(service: Running) -> None:
    response = call(service, "/cds-services", auth=None)
    issues = _outcome(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert issues == [
        {"severity": "error", "code": "login", "details": {"text": "Authentication required"}}
    ]


def test_the_spec_example_token_is_rejected_because_it_expired(
    service: Running, tmp_path: Path
) -> None:
    compact = (EXAMPLES / "jwt-compact-example.txt").read_text().strip()
    aud = "https://cds.example.org/cds-services/some-service"
    spec = TrustedIssuer(
        "https://fhir-ehr.example.com/",
        json.loads((EXAMPLES / "jwks-public.json").read_text()),
        jku=(SPEC_JKU,),
    )
    replay = open_store(tmp_path / "replay.db")
    assert (
        TokenVerifier((spec,), replay).verify(compact, [aud]) == "expired"
    )  # signature and aud are fine
    response = call(service, "/cds-services", auth=f"Bearer {compact}")
    assert _outcome(response, 401)[0]["code"] == "login"


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
BAD_TOKENS: dict[str, Callable[[str], str]] = {
    "wrong audience": lambda url: token(url + "-other"),
    "expired": lambda url: token(url, exp=int(time.time()) - 3600, iat=int(time.time()) - 3700),
    "issued in the future": lambda url: token(url, iat=int(time.time()) + 600),
    "lifetime over an hour": lambda url: token(url, exp=int(time.time()) + 7200),
    "no jti": lambda url: token(url, drop=("jti",)),
    "untrusted issuer": lambda url: token(url, iss="https://evil.example/"),
    "unknown kid": lambda url: token(url, headers={"kid": "other"}),
    "jku not allowlisted": lambda url: token(url, headers={"jku": "https://evil.example/jwks"}),
    "wrong typ": lambda url: token(url, headers={"typ": "at+jwt"}),
    "HS256": lambda url: token(url, alg="HS256", key="a-shared-secret-of-32-bytes-long!"),
    "RS384 with a key not on record": lambda url: token(url, alg="RS384", key=RSA_KEY),
    # PyJWT's key type leaves out None, the one key its alg "none" takes
    "alg none": lambda url: jwt.encode({"iss": ISS, "aud": url}, None, algorithm="none"),  # type: ignore[arg-type]
    "not a JWT": lambda url: "not.a.jwt",
    # Validly signed, but the times are strings: once a TypeError and a 500 (issue 11/8).
    "exp a string": lambda url: token(url, exp=str(int(time.time()) + 300)),
    "iat a string": lambda url: token(url, iat=str(int(time.time()))),
    "exp a huge number": lambda url: token(url, exp=1e300),
    # RFC 7519 §4.1.7: a string. Once, null was remembered as "None" and accepted the first time.
    "jti null": lambda url: token(url, jti=None),
    "jti a number": lambda url: token(url, jti=int(time.time() * 1000)),
    "jti empty": lambda url: token(url, jti=""),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused(service: Running, case: str) -> None:
    url = f"{service.base}/cds-services"
    response = call(service, "/cds-services", auth=f"Bearer {BAD_TOKENS[case](url)}")
    assert _outcome(response, 401)[0] == {
        "severity": "error",
        "code": "login",
        "details": {"text": "Authentication required"},
    }


def test_a_replayed_token_is_refused(service: Running) -> None:
    url = f"{service.base}/cds-services"
    once = {"Authorization": f"Bearer {token(url)}"}
    assert httpx.get(url, headers=once).status_code == 200
    assert httpx.get(url, headers=once).status_code == 401


def test_a_token_replayed_on_another_worker_is_refused(tmp_path: Path) -> None:
    # Two workers are two processes, each with its verifier, sharing only the database.
    issuers = (TrustedIssuer(ISS, _jwks(KEY.public_key(), KID, "ES384")),)
    first, second = (TokenVerifier(issuers, open_store(tmp_path / "s.db")) for _ in range(2))
    aud = "https://bonecds.example/cds-services"
    once = token(aud)
    assert first.verify(once, [aud]) is None
    assert second.verify(once, [aud]) == "replayed jti"
    assert first.verify(once, [aud]) == "replayed jti"
    assert second.verify(token(aud), [aud]) is None


def test_a_jti_is_remembered_until_its_token_expires(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    assert store.claim(ISS, "jti-1", expires=1000.0, now=500.0)
    assert not store.claim(ISS, "jti-1", expires=1100.0, now=900.0)
    assert store.claim("https://other.example/", "jti-1", expires=1000.0, now=900.0)
    assert store.claim(ISS, "jti-1", expires=2000.0, now=1001.0)  # the old token is dead
    assert not store.claim(ISS, "jti-1", expires=2000.0, now=1500.0)


def test_cors_preflight_allows_the_configured_origin_only(service: Running) -> None:
    url = f"{service.base}/cds-services/bonecds-patient-view"
    ask = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    good = httpx.options(url, headers={"Origin": "https://sandbox.cds-hooks.org", **ask})
    bad = httpx.options(url, headers={"Origin": "https://evil.example", **ask})
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert "access-control-allow-origin" not in bad.headers


# ---- patient-view ----------------------------------------------------------------------------


def test_patient_view_gives_a_complete_card_set(service: Running) -> None:
    found = cards(call(service, "/cds-services/bonecds-patient-view", request("patient-view")))
    summaries = [card["summary"] for card in found]
    assert any(s.startswith("Bone-health options, best first: Denosumab") for s in summaries)
    assert "Zoledronic acid: Zoledronic acid dose reduced for creatinine clearance" in "\n".join(
        summaries
    )
    details = "\n".join(card["detail"] for card in found)
    assert "`derived.crcl_ml_min`: 44.68 mL/min (data of 2026-11-20)" in details  # S-16
    for card in found:
        assert len(card["summary"]) < 140
        assert card["source"]["url"].startswith("http")
        assert "research prototype, not a medical device" in card["detail"]
        assert all(reason["display"] for reason in card["overrideReasons"])
        uuid.UUID(card["uuid"])


def test_the_same_request_gives_the_same_bytes(service: Running) -> None:
    body = request("patient-view")
    first = call(service, "/cds-services/bonecds-patient-view", body).content
    assert call(service, "/cds-services/bonecds-patient-view", body).content == first
    body["hookInstance"] = str(uuid.uuid4())
    other = call(service, "/cds-services/bonecds-patient-view", body).json()
    assert {c["uuid"] for c in other["cards"]}.isdisjoint(
        c["uuid"] for c in json.loads(first)["cards"]
    )


# ---- order-sign / order-select: the order checks come from the rules --------------------------


def _observations(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in body["prefetch"]["labs"]["entry"]]


def _set_lab(body: dict[str, Any], loinc: str, value: float | None) -> None:
    labs = body["prefetch"]["labs"]
    keep = [
        e
        for e in labs["entry"]
        if e["resource"]["code"]["coding"][0]["code"] != loinc or value is not None
    ]
    for entry in keep:
        if entry["resource"]["code"]["coding"][0]["code"] == loinc:
            entry["resource"]["valueQuantity"]["value"] = value
    labs["entry"] = keep


def _draft(body: dict[str, Any], agent: str, dose: float, rxnorm: str) -> None:
    order = copy.deepcopy(body["context"]["draftOrders"]["entry"][0]["resource"])
    order["id"] = f"draft-{agent}"
    order["medicationCodeableConcept"] = {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": rxnorm,
                "display": agent,
            }
        ],
        "text": agent,
    }
    order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = dose
    body["context"]["draftOrders"]["entry"][0]["resource"] = order


def denosumab(body: dict[str, Any]) -> None:
    _draft(body, "denosumab", 120, "993449")


def severe_renal(body: dict[str, Any]) -> None:
    _set_lab(body, "2160-0", 3.0)  # Cockcroft-Gault about 19 mL/min


def pregnant(body: dict[str, Any]) -> None:
    observation = body["prefetch"]["pregnancy"]["entry"][0]["resource"]
    observation["valueCodeableConcept"]["coding"][0].update(code="77386006", display="Pregnant")


def recent_extraction(body: dict[str, Any]) -> None:
    body["prefetch"]["procedures"]["entry"][0]["resource"]["performedDateTime"] = "2026-11-16"


def planned_extraction(body: dict[str, Any]) -> None:
    dental = {
        "resourceType": "ServiceRequest",
        "id": "draft-dental",
        "status": "draft",
        "intent": "order",
        "code": {"text": "Tooth extraction"},
        "subject": {"reference": f"Patient/{PATIENT}"},
    }
    body["context"]["draftOrders"]["entry"].append({"resource": dental})


def on_zoledronic_acid(body: dict[str, Any]) -> None:
    current = copy.deepcopy(body["context"]["draftOrders"]["entry"][0]["resource"])
    current.update(id="rx-zol-active", status="active")
    body["prefetch"]["medications"]["entry"] = [{"resource": current}]


def hypocalcaemic(body: dict[str, Any]) -> None:
    _set_lab(body, "17861-6", 7.9)  # corrected 8.06 mg/dL, below the laboratory's 8.6


def child_with_gctb(body: dict[str, Any]) -> None:
    body["prefetch"]["patient"]["birthDate"] = "2016-05-01"
    conditions = body["prefetch"]["conditions"]["entry"]
    conditions[0]["resource"]["code"] = {
        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "D48.0"}]
    }
    conditions[0]["resource"]["extension"] = [
        {
            "url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
            "valueCodeableConcept": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/icd-o-3", "code": "9250/1"}
                ]
            },
        }
    ]
    del conditions[1]


ORDER_CHECKS: dict[str, tuple[list[Callable[[dict[str, Any]], None]], str, str]] = {
    # case: (changes to the base request, expected indicator, rule named in that card)
    "zoledronic acid, CrCl 45: renal dose": ([], "warning", "zoledronic-acid-renal-dosing"),
    "zoledronic acid, CrCl 19": (
        [severe_renal],
        "warning",
        "zoledronic-acid-severe-renal-impairment",
    ),
    "zoledronic acid, no creatinine": (
        [lambda b: _set_lab(b, "2160-0", None)],
        "warning",
        "renal-function-required",
    ),
    "denosumab, hypocalcaemia": (
        [denosumab, hypocalcaemic],
        "warning",
        "hypocalcaemia-correct-before-bma",
    ),
    "denosumab, CrCl 19": (
        [denosumab, severe_renal],
        "warning",
        "denosumab-severe-renal-hypocalcaemia",
    ),
    "zoledronic acid, extraction 7 days ago": (
        [recent_extraction],
        "warning",
        "recent-dental-surgery-defer-bma",
    ),
    "zoledronic acid, extraction planned": (
        [planned_extraction],
        "warning",
        "elective-dental-surgery-during-bma",
    ),
    "denosumab, pregnant": ([denosumab, pregnant], "warning", "pregnancy-bma-avoid"),
    "denosumab while on zoledronic acid": (
        [on_zoledronic_acid, denosumab],
        "warning",
        "bma-duplicate-therapy",
    ),
    "denosumab, child with GCTB": (
        [denosumab, child_with_gctb],
        "warning",
        "gctb-skeletally-immature",
    ),
}


@pytest.mark.parametrize("case", list(ORDER_CHECKS))
def test_order_sign_checks_come_from_the_rules(service: Running, case: str) -> None:
    changes, indicator, rule = ORDER_CHECKS[case]
    body = request("order-sign")
    for change in changes:
        change(body)
    found = cards(call(service, "/cds-services/bonecds-order-sign", body))
    named = [card for card in found if f"`{rule}`" in card["detail"]]
    assert named, [c["summary"] for c in found]
    assert {card["indicator"] for card in named} == {indicator}
    assert all(
        card["summary"].split(" ")[0] in ("Zoledronic", "Denosumab", "Before", "Bone-modifying")
        for card in named
    )


def test_renal_dose_suggestion_updates_the_whole_draft(service: Running) -> None:
    found = cards(call(service, "/cds-services/bonecds-order-sign", request("order-sign")))
    dose = next(
        card for card in found if card["summary"].startswith("Zoledronic acid 4 mg ordered")
    )
    assert dose["selectionBehavior"] == "at-most-one"
    action = dose["suggestions"][0]["actions"][0]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "draft-zol-1"
    assert (
        action["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 3.3
    )
    assert action["resource"]["medicationCodeableConcept"]["coding"][0]["code"] == "77655"


def test_contraindicated_order_suggests_removing_it(service: Running) -> None:
    body = request("order-sign")
    severe_renal(body)
    found = cards(call(service, "/cds-services/bonecds-order-sign", body))
    contra = next(
        c
        for c in found
        if "`zoledronic-acid-severe-renal-impairment`" in c["detail"] and c.get("suggestions")
    )
    assert contra["suggestions"][0]["actions"] == [
        {
            "type": "delete",
            "description": "Remove the draft order",
            "resourceId": "MedicationRequest/draft-zol-1",
        }
    ]
    assert not any(c["summary"].startswith("Zoledronic acid 4 mg ordered") for c in found)


def test_order_select_checks_only_the_selected_orders(service: Running) -> None:
    body = request("order-sign")
    body["hook"] = "order-select"
    denosumab_body = request("order-sign")
    denosumab(denosumab_body)
    body["context"]["draftOrders"]["entry"].append(
        denosumab_body["context"]["draftOrders"]["entry"][0]
    )
    body["context"]["selections"] = ["MedicationRequest/draft-denosumab"]
    found = cards(call(service, "/cds-services/bonecds-order-select", body))
    assert any(c["summary"].startswith("Denosumab order") for c in found)
    assert not any("Zoledronic acid" in c["summary"] for c in found)
    # the unselected zoledronic acid draft is still context: two agents drafted together
    assert any("`bma-duplicate-therapy`" in c["detail"] for c in found)


def test_orders_without_a_bone_modifying_agent_get_no_cards(service: Running) -> None:
    body = request("order-sign")
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][1:]
    assert call(service, "/cds-services/bonecds-order-sign", body).json() == {"cards": []}


def test_order_sign_without_a_bma_fetches_nothing(service: Running, fhir_server: Running) -> None:
    body = request("order-sign")
    body["context"]["draftOrders"]["entry"] = body["context"]["draftOrders"]["entry"][1:]
    del body["prefetch"]
    body["fhirServer"] = f"{fhir_server.base}/fhir"
    body["fhirAuthorization"] = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read",
        "subject": "bonecds",
    }
    fhir_server.seen.clear()
    assert call(service, "/cds-services/bonecds-order-sign", body).json() == {"cards": []}
    assert fhir_server.seen == []


def test_the_hook_library_order_sign_example_is_read_leniently(service: Running) -> None:
    # Its NutritionOrder lacks intent and its doseAndRate is an object: not R4 (checklist §X).
    body = request("order-sign")
    body["context"] = json.loads((EXAMPLES / "order-sign-context-r4.json").read_text())["context"]
    body["context"]["patientId"] = PATIENT
    assert call(service, "/cds-services/bonecds-order-sign", body).json() == {"cards": []}


# ---- prefetch: absent, null, empty, fetched ---------------------------------------------------


def _data_lines(found: list[dict[str, Any]]) -> str:
    card = next(c for c in found if c["summary"].startswith("Data bonecds used"))
    detail: str = card["detail"]
    return detail


def test_required_prefetch_missing_without_fhir_server_is_412(service: Running) -> None:
    body = request("patient-view")
    del body["prefetch"]["labs"]
    del body["fhirServer"]
    issues = _outcome(call(service, "/cds-services/bonecds-patient-view", body), 412)
    assert (
        issues[0]["diagnostics"] == "prefetch key 'labs' was not supplied and could not be fetched"
    )


@pytest.mark.parametrize("value", [None, {"resourceType": "OperationOutcome", "issue": []}])
def test_null_and_operation_outcome_differ_for_a_required_key(service: Running, value: Any) -> None:
    body = request("patient-view")
    body["prefetch"]["medications"] = value
    response = call(service, "/cds-services/bonecds-patient-view", body)
    if value is None:  # "looked, found nothing": a known empty medication list
        assert "`medications`: the EHR reported no data (null)" in _data_lines(cards(response))
    else:  # an error report counts as absent (checklist R-5)
        assert _outcome(response, 412)[0]["code"] == "processing"


def test_absent_null_and_empty_are_three_states(service: Running) -> None:
    body = request("patient-view")
    del body["prefetch"]["pregnancy"]
    body["prefetch"]["performance"] = None
    body["prefetch"]["procedures"] = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    lines = _data_lines(cards(call(service, "/cds-services/bonecds-patient-view", body)))
    assert "`pregnancy`: not supplied and not fetched: treated as unknown" in lines
    assert "`performance`: the EHR reported no data (null)" in lines
    assert "`procedures`: the EHR searched and found none (empty Bundle)" in lines


def test_missing_prefetch_is_fetched_with_the_bearer_token(
    service: Running, fhir_server: Running
) -> None:
    body = request("patient-view")
    del body["prefetch"]["labs"]
    body["prefetch"]["conditions"] = {  # a first page only: incomplete, so fetched whole
        **body["prefetch"]["conditions"],
        "link": [{"relation": "next", "url": f"{fhir_server.base}/fhir/Condition?page=2"}],
    }
    body["fhirServer"] = f"{fhir_server.base}/fhir"
    body["fhirAuthorization"] = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read patient/Condition.read",
        "subject": "bonecds",
    }
    fhir_server.seen.clear()
    found = cards(call(service, "/cds-services/bonecds-patient-view", body))
    lines = _data_lines(found)
    assert "`labs`: fetched from the FHIR server (6 resources)" in lines
    assert "`conditions`: fetched from the FHIR server (2 resources)" in lines
    assert any(c["summary"].startswith("Bone-health options") for c in found)
    assert {auth for _, auth in fhir_server.seen} == {f"Bearer {FHIR_TOKEN}"}
    assert any(path.startswith("Condition?") and "page=2" in path for path, _ in fhir_server.seen)


def test_the_3_0_ballot_paginated_example_needs_no_data(service: Running) -> None:
    # Its prefetch key is not ours, its first page is incomplete and its fhirServer comes
    # without a token; but its one draft is amoxicillin, not a BMA: nothing to check, and no
    # data fetched for it (issue 13). Its ids hold U+2011 hyphens.
    body = json.loads((EXAMPLES / "order-sign-request-paginated-prefetch.json").read_text())
    assert call(service, "/cds-services/bonecds-order-sign", body).json() == {"cards": []}


def test_the_3_0_ballot_paginated_example_with_a_bma_is_answered_412(service: Running) -> None:
    body = json.loads((EXAMPLES / "order-sign-request-paginated-prefetch.json").read_text())
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "zoledronic acid 4 mg"}
    issues = _outcome(call(service, "/cds-services/bonecds-order-sign", body), 412)
    assert issues[0]["diagnostics"] == (
        "prefetch key 'patient' was not supplied and could not be fetched"
    )


def test_fhir_server_without_authorization_is_not_queried(
    service: Running, fhir_server: Running
) -> None:
    body = request("patient-view")
    del body["prefetch"]["labs"]
    body["fhirServer"] = f"{fhir_server.base}/fhir"  # open server: off unless configured
    fhir_server.seen.clear()
    assert _outcome(call(service, "/cds-services/bonecds-patient-view", body), 412)
    assert fhir_server.seen == []


# ---- malformed requests ------------------------------------------------------------------------


def test_malformed_json_is_400_operation_outcome(service: Running) -> None:
    for raw in (b'{"hook": "patient-view",', b'{"hook": NaN}', b"\xff\xfe"):
        issues = _outcome(call(service, "/cds-services/bonecds-patient-view", raw), 400)
        assert issues[0]["code"] == "structure"
        assert "malformed JSON" in issues[0]["diagnostics"]


def test_a_repeated_key_in_a_request_body_is_400_naming_its_path(service: Running) -> None:
    # json keeps the last of two equal keys: a second "patient" must not replace the first.
    body = json.dumps(request("patient-view"))
    repeated = body.replace('"prefetch": {', '"prefetch": {"patient": {}, ', 1).encode()
    issues = _outcome(call(service, "/cds-services/bonecds-patient-view", repeated), 400)
    assert issues[0]["code"] == "structure"
    assert "prefetch.patient: duplicate key 'patient'" in issues[0]["diagnostics"]


WRONG: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "hook is a number": (lambda b: b.update(hook=5), "hook: Input should be a valid string"),
    "no hookInstance": (lambda b: b.pop("hookInstance"), "hookInstance: Field required"),
    "context is a list": (
        lambda b: b.update(context=[]),
        "context: Input should be a valid dictionary",
    ),
    "patientId with a slash": (lambda b: b["context"].update(patientId="a/b"), "context.patientId"),
    "userId not a reference": (lambda b: b["context"].update(userId="bob"), "context.userId"),
    "prefetch value a string": (lambda b: b["prefetch"].update(labs="x"), "prefetch.labs"),
    "token without server": (
        lambda b: (
            b.update(
                fhirAuthorization={
                    "access_token": "t",
                    "token_type": "Bearer",
                    "expires_in": 1,
                    "scope": "s",
                    "subject": "s",
                }
            )
            or b.pop("fhirServer")
        ),
        "fhirAuthorization requires fhirServer",
    ),
    "other hook": (
        lambda b: b.update(hook="order-sign"),
        "hook: this service answers 'patient-view'",
    ),
    "body is a list": (lambda b: b.clear(), "Input should be a valid dictionary"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_wrong_types_are_400_naming_the_field(service: Running, case: str) -> None:
    change, expected = WRONG[case]
    body = request("patient-view")
    change(body)
    sent: Any = [] if case == "body is a list" else body
    issues = _outcome(call(service, "/cds-services/bonecds-patient-view", sent), 400)
    text = " ".join(issue.get("diagnostics", "") for issue in issues)
    assert expected in text
    assert PATIENT not in text


def test_an_unusable_value_in_prefetch_is_noted_on_the_data_card_not_a_400(
    service: Running,
) -> None:
    body = request("patient-view")
    _observations(body)[0]["valueQuantity"]["code"] = "mmol/dL"
    found = cards(call(service, "/cds-services/bonecds-patient-view", body))
    data = next(c for c in found if c["summary"].startswith("Data bonecds used"))
    assert "Observation/o-scr: valueQuantity.code: unit 'mmol/dL'" in data["detail"]
    assert "1.3" not in data["detail"]
    missing = next(c for c in found if c["summary"].startswith("Missing data"))
    assert "labs.crcl_ml_min" in missing["summary"]  # the dropped value is asked for


def test_prefetch_that_is_not_fhir_is_400_naming_where(service: Running) -> None:
    body = request("patient-view")
    body["prefetch"]["labs"]["entry"][0]["resource"] = {"value": 1}
    issues = _outcome(call(service, "/cds-services/bonecds-patient-view", body), 400)
    assert "prefetch.labs[0]: resource: not a FHIR resource" in issues[0]["diagnostics"]


def test_deeply_nested_json_is_400_and_the_connection_stays_open(
    service: Running, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{service.base}/cds-services/bonecds-patient-view"
    bodies = [b'{"hook": ' + b"[" * n + b"]" * n + b"}" for n in (950, 5000, 100)]
    bodies.append(b'{"context": ' + b'{"a": ' * 120 + b"1" + b"}" * 121)
    with httpx.Client(timeout=30) as client:
        for body in bodies:
            headers = {"Authorization": f"Bearer {token(url)}", "Content-Type": "application/json"}
            issues = _outcome(client.post(url, content=body, headers=headers), 400)
            assert issues[0]["diagnostics"] == "body: JSON nested deeper than 100 levels"
        assert client.get(f"{service.base}/about").status_code == 200
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


def test_an_unexpected_error_is_a_clean_500_that_logs_only_its_type(
    knowledge: Knowledge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sock, base = _bind()
    config = ServiceConfig(
        base_url=base, insecure_dev=True, feedback_db=tmp_path / "f.db", knowledge=knowledge
    )
    app = create_app(config)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"{PATIENT} 1968-03-14")  # as if an error message held patient data

    running = _start(app, sock, base)
    try:
        with httpx.Client(timeout=30) as client:
            response = client.get(f"{base}/boom?patient=pt-secret")
            assert client.get(f"{base}/about").status_code == 200  # the connection survived
    finally:
        _stop(running)
    assert _outcome(response, 500) == [
        {"severity": "error", "code": "exception", "diagnostics": "internal error"}
    ]
    assert "internal error (RuntimeError)" in caplog.text
    assert PATIENT not in caplog.text
    assert "pt-secret" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


def _logged(caplog: pytest.LogCaptureFixture, expected: list[str]) -> str:
    """The captured log once it holds every expected line: the server writes a request's
    access line just after the client has its answer."""
    deadline = time.monotonic() + 10
    while True:
        logged = "\n".join(record.getMessage() for record in caplog.records)
        if all(line in logged for line in expected) or time.monotonic() > deadline:
            for line in expected:
                assert line in logged
            return logged
        time.sleep(0.02)


def test_a_token_in_the_query_string_is_refused_unspent_and_never_logged(
    service: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"{service.base}/cds-services"
    jwt_text = token(url)
    refused = httpx.get(url, params={"access_token": jwt_text, "patient": "pt-secret"})
    issues = _outcome(refused, 400)
    assert issues[0]["diagnostics"] == (
        "query: a token is accepted only in the Authorization header"
    )
    also_header = httpx.get(
        url, params={"access_token": jwt_text}, headers={"Authorization": f"Bearer {jwt_text}"}
    )
    assert _outcome(also_header, 400)
    # Its jti was not spent: the same token is accepted once from the header.
    assert httpx.get(url, headers={"Authorization": f"Bearer {jwt_text}"}).status_code == 200
    # The access line, without its query string
    logged = _logged(caplog, ["GET /cds-services 400", "GET /cds-services 200"])
    for secret in (jwt_text, jwt_text[:40], "pt-secret", "access_token", "?"):
        assert secret not in logged


def test_the_access_log_names_routes_never_raw_paths(
    service: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpx.get(f"{service.base}/Patient/pt-secret-42/$everything")
    httpx.post(f"{service.base}/cds-services/pt-secret-43", json={})
    logged = _logged(caplog, ["GET (other path) 404", "POST /cds-services/(unknown) 404"])
    assert "pt-secret" not in logged


@pytest.mark.parametrize("number", [b"1" + b"0" * 400, b"1e999", b"-1e999"])
def test_a_number_beyond_a_double_is_400(service: Running, number: bytes) -> None:
    # A 400-digit lab value overflowed the unit conversion (500); 1e999 became infinite.
    body = request("patient-view")
    _observations(body)[0]["valueQuantity"]["value"] = 123456789.0
    raw = json.dumps(body).encode().replace(b"123456789.0", number)
    issues = _outcome(call(service, "/cds-services/bonecds-patient-view", raw), 400)
    assert issues[0]["diagnostics"] == ("body: a number beyond the range of a double (RFC 8259 §6)")


def test_a_lone_surrogate_in_a_draft_order_is_400_not_500(service: Running) -> None:
    body = request("order-sign")
    body["context"]["draftOrders"]["entry"][0]["resource"]["id"] = "draft-\udc00"
    response = call(service, "/cds-services/bonecds-order-sign", body)
    assert _outcome(response, 400)[0]["diagnostics"] == (
        "body: a string holds an unpaired surrogate (\\ud800-\\udfff), which is not text"
    )
    body["context"]["draftOrders"]["entry"][0]["resource"]["id"] = "draft-\U0001f600"  # a pair
    assert call(service, "/cds-services/bonecds-order-sign", body).status_code == 200


def test_control_characters_echoed_in_a_diagnostic_are_escaped(service: Running) -> None:
    body = request("patient-view")
    body["prefetch"]["patient"]["id"] = "pt\x1b[31m\nX"  # a terminal escape, a new line
    response = call(service, "/cds-services/bonecds-patient-view", body)
    # An unusable Patient is refused (400) or noted and skipped (a mapping note on a card):
    # either way the id is echoed escaped, never as a raw escape sequence or line break.
    echoed = [text for text in _texts(response.json()) if "Patient/pt" in text]
    assert echoed
    assert all("Patient/pt\\x1b[31m\\nX" in text for text in echoed)
    assert all("\x1b" not in text for text in echoed)


def _texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return [value] if isinstance(value, str) else []


def test_other_http_errors_are_operation_outcomes(service: Running) -> None:
    assert _outcome(call(service, "/cds-services/nope", request("patient-view")), 404)
    assert _outcome(httpx.get(f"{service.base}/cds-services/bonecds-order-sign"), 405)
    text = call(
        service, "/cds-services/bonecds-patient-view", b"{}", **{"Content-Type": "text/plain"}
    )
    assert _outcome(text, 415)
    big = call(service, "/cds-services/bonecds-patient-view", b" " * 300_000)
    assert _outcome(big, 413)[0]["code"] == "too-costly"


# ---- feedback --------------------------------------------------------------------------------


def test_feedback_is_stored_once_and_validated(service: Running) -> None:
    path = "/cds-services/bonecds-patient-view/feedback"
    accepted = json.loads((EXAMPLES / "feedback-accepted.json").read_text())
    overridden = json.loads((EXAMPLES / "feedback-overridden-with-reason.json").read_text())
    for body in (accepted, accepted, overridden):
        response = call(service, path, body)
        assert (response.status_code, response.json()) == (200, {})
    bad = {"feedback": [{**accepted["feedback"][0], "outcome": "ignored"}]}
    assert "feedback.0.outcome" in _outcome(call(service, path, bad), 400)[0]["diagnostics"]
    assert _outcome(call(service, "/cds-services/nope/feedback", accepted), 404)
    assert service.db is not None
    with sqlite3.connect(service.db) as db:
        rows = sorted(db.execute("SELECT outcome, card FROM feedback"))
    assert [row[0] for row in rows] == ["accepted", "overridden"]


# ---- concurrency, logging, development mode ----------------------------------------------------


VARIANTS: dict[str, list[Callable[[dict[str, Any]], None]]] = {
    "renal dose": [],
    "severe renal": [severe_renal],
    "pregnant on denosumab": [denosumab, pregnant],
    "child with GCTB": [denosumab, child_with_gctb],
}


def test_concurrent_requests_for_different_patients_never_mix(service: Running) -> None:
    bodies = []
    for index in range(32):
        name = sorted(VARIANTS)[index % len(VARIANTS)]
        body = request("order-sign")
        for change in VARIANTS[name]:
            change(body)
        bodies.append(body)
    serial = [call(service, "/cds-services/bonecds-order-sign", b).json() for b in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [
            pool.submit(call, service, "/cds-services/bonecds-order-sign", b) for b in bodies
        ]
        parallel = [future.result().json() for future in futures]
    assert parallel == serial
    signatures = {json.dumps(sorted(c["summary"] for c in r["cards"])) for r in serial}
    assert len(signatures) == len(VARIANTS)  # four patients, four different card sets


def test_logs_hold_no_patient_data_or_tokens(
    service: Running, fhir_server: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = request("patient-view")
    del body["prefetch"]["labs"]
    body["fhirServer"] = f"{fhir_server.base}/fhir"
    body["fhirAuthorization"] = {
        "access_token": FHIR_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "s",
        "subject": "s",
    }
    url = f"{service.base}/cds-services/bonecds-patient-view"
    jwt_text = token(url)
    response = httpx.post(url, json=body, headers={"Authorization": f"Bearer {jwt_text}"})
    assert response.status_code == 200
    call(service, "/cds-services/bonecds-patient-view", body, auth="Bearer x.y.z")
    # The stub FHIR server's own access log is the EHR's, not ours: leave it out.
    ours = "\n".join(
        record.getMessage() for record in caplog.records if '"GET /fhir/' not in record.getMessage()
    )
    assert "bonecds-patient-view: " in ours  # the service did log
    for secret in (PATIENT, FHIR_TOKEN, jwt_text, "1968-03-14", "Observation?patient"):
        assert secret not in ours


def test_insecure_dev_mode_is_loud_and_unauthenticated(
    knowledge: Knowledge, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bonecds.cds_hooks.app")
    sock, base = _bind()
    config = ServiceConfig(
        base_url=base,
        insecure_dev=True,
        feedback_db=tmp_path / "f.db",
        today=lambda: AS_OF,
        knowledge=knowledge,
    )
    running = _start(create_app(config), sock, base)
    try:
        response = call(
            running, "/cds-services/bonecds-patient-view", request("patient-view"), auth=None
        )
        assert response.status_code == 200
        preflight = httpx.options(
            f"{base}/cds-services",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        )
        assert preflight.headers["access-control-allow-origin"] == "*"
    finally:
        _stop(running)
    assert "INSECURE DEV MODE: no JWT checks" in caplog.text
    assert "request accepted without authentication" in caplog.text


# ---- configuration and the serve command -------------------------------------------------------


def test_trusted_issuers_are_read_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "ehr.jwks.json").write_text(json.dumps(_jwks(KEY.public_key(), KID, "ES384")))
    sandbox = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    issuers = {
        "issuers": [
            {"iss": ISS, "jwks_file": "ehr.jwks.json"},
            {"iss": "https://sandbox.cds-hooks.org", "jwks_url": sandbox},
        ]
    }
    (tmp_path / "issuers.json").write_text(json.dumps(issuers))
    loaded = load_issuers(tmp_path / "issuers.json")
    assert [(i.iss, i.jwks_url) for i in loaded] == [
        (ISS, None),
        ("https://sandbox.cds-hooks.org", sandbox),
    ]
    aud = "https://bonecds.example/cds-services"
    assert TokenVerifier(loaded, open_store(tmp_path / "r.db")).verify(token(aud), [aud]) is None
    (tmp_path / "broken.json").write_text('{"issuers": [{"jwks_file": "ehr.jwks.json"}]}')
    with pytest.raises(InputError, match="not a trusted-issuers file"):
        load_issuers(tmp_path / "broken.json")


SANDBOX_JKU = "https://sandbox.cds-hooks.org/.well-known/jwks.json"  # what the Sandbox sends


@pytest.mark.parametrize("served", [[1, 2], {"keys": "none"}, {"keys": [{"kty": "nope"}]}])
def test_a_jwks_url_serving_no_jwk_set_refuses_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: Any
) -> None:
    url = "https://ehr.test.example/jwks.json"
    answer = httpx.Response(200, json=served, request=httpx.Request("GET", url))
    monkeypatch.setattr(httpx, "get", lambda *_args, **_kwargs: answer)
    verifier = TokenVerifier((TrustedIssuer(ISS, jwks_url=url),), open_store(tmp_path / "r.db"))
    aud = "https://bonecds.example/cds-services"
    assert verifier.verify(token(aud), [aud]) == "unknown key"


def test_a_pinned_jwks_file_accepts_the_jku_the_issuer_is_configured_for(tmp_path: Path) -> None:
    # The Sandbox always sends a jku; pinning its keys in a file must not need jwks_url
    # (network access) too (issue 13/9). The jku is matched, never fetched.
    (tmp_path / "ehr.jwks.json").write_text(json.dumps(_jwks(KEY.public_key(), KID, "ES384")))
    entry = {"iss": ISS, "jwks_file": "ehr.jwks.json", "jku": [SANDBOX_JKU]}
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [entry]}))
    verifier = TokenVerifier(load_issuers(tmp_path / "issuers.json"), open_store(tmp_path / "r.db"))
    aud = "https://bonecds.example/cds-services"
    assert verifier.verify(token(aud, headers={"jku": SANDBOX_JKU}), [aud]) is None
    assert verifier.verify(token(aud), [aud]) is None  # no jku: the pinned keys
    evil = token(aud, headers={"jku": "https://evil.example/jwks.json"})
    assert verifier.verify(evil, [aud]) == "jku not allowlisted"
    listed = token(aud, headers={"jku": [SANDBOX_JKU]})  # a list is not a URL
    assert verifier.verify(listed, [aud]) == "jku not allowlisted"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"iss": ISS}, "issuers[0]: needs a jwks_file or a jwks_url"),
        ({"iss": ISS, "jwks_url": SANDBOX_JKU, "jku": SANDBOX_JKU}, "not a trusted-issuers file"),
        ({"iss": ISS, "jwks_url": SANDBOX_JKU, "jku": [1]}, "not a trusted-issuers file"),
        ({"iss": ISS, "jwks_file": "list.json"}, "issuers[0]: jwks_file is not a JWK Set"),
        ({"iss": ISS, "jwks_file": "empty.json"}, "issuers[0]: jwks_file is not a JWK Set"),
    ],
)
def test_trusted_issuer_entries_are_checked(tmp_path: Path, entry: Any, message: str) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "empty.json").write_text('{"keys": []}')
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [entry]}))
    with pytest.raises(InputError, match=re.escape(message)):
        load_issuers(tmp_path / "issuers.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0", "--insecure-dev"], "--insecure-dev only binds to loopback"),
        ([], "serve needs --trusted-issuers FILE"),
    ],
)
def test_serve_refuses_unsafe_setups(args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["serve", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_bonecds_serve_starts_a_service_on_loopback(tmp_path: Path) -> None:
    sock, base = _bind()
    port = sock.getsockname()[1]
    sock.close()
    command = [
        sys.executable,
        "-m",
        "bonecds",
        "serve",
        "--insecure-dev",
        "--port",
        str(port),
        "--rules",
        str(RULES),
        "--feedback-db",
        str(tmp_path / "f.db"),
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 30, 0
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.2)
            try:
                status = httpx.get(f"{base}/cds-services").status_code
            except httpx.TransportError:
                status = 0
        assert status == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    assert "INSECURE DEV MODE" in stderr
    assert f"Uvicorn running on http://127.0.0.1:{port}" in stderr


# ---- `bonecds serve --workers 2`: the real command, its logs read from its stderr -------------


@dataclass
class Served:
    base: str
    log: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    (folder / "ehr.jwks.json").write_text(json.dumps(_jwks(KEY.public_key(), KID, "ES384")))
    issuers = {"issuers": [{"iss": ISS, "jwks_file": "ehr.jwks.json"}]}
    (folder / "issuers.json").write_text(json.dumps(issuers))
    sock, base = _bind()
    port = str(sock.getsockname()[1])
    sock.close()
    options = ["--workers", "2", "--port", port, "--rules", str(RULES)]
    options += ["--trusted-issuers", str(folder / "issuers.json")]
    options += ["--database", str(folder / "service.sqlite3")]
    log = folder / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "bonecds", "serve", *options], stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 90
        while log.read_text().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield Served(base, log)
    finally:
        process.terminate()
        process.wait(30)


def _fresh_get(url: str, headers: dict[str, str]) -> int:
    with httpx.Client(timeout=30) as client:  # a connection each: the kernel picks the worker
        return client.get(url, headers=headers).status_code


def test_workers_share_the_replay_table(served: Served) -> None:
    url = f"{served.base}/cds-services"
    tokens = [token(url) for _ in range(24)]
    sends = [{"Authorization": f"Bearer {text}"} for text in tokens for _ in range(2)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda headers: _fresh_get(url, headers), sends))
    assert sorted(statuses) == [200] * 24 + [401] * 24
    for first, second in zip(statuses[::2], statuses[1::2], strict=True):
        assert {first, second} == {200, 401}
    access = [line for line in served.log.read_text().splitlines() if "GET /cds-services " in line]
    served_by = {line.split("[")[1].split("]")[0] for line in access}
    assert len(served_by) == 2, "both workers answered"


def test_serve_logs_no_query_string_token_id_or_traceback(served: Served) -> None:
    url = f"{served.base}/cds-services"
    jwt_text = token(url)
    secret_id = "pt-secret-77"
    with httpx.Client(timeout=30) as client:
        assert (
            client.get(url, params={"access_token": jwt_text, "patient": secret_id}).status_code
            == 400
        )
        client.get(f"{served.base}/Patient/{secret_id}")
        nested = b'{"hook": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        service_url = f"{url}/bonecds-patient-view"
        headers = {
            "Authorization": f"Bearer {token(service_url)}",
            "Content-Type": "application/json",
        }
        assert client.post(service_url, content=nested, headers=headers).status_code == 400
        string_exp = token(url, exp=str(int(time.time()) + 300))
        assert client.get(url, headers={"Authorization": f"Bearer {string_exp}"}).status_code == 401
        assert client.get(url, headers={"Authorization": f"Bearer {jwt_text}"}).status_code == 200
    expected = [
        "GET /cds-services 400",
        "GET (other path) 404",
        "POST /cds-services/bonecds-patient-view 400",
        "authentication refused: iat or exp not a number",
    ]
    deadline = time.monotonic() + 10  # a worker writes its access line just after answering
    while not all(line in served.log.read_text() for line in expected):
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.05)
    logged = served.log.read_text()
    for secret in (jwt_text[:40], string_exp[:40], secret_id, "access_token", "Traceback"):
        assert secret not in logged
