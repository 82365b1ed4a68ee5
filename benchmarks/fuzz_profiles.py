"""Fuzz target: generated profiles, valid and broken, through the Python API.

A crash is any exception that is not a BonecdsError, or a report that breaks an invariant
(an emergency ranks first; nothing both ranked and contraindicated; every ranked item cites;
the same profile gives the same bytes). An InternalError is counted apart as a note: it is a
BonecdsError, but a valid profile should never cause one (issue 11 item 4).
"""

from __future__ import annotations

import datetime as dt
import random
import signal
import traceback
from typing import Any

from tests.profile_gen import broken_invariants, invalid_profile, valid_profile

from bonecds import BonecdsError, evaluate, load_knowledge
from bonecds.errors import InternalError

NAME = "profiles"
DEFAULT_COUNT = 20_000
TIMEOUT_SECONDS = 10
DATE = dt.date(2026, 11, 23)


class _Hung(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hung


def run(count: int, seed: int) -> dict[str, int]:
    knowledge = load_knowledge("rules")
    counts = dict.fromkeys(("tried", "ok", "refused", "crashed", "hung", "http_500"), 0)
    counts["internal_error"] = 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for index in range(count):
            rng = random.Random(seed * 1_000_003 + index)
            data = valid_profile(rng) if index % 2 else invalid_profile(rng)[0]
            counts[_outcome(data, knowledge)] += 1
            counts["tried"] += 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return counts


def _outcome(data: dict[str, Any], knowledge: Any) -> str:
    signal.alarm(TIMEOUT_SECONDS)
    try:
        report = evaluate(data, knowledge, DATE)
        again = evaluate(data, knowledge, DATE)
    except _Hung:
        return "hung"
    except InternalError:
        return "internal_error"
    except BonecdsError:
        return "refused"
    except Exception:  # the finding: show it once, without patient data (generated anyway)
        traceback.print_exc(limit=3)
        return "crashed"
    finally:
        signal.alarm(0)
    if broken_invariants(report) or again.to_json() != report.to_json():
        return "crashed"
    return "ok"
