"""Profiles generated from the model itself (so a new field is covered the day it is added),
valid and invalid, for the property tests and `python -m benchmarks.fuzz`.

Everything is drawn from one `random.Random`: hypothesis supplies it in the tests
(`st.randoms()`), the fuzz command seeds it.
"""

from __future__ import annotations

import json
import math
import random
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel

from bonecds.profile.model import ANALYTE_UNITS, QUANTITY_FIELDS, PatientProfile, Quantity
from bonecds.profile.plausibility import RANGES, unwrap
from bonecds.report.model import Report

# Unbounded rows (counts, durations) draw valid values below this: larger numbers are tried
# as extremes, where a report or a BonecdsError is the accepted outcome.
VALID_CEILING = 1e6


@dataclass(frozen=True)
class Leaf:
    path: str
    kind: str  # bool, int, float, quantity, enum, enum-list, text-list, text
    values: tuple[str, ...] = ()


def leaves(model: type[BaseModel] = PatientProfile, prefix: str = "") -> list[Leaf]:
    found = []
    for name, info in model.model_fields.items():
        kind = unwrap(info.annotation)
        path = f"{prefix}{name}"
        if kind is Quantity:
            found.append(Leaf(path, "quantity"))
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found.extend(leaves(kind, f"{path}."))
        elif typing.get_origin(kind) is list:
            item = unwrap(typing.get_args(kind)[0])
            if typing.get_origin(item) is Literal:
                found.append(Leaf(path, "enum-list", tuple(map(str, typing.get_args(item)))))
            else:
                found.append(Leaf(path, "text-list"))
        elif typing.get_origin(kind) is Literal:
            found.append(Leaf(path, "enum", tuple(map(str, typing.get_args(kind)))))
        elif kind in (bool, int, float):
            found.append(Leaf(path, kind.__name__))
        else:
            found.append(Leaf(path, "text"))
    return found


LEAVES = leaves()
TEXTS = ["", "a", "é", "中文", "🦴", "x" * 300, "a\tb", "line\nbreak", "\x1b[31m", "\u202e"]


def _number(rng: random.Random, path: str, integer: bool) -> float:
    limits = RANGES[path]
    low = limits.low + (1e-3 if limits.low_exclusive else 0)
    high = limits.high if limits.high is not None else VALID_CEILING
    if integer:
        return rng.randint(math.ceil(low), math.floor(high))
    return round(rng.uniform(low, high), 2) or low  # two decimals: as a laboratory reports


def valid_value(rng: random.Random, leaf: Leaf) -> Any:
    if leaf.kind == "bool":
        return rng.random() < 0.5
    if leaf.kind in ("int", "float"):
        return _number(rng, leaf.path, leaf.kind == "int")
    if leaf.kind == "quantity":
        analyte = QUANTITY_FIELDS[leaf.path][0]
        unit, factor = rng.choice(list(ANALYTE_UNITS[analyte].items()))
        canonical = _number(rng, leaf.path, integer=False)
        value = round(canonical / factor, 2)
        if not RANGES[leaf.path].holds(value * factor):
            value = round(canonical, 2)
            unit = next(iter(ANALYTE_UNITS[analyte]))
        return {"value": value, "unit": unit} if rng.random() < 0.7 else f"{value} {unit}"
    if leaf.kind == "enum":
        return rng.choice(leaf.values)
    if leaf.kind == "enum-list":
        return rng.sample(leaf.values, rng.randint(0, len(leaf.values)))
    if leaf.kind == "text-list":
        return [rng.choice(TEXTS) for _ in range(rng.randint(0, 3))]
    if leaf.path == "primary.histology_icdo3":  # the model's pattern: a morphology code
        return f"{rng.randint(8000, 9999)}/{rng.choice('0123')}"
    return rng.choice(TEXTS)


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def valid_profile(rng: random.Random) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for leaf in rng.sample(LEAVES, rng.randint(0, len(LEAVES))):
        if rng.random() < 0.1:
            _set(data, leaf.path, None)  # unknown, said explicitly
        else:
            _set(data, leaf.path, valid_value(rng, leaf))
    return data


EXTREMES: list[Any] = [
    -1,
    -0.0,
    1e-6,
    1e16,
    1e308,
    -1e308,
    10**20,
    10**400,
    math.inf,
    -math.inf,
    math.nan,
    True,
    "",
    "1e999 mg/dL",
    "9" * 400 + " mg/dL",
    [],
    {},
    {"value": 1},
    {"unit": "mg/dL"},
    {"value": None, "unit": "mg/dL"},
    {"value": 106, "unit": "mg/dL"},
    {"value": 36, "unit": "g/dL"},
    {"value": 1, "unit": "mmol"},
    {"value": 1, "unit": "\x00"},
    "\ud800",
    "a\x00b",
]
ODD_KEYS = ["a[b", "literal", "literal_x", "function-before[x]", "x\ny", "\x1b[2J", "é", "", " "]


def invalid_profile(rng: random.Random) -> tuple[dict[str, Any], str]:
    """A valid profile with one field broken, and the path the error must name."""
    data = valid_profile(rng)
    leaf = rng.choice(LEAVES)
    choice = rng.random()
    if choice < 0.15:
        key = rng.choice(ODD_KEYS)
        parent = leaf.path.rpartition(".")[0]
        path = f"{parent}.{key}" if parent else key
        _set(data, path, rng.choice(EXTREMES))
        return data, parent or key
    if choice < 0.25:
        nested: Any = rng.choice(EXTREMES)
        for _ in range(rng.randint(1, 200)):
            nested = [nested] if rng.random() < 0.5 else {"k": nested}
        _set(data, leaf.path, nested)
        return data, leaf.path
    _set(data, leaf.path, rng.choice(EXTREMES))
    return data, leaf.path


def profile_text(rng: random.Random, data: dict[str, Any]) -> str:
    """The profile as a file would hold it: JSON or YAML, sometimes with a repeated key."""
    if rng.random() < 0.5:
        text = json.dumps(data, ensure_ascii=rng.random() < 0.5, allow_nan=True)
        if data and rng.random() < 0.2:
            key = json.dumps(rng.choice(list(data)))
            text = text[:-1] + f", {key}: {{}}}}"
        return text
    return yaml.safe_dump(data, allow_unicode=rng.random() < 0.5, sort_keys=False)


def broken_invariants(report: Report) -> list[str]:
    """The report invariants of issue 11, as a list of what is broken."""
    broken = []
    kinds = [item.kind for item in report.ranked]
    first_other = next((i for i, kind in enumerate(kinds) if kind != "emergency"), len(kinds))
    if "emergency" in kinds[first_other:]:
        broken.append("an option ranks before an emergency")
    both = {item.id for item in report.ranked} & {item.id for item in report.contraindicated}
    if both:
        broken.append(f"ranked and contraindicated: {sorted(both)}")
    broken += [f"{item.id} cites nothing" for item in report.ranked if not item.citations]
    return broken
