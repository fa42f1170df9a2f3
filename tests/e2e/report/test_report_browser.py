"""The release report in a real headless Chromium: it renders, every figure loads, it prints.

Screenshots go to test-artifacts/report/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trialvault.disclose import check_results
from trialvault.disclose.example import example_results
from trialvault.report import render_report
from trialvault.study.documents import render
from trialvault.study.model import StudyFile

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "report"
META = {"release_id": "REL-EXAMPLE", "run_id": "example-run", "requested_by": "ana",
        "requested_at": "2026-11-25 10:00:00", "status": "approved", "note": "",
        "reviews": [{"reviewer": "olu", "role": "output-checker", "decision": "approve",
                     "comment": "checked", "reviewed_at": "2026-11-25 11:00:00"}]}



@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile) -> Path:
    folder = tmp_path_factory.mktemp("release")
    release = check_results(example_results(nwd_study, seed=5), nwd_study)
    (folder / "report.html").write_text(render_report(release, nwd_study, META),
                                        encoding="utf-8")
    (folder / "privacy-notice.html").write_text(render(nwd_study, "notice", "html"),
                                                encoding="utf-8")
    return folder / "report.html"


def test_report_renders_with_every_figure_loaded(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.goto(report_file.as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({ok: e.complete && e.naturalWidth > 100, "
               "w: e.naturalWidth, src: e.src.slice(0, 22)}))")
    assert len(images) >= 6, images
    assert all(i["ok"] and i["src"] == "data:image/png;base64," for i in images), images
    # Self-contained: nothing but the file itself (and its data URIs) is fetched.
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert not errors, errors
    assert page.locator("h1").inner_text() == "Evaluation of No Wrong Door"
    for section in ("Summary", "Trial design", "Cohort flow", "Outcome trends by local "
                    "authority", "Primary results", "Sensitivity analyses",
                    "Methods and limitations", "Privacy"):
        assert page.locator("h2", has_text=section).count() == 1, section
    # Rendered, not just present: the rollout diagram is laid out at a visible size.
    box = page.locator("figure img").first.bounding_box()
    assert box and box["width"] > 400 and box["height"] > 150
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "report-top.png"))
    page.close()


def test_report_prints_and_links_the_notice(browser: Any, report_file: Path) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    page.goto(report_file.as_uri())
    page.emulate_media(media="print")
    assert page.locator("nav.toc").is_hidden()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    page.emulate_media(media="screen")
    page.click("text=privacy notice")
    page.wait_for_load_state("load")
    assert page.url.endswith("privacy-notice.html")
    assert "Privacy notice" in page.title()
    page.close()
