"""Authentication of CDS clients: trusted issuers, their JWK Sets, JWT checks, replay protection.

Per CDS Hooks 2.0 §Trusting CDS Clients and the best-practice order (checklist S-6, S-9, S-10):
asymmetric algorithms only, `jku` only from the allowlist, `jti` remembered until `exp`. Kept
apart from `bonecds.cds_hooks.app` (HTTP, prefetch, cards) so the security checks read on their own.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt

from bonecds.errors import InputError

__all__ = ["TokenVerifier", "TrustedIssuer", "load_issuers"]


class ReplayStore(Protocol):
    def claim(self, iss: str, jti: str, expires: float, now: float) -> bool: ...


ALGORITHMS = ("ES384", "RS384")  # 2.0 §JWT Signing Algorithm; never none or HMAC (S-6)


@dataclass(frozen=True)
class TrustedIssuer:
    """A CDS client allowed to call: its `iss`, its JWK Set (file contents or URL), and the `jku`
    header values it may send. Keys come from `jwks` when pinned, else from `jwks_url`; a `jku`
    only has to be on the list, and is never fetched (checklist S-9)."""

    iss: str
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None  # also accepted as a `jku`
    jku: tuple[str, ...] = ()

    def accepts_jku(self, jku: object) -> bool:
        return jku is None or (isinstance(jku, str) and jku in (*self.jku, self.jwks_url))


def load_issuers(path: Path) -> tuple[TrustedIssuer, ...]:
    """Read `{"issuers": [{"iss": ..., "jwks_file": ... | "jwks_url": ..., "jku": [...]}]}`
    (files relative to it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        issuers = tuple(_issuer(item, path.parent) for item in data["issuers"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path}: not a trusted-issuers file ({error.__class__.__name__})"
        ) from None
    for number, issuer in enumerate(issuers):
        if issuer.jwks is None and issuer.jwks_url is None:
            raise InputError(f"{path}: issuers[{number}]: needs a jwks_file or a jwks_url")
        try:
            if issuer.jwks is not None:
                jwt.PyJWKSet.from_dict(issuer.jwks)
        except (jwt.PyJWTError, AttributeError, TypeError):
            raise InputError(f"{path}: issuers[{number}]: jwks_file is not a JWK Set") from None
    return issuers


def _issuer(item: dict[str, Any], folder: Path) -> TrustedIssuer:
    jwks = None
    if "jwks_file" in item:
        jwks = json.loads((folder / item["jwks_file"]).read_text(encoding="utf-8"))
    jku = item.get("jku", [])
    if not isinstance(item["iss"], str) or not isinstance(jku, list):
        raise TypeError("iss must be text and jku a list")
    if not all(isinstance(url, str) for url in jku):
        raise TypeError("iss and jku must be text")
    return TrustedIssuer(item["iss"], jwks, item.get("jwks_url"), tuple(jku))


class TokenVerifier:
    """Client JWTs per 2.0 §Trusting CDS Clients and the best-practice order (checklist S-10)."""

    def __init__(
        self, issuers: tuple[TrustedIssuer, ...], replay: ReplayStore, leeway: int = 60
    ) -> None:
        self.issuers = {issuer.iss: issuer for issuer in issuers}
        # Pinned key sets parsed once; one that is not a JWK Set stops the service at start.
        self.pinned = {i.iss: jwt.PyJWKSet.from_dict(i.jwks) for i in issuers if i.jwks is not None}
        self.replay = replay
        self.leeway, self.max_lifetime = leeway, 3600  # BP: JWTs live about an hour at most
        self.remote: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    def verify(self, token: str, audience: list[str]) -> str | None:
        """None when the token is good, else a reason for the log (never for the client)."""
        try:
            header = jwt.get_unverified_header(token)
            iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return "malformed"
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            return "untrusted issuer"
        if header.get("alg") not in ALGORITHMS or str(header.get("typ", "")).upper() != "JWT":
            return "algorithm or type"
        if not issuer.accepts_jku(header.get("jku")):
            return "jku not allowlisted"
        key = self._key(issuer, str(header.get("kid", "")))
        if key is None:
            return "unknown key"
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=audience,
                issuer=iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            return "expired"
        except jwt.PyJWTError as error:
            return error.__class__.__name__
        return self._fresh(issuer.iss, claims)

    def _fresh(self, iss: str, claims: dict[str, Any]) -> str | None:
        now = time.time()
        if not (_numeric_date(claims["iat"]) and _numeric_date(claims["exp"])):
            return "iat or exp not a number"  # PyJWT lets "123" through (it calls int())
        if not isinstance(claims["jti"], str) or not claims["jti"]:
            return "jti not a non-empty string"  # RFC 7519 §4.1.7
        if (
            claims["iat"] > now + self.leeway
            or claims["exp"] > now + self.max_lifetime + self.leeway
        ):
            return "iat or lifetime"
        # jti kept until exp, in the database every worker shares: a replay is refused (2.0, BP)
        if not self.replay.claim(iss, claims["jti"], claims["exp"] + self.leeway, now):
            return "replayed jti"
        return None

    def _key(self, issuer: TrustedIssuer, kid: str) -> jwt.PyJWK | None:
        for refresh in (False, True):
            keys = self._keyset(issuer, refresh)
            found = next((k for k in keys.keys if k.key_id == kid), None) if keys else None
            if found is not None or issuer.jwks_url is None:
                return found
        return None

    def _keyset(self, issuer: TrustedIssuer, refresh: bool) -> jwt.PyJWKSet | None:
        if issuer.iss in self.pinned:
            return self.pinned[issuer.iss]
        assert issuer.jwks_url is not None
        try:
            cached = self.remote.get(issuer.jwks_url)
            if cached and time.time() - cached[0] < (60 if refresh else 3600):
                return cached[1]
            keys = jwt.PyJWKSet.from_dict(httpx.get(issuer.jwks_url, timeout=5).json())
            self.remote[issuer.jwks_url] = (time.time(), keys)
            return keys
        except (jwt.PyJWTError, httpx.HTTPError, ValueError, AttributeError, TypeError):
            return None  # unreachable, not JSON, or not a JWK Set ("keys" missing or no list)


def _numeric_date(value: Any) -> bool:
    """A JWT NumericDate (RFC 7519 §2): a finite JSON number, not a string or a boolean."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
