"""What flows between the batch driver (run.py) and the runners (runners.py): chunks of input
lines out, evaluated chunks back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Chunk", "ChunkResult", "Runner"]

Chunk = list[tuple[int, bytes]]  # (1-based input line number, the line's bytes)


@dataclass(frozen=True)
class ChunkResult:
    """The evaluated chunk: report lines and error lines as the bytes to append (UTF-8, one
    line each: no re-encoding in the parent, which writes for every worker), plus counts."""

    last_line: int
    records: int
    reports: int
    report_lines: bytes
    errors: bytes
    top_options: list[str]
    error_kinds: list[str]
    bad_records: int


class Runner(Protocol):
    """Evaluates chunks somewhere (here, a process pool, a Dask cluster) and yields the results
    in the order the chunks were given."""

    def map_ordered(self, chunks: Iterable[Chunk]) -> Iterator[ChunkResult]: ...
