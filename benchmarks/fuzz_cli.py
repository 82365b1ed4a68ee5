"""Fuzz target: malformed files through `bonecds evaluate`, each in its own process.

A crash is an exit code other than 0 or 2, a traceback on stderr, output on stdout from a run
that failed, or more than one line on stderr for refused input; hung is a run over
TIMEOUT_SECONDS. Files are made from seeded templates (deep nesting, control characters, other
encodings, YAML tags and aliases, duplicate keys, non-finite and huge numbers, odd keys, size).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.profile_gen import invalid_profile, profile_text, valid_profile

NAME = "cli"
DEFAULT_COUNT = 200
TIMEOUT_SECONDS = 60
WORKERS = 2


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice([70, 999, 1500, 20_000])
    if rng.random() < 0.5:
        return ("[" * depth + "]" * depth).encode()
    return ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, min(depth, 3000)))).encode()


def _laughs(rng: random.Random) -> bytes:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, rng.randint(3, 9)):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines).encode()


def _control(rng: random.Random) -> bytes:
    char = chr(rng.choice([0, 1, 7, 8, 11, 12, 27, 127, 0x85, 0x2028, 0xFEFF]))
    key = rng.choice(["ecog", f"x{char}y", f"neuro{char}"])
    return f"{key}: 1{char}\n".encode(errors="surrogatepass")


def _encoding(rng: random.Random) -> bytes:
    text = profile_text(rng, valid_profile(rng))
    return text.encode(
        rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]), "replace"
    )


def _tagged(rng: random.Random) -> bytes:
    tag = rng.choice(["!custom", "!!python/object:os.system", "!!binary", "!!set", "!!timestamp"])
    return f"ecog: {tag} 1\nneuro: {tag} {{}}\n".encode()


def _duplicate(rng: random.Random) -> bytes:
    key = rng.choice(["neuro", "labs", "ecog"])
    return f'{{"{key}": {{"cord_compression": true}}, "{key}": {{}}}}'.encode()


def _numbers(rng: random.Random) -> bytes:
    number = rng.choice(["1e999", "-1e999", "NaN", "Infinity", "9" * 400, "9" * 5000, "1e16"])
    field = rng.choice(['"weight_kg": {}', '"labs": {{"scr": {{"value": {}, "unit": "mg/dL"}}}}'])
    return ("{" + field.format(number) + "}").encode()


def _keys(rng: random.Random) -> bytes:
    count = rng.choice([1, 50, 100_000])
    odd = rng.choice(["a[b", "literal", "x\\ny", "\\u001b[2J", "\\ud800", "k"])
    return ("{" + ", ".join(f'"{odd}{i}": {i}' for i in range(count)) + "}").encode()


def _garbage(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 4096))


def _truncated(rng: random.Random) -> bytes:
    text = json.dumps(valid_profile(rng)).encode()
    return text[: rng.randint(0, len(text))]


def _generated(rng: random.Random) -> bytes:
    data = invalid_profile(rng)[0] if rng.random() < 0.8 else valid_profile(rng)
    return profile_text(rng, data).encode("utf-8", "surrogatepass")


def _large(rng: random.Random) -> bytes:
    return b"patient_id: x\n" + b"#" * rng.choice([100, 3 * 1024 * 1024])


TEMPLATES: list[Callable[[random.Random], bytes]] = [
    _nested,
    _laughs,
    _control,
    _encoding,
    _tagged,
    _duplicate,
    _numbers,
    _keys,
    _garbage,
    _truncated,
    _generated,
    _large,
]


def run(count: int, seed: int) -> dict[str, int]:
    counts = dict.fromkeys(("tried", "ok", "refused", "crashed", "hung", "http_500"), 0)
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for index in range(count):
            rng = random.Random(seed * 1_000_003 + index)
            path = Path(folder) / f"case{index}.{rng.choice(['yaml', 'json'])}"
            path.write_bytes(TEMPLATES[index % len(TEMPLATES)](rng))
            files.append(path)
        with ThreadPoolExecutor(WORKERS) as pool:
            for outcome in pool.map(_evaluate, files):
                counts[outcome] += 1
                counts["tried"] += 1
    return counts


def _evaluate(path: Path) -> str:
    command = [sys.executable, "-m", "bonecds", "evaluate", str(path), "--rules", "rules"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return "hung"
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode not in (0, 2) or "Traceback" in stderr:
        print(f"crash: {path.name} exit {done.returncode}: {stderr[-300:]!r}", file=sys.stderr)
        return "crashed"
    if done.returncode == 2 and (done.stdout or stderr.count("\n") != 1):
        print(f"crash: {path.name} not one clean line: {stderr[-300:]!r}", file=sys.stderr)
        return "crashed"
    return "ok" if done.returncode == 0 else "refused"
