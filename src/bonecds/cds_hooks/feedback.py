"""The CDS Hooks service's database: card feedback and the JWT replay table. Embedded SQLite, or
PostgreSQL by URL.

Both take the same tables and the same statements (SQLite has understood `ON CONFLICT` upserts
since 3.24). A feedback item is keyed by a digest of the service and the item, so feedback sent
twice for the same card is stored once (CDS Hooks checklist F-3); a connection is opened per
feedback request. The replay table remembers each JWT `jti` until its token expires, shared by
every worker process (a per-process memory would let a token be replayed on another worker); it
is checked on every request, so each thread keeps its connection open, and a primary-key lookup
keeps the cost flat in the number of live `jti`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from bonecds._extras import require_extra
from bonecds.cds_hooks.models import Feedback
from bonecds.errors import InputError

__all__ = ["POSTGRES_SCHEMES", "PostgresStore", "SqliteStore", "open_store"]

_COLUMNS = "item_hash, service_id, card, outcome, outcome_timestamp, item, received_at"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS feedback (item_hash TEXT PRIMARY KEY, service_id TEXT NOT NULL,"
    " card TEXT NOT NULL, outcome TEXT NOT NULL, outcome_timestamp TEXT NOT NULL,"
    " item TEXT NOT NULL, received_at TEXT NOT NULL)"
)
_INSERT = f"INSERT INTO feedback ({_COLUMNS}) VALUES ({{marks}}) ON CONFLICT (item_hash) DO NOTHING"
_CREATE_REPLAY = (
    "CREATE TABLE IF NOT EXISTS jwt_replay (iss TEXT NOT NULL, jti TEXT NOT NULL,"
    " expires DOUBLE PRECISION NOT NULL, PRIMARY KEY (iss, jti))"
)
# A row counts as changed when the jti is new, or when its earlier token has expired.
_CLAIM = (
    "INSERT INTO jwt_replay (iss, jti, expires) VALUES ({m}, {m}, {m}) ON CONFLICT (iss, jti)"
    " DO UPDATE SET expires = excluded.expires WHERE jwt_replay.expires < {m}"
)
_PURGE = "DELETE FROM jwt_replay WHERE expires < {m}"
_PURGE_EVERY_S = 60.0
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Row = tuple[str, str, str, str, str, str, str]


class ServiceStore(Protocol):
    def add(self, service_id: str, feedback: Feedback) -> int:
        """Store each item; return how many were new."""
        ...

    def claim(self, iss: str, jti: str, expires: float, now: float) -> bool:
        """Record a token's use until `expires`; False when it was already used (a replay)."""
        ...

    def close(self) -> None: ...


def open_store(target: str | Path) -> ServiceStore:
    """A PostgreSQL store for a `postgresql://` URL, else an SQLite file at that path."""
    text = str(target)
    if text.startswith(POSTGRES_SCHEMES):
        return PostgresStore(text)
    return SqliteStore(Path(text))


def feedback_rows(service_id: str, feedback: Feedback) -> list[Row]:
    received = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    rows: list[Row] = []
    for item in feedback.feedback:
        text = item.model_dump_json(exclude_none=True)
        digest = hashlib.sha256(f"{service_id}\n{text}".encode()).hexdigest()
        rows.append(
            (digest, service_id, item.card, item.outcome, item.outcomeTimestamp, text, received)
        )
    return rows


class _ReplayTable:
    """The replay check over one autocommit connection per thread, in either database."""

    mark = "?"

    def __init__(self) -> None:
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._purged_at = 0.0

    def _connect(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
        self._local = threading.local()

    def claim(self, iss: str, jti: str, expires: float, now: float) -> bool:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._lock:
                self._opened.append(db)
        claimed = db.execute(_CLAIM.format(m=self.mark), (iss, jti, expires, now)).rowcount == 1
        if now - self._purged_at > _PURGE_EVERY_S:  # expired rows only cost disk: purge rarely
            self._purged_at = now
            db.execute(_PURGE.format(m=self.mark), (now,))
        return bool(claimed)


class SqliteStore(_ReplayTable):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")  # worker processes write at once; readers never wait
        db.execute(_CREATE)
        db.execute(_CREATE_REPLAY)
        db.close()

    def _connect(self) -> sqlite3.Connection:
        # Closed by close(), from whichever thread shuts the service down.
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
        return db

    def add(self, service_id: str, feedback: Feedback) -> int:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:  # one transaction
                before = db.total_changes
                db.executemany(
                    _INSERT.format(marks=", ".join("?" * 7)), feedback_rows(service_id, feedback)
                )
                return db.total_changes - before
        finally:
            db.close()


class PostgresStore(_ReplayTable):
    mark = "%s"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        require_extra("service", "psycopg")
        try:
            with self._connect() as db:
                db.execute(_CREATE)
                db.execute(_CREATE_REPLAY)
        except Exception as error:  # the URL may hold a password: name only the failure
            raise InputError(
                f"cannot open the PostgreSQL feedback database ({error.__class__.__name__})"
            ) from None

    def _connect(self) -> Any:
        import psycopg  # only when a PostgreSQL URL is configured

        return psycopg.connect(self.url, connect_timeout=10, autocommit=True)

    def add(self, service_id: str, feedback: Feedback) -> int:
        statement = _INSERT.format(marks=", ".join(["%s"] * 7))
        added = 0
        with self._connect() as db, db.transaction(), db.cursor() as cursor:
            for row in feedback_rows(service_id, feedback):
                cursor.execute(statement, row)
                added += cursor.rowcount
        return added
