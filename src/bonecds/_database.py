"""The service's databases (feedback, the JWT replay table, audit records): an embedded SQLite
file, or PostgreSQL by URL. One place decides which, how to connect, and how a failure to open
is reported: by its kind only, since a URL may hold a password."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bonecds._extras import require_extra
from bonecds.errors import InputError

__all__ = ["Database"]

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Database:
    """`target`: a `postgresql://` URL, else an SQLite file path."""

    target: str

    @property
    def postgres(self) -> bool:
        return self.target.startswith(_POSTGRES_SCHEMES)

    @property
    def mark(self) -> str:
        """The parameter placeholder of this database's driver."""
        return "%s" if self.postgres else "?"

    def connect(self, *, autocommit: bool = False) -> Any:
        if self.postgres:
            require_extra("service", "psycopg")
            import psycopg  # only when a PostgreSQL URL is configured

            return psycopg.connect(self.target, connect_timeout=10, autocommit=autocommit)
        # Closed by its user, from whichever thread shuts the service down.
        return sqlite3.connect(
            self.target,
            timeout=10,
            isolation_level=None if autocommit else "DEFERRED",
            check_same_thread=False,
        )

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A new connection holding one transaction: committed on success, then closed."""
        db = self.connect()
        try:
            with db:
                yield db
        finally:
            db.close()

    def create(self, what: str, *statements: str) -> None:
        """Run the CREATE statements; a failure names `what` and the error's kind only."""
        try:
            with self.transaction() as db:
                for statement in statements:
                    db.execute(statement)
        except InputError:  # already says what is wrong (a missing extra)
            raise
        except Exception as error:
            raise InputError(
                f"cannot open the {what} database ({error.__class__.__name__})"
            ) from None
