"""Property tests of the CDS Hooks service: whatever the request body or the token, the answer is
cards or an OperationOutcome, never a 500 or an exception (issue 11, "Keep it held").

Requests go to the ASGI app in process (no socket), so an error that escaped the service's own
handling reaches the test as an exception. Seeded and bounded: hypothesis derandomised, a small
example budget. The large budget is `python -m benchmarks.fuzz_service` against a real server.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bonecds import Knowledge
from bonecds.cds_hooks._feedback import open_store
from bonecds.cds_hooks.app import ServiceConfig, create_app
from bonecds.cds_hooks.auth import TokenVerifier, TrustedIssuer
from tests.conftest import AS_OF, DATA

FHIR = DATA / "fhir"
BASE = "http://bonecds.test"
ISS = "https://ehr.test.example/"
KID = "prop-es384"
KEY = ec.generate_private_key(ec.SECP384R1())
BOUNDED = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _jwks() -> dict[str, Any]:
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(KEY.public_key()))
    return {"keys": [{**public, "kid": KID, "alg": "ES384", "use": "sig"}]}


@pytest.fixture(scope="module")
def app(knowledge: Knowledge, tmp_path_factory: pytest.TempPathFactory) -> Any:
    config = ServiceConfig(
        base_url=BASE,
        issuers=(TrustedIssuer(ISS, _jwks()),),
        feedback_db=tmp_path_factory.mktemp("props") / "service.sqlite3",
        today=lambda: AS_OF,
        knowledge=knowledge,
    )
    return create_app(config)


def _token(
    aud: str, claims: dict[str, Any] | None = None, header: dict[str, Any] | None = None
) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    body.update(claims or {})
    return jwt.encode(
        body, KEY, algorithm="ES384", headers={"kid": KID, "typ": "JWT", **(header or {})}
    )


def _post(app: Any, path: str, body: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    headers["Authorization"] = f"Bearer {token or _token(BASE + path)}"

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raises whatever the app lets escape
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(send())


def _answered(response: httpx.Response) -> dict[str, Any]:
    """Cards (200) or an OperationOutcome (4xx), never a 5xx."""
    assert response.status_code < 500, response.text
    data: dict[str, Any] = response.json()
    if response.status_code == 200:
        assert isinstance(data["cards"], list)
    else:
        assert data["resourceType"] == "OperationOutcome"
        assert all(
            issue["diagnostics"].isprintable() for issue in data["issue"] if "diagnostics" in issue
        )
    return data


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        found += _paths(child, (*prefix, key))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    document = copy.deepcopy(document)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


REQUEST = json.loads((FHIR / "patient-view-request.json").read_text())
ENVELOPE_PATHS = [p for p in _paths(REQUEST) if not p or p[0] != "prefetch"]
PREFETCH_PATHS = [p for p in _paths(REQUEST) if p and p[0] == "prefetch"]


@BOUNDED
@given(st.data())
def test_any_envelope_or_context_gets_cards_or_an_outcome(app: Any, data: st.DataObject) -> None:
    body = copy.deepcopy(REQUEST)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in ENVELOPE_PATHS if _exists(body, p)]))
        body = _replaced(body, path, data.draw(JSON))
    _answered(_post(app, "/cds-services/bonecds-patient-view", json.dumps(body).encode()))


@BOUNDED
@given(st.data())
def test_any_prefetch_fhir_shape_gets_cards_or_an_outcome(app: Any, data: st.DataObject) -> None:
    body = copy.deepcopy(REQUEST)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from([p for p in PREFETCH_PATHS if _exists(body, p)]))
        body = _replaced(body, path, data.draw(JSON))
    _answered(_post(app, "/cds-services/bonecds-patient-view", json.dumps(body).encode()))


def _exists(document: Any, path: tuple[Any, ...]) -> bool:
    for step in path:
        try:
            document = document[step]
        except (KeyError, IndexError, TypeError):
            return False
    return True


@BOUNDED
@given(
    st.binary(max_size=200)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
def test_any_bytes_get_an_outcome(app: Any, raw: bytes) -> None:
    _answered(_post(app, "/cds-services/bonecds-patient-view", raw))


CLAIM_NAMES = ["iss", "aud", "exp", "iat", "jti", "nbf", "sub"]
NEAR_NOW = st.integers(-4000, 4000).map(lambda offset: int(time.time()) + offset)
CLAIM_VALUES = JSON | NEAR_NOW | NEAR_NOW.map(str) | NEAR_NOW.map(float) | st.just(ISS)


@BOUNDED
@given(
    claims=st.dictionaries(st.sampled_from(CLAIM_NAMES), CLAIM_VALUES, max_size=4),
    header=st.dictionaries(st.sampled_from(["kid", "typ", "jku", "x5u", "crit"]), JSON, max_size=2),
)
def test_any_claims_are_verified_or_refused_never_raise(
    tmp_path_factory: pytest.TempPathFactory, claims: dict[str, Any], header: dict[str, Any]
) -> None:
    store = open_store(tmp_path_factory.mktemp("claims") / "replay.sqlite3")
    verifier = TokenVerifier((TrustedIssuer(ISS, _jwks()),), store)
    aud = f"{BASE}/cds-services"
    try:
        text = _token(aud, claims, header)
    except (TypeError, ValueError, jwt.PyJWTError):
        return  # PyJWT will not sign it: no client can send it either
    reason = verifier.verify(text, [aud])
    store.close()
    if reason is None:  # accepted: then every claim was of the right kind
        now = time.time()
        signed = jwt.decode(text, options={"verify_signature": False})
        assert signed["iss"] == ISS
        assert signed["aud"] == aud or aud in signed["aud"]
        assert isinstance(signed["jti"], str)
        assert signed["jti"]
        assert signed["iat"] <= now + 60 < signed["exp"] + 120


@BOUNDED
@given(claims=st.dictionaries(st.sampled_from(["exp", "iat", "jti"]), CLAIM_VALUES, max_size=2))
def test_any_claims_over_http_get_an_answer(app: Any, claims: dict[str, Any]) -> None:
    path = "/cds-services/bonecds-patient-view"
    try:
        token = _token(BASE + path, claims)
    except (TypeError, ValueError, jwt.PyJWTError):
        return
    body = copy.deepcopy(REQUEST)
    body["hookInstance"] = str(uuid.uuid4())
    response = _post(app, path, json.dumps(body).encode(), token)
    assert response.status_code in (200, 401), response.text
    _answered(response)
