"""Every FHIR file of a published package or corpus through bonecds, as a quality team would run it.

    python -m benchmarks.sweep_fhir FOLDER [FOLDER ...]

Each `*.json` file in a folder is read; a Bundle is mapped as it is, any other resource alone in
a collection Bundle. The mapped patient is evaluated in English and in Chinese and written as
JSON, and the mapping notes are rendered in both languages. Counts: `ok`, `refused` (a
BonecdsError: a clear refusal, e.g. a deceased patient), `crashed` (anything else: a bug), and
files that are not JSON FHIR at all. Exit 1 on any crash. Not part of CI: the packages are large
and are not committed (`npm pack hl7.fhir.r4.examples`, `hl7.fhir.us.mcode`, `hl7.fhir.uv.ips`;
Synthea Bundles from github.com/smart-on-fhir/generated-sample-data, `R4/SYNTHEA/`). CI runs
the interop corpus (tests/interop/), which keeps a few of each with their expected mappings.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import AS_OF, RULES
from bonecds import BonecdsError, Knowledge, evaluate, load_knowledge
from bonecds.fhir.read import bundle_mapping

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def as_bundle(data: Any) -> dict[str, Any] | None:
    """The file's Bundle, or its one resource in a collection Bundle; None if not FHIR."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        return None
    if data["resourceType"] == "Bundle":
        return data
    entry = {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000", "resource": data}
    return {"resourceType": "Bundle", "type": "collection", "entry": [entry]}


def run(bundle: dict[str, Any], name: str, knowledge: Knowledge, as_of: dt.date) -> None:
    mapping = bundle_mapping(bundle, name, as_of)
    for language in ("en", "zh"):
        evaluate(mapping.profile, knowledge, as_of, language=language).to_json()
        mapping.texts(language)


def sweep(folder: Path, knowledge: Knowledge, as_of: dt.date) -> int:
    counts: collections.Counter[str] = collections.Counter()
    refusals: collections.Counter[str] = collections.Counter()
    crashes: dict[str, list[str]] = collections.defaultdict(list)
    seconds: list[float] = []
    files = sorted(folder.glob("*.json"))
    for path in files:
        try:
            bundle = as_bundle(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError):
            bundle = None
        if bundle is None:
            counts["not FHIR JSON"] += 1
            continue
        started = time.perf_counter()
        try:
            run(bundle, path.name, knowledge, as_of)
        except BonecdsError as error:
            counts["refused"] += 1
            refusals[_ID.sub("<id>", str(error).split(": ", 1)[-1])[:120]] += 1
        except Exception as error:  # a crash is what this sweep looks for
            counts["crashed"] += 1
            crashes[f"{type(error).__name__}: {str(error)[:120]}"].append(path.name)
        else:
            counts["ok"] += 1
            seconds.append(time.perf_counter() - started)
    print(f"{folder}: {len(files)} files: {dict(counts)}")
    if seconds:
        median, worst = statistics.median(seconds) * 1000, max(seconds) * 1000
        print(f"  map + two reports: median {median:.1f} ms, max {worst:.1f} ms")
    for reason, count in refusals.most_common(10):
        print(f"  refused {count}: {reason}")
    for crash, names in crashes.items():
        print(f"  CRASHED {len(names)}: {crash} (e.g. {', '.join(names[:3])})")
    return counts["crashed"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args(argv)
    knowledge = load_knowledge(RULES)
    crashed = sum(sweep(folder, knowledge, AS_OF) for folder in args.folders)
    sys.exit(1 if crashed else 0)


if __name__ == "__main__":
    main()
