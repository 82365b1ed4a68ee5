"""Run a compiled ruleset over one patient's facts with durable_rules -> the rules that fired.

durable_rules is fenced in here (and fed plain dicts by compile.py). Its C engine does all the
matching and forward chaining; this module drives it through the extension's own entry points
(`durable_rules_engine`: create_ruleset, assert_fact, start_action_for_state,
complete_and_start_action, delete_state), the calls that durable.engine.Host makes, without the
Host's per-action Python machinery (a closure object, the matched facts parsed from JSON and the
state written back per action), which cost more than the matching itself. The usage follows the
measured safe pattern of docs/durable-rules-notes.md:
- no Host, hence no background dispatcher: actions are taken only inside `run_engine`, by the
  caller (the dispatcher races with the caller and can lose actions: notes §4, §10);
- facts, never events (an event is consumed by the first rule that matches: §2), asserted one
  at a time (batch calls drop actions: §6);
- one session (sid) at a time per ruleset, holding one patient at a time: every fact is
  retracted after the evaluation and the session kept only if durable_rules then holds nothing
  for it, else deleted; it is replaced after SESSION_EVALUATIONS patients (1,025 live states
  crash the process: §3); a sid is never named after a patient (sids collide by 32-bit hash: §8);
- engine errors are raised as InternalError, never swallowed (§5), after taking the actions
  still pending (measured here: deleting a state with unstarted actions kills the process);
- one lock around the C calls: they are not thread-safe, and threads gain nothing (§4);
- a sentinel rule that matches every patient fact, so a session state always exists: measured
  here, deleting the state of a fact that matched no rule at all segfaults the process;
- a knowledge base beyond one ruleset's limits (§9) is spread over several rulesets
  (compiler.partition_rules), one session in each: the patient is asserted into all, a
  produced fact into every one that joins on it, and a stratum's phase marker only once all
  have run to completion, so joins, negation and ordering are those of a single ruleset;
- numbers are written as durable_rules' JSON reader parses them (_float_json), and integers
  beyond 2**53 compared as doubles (compiler.engine_number), so every finite value matches
  as the floor matches it.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import durable_rules_engine as durable
import orjson

from bonecds._json import compact
from bonecds.engine.compile import (
    EXACT_INTEGER,
    CompiledRule,
    Knowledge,
    engine_number,
    fact_key,
    list_key,
    partition_rules,
    patient_keys,
)
from bonecds.engine.facts import Facts
from bonecds.engine.firing import Firing, firing_key
from bonecds.errors import InternalError, Problem, ProfileError
from bonecds.profile.fields import FIELDS

__all__ = ["SESSION_EVALUATIONS", "durable", "encode_facts", "run_engine"]

# durable_rules_engine.assert_fact's outcome codes (durable rules.h; durable.engine reads them
# the same way): the fact matched nothing, or an identical fact is already in the session.
_NOT_HANDLED, _OBSERVED = 1, 2
_SENTINEL = "session"
_PHASE = '{"t":"ph"'  # how every phase marker's JSON text starts (written and recognised here)
_RULE_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class _Action:
    """What a durable_rules rule does when it fires: record the firing, assert its facts (kept
    as JSON text without the closing brace, so only the sid is appended per patient) into the
    partitions that join on them."""

    firing: Firing
    produces: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class _Partition:
    """One durable_rules ruleset holding a run of the compiled rules (compiler.partition_rules)."""

    handle: int
    actions: dict[str, _Action]
    plan: FactPlan


@dataclass(frozen=True)
class _Registered:
    partitions: tuple[_Partition, ...]
    phases: tuple[tuple[int, ...], ...]  # per stratum from 1: the partitions that await its marker


_lock = threading.Lock()
_registered: dict[str, _Registered] = {}
_session_ids = itertools.count()
_sessions: dict[str, _Session] = {}
# A session is emptied and checked empty after every evaluation, and replaced by a fresh one
# after this many: making a session costs more than matching (durable_rules sets up frame
# pools and hash indexes for every node of the ruleset, about 3 MB here; RESULTS.md).
SESSION_EVALUATIONS = 1000


def run_engine(compiled: Knowledge, facts: Facts) -> list[Firing]:
    """Assert the patient, then each phase marker; return the firings in rule order."""
    with _lock:
        ruleset = _ensure_registered(compiled)
        session = _sessions.get(compiled.ruleset_name) or _Session(ruleset)
        _sessions[compiled.ruleset_name] = session
        reusable, failed = False, True  # until the evaluation has run and been cleared
        try:
            for index, partition in enumerate(ruleset.partitions):
                fact = encode_facts(facts.values, partition.plan, as_text=True)
                patient = {"t": "p", **fact, "sid": session.sid}
                session.assert_fact(index, _patient_json(patient, partition.plan))
            # Every partition has run to completion before a stratum's marker (stratified negation).
            for stratum, awaiting in enumerate(ruleset.phases, start=1):
                for index in awaiting:
                    session.assert_fact(index, f'{_PHASE},"n":{stratum},"sid":"{session.sid}"}}')
            fired = sorted(set(session.fired), key=firing_key)
            reusable = session.clear()
            failed = False
            return fired
        except (durable.error, MemoryError) as error:
            raise InternalError(f"rules engine failure ({error.__class__.__name__})") from None
        finally:
            if failed:  # whatever failed: deleting a state with actions pending kills the process
                session.drain()
            session.evaluations += 1
            if not reusable or session.evaluations >= SESSION_EVALUATIONS:
                del _sessions[compiled.ruleset_name]
                session.delete(quietly=failed)


class _Session:
    """A durable_rules session (sid) in every partition, and the current evaluation's facts
    and firings.

    Between two patients every fact asserted is retracted, and the session is kept only if
    durable_rules then holds no fact and no pending action for it: a fact left over could
    otherwise join the next patient's (identical facts merge: notes §7)."""

    def __init__(self, ruleset: _Registered) -> None:
        self.ruleset, self.sid = ruleset, f"e{next(_session_ids)}"  # never a patient id (§8)
        count = len(ruleset.partitions)
        self.states: list[int | None] = [None] * count
        self.fired: list[Firing] = []
        self.asserted: list[dict[str, None]] = [{} for _ in range(count)]  # in order, once
        self.evaluations = 0

    def assert_fact(self, index: int, text: str) -> None:
        """Assert one fact (JSON text naming this session's sid) into partition `index` and
        take every action it makes ready, as durable.engine.Host does: each action may assert
        facts that make further actions ready (forward chaining), in its own partition at once
        and in the others once its partition has none ready."""
        pending = [(index, text)]
        while pending:
            index, text = pending.pop()
            if self._assert(index, text) in (_NOT_HANDLED, _OBSERVED):
                continue  # no rule matched this fact (a normal outcome: notes §11), or it is known
            actions = self.ruleset.partitions[index].actions
            for messages in self._ready_actions(index):
                action = actions.get(_rule_name(messages))
                if action is None:
                    continue  # the sentinel, which does nothing
                self.fired.append(action.firing)
                for produced, targets in action.produces:
                    fact = f'{produced},"sid":"{self.sid}"}}'
                    for target in targets:
                        if target == index:
                            self._assert(index, fact)
                        else:
                            pending.append((target, fact))

    def _assert(self, index: int, text: str) -> int:
        asserted = self.asserted[index]
        if text in asserted:
            # durable_rules would merge it with the first (notes §7); spared, as options
            # proposed by many rules would otherwise be asserted once per rule and ruleset.
            return _OBSERVED
        outcome, self.states[index] = durable.assert_fact(
            self.ruleset.partitions[index].handle, text
        )
        asserted[text] = None
        return int(outcome)

    def clear(self) -> bool:
        """Retract this evaluation's facts, phase markers first (every rule that tests an
        absence also needs its phase marker, so no retraction can make such a rule match);
        True if the session is then verifiably empty."""
        empty = True
        for index, partition in enumerate(self.ruleset.partitions):
            asserted = self.asserted[index]
            markers = [text for text in asserted if text.startswith(_PHASE)]
            others = [text for text in reversed(asserted) if not text.startswith(_PHASE)]
            for text in (*markers, *others):
                durable.retract_fact(partition.handle, text)
            empty = empty and self._empty(index)
        self.asserted, self.fired = [{} for _ in self.asserted], []
        return empty

    def _empty(self, index: int) -> bool:
        if self.states[index] is None:
            return False
        # Cannot happen by the argument above; such a session is taken empty and never kept.
        pending = sum(1 for _ in self._ready_actions(index))
        handle = self.ruleset.partitions[index].handle
        return pending == 0 and durable.get_facts(handle, self.sid) == "[]"

    def drain(self) -> None:
        """After an engine error, take the actions still pending, without acting on them:
        measured here, deleting a state whose actions were never started aborts the process
        (free(): invalid size)."""
        for index, state in enumerate(self.states):
            if state is None:
                continue
            try:
                for _ in self._ready_actions(index):
                    pass
            except (durable.error, MemoryError):
                pass  # nothing more can be done; delete() still runs

    def _ready_actions(self, index: int) -> Iterator[str]:
        """Each ready action's message, completed once the caller has taken it; facts the
        caller asserts meanwhile can make further actions ready."""
        handle, state = self.ruleset.partitions[index].handle, self.states[index]
        started = durable.start_action_for_state(handle, state)
        messages = started[1] if started else None
        while messages:
            yield messages
            messages = durable.complete_and_start_action(handle, state)

    def delete(self, *, quietly: bool = False) -> None:
        """Free the session's state in every partition. After an engine failure (`quietly`) a
        state may never have been made: that failure is the one to report, not this one's."""
        failure = ""
        for partition in self.ruleset.partitions:
            try:
                durable.delete_state(partition.handle, self.sid)
            except Exception as error:
                failure = failure or error.__class__.__name__
        if failure and not quietly:
            raise InternalError(f"could not release engine state ({failure})")


@dataclass(frozen=True)
class FactPlan:
    """How profile values become patient-fact keys: a scalar field is one key, a list field
    one flag per allowed value (its length is the separate `<list>.count` field). A plan made
    for a ruleset keeps only the keys its patterns mention: no other key can change a match."""

    scalars: dict[str, str]
    lists: dict[str, tuple[tuple[str, str], ...]]

    @classmethod
    def for_keys(cls, keep: frozenset[str] | None = None) -> FactPlan:
        scalars: dict[str, str] = {}
        lists: dict[str, tuple[tuple[str, str], ...]] = {}
        for path, spec in FIELDS.items():
            if spec.type.endswith("-list"):
                flags = ((member, list_key(path, member)) for member in spec.values)
                lists[path] = tuple((m, k) for m, k in flags if keep is None or k in keep)
            elif keep is None or fact_key(path) in keep:
                scalars[path] = fact_key(path)
        return cls(scalars, lists)


_EVERY_KEY = FactPlan.for_keys()


def encode_facts(
    values: dict[str, Any], plan: FactPlan = _EVERY_KEY, *, as_text: bool = False
) -> dict[str, Any]:
    """The patient fact of `values` under `plan` (by default every key), numbers as durable_rules
    compares them (`engine_number`); `as_text`: floats also as its JSON reader takes them."""
    fact: dict[str, Any] = {}
    scalars, lists = plan.scalars, plan.lists
    for path, value in values.items():
        key = scalars.get(path)
        if key is not None:
            # The checks are inlined (and the rare cases called): this runs for every value.
            kind = type(value)
            if kind is float:
                if as_text and not 1e-4 <= abs(value) < 1e15:
                    value = _float_json(value)
            elif kind is int and not -EXACT_INTEGER <= value <= EXACT_INTEGER:
                value = engine_number(value)
                if as_text:
                    value = _float_json(value)
            fact[key] = value
        else:
            for member, flag in lists.get(path, ()):
                fact[flag] = member in value
    return fact


def _patient_json(patient: dict[str, Any], plan: FactPlan) -> str:
    """The patient fact's JSON text; text that cannot be UTF-8 (an unpaired surrogate, which
    JSON's \\u escapes can carry) is refused naming its field, looked for only then."""
    try:
        return compact(patient)
    except UnicodeEncodeError:
        for path, key in plan.scalars.items():
            value = patient.get(key)
            if isinstance(value, str) and not _utf8(value):
                raise ProfileError([Problem("", path, "text that is not valid Unicode")]) from None
        raise


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def engine_json(data: Any) -> str:
    """JSON text durable_rules reads as the same numbers (a ruleset definition; a patient fact
    is written by encode_facts): see _float_json."""
    return compact(_readable(data))


_PLAIN = frozenset({str, bool, int, type(None)})


def _readable(node: Any) -> Any:
    kind = type(node)
    if kind is float:
        return _float_json(node)
    if kind is dict:
        return {k: v if type(v) in _PLAIN else _readable(v) for k, v in node.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else _readable(v) for v in node]
    return node


def _float_json(value: float) -> Any:
    """durable_rules' JSON reader (rules/json.c getNumber) takes an exponent only after a
    fraction: `1e-06` and `1e+16`, as Python and orjson write such floats, fail to parse, so
    they are written `1.0e-06`, `1.0e+16`. orjson writes an exponent only outside this range
    (checked over 2 million floats)."""
    if 1e-4 <= abs(value) < 1e15 or value == 0:
        return value
    if not math.isfinite(value):
        raise InternalError("a number that is not finite reached the rules engine")
    mantissa, exponent, power = repr(value).partition("e")
    if exponent and "." not in mantissa:
        mantissa += ".0"
    return orjson.Fragment(f"{mantissa}{exponent}{power}")


def _rule_name(messages: str) -> str:
    """The fired rule's name, the first key of the action's JSON ({"r12": {...}}), read without
    parsing the matched facts (compiled rule names are plain words: _ensure_registered)."""
    return messages[2 : messages.index('"', 2)]


def _ensure_registered(compiled: Knowledge) -> _Registered:
    """Create the partitions' rulesets once per process; they are never unregistered (notes
    §10). Each has its own sentinel, and a fact a rule produces goes to every partition that
    joins on it (none: it is not asserted at all, as it changes nothing)."""
    known = _registered.get(compiled.ruleset_name)
    if known is not None:
        return known
    parts = [tuple(compiled.rules[i] for i in part) for part in partition_rules(compiled.rules)]
    joined = [_joined(rules) for rules in parts]
    partitions = tuple(
        _register(
            f"{compiled.ruleset_name}_{index}" if index else compiled.ruleset_name, rules, joined
        )
        for index, rules in enumerate(parts)
    )
    phases = tuple(
        tuple(index for index, rules in enumerate(parts) if stratum in _phases(rules))
        for stratum in range(1, compiled.max_stratum + 1)
    )
    ruleset = _Registered(partitions, phases)
    _registered[compiled.ruleset_name] = ruleset
    return ruleset


def _register(
    name: str, rules: tuple[CompiledRule, ...], joined: list[tuple[set[str], set[str]]]
) -> _Partition:
    definition = {rule.name: rule.pattern for rule in rules}
    definition[_SENTINEL] = {"all": [{"p": {"t": "p"}}]}
    if not all(_RULE_NAME.fullmatch(name) for name in definition):
        raise InternalError("compiled rule names must be plain words")
    try:
        handle = durable.create_ruleset(name, engine_json(definition))
    except Exception as error:
        raise InternalError(f"rules engine refused the ruleset ({error})") from None
    actions = {
        rule.name: _Action(
            Firing(rule.order, rule.rule_id, rule.branch, rule.assumes, rule.tolerant),
            tuple(
                (compact(dict(fact))[:-1], targets)
                for fact in rule.produces
                if (targets := tuple(i for i, sets in enumerate(joined) if _wanted(fact, sets)))
            ),
        )
        for rule in rules
    }
    # A patient-fact key no pattern names cannot change a match: it is left out of the fact
    # (less JSON for the engine to parse and copy, and within MAX_PATIENT_KEYS).
    keys = frozenset[str]().union(*(patient_keys(rule) for rule in rules))
    return _Partition(handle, actions, FactPlan.for_keys(keys))


def _phases(rules: tuple[CompiledRule, ...]) -> set[int]:
    """The strata whose phase marker some of these rules join on."""
    return {
        int(value)
        for rule in rules
        for element in rule.pattern["all"][1:]
        for expression in element.values()
        if ("t", "ph") in (terms := _terms(expression))
        for key, value in terms
        if key == "n"
    }


def _joined(rules: tuple[CompiledRule, ...]) -> tuple[set[str], set[str]]:
    """What the joins of these rules can match: the fact names (`n`) they mention, and the fact
    types (`t`) some join matches whatever the name."""
    names: set[str] = set()
    any_name: set[str] = set()
    for rule in rules:
        for element in rule.pattern.get("all", ()):
            for alias, expression in element.items():
                if alias == "p":
                    continue  # the patient fact
                terms = _terms(expression)
                names.update(str(value) for key, value in terms if key == "n")
                if not any(key == "n" for key, _ in terms):
                    any_name.update(str(value) for key, value in terms if key == "t")
    return names, any_name


def _terms(node: Any) -> list[tuple[str, Any]]:
    """Every (key, value) equality term of a pattern expression, at any depth."""
    if isinstance(node, list):
        return [term for item in node for term in _terms(item)]
    if not isinstance(node, dict):
        return []
    found = [(key, value) for key, value in node.items() if not isinstance(value, dict | list)]
    return found + [
        t for value in node.values() if isinstance(value, dict | list) for t in _terms(value)
    ]


def _wanted(fact: dict[str, Any], joined: tuple[set[str], set[str]]) -> bool:
    """A produced fact that no join can match changes nothing: it is not asserted (each
    assert is a pass through the engine)."""
    names, any_name = joined
    return str(fact.get("n")) in names or str(fact.get("t")) in any_name
