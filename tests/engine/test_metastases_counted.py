"""Metastases counted organ by organ are added up (SABR-COMET enrolled 1-5 in all organs).

`derived.metastases_counted` is a lower bound of the total: bone plus the other sites counted,
known once a site other than bone is counted, and never larger than what was recorded.
"""

from __future__ import annotations

from typing import Any

from bonecds.engine.facts import to_facts
from bonecds.knowledge.model import FieldTest, ReferenceDefaults
from bonecds.profile.model import parse_profile

_DEFAULTS = ReferenceDefaults(8.9, 10.5, 4.69, 5.21)


# The rules' test on the bone count (C2, C3): a bound that decides it is kept.
_COMPARISONS = {"bone.lesion_count": (FieldTest("bone.lesion_count", "lte", 5),)}


def _counted(data: dict[str, Any]) -> Any:
    facts = to_facts(parse_profile(data), _DEFAULTS, _COMPARISONS)
    derived = [d for d in facts.derived if d.field == "derived.metastases_counted"]
    value = facts.values.get("derived.metastases_counted")
    assert (value is None) == (not derived)
    return (value, derived[0].inputs) if derived else None


def test_bone_and_other_sites_are_added() -> None:
    value, inputs = _counted(
        {"bone": {"lesion_count": 2}, "mets": {"liver_lesion_count": 4, "brain_lesion_count": 0}}
    )
    assert value == 6
    assert inputs == {
        "bone.lesion_count": 2,
        "mets.liver_lesion_count": 4,
        "mets.brain_lesion_count": 0,
    }


def test_every_other_site_counts() -> None:
    sites = ("liver", "lung", "brain", "adrenal", "nodal")
    value, _ = _counted({"mets": {f"{site}_lesion_count": 1 for site in sites}})
    assert value == 5


def test_bone_alone_is_not_a_count_by_site() -> None:
    # The bone count is already a field of its own; the derived sum needs another organ.
    assert _counted({"bone": {"lesion_count": 3}, "mets": {"total_lesion_count": 3}}) is None


def test_a_bone_count_given_as_less_than_bounds_nothing_from_below() -> None:
    value, inputs = _counted(
        {
            "bone": {"lesion_count": 4, "lesion_count_bound": "less_than"},
            "mets": {"lung_lesion_count": 2},
        }
    )
    assert (value, inputs) == (2, {"mets.lung_lesion_count": 2})


def test_a_bone_count_given_as_more_than_still_bounds_from_below() -> None:
    value, _ = _counted(
        {
            "bone": {"lesion_count": 10, "lesion_count_bound": "more_than"},
            "mets": {"adrenal_lesion_count": 1},
        }
    )
    assert value == 11
