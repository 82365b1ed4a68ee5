"""Cohorts: NDJSON profiles in, one report per line out, in input order, on worker processes.

Design, and why:
- Worker *processes*, never threads: durable_rules' C engine is not thread-safe (one lock
  guards it, engine/durable.py) and every call holds the GIL (docs/durable-rules-notes.md §4).
  Each worker receives the compiled knowledge once (pickled, so every worker runs exactly the
  parent's rules) and runs its own engine.
- The parent reads the input in chunks and keeps a bounded window of chunks in flight, collected
  in submission order: the output is the same bytes for any number of workers, and memory stays
  flat however long the input is.
- A bad record never stops the run: it becomes lines in the errors file naming the input line,
  the field path and the problem, never a patient value (quoted text that is not vocabulary is
  redacted, since a misplaced value could sit where a unit or key belongs).
- Resumable: after a chunk is written, the parent may record (atomically, after fsync) how many
  input lines are done, the sizes of both output files and the running counts; `--resume`
  truncates the files back to that point and carries on, so a crash loses no finished work and
  duplicates nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from bonecds._json import compact_bytes, loads
from bonecds.api import ENGINE_VERSION, Knowledge
from bonecds.cohort._types import Chunk, ChunkResult, Runner
from bonecds.cohort.output import FULL_REPORT, OutputShape, finish, prepare, stream_path
from bonecds.cohort.runners import local_runner
from bonecds.errors import BonecdsError, InputError
from bonecds.fhir.codes import as_dict
from bonecds.fhir.read import PATIENT_REFERENCE

__all__ = [
    "BatchInterrupted",
    "BatchOptions",
    "RunnerFactory",
    "Summary",
    "count_records",
    "read_chunks",
    "run_batch",
]

# About 70 ms of work a chunk: the last chunks of a run keep a core busy while the other has
# none left, so smaller chunks end a run sooner (200 left 2 workers at 1.80-1.91x of one).
CHUNK_SIZE = 100
CHECKPOINT_SECONDS = 2.0


@dataclass(frozen=True)
class BatchOptions:
    """One batch run. `errors` defaults to OUTPUT.errors.jsonl beside the output."""

    input: Path
    output: Path
    as_of: dt.date | None = None
    errors: Path | None = None
    workers: int = 1
    resume: bool = False
    chunk_size: int = CHUNK_SIZE
    shape: OutputShape = FULL_REPORT

    @property
    def stream_path(self) -> Path:
        return stream_path(self.shape, self.output)

    @property
    def errors_path(self) -> Path:
        return self.errors or self.output.with_name(self.output.name + ".errors.jsonl")

    @property
    def checkpoint_path(self) -> Path:
        return self.output.with_name(self.output.name + ".checkpoint.json")


@dataclass
class Summary:
    """What a run did: counts only, never patient values."""

    records: int = 0
    reports: int = 0
    bad_records: int = 0
    by_top_option: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)

    def add(self, result: ChunkResult) -> None:
        self.records += result.records
        self.reports += result.reports
        self.bad_records += result.bad_records
        self.by_top_option = dict(Counter(self.by_top_option) + Counter(result.top_options))
        self.by_error = dict(Counter(self.by_error) + Counter(result.error_kinds))


# ---------------------------------------------------------------- input, output, checkpoint


def read_chunks(path: Path, start_after: int, size: int, as_of: dt.date) -> Iterator[Chunk]:
    """Records after line `start_after`, in chunks of `size`: the non-blank lines of an NDJSON
    file, or one FHIR Bundle per patient of a Bulk Data directory."""
    chunk: Chunk = []
    records = read_fhir_directory(path, as_of) if path.is_dir() else _lines(path)
    for number, record in records:
        if number > start_after:
            chunk.append((number, record))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line


def count_records(path: Path) -> int:
    """How many records the input holds, for the progress bar's total (not parsed)."""
    if path.is_dir():
        return sum(1 for file in _patient_files(path) for _ in _lines(file))
    return sum(1 for _ in _lines(path))


def read_fhir_directory(directory: Path, as_of: dt.date) -> Iterator[tuple[int, bytes]]:
    """FHIR Bulk Data export (`<Type>.ndjson`, one resource per line) -> one Bundle per patient,
    numbered by the line of its Patient resource (Patient files read in name order).

    A resource line that cannot be read stops the run before any evaluation: it cannot be
    given to its patient, and evaluating that patient without it (a missing calcium, say)
    could change the advice silently. Resources of patients not in the export are ignored;
    Medications are shared and go to every patient whose resources reference them.
    """
    # Each resource kept as its line (the Bundle is written from the lines as they are) with
    # the Medication it references; the parsed resource is let go at once (kept, the parsed
    # export made the garbage collector's passes ever longer).
    by_patient: dict[str, list[tuple[str, bytes]]] = {}
    shared: dict[str, bytes] = {}
    patient_files = _patient_files(directory)
    for file in sorted(directory.glob("*.ndjson")):
        if file in patient_files:
            continue
        for number, line in _lines(file):
            resource = _resource(line, f"{file.name}:{number}")
            owner = _patient_of(resource)
            if owner is None:
                shared[f"{resource.get('resourceType')}/{resource.get('id')}"] = line
            else:
                medication = str(as_dict(resource.get("medicationReference")).get("reference"))
                by_patient.setdefault(owner, []).append((medication, line))
    offset = 0
    for file in patient_files:
        number = 0
        for number, line in _lines(file):
            yield offset + number, _bundle(line, by_patient, shared, as_of)
        offset += number


def _patient_files(directory: Path) -> list[Path]:
    files = [f for f in sorted(directory.glob("*.ndjson")) if f.name.split(".")[0] == "Patient"]
    if not files:
        raise InputError(f"{directory}: no Patient.ndjson (a FHIR Bulk Data export directory)")
    return files


def _resource(line: bytes, where: str) -> dict[str, Any]:
    try:
        resource = loads(line)
    except (ValueError, UnicodeDecodeError):
        resource = None
    if not isinstance(resource, dict):
        raise InputError(f"{where}: not a FHIR resource; fix or remove the line")
    return resource


def _patient_of(resource: dict[str, Any]) -> str | None:
    """The Patient id a resource's subject names: `Patient/<id>` (relative, absolute or
    versioned) or `urn:uuid:<id>` as Synthea writes it."""
    holder = resource.get("subject") or resource.get("patient")
    reference = holder.get("reference") if isinstance(holder, dict) else None
    if not isinstance(reference, str):
        return None
    if reference.startswith("urn:uuid:"):
        return reference.removeprefix("urn:uuid:")
    if reference.startswith("Patient/") and reference.count("/") == 1:
        return reference[8:]  # the common form, without the regular expression
    match = PATIENT_REFERENCE.search(reference)
    return match.group(1) if match else None


def _bundle(
    line: bytes,
    by_patient: dict[str, list[tuple[str, bytes]]],
    shared: dict[str, bytes],
    as_of: dt.date,
) -> bytes:
    try:
        patient = loads(line)
    except (ValueError, UnicodeDecodeError):
        return line  # the worker reports it as malformed, with its line number
    if not isinstance(patient, dict):
        return line
    own = by_patient.get(str(patient.get("id")), [])
    wanted = {medication for medication, _ in own}
    medications = [shared[ref] for ref in sorted(wanted & shared.keys())]
    # The Bundle's timestamp is the batch date: ages and intervals are taken on that day. The
    # Patient's urn:uuid fullUrl lets `urn:uuid:<id>` subjects resolve to it. The resources
    # are the export's lines as read (each a JSON object), not parsed and written again.
    head = {"resourceType": "Bundle", "type": "collection", "timestamp": as_of.isoformat()}
    url = compact_bytes(f"urn:uuid:{patient.get('id')}")
    entries = [b'{"fullUrl":' + url + b',"resource":' + line.strip() + b"}"]
    entries += [
        b'{"resource":' + raw.strip() + b"}" for raw in (*(r for _, r in own), *medications)
    ]
    return compact_bytes(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def _identity(path: Path) -> tuple[int, int]:
    """Size and modification time of the input (of every NDJSON file of a directory)."""
    files = sorted(path.glob("*.ndjson")) if path.is_dir() else [path]
    stats = [file.stat() for file in files]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


@dataclass
class _Checkpoint:
    input: str
    input_size: int
    input_mtime_ns: int
    as_of: str
    ruleset: str
    knowledge_version: str
    engine_version: str
    format: str = "json"  # what the output holds: a resumed run must write the same
    language: str = "en"
    lines_done: int = 0
    output_bytes: int = 0
    errors_bytes: int = 0
    complete: bool = False
    summary: dict[str, Any] = field(default_factory=dict)


def _new_checkpoint(options: BatchOptions, knowledge: Knowledge, as_of: dt.date) -> _Checkpoint:
    size, mtime_ns = _identity(options.input)
    return _Checkpoint(
        input=str(options.input.resolve()),
        input_size=size,
        input_mtime_ns=mtime_ns,
        as_of=as_of.isoformat(),
        ruleset=knowledge.ruleset_name,
        knowledge_version=knowledge.base.version,
        engine_version=ENGINE_VERSION,
        format=options.shape.format,
        language=options.shape.language,
    )


# What makes a checkpoint this run's: the same input, rules and output (the date is checked
# only when --as-of is given again).
_RUN_IDENTITY = (
    "input",
    "input_size",
    "input_mtime_ns",
    "ruleset",
    "knowledge_version",
    "format",
    "language",
)


def _load_checkpoint(options: BatchOptions, fresh: _Checkpoint, as_of_given: bool) -> _Checkpoint:
    """The saved checkpoint, if it belongs to this very run (same input, date, rules and
    output)."""
    path = options.checkpoint_path
    try:
        saved = _Checkpoint(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputError(f"nothing to resume: {path} does not exist") from None
    except (ValueError, TypeError):
        raise InputError(f"{path} is not a bonecds batch checkpoint") from None
    mismatched = [name for name in _RUN_IDENTITY if getattr(saved, name) != getattr(fresh, name)]
    if as_of_given and saved.as_of != fresh.as_of:
        mismatched.append("as_of")
    if saved.lines_done and not _has_bytes(options, saved):
        mismatched.append("the output files (missing or shorter than recorded)")
    if mismatched:
        raise InputError(
            f"cannot resume: {', '.join(mismatched)} changed since the interrupted run; "
            "run again without --resume"
        )
    return saved


def _has_bytes(options: BatchOptions, saved: _Checkpoint) -> bool:
    sizes = ((options.stream_path, saved.output_bytes), (options.errors_path, saved.errors_bytes))
    return all(path.is_file() and path.stat().st_size >= size for path, size in sizes)


def _open(path: Path, mode: str) -> IO[bytes]:
    try:
        return path.open(mode)
    except OSError as error:
        raise InputError(f"cannot write {path} ({error.strerror or 'error'})") from None


def _save_checkpoint(path: Path, checkpoint: _Checkpoint) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(asdict(checkpoint), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)  # atomic: a crash leaves the old or the new checkpoint


class _Writer:
    """Appends chunk results to the output and errors files and keeps the checkpoint."""

    def __init__(self, options: BatchOptions, checkpoint: _Checkpoint, stack: ExitStack) -> None:
        self.options, self.checkpoint = options, checkpoint
        self.summary = Summary(**checkpoint.summary)
        mode = "r+b" if checkpoint.lines_done else "wb"
        self.out = stack.enter_context(_open(options.stream_path, mode))
        self.err = stack.enter_context(_open(options.errors_path, mode))
        # Anything written after the last checkpoint is discarded: it will be written again.
        self.out.truncate(checkpoint.output_bytes)
        self.err.truncate(checkpoint.errors_bytes)
        self.out.seek(checkpoint.output_bytes)
        self.err.seek(checkpoint.errors_bytes)
        if not checkpoint.output_bytes:
            self.out.write(options.shape.header())
        self._saved_at = time.monotonic()

    def write(self, result: ChunkResult) -> None:
        self.out.write(result.report_lines)
        self.err.write(result.errors)
        self.summary.add(result)
        self.checkpoint.lines_done = result.last_line
        if time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS:
            self.save()

    def save(self, complete: bool = False) -> None:
        for stream in (self.out, self.err):
            stream.flush()
            os.fsync(stream.fileno())  # the checkpoint never claims bytes not on disk
        self.checkpoint.output_bytes = self.out.tell()
        self.checkpoint.errors_bytes = self.err.tell()
        self.checkpoint.summary = asdict(self.summary)
        self.checkpoint.complete = complete
        _save_checkpoint(self.options.checkpoint_path, self.checkpoint)
        self._saved_at = time.monotonic()


# ---------------------------------------------------------------- the run


class BatchInterrupted(BonecdsError):
    """Ctrl-C: the work written so far is checkpointed; `--resume` continues from there."""


RunnerFactory = Callable[[Knowledge, dt.date], AbstractContextManager[Runner]]


def run_batch(
    options: BatchOptions,
    knowledge: Knowledge,
    *,
    runner: RunnerFactory | None = None,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Evaluate every record of `options.input`; return the summary of the whole run."""
    if not options.input.exists():
        raise InputError(f"{options.input}: no such input file")
    prepare(options.shape, options.output)
    as_of = options.as_of or dt.date.today()
    checkpoint = _new_checkpoint(options, knowledge, as_of)
    if options.resume:
        checkpoint = _load_checkpoint(options, checkpoint, options.as_of is not None)
        as_of = dt.date.fromisoformat(checkpoint.as_of)  # a resumed run keeps its date
    with ExitStack() as stack:
        writer = _Writer(options, checkpoint, stack)
        if checkpoint.complete:
            return writer.summary
        factory = runner or _default_runner(options.workers, options.shape)
        active = stack.enter_context(factory(knowledge, as_of))
        chunks = read_chunks(options.input, checkpoint.lines_done, options.chunk_size, as_of)
        if progress is not None:
            progress(writer.summary.records)
        try:
            for result in active.map_ordered(chunks):
                writer.write(result)
                if progress is not None:
                    progress(writer.summary.records)
        except KeyboardInterrupt:
            writer.save()
            raise BatchInterrupted(f"interrupted after line {checkpoint.lines_done}") from None
        writer.save(complete=True)
    finish(options.shape, options.output)
    return writer.summary


def _default_runner(workers: int, shape: OutputShape) -> RunnerFactory:
    return lambda knowledge, as_of: local_runner(knowledge, as_of, workers, shape)
