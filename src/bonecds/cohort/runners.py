"""What a batch worker does with a chunk of records, and where: this process, a local process
pool, or a Dask cluster.

`evaluate_chunk` is the unit of work: it turns every record into a one-line canonical report
or into error lines (line, field path, message; never a patient value), and never raises for a
bad record. Every runner takes chunks in order and gives their results back in the same order
(a bounded window of chunks in flight), so `batch.run_batch` writes the same bytes whichever
runner and however many workers it uses. Every runner keeps one loaded knowledge base per
worker process, hence one durable_rules engine per process: threads never evaluate, since the
engine's C calls are not thread-safe (engine/durable.py holds one lock around them) and every
call holds the GIL (docs/durable-rules-notes.md §4).

Why Dask rather than Spark (README, "Cohorts"): bonecds is a
pure-Python library whose unit of work is a Python function over a few hundred JSON lines.
Dask runs that function as is, on a `LocalCluster` on one machine or a scheduler shared by many,
with `pip install dask[distributed]` and no JVM; Spark would add a JVM, a Python<->JVM
serialisation hop per record (PySpark workers are Python processes fed by the JVM), and a cluster
manager, for an engine-bound workload that needs none of Spark's SQL or shuffle machinery.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import multiprocessing
import os
import pickle
import re
import signal
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from bonecds.api import Knowledge, evaluate, shared_report_data
from bonecds.cohort._types import Chunk, ChunkResult, Runner
from bonecds.cohort.output import FULL_REPORT, OutputShape, report_line
from bonecds.errors import InputError, InternalError, Problem, ProfileError
from bonecds.fhir.read import patient_from
from bonecds.profile.fields import FIELDS
from bonecds.profile.model import ANALYTE_UNITS, loads_json
from bonecds.report.model import mapping_note

__all__ = ["dask_runner", "default_workers", "local_runner"]

WINDOW_PER_WORKER = 4  # chunks in flight per worker: enough to keep every worker busy
_SOURCE = "record"


def evaluate_chunk(
    chunk: Chunk, knowledge: Knowledge, as_of: dt.date, shape: OutputShape = FULL_REPORT
) -> ChunkResult:
    """Evaluate every record of a chunk; a bad record becomes error lines, never an exception."""
    reports, errors, tops, kinds, bad = [], [], [], [], 0
    links = _links(knowledge) if shape.format == "html" else {}
    for line_number, raw in chunk:
        outcome = _evaluate_record(raw, knowledge, as_of, shape)
        if isinstance(outcome, dict):
            reports.append(shape.encode(line_number, outcome, links))
            tops.append(outcome["ranked"][0]["id"] if outcome["ranked"] else "(none ranked)")
            continue
        bad += 1
        for path, message in outcome:
            errors.append(json.dumps({"line": line_number, "field": path, "message": message}))
            kinds.append(f"{path}: {message}")
    last = chunk[-1][0] if chunk else 0
    lines = b"".join(reports)
    errors_text = "".join(f"{line}\n" for line in errors).encode()
    return ChunkResult(last, len(chunk), len(reports), lines, errors_text, tops, kinds, bad)


def _evaluate_record(
    raw: bytes, knowledge: Knowledge, as_of: dt.date, shape: OutputShape = FULL_REPORT
) -> dict[str, Any] | list[tuple[str, str]]:
    """The report's data in the shape's language (with the explanations an HTML page shows),
    or the problems as (field path, message) pairs."""
    language = shape.language
    try:
        mapping = patient_from(_loads(raw), _SOURCE)
        # Serialised at once and never changed: the shared data needs no copy (api.py).
        report = (
            evaluate(mapping.profile, knowledge, as_of, explain=True, language=language).to_data()
            if shape.format == "html"
            else shared_report_data(mapping.profile, knowledge, as_of, language=language)
        )
        if mapping.notes:  # a FHIR record's: what it held that was not used, and why
            report["notes"] = [*report["notes"], *map(mapping_note, mapping.texts(language))]
    except UnicodeDecodeError:
        return [("<record>", "not UTF-8 text")]
    except json.JSONDecodeError as error:
        return [("<record>", f"malformed JSON: {error.msg} (column {error.colno})")]
    except ProfileError as error:
        return [_problem(problem) for problem in error.items]
    except InternalError as error:  # never carries patient values (errors.py)
        return [("<engine>", str(error))]
    except Exception as error:  # a bug: keep going, name only its class
        return [("<internal>", f"internal error ({error.__class__.__name__})")]
    return report


_report_line = report_line  # the benchmarks' name for it


def _loads(raw: bytes) -> Any:
    """Strict JSON as for any profile: a repeated key is refused, never silently the last."""
    return loads_json(raw, _SOURCE)


def _links(knowledge: Knowledge) -> dict[str, str]:
    return {key: s.url for key, s in knowledge.base.sources.items() if s.url}


def _problem(problem: Problem) -> tuple[str, str]:
    """(field path, redacted message); a problem of the record as a whole is `<record>`'s."""
    if problem.field:
        return problem.field, _redact(problem.message)
    return "<record>", _redact(str(problem).removeprefix(f"{_SOURCE}: "))


def _vocabulary() -> frozenset[str]:
    words = {unit for units in ANALYTE_UNITS.values() for unit in units}
    for spec in FIELDS.values():
        words.update(spec.path.split("."))
        words.update(spec.input_path.split("."))
        words.update(spec.values)
    return frozenset(words)


_VOCABULARY = _vocabulary()


def _redact(message: str) -> str:
    """Keep quoted field names, units and coded values; hide any other quoted text."""
    return re.sub(r"(unit )?'([^']*)'", _shown_or_redacted, message)


# A unit is not a patient value: shown when it looks like one (letters, not a bare number).
_UNIT_LIKE = re.compile(r"(?=.*[A-Za-zµμ%])[A-Za-zµμ%/0-9.\[\]{}_^*-]{1,16}")


def _shown_or_redacted(match: re.Match[str]) -> str:
    quoted = match.group(2)
    if quoted in _VOCABULARY or (match.group(1) and _UNIT_LIKE.fullmatch(quoted)):
        return match.group(0)
    return f"{match.group(1) or ''}'<redacted>'"


class InlineRunner:
    """One worker: evaluate in this process (no pickling, no start-up)."""

    def __init__(
        self, knowledge: Knowledge, as_of: dt.date, shape: OutputShape = FULL_REPORT
    ) -> None:
        self.knowledge, self.as_of, self.shape = knowledge, as_of, shape

    def map_ordered(self, chunks: Iterable[Chunk]) -> Iterator[ChunkResult]:
        for chunk in chunks:
            yield evaluate_chunk(chunk, self.knowledge, self.as_of, self.shape)


_worker_state: dict[str, Any] = {}


def _init_worker(knowledge: Knowledge | str, as_of: dt.date, shape: OutputShape) -> None:
    """A worker's state: the parent's knowledge, inherited (forked) or unpickled from a file."""
    # Ctrl-C goes to the parent only, which checkpoints where the run stopped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if isinstance(knowledge, str):
        with open(knowledge, "rb") as stream:
            knowledge = pickle.load(stream)  # the parent's own object
    _worker_state["knowledge"] = knowledge
    _worker_state["as_of"] = as_of
    _worker_state["shape"] = shape


def _worker_chunk(chunk: Chunk) -> ChunkResult:
    state = _worker_state
    return evaluate_chunk(chunk, state["knowledge"], state["as_of"], state["shape"])


class PoolRunner:
    """N worker processes, forked where that is safe, else spawned.

    Forked (Linux, and this process runs no other thread): a worker starts as a copy of this
    process, with bonecds imported and the knowledge loaded, in a few milliseconds. A
    spawned worker starts a fresh interpreter, imports bonecds and unpickles the knowledge:
    about 0.25 s of a core each (RESULTS.md). Forking a process that runs threads (a progress
    bar, a Dask client) could copy a lock another thread holds, and the child would wait for
    ever on it: such a process spawns, as every other OS does. The engine runs no thread of
    its own (engine/durable.py uses no durable_rules Host)."""

    def __init__(
        self, knowledge: Knowledge, as_of: dt.date, workers: int, shape: OutputShape
    ) -> None:
        self.workers = workers
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        if fork_is_safe():
            # Frozen, the parent's objects are left out of the workers' garbage collections,
            # which would otherwise write to (and so copy) every page they sit on.
            gc.freeze()
            try:
                forking = multiprocessing.get_context("fork")
                self._pool = forking.Pool(workers, _init_worker, (knowledge, as_of, shape))
            finally:
                gc.unfreeze()
            return
        # The knowledge travels pickled, once per worker: every worker runs exactly the
        # parent's rules, and none pays to load and compile the rules directory again. It
        # goes through a file: as an initializer argument its 0.4 MB were written down each
        # new worker's pipe before the next could start, which waited while the first one
        # imported bonecds (the pool took 0.45 s to start instead of 0.25 s).
        self._directory = tempfile.TemporaryDirectory(prefix="bonecds-batch-")
        try:
            path = os.path.join(self._directory.name, "knowledge.pickle")
            with open(path, "wb") as stream:
                pickle.dump(knowledge, stream)
            spawning = multiprocessing.get_context("spawn")
            self._pool = spawning.Pool(workers, _init_worker, (path, as_of, shape))
        except BaseException:
            self._directory.cleanup()
            raise

    def map_ordered(self, chunks: Iterable[Chunk]) -> Iterator[ChunkResult]:
        window: deque[Any] = deque()
        for chunk in chunks:
            window.append(self._pool.apply_async(_worker_chunk, (chunk,)))
            if len(window) >= WINDOW_PER_WORKER * self.workers:
                yield window.popleft().get()
        while window:
            yield window.popleft().get()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()
        if self._directory is not None:
            self._directory.cleanup()


def fork_is_safe() -> bool:
    """Whether a worker may be forked from this process: on Linux, with no other thread."""
    return sys.platform == "linux" and threading.active_count() == 1


@contextmanager
def local_runner(
    knowledge: Knowledge, as_of: dt.date, workers: int, shape: OutputShape = FULL_REPORT
) -> Iterator[Runner]:
    """This process for one worker, a process pool for more."""
    if workers <= 1:
        yield InlineRunner(knowledge, as_of, shape)
        return
    pool = PoolRunner(knowledge, as_of, workers, shape)
    try:
        yield pool
    finally:
        pool.close()


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class DaskRunner:
    """Chunks as Dask tasks; the knowledge is scattered once to every worker and kept there."""

    def __init__(
        self, client: Any, knowledge: Knowledge, as_of: dt.date, shape: OutputShape
    ) -> None:
        self.client, self.as_of, self.shape = client, as_of, shape
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.window = WINDOW_PER_WORKER * workers
        # broadcast: each worker process deserialises it once and keeps it for every task.
        self.knowledge = client.scatter(knowledge, broadcast=True, hash=False)

    def map_ordered(self, chunks: Iterable[Chunk]) -> Iterator[ChunkResult]:
        window: deque[Any] = deque()
        for chunk in chunks:
            window.append(
                self.client.submit(
                    evaluate_chunk, chunk, self.knowledge, self.as_of, self.shape, pure=False
                )
            )
            if len(window) >= self.window:
                yield _result(window.popleft())
        while window:
            yield _result(window.popleft())


def _result(future: Any) -> ChunkResult:
    try:
        result: ChunkResult = future.result()
    except Exception as error:  # a lost worker, not a bad record (those never raise)
        raise InternalError(f"a Dask task failed ({error.__class__.__name__})") from None
    return result


@contextmanager
def dask_runner(
    knowledge: Knowledge,
    as_of: dt.date,
    scheduler: str | None,
    workers: int,
    shape: OutputShape = FULL_REPORT,
) -> Iterator[Runner]:
    """A Dask runner on `scheduler` (host:port), or on a LocalCluster of `workers` processes
    with one thread each (threads would share, and serialise on, one engine lock)."""
    from dask.distributed import Client, LocalCluster  # only batch --engine dask pays for it

    with ExitStack() as stack:
        if scheduler:
            client = stack.enter_context(_connect(Client, scheduler))
        else:
            cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            stack.enter_context(cluster)
            client = stack.enter_context(Client(cluster))  # type: ignore[no-untyped-call]
        yield DaskRunner(client, knowledge, as_of, shape)


def _connect(client_class: Any, scheduler: str) -> Any:
    try:
        return client_class(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as error:
        message = f"cannot reach the Dask scheduler at {scheduler} ({error.__class__.__name__})"
        raise InputError(message) from None
