"""The CDS Hooks 2.0 service: discovery, patient-view, order-select, order-sign and feedback.

Every clinical judgement comes from `bonecds.evaluate` over a profile mapped from FHIR; this
module only moves data: authenticate (JWT, 2.0 §Trusting CDS Clients, checked by
`bonecds.cds_hooks.auth`), validate the request, collect prefetch (or fetch it from `fhirServer`),
evaluate, render cards. Failures are FHIR OperationOutcomes (3.0 ballot §Returning
OperationOutcome). Logs carry service ids, hook instances, counts and reasons, never patient
data, request bodies or tokens.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bonecds.api import Knowledge, evaluate, load_knowledge
from bonecds.cds_hooks._cards import CardContext, order_cards, patient_view_cards, state_notes
from bonecds.cds_hooks._feedback import open_store
from bonecds.cds_hooks._models import (
    PREFETCH,
    REQUIRED_PREFETCH,
    CdsRequest,
    Feedback,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
    Prefetched,
    ServiceDescriptor,
    Source,
    bundle_resources,
    classify_prefetch,
    resolve_template,
)
from bonecds.cds_hooks._words import WORDS
from bonecds.cds_hooks.auth import TokenVerifier, TrustedIssuer
from bonecds.errors import ProfileError
from bonecds.fhir.orders import read_draft_orders
from bonecds.fhir.read import map_resources, parse_resources
from bonecds.knowledge.i18n import LANGUAGES
from bonecds.profile.model import (
    PatientProfile,
    mark_duplicates,
    parse_profile,
    refuse_duplicate_keys,
)
from bonecds.report.model import Report
from bonecds.testing.audit import AuditStore, report_record

__all__ = ["SERVER_OPTIONS", "ServiceConfig", "create_app"]

log = logging.getLogger("bonecds.cds_hooks.app")
access_log = logging.getLogger("bonecds.access")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # only escapes can carry a lone one
_LONE_SURROGATE = "body: a string holds an unpaired surrogate (\\ud800-\\udfff), which is not text"
MAX_JSON_DEPTH = 100  # FHIR prefetch nests about 15 levels; Python recursion fails near 1,000
_USAGE = (
    "Needs the patient, conditions, laboratory results and medication requests (prefetch or "
    "fhirServer access); without them the service answers 412. Research prototype, not a "
    "medical device."
)
_QUERY_TOKEN = "query: a token is accepted only in the Authorization header"
_HOOKS = {
    "patient-view": ("bone-health overview", "Emergencies, options, cautions and missing data."),
    "order-select": ("bone-modifying agent order check", "Checks the selected draft orders."),
    "order-sign": ("bone-modifying agent order check", "Checks the draft orders to be signed."),
}
SERVICES = {
    f"bonecds-{hook}": ServiceDescriptor(
        hook=hook,
        id=f"bonecds-{hook}",
        title=f"bonecds {title}",
        description=f"{text} Bone metastasis care; every card cites its rules and sources.",
        prefetch=PREFETCH,
        usageRequirements=_USAGE,
    )
    for hook, (title, text) in _HOOKS.items()
}
_CONTEXTS: dict[str, type[PatientViewContext]] = {
    "patient-view": PatientViewContext,
    "order-select": OrderSelectContext,
    "order-sign": OrderSignContext,
}


@dataclass(frozen=True)
class ServiceConfig:
    """How the service runs. `base_url` is its public URL: the JWT `aud` is checked against it."""

    base_url: str
    rules_dir: Path | None = None
    issuers: tuple[TrustedIssuer, ...] = ()
    insecure_dev: bool = False
    # Feedback and the jti replay table: an SQLite file, or a postgresql:// URL.
    feedback_db: Path | str = Path("bonecds-feedback.sqlite3")
    audit_db: Path | str | None = (
        None  # opt-in audit records (testing/audit.py): SQLite or postgresql://
    )
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = 5_000_000
    allow_open_fhir: bool = False  # fhirServer without fhirAuthorization (checklist R-8)
    allow_http_fhir: bool = False  # send tokens to http:// only in development (S-13)
    source_url: str | None = None
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())
    knowledge: Knowledge | None = None


class AsciiJSONResponse(JSONResponse):
    """JSON in ASCII: text echoed from a request (an id holding a lone surrogate "\\ud800")
    is escaped, so that every answer can be encoded and decoded."""

    def render(self, content: Any) -> bytes:
        return json.dumps(
            content, ensure_ascii=True, allow_nan=False, separators=(",", ":")
        ).encode()


class _Problem(Exception):
    """An HTTP error answered with an OperationOutcome naming fields, never values."""

    def __init__(self, status: int, code: str, problems: list[str]) -> None:
        super().__init__(problems[0] if problems else code)
        self.status, self.code, self.problems = status, code, problems


def operation_outcome(code: str, problems: list[str], text: str = "") -> dict[str, Any]:
    """A FHIR OperationOutcome with one issue per problem (3.0 ballot, checklist E-2)."""
    issues: list[dict[str, Any]] = [
        {"severity": "error", "code": code, "diagnostics": _printable(p)} for p in problems
    ]
    issues = issues or [{"severity": "error", "code": code}]
    if text:
        for issue in issues:
            issue["details"] = {"text": text}
    return {"resourceType": "OperationOutcome", "issue": issues}


def _printable(text: str) -> str:
    """One line of readable text: control characters and lone surrogates echoed from the
    request are shown escaped (`\\x1b`, `\\ud800`)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, counting what arrives, not the header."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size, more = size + len(chunks[-1]), message.get("more_body", False)
            if size > self.max_bytes:
                body = operation_outcome("too-costly", ["request body too large"])
                return await AsciiJSONResponse(body, 413)(scope, receive, send)
        replayed: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}]

        async def replay() -> Message:
            return replayed.pop() if replayed else await receive()

        return await self.app(scope, replay, send)


class Guard:
    """The outermost layer: one access-log line per request, and a clean 500 for any error that
    escaped every handler. The line names the route, never the raw path or its query string
    (either may carry a patient id or a token); the error log names only the exception's type,
    since its message or traceback could hold request data (issue 11, items 8 and 9)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as error:
            log.error("internal error (%s)", error.__class__.__name__)
            if not status:
                body = operation_outcome("exception", ["internal error"])
                await AsciiJSONResponse(body, 500)(scope, receive, sending)
        elapsed = (time.perf_counter() - started) * 1000
        access_log.info("%s %s %d %.0f ms", scope["method"], _route(scope["path"]), status, elapsed)
        return None


def _route(path: str) -> str:
    parts = path.strip("/").split("/")
    if parts == ["about"] or parts == ["cds-services"]:
        return f"/{parts[0]}"
    if parts[0] != "cds-services" or len(parts) > 3 or parts[2:] not in ([], ["feedback"]):
        return "(other path)"
    service = parts[1] if parts[1] in SERVICES else "(unknown)"
    return "/".join(["", "cds-services", service, *parts[2:]])


class CdsService:
    """The request handlers, bound to one configuration and one loaded knowledge base."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.knowledge = config.knowledge or load_knowledge(config.rules_dir)
        self.store = open_store(config.feedback_db)  # feedback and the jti replay table
        self.verifier = TokenVerifier(config.issuers, self.store)
        self.audit = AuditStore(config.audit_db) if config.audit_db is not None else None
        self.base = config.base_url.rstrip("/")
        url = config.source_url or f"{self.base}/about"
        self.sources = {lang: Source(label=WORDS[lang]["source"], url=url) for lang in LANGUAGES}

    def authorize(self, request: Request, audience: list[str]) -> None:
        if "access_token" in request.query_params:  # refused before any check spends its jti
            raise _Problem(400, "invalid", [_QUERY_TOKEN])
        if self.config.insecure_dev:
            log.warning("INSECURE DEV MODE: request accepted without authentication")
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        reason = "no bearer token"
        if scheme.lower() == "bearer" and token:
            reason = self.verifier.verify(token.strip(), audience) or ""
        if reason:
            log.info("authentication refused: %s", reason)
            raise _Problem(401, "login", [])  # no detail for the client (BP §JWT)

    def invoke(
        self, service: ServiceDescriptor, payload: Any, language: str = "en"
    ) -> dict[str, Any]:
        hook_request, context = _validated(service, payload)
        if isinstance(context, OrderSignContext) and not _may_order_a_bma(context):
            return {"cards": []}  # nothing to check: no FHIR fetches, no evaluation
        states = self._gather(hook_request, context)
        resources = {key: state.resources for key, state in states.items() if state.usable}
        parsed = [
            r for key, rs in resources.items() for r in parse_resources(rs, f"prefetch.{key}")
        ]
        complete = frozenset({"medications"} if "medications" in resources else ())
        today = self.config.today()
        mapping = map_resources(parsed, today, patient_id=context.patientId, complete=complete)
        notes = state_notes(states, mapping.texts(language), language)
        profile, drafts = mapping.profile, None
        if isinstance(context, OrderSignContext):
            selections = context.selections if isinstance(context, OrderSelectContext) else None
            index = {f"{r['resourceType']}/{r.get('id')}": r for r in parsed}
            drafts = read_draft_orders(context.draftOrders, selections, index)
            profile = _after_signing(profile, drafts.agents, drafts.dental_planned)
            notes += [WORDS[language]["draft"].format(problem=p) for p in drafts.problems]
        report = evaluate(profile, self.knowledge, today, language=language)
        if self.audit is not None:
            self.audit.add(service.id, report_record(profile, self.knowledge, today, report))
        dates = _dates(report, mapping.dates)
        source = self.sources[language]
        ctx = CardContext(hook_request.hookInstance, source, dates, notes, language)
        if drafts is None:
            return patient_view_cards(report, ctx).to_data()
        return order_cards(report, drafts.orders, ctx).to_data()

    def _gather(self, request: CdsRequest, context: PatientViewContext) -> dict[str, Prefetched]:
        supplied = request.prefetch or {}
        states = {}
        for key, template in PREFETCH.items():
            try:
                state = classify_prefetch(supplied.get(key), key in supplied)
            except ValueError as error:
                raise _Problem(400, "invalid", [f"prefetch.{key}: {error}"]) from None
            if not state.usable:
                state = self._fetch(request, resolve_template(template, context)) or state
            if not state.usable and key in REQUIRED_PREFETCH:
                problem = f"prefetch key '{key}' was not supplied and could not be fetched"
                raise _Problem(412, "processing", [problem])
            states[key] = state
        return states

    def _fetch(self, request: CdsRequest, query: str) -> Prefetched | None:
        """GET `fhirServer/query` with the client's access token, following `next` pages."""
        server, auth = request.fhirServer, request.fhirAuthorization
        if server is None or (auth is None and not self.config.allow_open_fhir):
            return None
        if server.startswith("http://") and not self.config.allow_http_fhir:
            return None  # never send a token in clear text (2.0 §Security and Safety)
        headers = {"Accept": "application/fhir+json"}
        if auth is not None:
            headers["Authorization"] = f"Bearer {auth.access_token}"
        url: str | None = f"{server.rstrip('/')}/{query}"
        found: list[dict[str, Any]] = []
        try:
            with httpx.Client(timeout=10, headers=headers) as client:
                for _page in range(50):
                    if url is None:
                        return Prefetched("fetched", tuple(found))
                    response = client.get(url)
                    if response.status_code == 404 and "?" not in query:
                        return Prefetched("null")  # a read that found nothing
                    response.raise_for_status()
                    data = response.json()
                    if data.get("resourceType") == "OperationOutcome":
                        return None
                    if data.get("resourceType") != "Bundle":
                        return Prefetched("fetched", (data,))
                    found += bundle_resources(data)
                    url = _next_link(data, server)
        except (httpx.HTTPError, ValueError, AttributeError) as error:
            log.warning("FHIR fetch failed (%s)", error.__class__.__name__)
        return None


def _may_order_a_bma(context: OrderSignContext) -> bool:
    """Whether the drafts hold a BMA order, or a medicine that only the prefetch can name."""
    drafts = read_draft_orders(context.draftOrders, None, {})
    return bool(drafts.agents) or any("medicationReference" in p for p in drafts.problems)


def _validated(service: ServiceDescriptor, payload: Any) -> tuple[CdsRequest, PatientViewContext]:
    """The envelope, then the hook's context: 400 before any rule runs (checklist R-2, R-3)."""
    try:
        request = CdsRequest.model_validate(payload)
    except ValidationError as error:
        raise _Problem(400, "invalid", _problems(error)) from None
    if request.hook != service.hook:
        raise _Problem(400, "invalid", [f"hook: this service answers '{service.hook}'"])
    try:
        return request, _CONTEXTS[service.hook].model_validate(request.context)
    except ValidationError as error:
        raise _Problem(400, "invalid", _problems(error, "context.")) from None


def _problems(error: ValidationError, prefix: str = "") -> list[str]:
    # Built from loc and msg only: errors() also carries the input (patient data).
    return [
        f"{prefix}{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
        for item in error.errors(include_input=False, include_url=False)
    ]


def _next_link(bundle: dict[str, Any], server: str) -> str | None:
    # Only pages on the same server: a Bundle must not steer the token elsewhere.
    links = [
        link.get("url", "") for link in bundle.get("link", []) if link.get("relation") == "next"
    ]
    return next((url for url in links if url.startswith(server.rstrip("/") + "/")), None)


def _dates(report: Report, dates: dict[str, str]) -> dict[str, str]:
    """Each value's date, a derived value taking its oldest input's (stale data, checklist S-16)."""
    found = dict(dates)
    for item in report.derived:
        inputs = [d for f, d in dates.items() for name in item.inputs if name.startswith(f)]
        if inputs:
            found[item.field] = min(inputs)
    return found


def _after_signing(
    profile: PatientProfile, agents: set[str], dental_planned: bool
) -> PatientProfile:
    """The patient as if the drafts were signed: drafted agents join the current ones, so the
    duplicate-therapy and dental rules (D12, E5) judge the combination, not the code here."""
    data = profile.model_dump(exclude_none=True)
    if agents:  # no drafted agent: an unknown current list stays unknown
        meds = data.setdefault("meds", {})
        meds["current_bma"] = sorted(set(meds.get("current_bma", [])) | agents)
    if dental_planned:
        data.setdefault("dental", {})["planned_invasive_procedure"] = True
    return parse_profile(data, "draft orders")


# How uvicorn must run the app: the Guard writes the access log (uvicorn's would hold raw paths
# and query strings), and the Server header is left out.
SERVER_OPTIONS: dict[str, Any] = {"access_log": False, "server_header": False}


def create_app(config: ServiceConfig) -> FastAPI:
    """The ASGI app. Loads the knowledge base once; evaluations then run serially (engine lock)."""
    service = CdsService(config)
    for noisy in ("httpx", "httpcore"):  # their INFO/DEBUG lines carry URLs with patient ids
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Its lines hold raw paths and query strings (ids, tokens); the Guard logs requests instead.
    logging.getLogger("uvicorn.access").disabled = True
    if config.insecure_dev:
        log.warning("*" * 72)
        log.warning("INSECURE DEV MODE: no JWT checks; CORS open to every origin. Never use this")
        log.warning("with real patient data or on a network interface other than loopback.")
        log.warning("*" * 72)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        service.store.close()

    app = FastAPI(
        title="bonecds CDS Hooks",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    origins = ["*"] if config.insecure_dev else list(config.cors_origins)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_credentials=False,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
    )  # checklist S-14; credentials are never combined with "*"
    app.add_middleware(Guard)  # added last: the outermost layer
    _routes(app, service)
    _error_handlers(app)
    return app


def _routes(app: FastAPI, service: CdsService) -> None:
    base = service.base

    @app.get("/cds-services")
    def discovery(request: Request) -> AsciiJSONResponse:
        service.authorize(request, [f"{base}/cds-services"])  # D-10
        return AsciiJSONResponse(
            {"services": [s.model_dump(exclude_none=True) for s in SERVICES.values()]}
        )

    @app.post("/cds-services/{service_id}")
    async def invoke(service_id: str, request: Request) -> AsciiJSONResponse:
        descriptor = _service(service_id)
        # In a worker thread: a JWKS URL may have to be fetched (blocking I/O).
        await run_in_threadpool(service.authorize, request, [f"{base}/cds-services/{service_id}"])
        payload = await _json_body(request)
        language = report_language(request.headers.get("accept-language"))
        started = time.perf_counter()
        result = await run_in_threadpool(service.invoke, descriptor, payload, language)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%s: %d cards in %.0f ms", service_id, len(result["cards"]), elapsed)
        # The cards' language follows the request's header: caches must key on it.
        headers = {"Content-Language": language, "Vary": "Accept-Language"}
        return AsciiJSONResponse(result, headers=headers)

    @app.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> AsciiJSONResponse:
        _service(service_id)
        url = f"{base}/cds-services/{service_id}"
        # The spec gives no aud example for feedback: accept the feedback URL and the service URL.
        await run_in_threadpool(service.authorize, request, [f"{url}/feedback", url])
        try:
            items = Feedback.model_validate(await _json_body(request))
        except ValidationError as error:
            raise _Problem(400, "invalid", _problems(error)) from None
        added = await run_in_threadpool(service.store.add, service_id, items)
        log.info("%s feedback: %d items, %d new", service_id, len(items.feedback), added)
        return AsciiJSONResponse({})

    @app.get("/about")
    def about() -> PlainTextResponse:
        report_version = service.knowledge.base.version
        return PlainTextResponse(
            "bonecds: clinical decision support for bone metastasis care.\n"
            "Research prototype, not a medical device; every card must be checked by a clinician.\n"
            f"Knowledge base {report_version}. Documentation: docs/cds-hooks.md.\n"
        )


_LANGUAGE_RANGE = re.compile(r"^([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)$")
_QUALITY = re.compile(r"^[qQ]=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def report_language(header: str | None) -> str:
    """The report language a request's `Accept-Language` prefers (RFC 9110 §12.5.4): of
    bonecds' languages, the one of highest quality whose tag or prefix the header names (zh-CN
    and zh-Hant are zh), the first named on a tie. English when the header is absent or
    malformed, or names neither: the header is a preference, never a reason to refuse."""
    best, quality = "en", 0.0
    for item in (header or "")[:1024].split(","):
        tag, *params = (part.strip() for part in item.split(";"))
        weight = _quality(params)
        primary = tag.split("-")[0].lower()
        if _LANGUAGE_RANGE.match(tag) and primary in LANGUAGES and weight > quality:
            best, quality = primary, weight
    return best


def _quality(params: list[str]) -> float:
    """A range's weight: 1 without one; 0 (the range counts for nothing) when what follows it
    is not one `q=` weight, the only parameter RFC 9110 gives a language range."""
    if not params:
        return 1.0
    found = _QUALITY.match(params[0])
    return float(found.group(1)) if found is not None and len(params) == 1 else 0.0


def _service(service_id: str) -> ServiceDescriptor:
    if service_id not in SERVICES:
        raise _Problem(404, "not-found", ["no CDS service with this id"])
    return SERVICES[service_id]


async def _json_body(request: Request) -> Any:
    if "json" not in request.headers.get("content-type", ""):
        raise _Problem(415, "not-supported", ["Content-Type must be application/json"])
    too_deep = _Problem(
        400, "structure", [f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels"]
    )
    raw = await request.body()
    try:
        data = json.loads(
            raw,
            object_pairs_hook=mark_duplicates,
            parse_constant=_no_constant,
            parse_int=_int,
            parse_float=_float,
        )
    except RecursionError:
        raise too_deep from None
    except _OutOfRange:
        raise _Problem(400, "structure", [str(_OutOfRange())]) from None
    except (ValueError, UnicodeDecodeError) as error:
        where = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
        raise _Problem(400, "structure", [f"body: malformed JSON{where}"]) from None
    if _deeper_than(data, MAX_JSON_DEPTH):  # deep nesting makes later recursive code fail
        raise too_deep
    if _SURROGATE_ESCAPE.search(raw) and not _is_text(data):
        raise _Problem(400, "structure", [_LONE_SURROGATE])
    try:  # a repeated key would otherwise keep its last value silently
        refuse_duplicate_keys(data, "body")
    except ProfileError as error:
        raise _Problem(400, "structure", error.problems) from None
    return data


def _is_text(data: Any) -> bool:
    """False when a string holds a lone surrogate: JSON can escape one (RFC 8259 §8.2), but
    it is not Unicode text, and hashing or encoding it later fails."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _deeper_than(data: Any, limit: int) -> bool:
    """Iterative, so that the check itself cannot exhaust the stack."""
    pending = [(data, 1)] if isinstance(data, dict | list) else []
    while pending:
        value, depth = pending.pop()
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                pending.append((child, depth + 1))
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _OutOfRange(ValueError):
    def __str__(self) -> str:
        return "body: a number beyond the range of a double (RFC 8259 §6)"


# JSON numbers that no double holds (1e999, 400 digits) are refused here: later code converts
# them to float, which gives infinity or overflows.
def _int(text: str) -> int:
    number = int(text)  # over 4,300 digits: ValueError, malformed JSON
    if abs(number) > sys.float_info.max:
        raise _OutOfRange
    return number


def _float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _OutOfRange
    return number


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Problem)
    async def problem(_request: Request, error: _Problem) -> AsciiJSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        text = "Authentication required" if error.status == 401 else ""
        body = operation_outcome(error.code, error.problems, text)
        return AsciiJSONResponse(body, error.status, headers=headers)

    @app.exception_handler(ProfileError)
    async def profile(_request: Request, error: ProfileError) -> AsciiJSONResponse:
        return AsciiJSONResponse(operation_outcome("invalid", error.problems), 400)

    @app.exception_handler(HTTPException)
    async def http(_request: Request, error: HTTPException) -> AsciiJSONResponse:
        code = {404: "not-found", 405: "not-supported"}.get(error.status_code, "processing")
        return AsciiJSONResponse(operation_outcome(code, [str(error.detail)]), error.status_code)
