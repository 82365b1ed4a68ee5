"""`bonecds evaluate -f html`: one self-contained, escaped page, checked in a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bonecds import Knowledge, evaluate
from bonecds.cli.app import app
from bonecds.report.render.html import render_html
from bonecds.testing.scenarios import load_scenario
from tests.conftest import FIXTURES

SAMPLE = FIXTURES / "sample-breast-bone-mets.yaml"
CONTRAINDICATED = FIXTURES / "a5-moderate-crcl-29-renal-caution.yaml"
EMERGENCY = FIXTURES / "a1-escc-2-fires.yaml"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = '<img src=x onerror="alert(1)">&amp;"'


def _page(path: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["evaluate", str(path), "-f", "html", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_page_is_self_contained_and_needs_no_script() -> None:
    page = _page(SAMPLE)
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "<link" not in page
    assert not re.search(r"""(src|url\()\s*=?\s*["']?https?:""", page)  # no fetched resource
    assert "<style>" in page


def test_page_carries_options_cautions_values_sources_notice_and_the_basis(
    knowledge: Knowledge,
) -> None:
    page = _page(SAMPLE)
    r3 = knowledge.base.sources["R3"]
    for text in (
        "NOTICE: Research prototype",
        "conditional on dental.exam_done",  # the badge names the data the option needs
        "120 mg SC every 4 weeks",
        "renal-dose-adjustment",
        "derived.crcl_ml_min",
        "computed (Cockcroft-Gault",
        "age_years = 67.0",
        "Basis for independent review",
        "Patient data the rules read",
        "The logic, rule by rule",
        "[met] derived.crcl_ml_min &gt;= 40",
        f'<a href="{escape(r3.url)}">{escape(r3.title)}</a>',
        '<a href="#src-R3">R3</a>',
    ):
        assert text in page, text


def test_contraindicated_options_stand_apart_with_their_reasons() -> None:
    page = _page(CONTRAINDICATED)
    contra = page[page.index("<h2>Contraindicated") :]
    ranked = page[page.index("<h2>Emergencies and management") : page.index("<h2>Contraindicated")]
    assert 'id="contra-zoledronic-acid"' in contra
    assert 'id="option-zoledronic-acid"' not in ranked
    assert "creatinine clearance" in contra.lower()


def test_every_text_is_escaped(knowledge: Knowledge) -> None:
    loaded, profile = load_scenario(SAMPLE)
    profile = profile.model_copy(update={"patient_id": HOSTILE})
    page = render_html(evaluate(profile, knowledge, loaded.as_of, explain=True))
    assert "<img" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;&quot;" in page


def test_chinese_page_declares_its_language_and_uses_chinese_headings() -> None:
    page = _page(SAMPLE, "--lang", "zh")
    assert '<html lang="zh-Hans">' in page
    assert "供独立核查的依据" in page
    assert "Basis for independent review" not in page


# ---------------------------------------------------------------- in a real browser

# A harness for the test only (the page itself carries no script): the page in an iframe of
# the width under test (a headless window is at least 500 px wide), and a check that writes
# the page's scroll width and the frame's width into the DOM that --dump-dom prints.
HARNESS = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="page" style="border:0;width:{width}px;height:1600px" srcdoc="{page}"></iframe>
<script>
window.addEventListener("load", function () {{
  var doc = document.getElementById("page").contentDocument;
  var text = doc.documentElement.scrollWidth + "/" + doc.documentElement.clientWidth;
  document.body.insertAdjacentHTML("beforeend", "<p id='overflow-check'>" + text + "</p>" +
    "<pre id='page-text'>" + doc.body.innerText.replace(/</g, "&lt;") + "</pre>");
}});
</script></body></html>"""


def _chromium(url: str, tmp: Path, width: int, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={width},1600",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scenario", [SAMPLE, EMERGENCY, CONTRAINDICATED], ids=lambda p: p.stem)
def test_page_renders_in_chromium_without_horizontal_overflow(
    tmp_path: Path, width: int, scenario: Path
) -> None:
    page = _page(scenario)
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS.format(width=width, page=escape(page)), encoding="utf-8")
    dom = _chromium(harness.as_uri(), tmp_path, 1280, "--dump-dom").stdout
    found = re.search(r"id=\"overflow-check\">(\d+)/(\d+)<", dom)
    assert found, "the check did not run"
    scroll, inner = map(int, found.groups())
    assert inner == width
    assert scroll <= inner, f"the page is {scroll} px wide in a {inner} px frame"
    for text in ("NOTICE: Research prototype", "WHAT NOW", "Basis for independent review"):
        assert text in dom
    shot = tmp_path / f"{scenario.stem}-{width}.png"
    page_file = tmp_path / "page.html"
    page_file.write_text(page, encoding="utf-8")
    _chromium(page_file.as_uri(), tmp_path, width, f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000
