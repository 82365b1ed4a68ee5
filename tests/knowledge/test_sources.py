"""The bibliography: every source can be found again (who, when, where) and every one is cited."""

from __future__ import annotations

import re

import pytest

from bonecds import Knowledge
from bonecds.knowledge.model import Source
from tests.conftest import RULES

YEAR = re.compile(r"\b(19|20)\d{2}\b")
# "Surname AB, ..." or "Surname-Surname A-B." at the start of the title.
AUTHORS = re.compile(r"^[A-Z][\w'\u2019-]+(?: [A-Z][\w'\u2019-]+)* [A-Z]{1,3}(?:-[A-Z])?[,.]")
ISSUERS = ("FDA", "EMA", "NICE", "StatPearls", "SAKK", "World Health Organization", "Medscape")
AGGREGATORS = ("120ty.net", "univadis", "suppr.wilddata", "vdocuments", "meddatax", "jesse.tg")
ARTEFACTS = ("Summary:", "Recommendations:", "....", ' :"', "bone tumours):")


def _sources(knowledge: Knowledge) -> dict[str, Source]:
    return dict(knowledge.base.sources)


def test_every_source_names_its_authors_or_issuer_a_year_and_a_url(knowledge: Knowledge) -> None:
    problems = []
    for key, source in _sources(knowledge).items():
        if source.file:  # the project's two seed reviews, kept as files (shared/sources)
            continue
        if not (AUTHORS.match(source.title) or any(body in source.title for body in ISSUERS)):
            problems.append(f"{key}: no authors or issuing body")
        if not YEAR.search(source.title):
            problems.append(f"{key}: no year")
        if not source.url.startswith("https://"):
            problems.append(f"{key}: no https URL")
    assert problems == []


def test_no_source_links_an_aggregator_or_keeps_a_copy_artefact(knowledge: Knowledge) -> None:
    for key, source in _sources(knowledge).items():
        assert not any(site in source.url for site in AGGREGATORS), key
        assert not re.search(r"://[^/]*\./", source.url), f"{key}: stray dot in the host"
        assert not any(mark in source.title for mark in ARTEFACTS), key


@pytest.mark.parametrize("key", ["R6", "R8", "R9"])
def test_labels_link_the_regulator(knowledge: Knowledge, key: str) -> None:
    url = _sources(knowledge)[key].url
    assert url.startswith(("https://www.accessdata.fda.gov/", "https://www.ema.europa.eu/"))


def test_every_source_is_cited(knowledge: Knowledge) -> None:
    cited = {c.source for rule in knowledge.base.rules for c in rule.citations}
    settings = (RULES / "settings.yaml").read_text(encoding="utf-8")
    cited |= set(re.findall(r"source: (R\d+)", settings))
    assert sorted(set(_sources(knowledge)) - cited) == []
