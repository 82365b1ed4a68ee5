"""`bonecds serve`: run the CDS Hooks service (docs/cds-hooks.md) under uvicorn."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bonecds._extras import require_extra
from bonecds.errors import InputError

__all__ = ["register"]

if TYPE_CHECKING:
    from fastapi import FastAPI

    from bonecds.cds_hooks.app import ServiceConfig

LOG_FORMAT = "%(levelname)s %(name)s [%(process)d]: %(message)s"
_SETTINGS = "BONECDS_SERVE_SETTINGS"


def register(app: typer.Typer, errors_as_exit: Callable[[], AbstractContextManager[None]]) -> None:
    """Add the `serve` command to the CLI."""

    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
        rules: Annotated[Path | None, typer.Option(help="Rules directory.")] = None,
        base_url: Annotated[
            str | None,
            typer.Option(
                help="Public base URL, checked as the JWT aud (default http://HOST:PORT)."
            ),
        ] = None,
        trusted_issuers: Annotated[
            Path | None, typer.Option(help="JSON file of trusted CDS clients and their JWKS.")
        ] = None,
        database: Annotated[
            str,
            typer.Option(
                "--database",
                "--feedback-db",
                help="Card feedback and the JWT replay table: an SQLite file, or a "
                "postgresql:// URL. Shared by all workers.",
            ),
        ] = "bonecds-feedback.sqlite3",
        audit_db: Annotated[
            str | None,
            typer.Option(help="Also keep a replayable audit record of every response here."),
        ] = None,
        workers: Annotated[
            int, typer.Option(min=1, max=64, help="Worker processes (about one per core).")
        ] = 1,
        cors_origin: Annotated[
            list[str] | None, typer.Option(help="Allowed browser origin (repeatable).")
        ] = None,
        allow_open_fhir: Annotated[
            bool, typer.Option(help="Query a fhirServer sent without fhirAuthorization.")
        ] = False,
        max_body_kb: Annotated[int, typer.Option(help="Largest accepted request body.")] = 5000,
        ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS key (HTTPS).")] = None,
        ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (HTTPS).")] = None,
        insecure_dev: Annotated[
            bool,
            typer.Option(help="No authentication, open CORS, http FHIR allowed: loopback only."),
        ] = False,
    ) -> None:
        """Serve CDS Hooks 2.0 (patient-view, order-select, order-sign, feedback)."""
        with errors_as_exit():
            require_extra("service")
        import uvicorn

        from bonecds.cds_hooks.app import SERVER_OPTIONS, create_app

        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
        settings = {
            "host": host,
            "base_url": base_url or f"{'https' if ssl_certfile else 'http'}://{host}:{port}",
            "rules": str(rules) if rules else None,
            "trusted_issuers": str(trusted_issuers) if trusted_issuers else None,
            "insecure_dev": insecure_dev,
            "database": database,
            "audit_db": audit_db,
            "cors_origins": cors_origin or [],
            "max_body_bytes": max_body_kb * 1000,
            "allow_open_fhir": allow_open_fhir,
        }
        with errors_as_exit():
            service = create_app(_config(settings))  # a bad setting stops here: one line, exit 2
        os.environ[_SETTINGS] = json.dumps(settings)  # for the worker processes (spawned)
        uvicorn.run(
            "bonecds.cli._serve:worker_app" if workers > 1 else service,
            factory=workers > 1,
            workers=workers,
            host=host,
            port=port,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            **SERVER_OPTIONS,
        )


def worker_app() -> FastAPI:
    """The app in each `--workers` process, from the settings the parent checked."""
    from bonecds.cds_hooks.app import create_app

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return create_app(_config(json.loads(os.environ[_SETTINGS])))


def _config(settings: dict[str, Any]) -> ServiceConfig:
    from bonecds.cds_hooks.app import ServiceConfig
    from bonecds.cds_hooks.auth import load_issuers

    _check_mode(settings["host"], settings["insecure_dev"], settings["trusted_issuers"])
    issuers = settings["trusted_issuers"]
    return ServiceConfig(
        base_url=settings["base_url"],
        rules_dir=Path(settings["rules"]) if settings["rules"] else None,
        issuers=load_issuers(Path(issuers)) if issuers else (),
        insecure_dev=settings["insecure_dev"],
        feedback_db=settings["database"],
        audit_db=settings.get("audit_db"),
        cors_origins=tuple(settings["cors_origins"]),
        max_body_bytes=settings["max_body_bytes"],
        allow_open_fhir=settings["allow_open_fhir"],
        allow_http_fhir=settings["insecure_dev"],
    )


def _check_mode(host: str, insecure_dev: bool, trusted_issuers: str | None) -> None:
    """Refuse the two unsafe set-ups: no way to authenticate, and open mode off loopback."""
    if insecure_dev and not _is_loopback(host):
        raise InputError("--insecure-dev only binds to loopback (127.0.0.1, ::1 or localhost)")
    if not insecure_dev and trusted_issuers is None:
        raise InputError("serve needs --trusted-issuers FILE (or --insecure-dev on loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
