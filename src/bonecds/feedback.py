"""Card feedback storage for the CDS Hooks service: embedded SQLite, or PostgreSQL by URL.

Both take the same table and the same statement (SQLite has understood `ON CONFLICT ... DO
NOTHING` since 3.24): an item is keyed by a digest of the service and the item, so feedback sent
twice for the same card is stored once (CDS Hooks checklist F-3). A connection is opened per
request, which keeps the store safe under the service's thread pool without shared state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path
from typing import Any, Protocol

from bonecds.cds_hooks import Feedback
from bonecds.errors import InputError

_COLUMNS = "item_hash, service_id, card, outcome, outcome_timestamp, item, received_at"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS feedback (item_hash TEXT PRIMARY KEY, service_id TEXT NOT NULL,"
    " card TEXT NOT NULL, outcome TEXT NOT NULL, outcome_timestamp TEXT NOT NULL,"
    " item TEXT NOT NULL, received_at TEXT NOT NULL)"
)
_INSERT = f"INSERT INTO feedback ({_COLUMNS}) VALUES ({{marks}}) ON CONFLICT (item_hash) DO NOTHING"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

Row = tuple[str, str, str, str, str, str, str]


class FeedbackStore(Protocol):
    def add(self, service_id: str, feedback: Feedback) -> int:
        """Store each item; return how many were new."""
        ...


def open_store(target: str | Path) -> FeedbackStore:
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


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.execute(_CREATE)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def add(self, service_id: str, feedback: Feedback) -> int:
        with self._connect() as db:
            before = db.total_changes
            db.executemany(
                _INSERT.format(marks=", ".join("?" * 7)), feedback_rows(service_id, feedback)
            )
            return db.total_changes - before


class PostgresStore:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            with self._connect() as db:
                db.execute(_CREATE)
        except Exception as error:  # the URL may hold a password: name only the failure
            raise InputError(
                f"cannot open the PostgreSQL feedback database ({error.__class__.__name__})"
            ) from None

    def _connect(self) -> Any:
        import psycopg  # only when a PostgreSQL URL is configured

        return psycopg.connect(self.url, connect_timeout=10)

    def add(self, service_id: str, feedback: Feedback) -> int:
        statement = _INSERT.format(marks=", ".join(["%s"] * 7))
        added = 0
        with self._connect() as db, db.cursor() as cursor:
            for row in feedback_rows(service_id, feedback):
                cursor.execute(statement, row)
                added += cursor.rowcount
        return added
