"""Rule-file mutation fuzzing: every mutated knowledge base loads, or is refused with file:line.

Each trial takes one file of `rules/` (a rule file, or a support file with one rule file beside
it), applies one to three text mutations (a line deleted, duplicated or re-indented, a number
made non-finite or huge, a value replaced by YAML that means something else, a truncation, deep
nesting, stray characters) and loads, compiles and lints the result in a scratch directory.
Outcomes: `ok` (loads cleanly), `refused` (a RuleError whose every problem names its file and
line, or the directory for a whole-directory limit), `crashed` (any other exception, or a
problem without a position), `hung` (longer than TIMEOUT_S). `http_500` is always 0 here: the
runner's table has the column for the service targets.

Run through the runner (`python -m benchmarks.fuzz`), or alone:
`python -m benchmarks.fuzz_rules [COUNT] [SEED]`.
"""

from __future__ import annotations

import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from bonecds.engine.compile import compile_rules
from bonecds.errors import RuleError
from bonecds.knowledge.lint import lint_knowledge
from bonecds.knowledge.load import RESERVED_FILES, load_rules

NAME = "rules"
DEFAULT_COUNT = 1_000
TIMEOUT_S = 20
RULES = Path(__file__).resolve().parents[1] / "rules"
SUPPORT = ("settings.yaml", "sources.yaml", "vocabulary.yaml", "catalogue.yaml")
# Found once the whole directory is known, so they name the directory rather than a line.
DIRECTORY_CODES = {"engine-limit", "no-rules"}

ODD_VALUES = (
    ".nan",
    ".inf",
    "-.inf",
    "1e999",
    "-1",
    "1" * 40,
    "null",
    "~",
    "{}",
    "[]",
    "''",
    "yes",
    "!custom x",
    "&anchor x",
    "*anchor",
    "{a: ",
    "[1, 2",
    '"unterminated',
    "x: y: z",
    "\t1",
    "2026-11-23",
    "0x1F",
    "<<: {a: 1}",
)
STRAY = ("\x00", "\x1b[31m", "\u202e", "\ud800", "\ufeff", ":", "- ", "#", "{", "]", "'", "\\")


def _delete_line(lines: list[str], rng: random.Random) -> None:
    if lines:
        del lines[rng.randrange(len(lines))]


def _duplicate_line(lines: list[str], rng: random.Random) -> None:
    if lines:
        index = rng.randrange(len(lines))
        lines.insert(index, lines[index])


def _reindent(lines: list[str], rng: random.Random) -> None:
    if lines:
        index = rng.randrange(len(lines))
        shift = rng.choice((-4, -2, -1, 1, 2, 4))
        line = lines[index]
        lines[index] = line[-shift:] if shift < 0 else " " * shift + line


def _odd_value(lines: list[str], rng: random.Random) -> None:
    candidates = [i for i, line in enumerate(lines) if ": " in line]
    if candidates:
        index = rng.choice(candidates)
        head = lines[index].split(": ", 1)[0]
        lines[index] = f"{head}: {rng.choice(ODD_VALUES)}"


def _odd_number(lines: list[str], rng: random.Random) -> None:
    candidates = [i for i, line in enumerate(lines) if any(ch.isdigit() for ch in line)]
    if candidates:
        index = rng.choice(candidates)
        digits = [i for i, ch in enumerate(lines[index]) if ch.isdigit()]
        at = rng.choice(digits)
        line = lines[index]
        lines[index] = line[:at] + rng.choice((".nan", ".inf", "1e999", "9" * 30)) + line[at + 1 :]


def _stray(lines: list[str], rng: random.Random) -> None:
    if lines:
        index = rng.randrange(len(lines))
        line = lines[index]
        at = rng.randrange(len(line) + 1)
        lines[index] = line[:at] + rng.choice(STRAY) + line[at:]


def _truncate(lines: list[str], rng: random.Random) -> None:
    if lines:
        index = rng.randrange(len(lines))
        line = lines[index]
        lines[index:] = [line[: rng.randrange(len(line) + 1)]]


def _nest(lines: list[str], rng: random.Random) -> None:
    depth = rng.choice((20, 70, 600))
    opener, closer = rng.choice((("{a: ", "}"), ("[", "]"), ("{not: ", "}")))
    candidates = [i for i, line in enumerate(lines) if "when: " in line] or [0]
    index = rng.choice(candidates)
    head = lines[index].split(": ", 1)[0] if lines else "rules"
    lines[index : index + 1] = [f"{head}: {opener * depth}1{closer * depth}"]


def _swap_id(lines: list[str], rng: random.Random) -> None:
    keys = ("propose: ", "caution: ", "source: ", "field: ", "option: ", "derived: ", "id: ")
    candidates = [i for i, line in enumerate(lines) if any(key in line for key in keys)]
    if candidates:
        index = rng.choice(candidates)
        line = lines[index]
        at = rng.randrange(len(line))
        lines[index] = line[:at] + line[at + 1 :]


MUTATIONS: tuple[Callable[[list[str], random.Random], None], ...] = (
    _delete_line,
    _duplicate_line,
    _reindent,
    _odd_value,
    _odd_number,
    _stray,
    _truncate,
    _nest,
    _swap_id,
)


def mutate(text: str, rng: random.Random) -> str:
    """One to three random mutations of a YAML text."""
    lines = text.split("\n")
    for _ in range(rng.randint(1, 3)):
        rng.choice(MUTATIONS)(lines, rng)
    return "\n".join(lines)


def rule_files() -> list[Path]:
    return sorted(p for p in RULES.glob("*.yaml") if p.name not in RESERVED_FILES)


def outcome(directory: Path) -> str:
    """ok, refused or crashed for one rules directory (load, compile and lint, as `rules
    check` does)."""
    try:
        knowledge = load_rules(directory)
        compile_rules(knowledge)
        lint_knowledge(knowledge)
    except RuleError as error:
        placed = all(
            d.line > 0 or (d.code in DIRECTORY_CODES and d.file) for d in error.diagnostics
        )
        return "refused" if error.diagnostics and placed else "crashed"
    except Exception:
        return "crashed"
    return "ok"


class _Hung(Exception):
    pass


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise _Hung

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def trial(scratch: Path, rng: random.Random) -> str:
    """Mutate one file into a fresh scratch directory and classify the result."""
    for old in scratch.glob("*.yaml"):
        old.unlink()
    for name in SUPPORT:
        shutil.copy(RULES / name, scratch / name)
    rule_file = rng.choice(rule_files())
    shutil.copy(rule_file, scratch / rule_file.name)
    target = scratch / rng.choice((*SUPPORT[:3], rule_file.name, rule_file.name, rule_file.name))
    text = mutate(target.read_text(encoding="utf-8"), rng)
    target.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        with _deadline(TIMEOUT_S):
            return outcome(scratch)
    except _Hung:
        return "hung"


def run(count: int, seed: int) -> dict[str, int]:
    """`count` mutated knowledge bases from `seed`: how many loaded, were refused, crashed, hung."""
    rng = random.Random(seed)
    counts = {"tried": 0, "ok": 0, "refused": 0, "crashed": 0, "hung": 0, "http_500": 0}
    with tempfile.TemporaryDirectory(prefix="bonecds-fuzz-rules-") as scratch:
        for _ in range(count):
            counts[trial(Path(scratch), rng)] += 1
            counts["tried"] += 1
    return counts


if __name__ == "__main__":
    arguments = sys.argv[1:]
    total = int(arguments[0]) if arguments else DEFAULT_COUNT
    print(run(total, int(arguments[1]) if len(arguments) > 1 else 2026))
