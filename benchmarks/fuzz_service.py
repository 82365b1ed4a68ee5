"""Fuzz target: malformed requests and token attacks against a real `bonecds serve` on loopback.

Run by `python -m benchmarks.fuzz` (all targets) or alone:

    python -m benchmarks.fuzz_service [COUNT] [SEED]

It starts `bonecds serve --workers 2` on 127.0.0.1 with a key generated here, sends `count`
requests built from the CDS Hooks requests in `tests/data/fhir/` (synthetic patients), each with one
to three defects, and stops the server. Defects: JSON bodies with values replaced by nulls,
wrong types, extreme numbers, lone surrogates, control characters or deep nesting (in the
envelope, the context and the prefetch FHIR resources), duplicate keys, truncated or corrupted
bytes, wrong Content-Type and Authorization headers, unknown paths, Accept-Language headers in
both languages and malformed; and token attacks (alg none, HMAC, a key not on record, expired,
string exp or iat, replayed jti, jku to an untrusted URL, a token in the query string, untrusted
iss, wrong aud).

Each request counts once:
- `ok`: 200; `refused`: a 4xx whose body is an OperationOutcome;
- `http_500`: any 5xx; `hung`: no answer within the timeout;
- `crashed`: the connection closed without an answer, the server died, or a traceback in its
  log (each traceback counts one);
- `wrong_answer` (beyond the common keys): a token attack that was accepted, or a 4xx that is
  not an OperationOutcome. Every one of these is a bug, like a 500.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from benchmarks.load import ROOT, Served, exchange, http_request, serve, sign

NAME = "service"
DEFAULT_COUNT = 10_000
TIMEOUT_S = 20.0
CONCURRENCY = 8
REQUESTS = {
    "bonecds-patient-view": ROOT / "tests" / "data" / "fhir" / "patient-view-request.json",
    "bonecds-order-sign": ROOT / "tests" / "data" / "fhir" / "order-sign-request.json",
}
WEIRD: list[Any] = [
    None,
    [],
    {},
    "",
    0,
    -1,
    1.5,
    True,
    "x" * 3000,
    "\x00\x1b[31m",
    "\ud800",
    10**400,
    1e308,
    -0.0,
    [None],
    {"resourceType": "Patient"},
    {"reference": None},
    {"coding": None},
    {"coding": [{"system": None, "code": None}]},
    "Patient/other-patient",
    "2026-13-45",
]


@dataclass
class Case:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    attack: bool = False  # must be refused
    replay_of: Case | None = None


def run(count: int, seed: int) -> dict[str, int]:
    """Send `count` defective requests to a fresh server; the counts described above."""
    rng = random.Random(seed)
    with serve(workers=2) as served:
        cases = [_case(rng, served) for _ in range(count)]
        counts = asyncio.run(_send_all(served, cases))
        alive = served.process.poll() is None
        log = served.log.read_text(errors="replace")
    counts["crashed"] += log.count("Traceback") + (0 if alive else 1)
    return counts


async def _send_all(served: Served, cases: list[Case]) -> dict[str, int]:
    counts = dict.fromkeys(("tried", "ok", "refused", "crashed", "hung", "http_500"), 0)
    counts["wrong_answer"] = 0
    keep = os.environ.get("BONECDS_FUZZ_KEEP")  # a folder for the failing requests
    port = int(served.base.rsplit(":", 1)[1])
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(case: Case) -> None:
        async with gate:
            for sent in (case.replay_of, case):  # a replay: the original first, then its copy
                if sent is None:
                    continue
                outcome = await _classify(port, sent)
                counts["tried"] += 1
                counts[outcome] += 1
                if keep and outcome not in ("ok", "refused"):
                    _keep(Path(keep), sent)

    await asyncio.gather(*(one(case) for case in cases))
    return counts


def _keep(folder: Path, case: Case) -> None:
    """Write a failing request (synthetic data only) for reproduction, named by its digest."""
    raw = http_request(case.method, case.path, case.headers, case.body)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{hashlib.sha256(raw).hexdigest()[:16]}.http").write_bytes(raw)


async def _classify(port: int, case: Case) -> str:
    raw = http_request(case.method, case.path, case.headers, case.body)
    try:
        status, body = await exchange(port, raw, TIMEOUT_S)
    except TimeoutError:
        return "hung"
    except OSError:
        return "crashed"
    if status == 0:
        return "crashed"
    if status >= 500:
        return "http_500"
    if status == 200:
        return "wrong_answer" if case.attack else "ok"
    return "refused" if _is_outcome(body) else "wrong_answer"


def _is_outcome(body: bytes) -> bool:
    try:
        return bool(json.loads(body).get("resourceType") == "OperationOutcome")
    except (ValueError, AttributeError):
        return False


# ---- building the cases ----------------------------------------------------------------------


def _case(rng: random.Random, served: Served) -> Case:
    service = rng.choice(sorted(REQUESTS))
    if rng.random() < 0.12:
        service = rng.choice([*REQUESTS, "nope", "bonecds-patient-view/feedback"])
    path = f"/cds-services/{service}"
    request: Any = json.loads(REQUESTS.get(service, REQUESTS["bonecds-patient-view"]).read_text())
    request["hookInstance"] = str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if rng.random() < 0.5:  # Chinese cards half the time, and headers to misread
        headers["Accept-Language"] = rng.choice(_LANGUAGES)
    case = Case("POST", path, headers, b"")
    for _ in range(rng.randint(1, 3)):
        request = rng.choice(_JSON_DEFECTS)(rng, request)
    case.body = json.dumps(request).encode("utf-8", "surrogatepass")
    headers["Authorization"] = f"Bearer {served.token(path)}"
    roll = rng.random()
    if roll < 0.25:
        _attack(rng, served, case)
    elif roll < 0.35:
        case.body = rng.choice(_BYTE_DEFECTS)(rng, case.body)
    elif roll < 0.42:
        _header_defect(rng, case)
    return case


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(rng: random.Random, data: Any, new: Callable[[Any], Any]) -> Any:
    paths = _paths(data)
    path = rng.choice(paths)
    if not path:
        return new(data)
    data = copy.deepcopy(data)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new(parent[path[-1]])
    return data


def _weird_value(rng: random.Random, data: Any) -> Any:
    return _replace(rng, data, lambda _old: copy.deepcopy(rng.choice(WEIRD)))


def _in_prefetch(rng: random.Random, data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("prefetch"), dict):
        return _weird_value(rng, data)
    data = copy.deepcopy(data)
    key = rng.choice(sorted(data["prefetch"]))
    data["prefetch"][key] = _weird_value(rng, data["prefetch"][key])
    return data


def _drop(rng: random.Random, data: Any) -> Any:
    def without(old: Any) -> Any:
        if isinstance(old, dict) and old:
            gone = rng.choice(sorted(old))
            return {k: v for k, v in old.items() if k != gone}
        if isinstance(old, list) and old:
            return old[1:]
        return old

    return _replace(rng, data, without)


def _nest(rng: random.Random, data: Any) -> Any:
    depth = rng.choice([20, 60, 99, 101, 150])  # deeper ones: _deep, on the bytes
    return _replace(rng, data, lambda _old: json.loads("[" * depth + "]" * depth))


def _wrong_container(rng: random.Random, data: Any) -> Any:
    def flip(old: Any) -> Any:
        if isinstance(old, dict):
            return list(old.values())
        if isinstance(old, list):
            return {str(i): v for i, v in enumerate(old)}
        return [old]

    return _replace(rng, data, flip)


def _number_as_string(rng: random.Random, data: Any) -> Any:
    return _replace(rng, data, lambda old: str(old) if isinstance(old, int | float) else "1" * 400)


_JSON_DEFECTS = [_weird_value, _in_prefetch, _in_prefetch, _drop, _nest, _wrong_container]
_JSON_DEFECTS += [_number_as_string]


def _truncate(rng: random.Random, body: bytes) -> bytes:
    return body[: rng.randrange(len(body))]


def _flip_byte(rng: random.Random, body: bytes) -> bytes:
    where = rng.randrange(len(body))
    return body[:where] + bytes([rng.randrange(256)]) + body[where + 1 :]


def _duplicate_key(rng: random.Random, body: bytes) -> bytes:
    return b'{"hook": "patient-view", ' + body[1:] if rng.random() < 0.5 else body + body


def _deep(rng: random.Random, body: bytes) -> bytes:
    depth = rng.choice([950, 1000, 5000, 100_000])
    nested = b'"deep": ' + b"[" * depth + b"]" * depth + b", "
    return body.replace(b'"prefetch": {', b'"prefetch": {' + nested, 1)


def _not_utf8(rng: random.Random, body: bytes) -> bytes:
    return body.decode("utf-8", "surrogatepass").encode(rng.choice(["utf-16", "latin-1"]))


_ByteDefect = Callable[[random.Random, bytes], bytes]
_BYTE_DEFECTS: list[_ByteDefect] = [_truncate, _flip_byte, _duplicate_key, _deep, _deep, _not_utf8]
_BYTE_DEFECTS += [lambda _rng, _body: b"", lambda _rng, _body: b"null"]


_LANGUAGES = ["zh-CN,zh;q=0.9,en;q=0.8", "zh", "zh-Hant-TW", "en-US,en;q=0.5", "fr, zh;q=0.1"]
_LANGUAGES += ["zh;q=abc", "zh;q=0", "*", ",,;;", "zh-" + "x" * 3000, "en;q=1.5, zh"]


def _header_defect(rng: random.Random, case: Case) -> None:
    choice = rng.randrange(5)
    if choice == 0:
        case.headers["Content-Type"] = rng.choice(["text/plain", "application/xml", ""])
    elif choice == 1:
        case.headers["Authorization"] = rng.choice(["Bearer", "Basic abc", "Bearer " + "a" * 6000])
        case.attack = True
    elif choice == 2:
        del case.headers["Authorization"]
        case.attack = True
    elif choice == 3:
        case.method = rng.choice(["GET", "PUT", "DELETE"])
    else:
        case.path = rng.choice(["/", "/cds-services/../about", "/Patient/pt-1", "/cds-services//x"])


def _attack(rng: random.Random, served: Served, case: Case) -> None:
    """A token that must be refused; the request is otherwise well-formed."""
    case.attack = True
    aud = f"{served.base}{case.path}"
    now = int(time.time())
    other = ec.generate_private_key(ec.SECP384R1()) if rng.random() < 0.1 else _OTHER_KEY
    attacks: list[Callable[[], str]] = [
        # PyJWT's key type leaves out None, the one key its alg "none" takes
        lambda: jwt.encode({"iss": "https://load.example/", "aud": aud}, None, algorithm="none"),  # type: ignore[arg-type]
        lambda: _hmac_with_public_key(served, aud),
        lambda: sign(other, aud),
        lambda: sign(served.key, aud, exp=now - 3600, iat=now - 3700),
        lambda: sign(served.key, aud, exp=str(now + 300)),
        lambda: sign(served.key, aud, iat=str(now)),
        lambda: sign(served.key, aud, iat=now + 3600),
        lambda: sign(served.key, aud, iss="https://evil.example/"),
        lambda: sign(served.key, aud + "-other"),
        lambda: sign(served.key, aud, jti=None),
        lambda: sign(served.key, aud, jti=5),
        lambda: _with_header(served, aud, {"jku": "https://evil.example/jwks.json"}),
        lambda: _with_header(served, aud, {"jku": ["https://evil.example/jwks.json"]}),
        lambda: _unsigned({"alg": "ES384", "typ": 5, "kid": ["load-es384"]}, {"aud": aud}),
        lambda: _unsigned({"alg": "ES384", "typ": "JWT", "kid": "load-es384"}, [1, 2]),
        lambda: _unsigned({"alg": "ES384", "typ": "JWT", "kid": "load-es384"}, {"iss": None}),
    ]
    choice = rng.randrange(len(attacks) + 2)
    if choice == len(attacks):  # replayed jti: the original must be accepted, its copy not
        original = Case(case.method, case.path, dict(case.headers), case.body)
        original.body = json.dumps(
            json.loads(REQUESTS["bonecds-patient-view"].read_text())
        ).encode()
        original.path = "/cds-services/bonecds-patient-view"
        token = served.token(original.path)
        original.headers["Authorization"] = case.headers["Authorization"] = f"Bearer {token}"
        case.path, case.body, case.replay_of = original.path, original.body, original
    elif choice == len(attacks) + 1:  # a valid token in the query string
        token = case.headers.pop("Authorization").removeprefix("Bearer ")
        case.path += f"?access_token={token}"
    else:
        case.headers["Authorization"] = f"Bearer {attacks[choice]()}"


_OTHER_KEY = ec.generate_private_key(ec.SECP384R1())


def _with_header(served: Served, aud: str, header: dict[str, Any]) -> str:
    now = int(time.time())
    claims = {"iss": "https://load.example/", "aud": aud, "exp": now + 300, "iat": now}
    claims["jti"] = str(uuid.uuid4())
    header = {"typ": "JWT", "kid": "load-es384", **header}
    return jwt.encode(claims, served.key, algorithm="ES384", headers=header)


def _segment(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hmac_with_public_key(served: Served, aud: str) -> str:
    """The classic confusion attack: HS256 keyed with the issuer's public key."""

    public = json.dumps(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(served.key.public_key())))
    head = _segment({"alg": "HS256", "typ": "JWT", "kid": "load-es384"})
    now = int(time.time())
    body = _segment({"iss": "https://load.example/", "aud": aud, "exp": now + 300, "iat": now})
    mac = hmac.new(public.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _unsigned(header: Any, payload: Any) -> str:
    return f"{_segment(header)}.{_segment(payload)}.{_segment('not a signature')}"


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    started = time.monotonic()
    found = run(
        arguments[0] if arguments else DEFAULT_COUNT, arguments[1] if len(arguments) > 1 else 1
    )
    print(json.dumps(found), f"({time.monotonic() - started:.0f} s)")
