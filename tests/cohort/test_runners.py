"""The Dask runner on a small local cluster: same bytes as the local runner, one Host per worker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bonecds import Knowledge
from bonecds.cli.app import app
from bonecds.cohort.run import BatchOptions, run_batch
from bonecds.cohort.runners import dask_runner
from bonecds.testing.synthetic import synthetic_cohort
from tests.conftest import AS_OF, RULES

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two single-threaded worker processes, as `--engine dask` starts by default."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dask") / "cohort.ndjson"
    lines = [json.dumps(profile) for profile in synthetic_cohort(150, seed=9)]
    lines.insert(70, '{"ecog": "two"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _engine_state() -> list[str]:
    from bonecds.engine import durable as engine

    return sorted(engine._registered)


def test_dask_output_is_byte_identical_to_local(
    cluster: Any, cohort: Path, knowledge: Knowledge, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local.ndjson", tmp_path / "dask.ndjson"
    expected = run_batch(BatchOptions(cohort, local, as_of=AS_OF, chunk_size=20), knowledge)

    def on_cluster(k: Knowledge, as_of: Any) -> Any:
        return dask_runner(k, as_of, cluster.scheduler_address, 2)

    options = BatchOptions(cohort, remote, as_of=AS_OF, chunk_size=20)
    summary = run_batch(options, knowledge, runner=on_cluster)
    assert summary == expected
    assert summary.bad_records == 1
    assert remote.read_bytes() == local.read_bytes()
    assert Path(f"{remote}.errors.jsonl").read_bytes() == Path(f"{local}.errors.jsonl").read_bytes()
    # Both workers did work, and each registered the one ruleset exactly once.
    with distributed.Client(cluster) as client:
        states = client.run(_engine_state)
    assert len(states) == 2
    assert all(state == [knowledge.ruleset_name] for state in states.values())


def test_cli_engine_dask_with_a_scheduler(cluster: Any, cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.ndjson"
    args = ["batch", str(cohort), "--out", str(out), "--as-of", AS_OF.isoformat()]
    args += ["--engine", "dask", "--scheduler", cluster.scheduler_address, "--rules", str(RULES)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("151 records: 150 reports")
    assert len(out.read_text().splitlines()) == 150
