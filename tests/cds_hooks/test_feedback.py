"""Card feedback stores: SQLite, and PostgreSQL on a throwaway server started for the test."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bonecds.cds_hooks._feedback import open_store
from bonecds.cds_hooks._models import Feedback
from bonecds.errors import InputError
from tests.conftest import DATA

EXAMPLES = DATA / "fhir" / "cds-hooks-examples"


def _feedback(name: str) -> Feedback:
    return Feedback.model_validate(json.loads((EXAMPLES / name).read_text()))


def _server_binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on a Unix socket in a temporary directory, stopped afterwards. The
    server refuses to run as root, so as root it runs as the `postgres` system user."""
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL server not installed (.ci/run installs it)")
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres system user to run the server")
        prefix = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="bonecds-pg-"))
    if prefix:
        shutil.chown(home, "postgres")
    data, port = home / "data", "54329"

    def run(*command: str) -> None:
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "bonecds", "--no-sync")
    options = f"-k {home} -c listen_addresses='' -p {port} -c fsync=off"
    log = str(home / "server.log")  # the server keeps no pipe of ours open
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start")
    try:
        yield f"postgresql://bonecds@/postgres?host={home}&port={port}"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_sqlite_stores_each_item_once(tmp_path: Path) -> None:
    store = open_store(tmp_path / "feedback.sqlite3")
    assert not store.database.postgres
    accepted = _feedback("feedback-accepted.json")
    assert store.add("bonecds-patient-view", accepted) == 1
    assert store.add("bonecds-patient-view", accepted) == 0
    assert store.add("bonecds-order-sign", accepted) == 1  # another service: another item


def test_postgres_stores_each_item_once(postgres_url: str) -> None:
    import psycopg

    store = open_store(postgres_url)
    assert store.database.postgres
    accepted = _feedback("feedback-accepted.json")
    overridden = _feedback("feedback-overridden-with-reason.json")
    assert store.add("bonecds-patient-view", accepted) == 1
    assert store.add("bonecds-patient-view", accepted) == 0
    assert store.add("bonecds-patient-view", overridden) == 1
    with psycopg.connect(postgres_url) as db:
        rows = db.execute("SELECT outcome FROM feedback ORDER BY outcome").fetchall()
    assert [row[0] for row in rows] == ["accepted", "overridden"]
    assert open_store(postgres_url).add("bonecds-patient-view", accepted) == 0  # table kept


def test_postgres_remembers_each_jti_until_it_expires(postgres_url: str) -> None:
    first, second = open_store(postgres_url), open_store(postgres_url)  # two worker processes
    assert first.claim("iss", "jti-1", expires=1000.0, now=500.0)
    assert not second.claim("iss", "jti-1", expires=1100.0, now=900.0)
    assert second.claim("iss", "jti-1", expires=2000.0, now=1001.0)  # the old token is dead
    assert not first.claim("iss", "jti-1", expires=2000.0, now=1500.0)
    first.close()
    second.close()


def test_an_unreachable_postgres_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://user:secret-password@/db?host={tmp_path}&port=1"
    with pytest.raises(InputError) as raised:
        open_store(url)
    assert "cannot open the feedback database (" in str(raised.value)
    assert "secret-password" not in str(raised.value)
