"""FHIR input cost, as ratios measured in one run (issue 13, "Fast enough for an EHR").

- API: FHIR R4 Bundle -> report, against the same patient as a profile -> report, interleaved,
  median CPU per patient, from the parsed data the API takes and from JSON text (the json
  module's parse included). Target <= 2x.
- Batch: a FHIR Bulk Data folder against the same patients as profile NDJSON, one worker
  (in this process), alternated, median CPU time of each run. Target <= 2x.

Each patient differs (id, weight), so no report memo is hit. Run:
`python -m benchmarks.fhir_ratio [--patients N] [--bulk N]`.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.interop.cases import bone_metastasis

from benchmarks.common import AS_OF, RULES, interleaved, machine
from bonecds import evaluate, load_knowledge
from bonecds.cohort.run import BatchOptions, run_batch
from bonecds.fhir.read import bundle_to_profile

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "fhir" / "breast-bone-mets.json"


def variants(bundle: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` copies of a Bundle, each another patient (id and weight differ)."""
    found = []
    for index in range(count):
        copied = copy.deepcopy(bundle)
        patient = next(
            e["resource"] for e in copied["entry"] if e["resource"]["resourceType"] == "Patient"
        )
        old = patient["id"]
        text = json.dumps(copied).replace(f"Patient/{old}", f"Patient/p{index}")
        copied = json.loads(text)
        for entry in copied["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                resource["id"] = f"p{index}"
            if resource.get("valueQuantity", {}).get("code") in ("kg", "[lb_av]"):
                resource["valueQuantity"]["value"] += index / 100
        copied["timestamp"] = AS_OF.isoformat()
        found.append(copied)
    return found


def profile_text(bundle: dict[str, Any]) -> str:
    profile = bundle_to_profile(bundle, "bench")
    return json.dumps(profile.model_dump(mode="json", exclude_none=True, exclude_defaults=True))


# A Bundle, its JSON text, its profile's data, that profile's JSON text
_Item = tuple[dict[str, Any], str, Any, str]


def api_ratios(knowledge: Any, bundles: list[dict[str, Any]]) -> dict[str, float]:
    """Median CPU per report of each pipeline, interleaved in one run: from the parsed data
    `evaluate` and `bundle_to_profile` take (what an embedding EHR passes), and from JSON text
    read with the json module (so the Bundle's parse, 113 KB for Jenny M, counts too)."""
    items = [(b, json.dumps(b), json.loads(profile_text(b)), profile_text(b)) for b in bundles]

    def report(profile: Any) -> str:
        return evaluate(profile, knowledge, AS_OF).to_json()

    pipelines: dict[str, Callable[[_Item], str]] = {
        "fhir data": lambda item: report(bundle_to_profile(item[0], "bench")),
        "profile data": lambda item: report(item[2]),
        "fhir text": lambda item: report(bundle_to_profile(json.loads(item[1]), "bench")),
        "profile text": lambda item: report(json.loads(item[3])),
    }
    for item in items[:20]:  # warm-up: imports, model classes
        for run in pipelines.values():
            run(item)
    timing = interleaved(pipelines, items, block=25)
    return {name: timing[name].median(cpu=True) for name in pipelines}


def bulk_folder(bundles: list[dict[str, Any]], folder: Path) -> None:
    by_type: dict[str, list[str]] = defaultdict(list)
    for bundle in bundles:
        for entry in bundle["entry"]:
            resource = entry["resource"]
            by_type[resource["resourceType"]].append(json.dumps(resource))
    folder.mkdir()
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def batch_ratio(knowledge: Any, bundles: list[dict[str, Any]]) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bulk_folder(bundles, work / "bulk")
        lines = work / "profiles.ndjson"
        lines.write_text("".join(profile_text(b) + "\n" for b in bundles), encoding="utf-8")
        times: dict[str, list[float]] = {"bulk": [], "ndjson": []}
        for run in range(3):
            for name, source in (("bulk", work / "bulk"), ("ndjson", lines)):
                out = work / f"{name}-{run}.ndjson"
                start = time.process_time()  # one worker runs in this process: CPU time
                run_batch(BatchOptions(source, out, workers=1, as_of=AS_OF), knowledge)
                times[name].append(time.process_time() - start)
    bulk, ndjson = statistics.median(times["bulk"]), statistics.median(times["ndjson"])
    return bulk, ndjson, bulk / ndjson


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=400, help="patients per API bundle kind")
    parser.add_argument("--bulk", type=int, default=1000, help="patients in the batch runs")
    args = parser.parse_args()
    knowledge = load_knowledge(RULES)
    print(f"machine: {machine()}")
    for label, bundle in (
        ("sample Bundle (15 resources)", json.loads(SAMPLE.read_text())),
        ("mCODE Jenny M + bone metastasis (41 resources)", bone_metastasis()),
    ):
        times = api_ratios(knowledge, variants(bundle, args.patients))
        for kind in ("data", "text"):
            fhir, profile = times[f"fhir {kind}"], times[f"profile {kind}"]
            shown = f"Bundle {fhir:.0f} µs, profile {profile:.0f} µs CPU (median)"
            print(f"API from {kind}, {label}: {shown}: {fhir / profile:.2f}x")
    bulk, ndjson, ratio = batch_ratio(
        knowledge, variants(json.loads(SAMPLE.read_text()), args.bulk)
    )
    shown = f"Bulk Data {bulk:.2f} s, NDJSON {ndjson:.2f} s CPU"
    print(f"batch, {args.bulk} patients, 1 worker: {shown}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
