"""The release report in a real headless Chromium: it renders, every figure loads, it prints,
and a report built from synthetic data says so at the top of every printed page — on an
example release and on the demo's own release, written by the real workflow.

Screenshots go to test-artifacts/report/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trialvault.disclose import check_results
from trialvault.disclose.example import example_results
from trialvault.report import render_report
from trialvault.report.render import SYNTHETIC_BANNER
from trialvault.study.documents import render
from trialvault.study.model import StudyFile

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "report"
META = {"release_id": "REL-EXAMPLE", "run_id": "example-run", "requested_by": "ana",
        "requested_at": "2026-11-25 10:00:00", "status": "approved", "note": "", "required": 2,
        "reviews": [], "approvals": [{"reviewer": "olu", "reviewed_at": "2026-11-25 11:00"},
                                     {"reviewer": "oma", "reviewed_at": "2026-11-25 12:00"}]}
SECTIONS = ("Summary", "Trial design", "Participant flow", "Baseline characteristics by "
            "condition", "Outcomes by condition", "Secondary outcomes", "Outcome trends by "
            "local authority", "Methods and limitations", "Disclosure control", "Privacy")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile) -> Path:
    study = nwd_study.replace(disclosure=nwd_study.disclosure.replace(table_period="year"))
    folder = tmp_path_factory.mktemp("release")
    release = check_results(example_results(study, seed=5, scale=0.1), study)
    (folder / "report.html").write_text(render_report(release, study, META), encoding="utf-8")
    (folder / "privacy-notice.html").write_text(render(study, "notice", "html"),
                                                encoding="utf-8")
    return folder / "report.html"


def rendered_check(browser: Any, report: Path, shot: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({ok: e.complete && e.naturalWidth > 100, "
               "w: e.naturalWidth, src: e.src.slice(0, 22)}))")
    assert len(images) >= 4, images
    assert all(i["ok"] and i["src"] == "data:image/png;base64," for i in images), images
    # Self-contained: nothing but the file itself (and its data URIs) is fetched.
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert not errors, errors
    assert page.locator("h1").inner_text() == "Evaluation of No Wrong Door"
    for section in SECTIONS:
        assert page.locator("h2", has_text=section).count() >= 1, section
    # The banner is the first thing on the page and stays in view while reading.
    banner = page.locator("#banner")
    assert SYNTHETIC_BANNER in banner.inner_text()
    box = banner.bounding_box()
    assert box and box["y"] <= 1 and box["width"] > 1000
    page.mouse.wheel(0, 4000)
    page.wait_for_timeout(200)
    box = banner.bounding_box()
    assert box and abs(box["y"]) <= 1
    box = page.locator("figure img").first.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 150
    # In print, the banner is fixed: Chromium repeats it at the top of every page.
    page.emulate_media(media="print")
    assert page.eval_on_selector("#banner", "e => getComputedStyle(e).position") == "fixed"
    assert page.locator("nav.toc").is_hidden()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    page.emulate_media(media="screen")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
    (ARTIFACTS / f"{shot}.pdf").write_bytes(pdf)
    page.close()


def test_example_report_renders_and_marks_synthetic_data(browser: Any, report_file: Path
                                                         ) -> None:
    rendered_check(browser, report_file, "report")


def test_demo_report_passes_the_rendered_check(browser: Any, demo_run: Any) -> None:
    report = demo_run.artefacts["report.html"]
    rendered_check(browser, report, "demo-report")
    html = report.read_text(encoding="utf-8")
    assert "checking-report" not in html  # the reviewers' report never leaves the vault


def test_report_prints_and_links_the_notice(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    page.goto(report_file.as_uri())
    page.click("text=privacy notice")
    page.wait_for_load_state("load")
    assert page.url.endswith("privacy-notice.html")
    assert "Privacy notice" in page.title()
    page.close()
