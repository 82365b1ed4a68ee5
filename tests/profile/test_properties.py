"""Property tests (issue 11): any profile, valid or not, through the API and the CLI readers,
gives a report that keeps the invariants or a BonecdsError naming the field; never another
exception. Seeded and bounded: a few seconds in CI."""

from __future__ import annotations

import datetime as dt
import functools
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bonecds import BonecdsError, Knowledge, evaluate, load_knowledge
from bonecds.errors import InternalError, ProfileError, printable
from bonecds.profile.model import parse_profile, read_structured
from tests.conftest import RULES
from tests.profile_gen import broken_invariants, invalid_profile, profile_text, valid_profile

DATE = dt.date(2026, 11, 23)
BUDGET = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@functools.cache
def rules() -> Knowledge:
    return load_knowledge(RULES)


def outcome(profile: Any) -> BonecdsError | None:
    """None when the profile evaluated soundly (twice, same bytes), else the error raised."""
    try:
        report = evaluate(profile, rules(), DATE)
        again = evaluate(profile, rules(), DATE)
    except BonecdsError as error:
        return error
    assert broken_invariants(report) == []
    assert again.to_json() == report.to_json()
    return None


def read(text: str) -> Any:
    try:
        parsed, doc = read_structured(text, "p.yaml")
        return parse_profile(parsed, "p.yaml", doc)
    except ProfileError as error:
        return error


@BUDGET
@given(st.randoms(use_true_random=False))
def test_valid_profiles_evaluate_with_the_invariants(rng: random.Random) -> None:
    error = outcome(valid_profile(rng))
    # plausible values one by one may still combine into an impossible derived value
    assert error is None or "derived." in str(error), str(error)


@BUDGET
@given(st.randoms(use_true_random=False))
def test_broken_profiles_are_refused_naming_the_field(rng: random.Random) -> None:
    data, path = invalid_profile(rng)
    error = outcome(data)
    if error is not None and not isinstance(error, InternalError):  # item 4: engine branch
        named = printable(path.split(".")[0])
        assert named in str(getattr(error, "problems", error)), (path, str(error))


@BUDGET
@given(st.randoms(use_true_random=False))
def test_profile_files_are_read_or_refused_in_one_line(rng: random.Random) -> None:
    data = valid_profile(rng) if rng.random() < 0.5 else invalid_profile(rng)[0]
    profile = read(profile_text(rng, data))
    if isinstance(profile, ProfileError):
        assert str(profile).startswith("p.yaml")
        assert "\n" not in str(profile)
    else:
        error = outcome(profile)
        assert error is None or isinstance(error, (InternalError, ProfileError)), str(error)
