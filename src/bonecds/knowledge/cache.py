"""A per-user cache of compiled knowledge bases, so a cold start does not re-read the rules.

Reading the rule YAML with positions and checking it is most of a `bonecds evaluate` cold start
(about 0.7 s of 1.4 s measured here); the compiled result unpickles in milliseconds. An entry is
keyed by a digest of everything the result depends on: every file under the rules directory
(path and bytes), that directory's location, bonecds' own source files and the Python version
(an entry is plain Python data: no durable_rules object is kept). Any change gives a new key,
so an entry is never stale; it holds exactly what loading would have built, so reports do not
change.

The cache lives in `$BONECDS_CACHE_DIR`, else `$XDG_CACHE_HOME/bonecds`, else `~/.cache/bonecds`
(created owner-only; entries are pickles, so only entries the user owns and no one else can
write are read).
`BONECDS_CACHE_DIR=off` disables it. A cache that cannot be read or written is skipped silently:
it only saves time.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["KEEP_ENTRIES", "cached"]

T = TypeVar("T")
KEEP_ENTRIES = 16  # older entries (earlier versions of the rules) are pruned beyond this
_SOURCE = Path(__file__).resolve().parents[1]  # the whole package: its code shapes the entry


def cache_dir() -> Path | None:
    configured = os.environ.get("BONECDS_CACHE_DIR")
    if configured:
        return None if configured == "off" else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bonecds"


def cached(directory: Path, build: Callable[[Path], T]) -> T:
    """`build(directory)`, or the entry an identical earlier build left in the cache."""
    where = cache_dir()
    key = _digest(directory) if where is not None else None
    if where is None or key is None:
        return build(directory)
    entry = where / f"knowledge-{key}.pickle"
    try:
        if _trusted(entry):
            return pickle.loads(entry.read_bytes())  # type: ignore[no-any-return]
    except Exception:  # absent, unreadable or corrupt: build it again
        pass
    result = build(directory)
    if _digest(directory) == key:  # not edited while it was being read
        _store(where, entry, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return result


def _trusted(entry: Path) -> bool:
    """Unpickling runs code: read only entries this user owns and nobody else can write."""
    status = entry.stat()
    return status.st_uid == os.getuid() and not status.st_mode & 0o022


def _digest(directory: Path) -> str | None:
    """The entry's key; None when a file cannot be read (the loader then says which)."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{directory.resolve()}".encode())
    try:
        for root, files in ((directory, sorted(directory.rglob("*"))), (_SOURCE, _sources())):
            for path in files:
                if path.is_file():
                    digest.update(str(path.relative_to(root)).encode() + b"\0")
                    digest.update(hashlib.sha256(path.read_bytes()).digest())
    except OSError:
        return None
    return digest.hexdigest()[:32]


def _sources() -> list[Path]:
    return sorted(_SOURCE.rglob("*.py"))


def _store(where: Path, entry: Path, blob: bytes) -> None:
    """Write atomically (a reader never sees half an entry), then prune old entries."""
    temporary = None
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=where, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            stream.write(blob)
        os.replace(temporary, entry)
        entries = sorted(where.glob("knowledge-*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-KEEP_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError:  # a read-only home or a full disk: run without the cache
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
