"""The durable_rules engine: forward chaining, stratified negation, state hygiene, soak."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading

import pytest

from bonecds import Knowledge, Report, evaluate
from bonecds.engine import durable as engine
from bonecds.errors import InternalError
from bonecds.testing.synthetic import synthetic_cohort, synthetic_profile
from tests.conftest import AS_OF, ROOT, RULES

BREAST = {
    "age_years": 60,
    "sex": "female",
    "weight_kg": 70,
    "pregnant": False,
    "primary": {"site": "breast"},
    "bone": {"metastases_present": True},
    "labs": {"crcl_ml_min": 45},
}


def signature(report: Report) -> str:
    """What a clinician acts on, compactly: enough to detect any cross-patient leak."""
    return json.dumps(
        [
            [
                (i.id, i.score, i.conditional_on, i.dose.amount if i.dose else None)
                for i in report.ranked
            ],
            [c.id for c in report.contraindicated],
            [c.id for c in report.cautions],
            [d.field for d in report.data_requests],
            [(f.rule, f.branch) for f in report.rules_fired],
        ]
    )


def test_forward_chaining_reaches_rules_that_join_on_proposed_options(knowledge: Knowledge) -> None:
    report = evaluate(BREAST, knowledge, AS_OF)
    fired = {f.rule for f in report.rules_fired}
    # D1 proposes zoledronic acid -> D4 (joins on that option) doses it -> bma-candidate derived.
    assert {
        "bma-solid-tumour-bone-metastases",
        "zoledronic-acid-renal-dosing",
        "bma-candidate",
    } <= fired
    (zoledronic,) = [i for i in report.ranked if i.id == "zoledronic-acid"]
    assert zoledronic.dose is not None
    assert zoledronic.dose.amount == 3.3


def test_no_rule_matching_is_a_normal_empty_report(knowledge: Knowledge) -> None:
    report = evaluate({}, knowledge, AS_OF)
    assert report.ranked == []
    assert report.contraindicated == []


def test_more_evaluations_than_durable_rules_live_state_limit(knowledge: Knowledge) -> None:
    # 1,025 live states crash durable_rules (notes §3): each evaluation must free its state.
    first = signature(evaluate(BREAST, knowledge, AS_OF))
    for _ in range(1100):
        evaluate(BREAST, knowledge, AS_OF)
    assert signature(evaluate(BREAST, knowledge, AS_OF)) == first


def test_same_input_gives_identical_bytes(knowledge: Knowledge) -> None:
    texts = {evaluate(BREAST, knowledge, AS_OF).to_json() for _ in range(5)}
    assert len(texts) == 1


def test_a_kept_session_gives_what_a_fresh_session_per_patient_gives(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    cohort = synthetic_cohort(300, seed=21)
    kept = [signature(evaluate(p, knowledge, AS_OF)) for p in cohort]
    monkeypatch.setattr(engine, "SESSION_EVALUATIONS", 1)  # the notes' pattern: fresh each time
    assert [signature(evaluate(p, knowledge, AS_OF)) for p in cohort] == kept


def test_a_session_is_replaced_after_its_quota_of_evaluations(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []

    class Counted(engine._Session):
        def __init__(self, ruleset: engine._Registered) -> None:
            super().__init__(ruleset)
            made.append(self.sid)

    monkeypatch.setattr(engine, "_Session", Counted)
    monkeypatch.setattr(engine, "_sessions", {})
    monkeypatch.setattr(engine, "SESSION_EVALUATIONS", 3)
    for _ in range(7):
        evaluate(BREAST, knowledge, AS_OF)
    assert len(made) == 3, made  # 3 + 3 + 1 evaluations


def test_a_session_left_holding_a_fact_is_never_reused(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make the retraction forget the patient fact: the leftover would join the next patient's.
    real = engine.durable.retract_fact
    monkeypatch.setattr(
        engine.durable,
        "retract_fact",
        lambda handle, text: None if text.startswith('{"t":"p"') else real(handle, text),
    )
    alone = signature(evaluate({"ecog": 1}, knowledge, AS_OF))
    evaluate(BREAST, knowledge, AS_OF)
    assert knowledge.ruleset_name not in engine._sessions, "a non-empty session was kept"
    assert signature(evaluate({"ecog": 1}, knowledge, AS_OF)) == alone


def test_threads_never_mix_patients(knowledge: Knowledge) -> None:
    cohort = synthetic_cohort(60, seed=7)
    expected = [signature(evaluate(p, knowledge, AS_OF)) for p in cohort]
    results: dict[int, str] = {}
    start = threading.Barrier(4)

    def work(offset: int) -> None:
        start.wait()
        for i in range(offset, len(cohort), 4):
            try:
                results[i] = signature(evaluate(cohort[i], knowledge, AS_OF))
            except Exception as error:  # a mixed-up session may also fail outright
                results[i] = repr(error)

    # Switch threads every few bytecodes, not every 5 ms: evaluations then interleave inside
    # the engine, as they would under load (with the default interval this test passed even
    # with the engine's lock removed).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert [results[i] for i in range(len(cohort))] == expected


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


REFERENCE_SCRIPT = """
import json, sys, datetime as dt
from bonecds import load_knowledge, evaluate
from bonecds.testing.synthetic import synthetic_cohort
from tests.engine.test_durable import signature
k = load_knowledge(sys.argv[1])
cohort = synthetic_cohort(int(sys.argv[2]), seed=11)
print(json.dumps([signature(evaluate(p, k, dt.date(2026, 11, 23))) for p in cohort]))
"""


def _soak(knowledge: Knowledge, distinct: int, evaluations: int, warm_up: int) -> tuple[int, float]:
    """Evaluate `evaluations` profiles drawn from `distinct` ones in this process; return how
    many reports differ from a fresh process's (no earlier state at all) and the RSS growth in
    MB after `warm_up` evaluations (caches, allocator arenas)."""
    root = ROOT
    completed = subprocess.run(
        [sys.executable, "-c", REFERENCE_SCRIPT, str(RULES), str(distinct)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    reference = json.loads(completed.stdout)
    cohort = synthetic_cohort(distinct, seed=11)
    rng = random.Random(99)
    for _ in range(warm_up):
        evaluate(cohort[rng.randrange(distinct)], knowledge, AS_OF)
    start = _rss_mb()
    mismatches = 0
    for _ in range(evaluations):
        index = rng.randrange(distinct)
        mismatches += signature(evaluate(cohort[index], knowledge, AS_OF)) != reference[index]
    return mismatches, _rss_mb() - start


def test_a_long_run_gives_a_fresh_process_results_and_stays_flat(knowledge: Knowledge) -> None:
    """Always on, the soak in small: the sessions are replaced several times over
    (engine.SESSION_EVALUATIONS), the report memo fills and turns over."""
    mismatches, growth = _soak(knowledge, distinct=200, evaluations=4_000, warm_up=1_000)
    assert mismatches == 0
    assert growth < 10, f"RSS grew by {growth:.1f} MB over 4,000 evaluations"


@pytest.mark.slow
def test_100000_profiles_flat_memory_and_same_results_as_alone(knowledge: Knowledge) -> None:
    """Opt-in (pytest -m slow, about 90-170 s): the soak at full length."""
    mismatches, growth = _soak(knowledge, distinct=400, evaluations=100_000, warm_up=5_000)
    assert mismatches == 0
    assert growth < 10, f"RSS grew by {growth:.1f} MB over 100,000 evaluations"


def test_synthetic_profiles_are_valid_and_varied(knowledge: Knowledge) -> None:
    """The soak and the benchmarks stand on these profiles: each must evaluate, and together
    they must reach most rules (a generator that drifted from the model would reach few)."""
    rng = random.Random(3)
    profiles = [synthetic_profile(rng, index) for index in range(200)]
    reports = [evaluate(profile, knowledge, AS_OF) for profile in profiles]
    assert len({json.dumps(profile, sort_keys=True) for profile in profiles}) == 200
    fired = {line.rule for report in reports for line in report.rules_fired}
    rules = {rule.rule_id for rule in knowledge.rules}
    assert len(fired) >= 0.75 * len(rules), sorted(rules - fired)  # measured: 47 of 51
    assert sum(bool(report.ranked) for report in reports) >= 150  # measured: 177 of 200


NOTHING_MATCHES = """
import datetime as dt, shutil, sys, tempfile, pathlib, yaml
from bonecds import load_knowledge, evaluate
root = pathlib.Path(tempfile.mkdtemp())
for name in ("settings.yaml", "sources.yaml", "vocabulary.yaml"):
    shutil.copy(pathlib.Path(sys.argv[1]) / name, root / name)
rule = {"id": "only", "version": 1, "status": "draft", "title": "t", "kind": "note",
        "when": {"field": "ecog", "eq": 4}, "effects": [{"note": "n"}], "rationale": "r",
        "citations": [{"source": "R3"}]}
(root / "r.yaml").write_text(yaml.safe_dump({"rules": [rule]}))
k = load_knowledge(root)
for i in range(1500):
    evaluate({"ecog": i % 4}, k, dt.date(2026, 11, 23))
print("ok")
"""


def _survives(script: str) -> list[str]:
    """Run `script` in a fresh Python (a crash must not take pytest down); its output lines."""
    completed = subprocess.run(
        [sys.executable, "-c", script, str(RULES)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert completed.returncode == 0, completed.stderr[-500:]
    return completed.stdout.splitlines()


def test_a_patient_matching_no_rule_at_all_does_not_crash_the_process() -> None:
    # Without the engine's sentinel rule, durable_rules segfaults deleting such a session.
    assert _survives(NOTHING_MATCHES) == ["ok"]


ENGINE_FAILS_ONCE = """
import datetime as dt, sys
import durable_rules_engine
import bonecds.engine.durable as engine
from bonecds import InternalError, evaluate, load_knowledge
real = engine.durable.start_action_for_state
calls = []
def failing_once(handle, state):
    calls.append(state)
    if len(calls) == 1:
        raise durable_rules_engine.error("injected")
    return real(handle, state)
engine.durable.start_action_for_state = failing_once
k = load_knowledge(sys.argv[1])
try:
    evaluate({"ecog": 1}, k, dt.date(2026, 11, 23))
except InternalError as error:
    print("raised:", error)
for _ in range(20):
    evaluate({"ecog": 1}, k, dt.date(2026, 11, 23))
print("ok")
"""


def test_an_engine_error_mid_evaluation_is_raised_and_the_process_survives() -> None:
    # The failure leaves actions pending; deleting such a state unstarted aborts the process.
    assert _survives(ENGINE_FAILS_ONCE) == ["raised: rules engine failure (error)", "ok"]


def test_an_engine_failure_is_reported_as_itself_not_as_the_cleanup_after_it(
    knowledge: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = engine.durable.assert_fact

    def unreadable(handle: int, text: str) -> object:
        # A number durable_rules' JSON reader refuses: a genuine engine failure.
        return real(handle, text.replace('{"t":"p"', '{"t":"p","x":1e-06', 1))

    monkeypatch.setattr(engine.durable, "assert_fact", unreadable)
    with pytest.raises(InternalError, match="rules engine failure") as raised:
        evaluate(BREAST, knowledge, AS_OF)
    assert "release" not in str(raised.value)
    monkeypatch.undo()
    assert evaluate(BREAST, knowledge, AS_OF).ranked  # the engine is usable afterwards
