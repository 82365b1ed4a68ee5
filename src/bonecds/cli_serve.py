"""`bonecds serve`: run the CDS Hooks service (docs/cds-hooks.md) under uvicorn."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer

from bonecds.errors import InputError


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
        feedback_db: Annotated[
            str, typer.Option(help="Card feedback: an SQLite file, or a postgresql:// URL.")
        ] = "bonecds-feedback.sqlite3",
        audit_db: Annotated[
            str | None,
            typer.Option(help="Also keep a replayable audit record of every response here."),
        ] = None,
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
        import uvicorn

        from bonecds.service import ServiceConfig, create_app
        from bonecds.service_auth import load_issuers

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        with errors_as_exit():
            _check_mode(host, insecure_dev, trusted_issuers)
            scheme = "https" if ssl_certfile else "http"
            config = ServiceConfig(
                base_url=base_url or f"{scheme}://{host}:{port}",
                rules_dir=rules,
                issuers=load_issuers(trusted_issuers) if trusted_issuers else (),
                insecure_dev=insecure_dev,
                feedback_db=feedback_db,
                audit_db=audit_db,
                cors_origins=tuple(cors_origin or ()),
                max_body_bytes=max_body_kb * 1000,
                allow_open_fhir=allow_open_fhir,
                allow_http_fhir=insecure_dev,
            )
            service = create_app(config)
        uvicorn.run(
            service,
            host=host,
            port=port,
            server_header=False,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        )


def _check_mode(host: str, insecure_dev: bool, trusted_issuers: Path | None) -> None:
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
