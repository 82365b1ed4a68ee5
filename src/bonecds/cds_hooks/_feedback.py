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
import threading
from pathlib import Path
from typing import Any

from bonecds._database import Database
from bonecds.cds_hooks._models import Feedback

__all__ = ["ServiceStore", "open_store"]

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

Row = tuple[str, str, str, str, str, str, str]


class ServiceStore:
    """Feedback and the replay table in one database (_database.py). Feedback opens a
    connection per request; the replay check keeps one autocommit connection per thread."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._local = threading.local()
        self._opened: list[Any] = []
        self._lock = threading.Lock()
        self._purged_at = 0.0
        if not database.postgres:  # worker processes write at once; readers never wait
            db = database.connect(autocommit=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.close()
        database.create("feedback", _CREATE, _CREATE_REPLAY)

    def add(self, service_id: str, feedback: Feedback) -> int:
        """Store each item once; the number of items that were new."""
        statement = _INSERT.format(marks=", ".join([self.database.mark] * 7))
        with self.database.transaction() as db:
            rows = feedback_rows(service_id, feedback)
            return sum(db.execute(statement, row).rowcount for row in rows)

    def claim(self, iss: str, jti: str, expires: float, now: float) -> bool:
        """True when this `jti` is new, or its earlier token has expired."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._lock:
                self._opened.append(db)
        mark = self.database.mark
        claimed = db.execute(_CLAIM.format(m=mark), (iss, jti, expires, now)).rowcount == 1
        if now - self._purged_at > _PURGE_EVERY_S:  # expired rows only cost disk: purge rarely
            self._purged_at = now
            db.execute(_PURGE.format(m=mark), (now,))
        return bool(claimed)

    def _connect(self) -> Any:
        db = self.database.connect(autocommit=True)
        if not self.database.postgres:
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
        return db

    def close(self) -> None:
        """Close every thread's connection (at shutdown)."""
        with self._lock:
            for db in self._opened:
                db.close()
            self._opened.clear()
        self._local = threading.local()


def open_store(target: str | Path) -> ServiceStore:
    """The store at a `postgresql://` URL, else in an SQLite file at that path."""
    return ServiceStore(Database(str(target)))


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
