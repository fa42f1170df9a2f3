"""The report shows only released numbers, follows the analysis plan, marks synthetic data,
takes every figure's LA order and step dates from the study, and fetches nothing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from trialvault.disclose import CheckedRelease, check_results
from trialvault.disclose.example import example_results
from trialvault.report import render_report
from trialvault.report.render import SYNTHETIC_BANNER
from trialvault.study.model import StudyFile

META = {"release_id": "REL-T", "run_id": "run", "requested_by": "ana",
        "requested_at": "2026-11-25 10:00:00", "status": "approved", "note": "", "required": 2,
        "reviews": [], "approvals": [{"reviewer": "olu", "reviewed_at": "2026-11-25 11:00"}]}


class _Page(HTMLParser):
    """Cells of each <table data-output=...>, every tag, and the figures' step marks."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[str]] = {}
        self.current: str | None = None
        self.in_cell = False
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.steps: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "figure":
            self.steps.append(json.loads(a.get("data-steps") or "{}"))
        if tag == "table" and a.get("data-output"):
            self.current = str(a["data-output"])
            self.tables[self.current] = []
        if tag == "td" and self.current and a.get("class") != "label":
            self.in_cell = True
            self.tables[self.current].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.in_cell = False
        if tag == "table":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.in_cell and self.current:
            self.tables[self.current][-1] += data.strip()


@pytest.fixture(scope="module")
def study(nwd_study: StudyFile) -> StudyFile:
    keep = [o for o in nwd_study.analysis.outcomes if o.id in (
        "entered_care_12m", "cp_plan_12m", "neet_16_17", "placement_moves_12m")]
    return nwd_study.replace(
        analysis=nwd_study.analysis.replace(outcomes=keep),
        disclosure=nwd_study.disclosure.replace(table_period="year"))


@pytest.fixture(scope="module")
def release(study: StudyFile) -> CheckedRelease:
    return check_results(example_results(study, seed=9, scale=0.12), study)


@pytest.fixture(scope="module")
def html(release: CheckedRelease, study: StudyFile) -> str:
    return render_report(release, study, META)


def test_tables_in_the_report_are_the_released_tables(release: CheckedRelease, html: str
                                                      ) -> None:
    page = _Page()
    page.feed(html)
    assert {"flow", "allocation", "cohort"} <= set(page.tables)
    for name, cells in page.tables.items():
        assert cells == [str(v) for v in release.output(name).table.to_numpy().ravel()], name


def test_every_figure_marks_each_la_at_its_own_step(html: str, study: StudyFile) -> None:
    page = _Page()
    page.feed(html)
    expected = {study.la(s.la).name: s.step_date.isoformat() for s in study.design.rollout}
    marked = [m for m in page.steps if m]
    assert len(marked) >= 2  # the rollout diagram and at least one trend figure
    for marks in marked:
        assert marks == expected


def test_synthetic_data_carry_the_banner_and_real_data_do_not(release: CheckedRelease,
                                                              study: StudyFile, html: str
                                                              ) -> None:
    assert html.count(SYNTHETIC_BANNER) >= 2  # the fixed banner and the footer
    assert "[SYNTHETIC DATA]" in html.split("</title>")[0]
    from dataclasses import replace
    real = render_report(replace(release, data_origin="real"), study, META)
    assert SYNTHETIC_BANNER not in real


def test_headline_is_one_analysis_the_plans_primary(release: CheckedRelease, html: str,
                                                    study: StudyFile) -> None:
    est = release.output("estimates").table
    primary = est[(est["outcome"] == study.analysis.primary_outcome.id)
                  & (est["primary"] == "yes") & (est["population"] == "main")].iloc[0]
    head = html[html.index('id="headline"'):html.index("</div>\n<p class=\"small\">")]
    assert f"{float(primary['estimate']):.3f}" in head
    assert f"{float(primary['ci_low']):.3f} to {float(primary['ci_high']):.3f}" in head
    assert "0.000" not in re.sub(r"-?0\.000\d", "", html.split("<footer")[0])


def test_methods_follow_the_plan_and_the_outcome_kinds(html: str, study: StudyFile) -> None:
    assert "Illustrative schedule" in html and "999 draws" in html
    assert "rate ratios from a Poisson" in html and "odds ratios from a logistic" in html
    assert "logit, lpm" not in html
    assert f"multiplicity by {study.analysis.multiplicity}" in html
    assert re.search(r"counts below 10 suppressed, zeros too", html)
    for section in ("Baseline characteristics by condition", "Outcomes by condition",
                    "Participant flow", "Secondary outcomes"):
        assert section in html


def test_self_contained_and_script_free(html: str) -> None:
    page = _Page()
    page.feed(html)
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "link")]
    srcs = [a.get("src") or "" for t, a in page.tags if t == "img"]
    assert len(srcs) >= 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = [a.get("href") or "" for t, a in page.tags if t == "a"]
    assert "privacy-notice.html" in hrefs
    assert all(h.startswith(("#", "privacy-notice.html")) for h in hrefs)
