"""The report shows only released numbers, says what the study file says, fetches nothing."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest

from trialvault.disclose import CheckedRelease, check_results
from trialvault.disclose.example import example_results, half_years
from trialvault.report import render_report
from trialvault.study.model import StudyFile

META = {"release_id": "REL-T", "run_id": "run", "requested_by": "ana",
        "requested_at": "2026-11-25 10:00:00", "status": "approved", "note": "",
        "reviews": [{"reviewer": "olu", "role": "output-checker", "decision": "approve",
                     "comment": "ok", "reviewed_at": "2026-11-25 11:00:00"}]}


class _Tables(HTMLParser):
    """Cells of each <table data-output=...>, by output name."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[str]] = {}
        self.current: str | None = None
        self.in_cell = False
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
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
def release(nwd_study: StudyFile) -> CheckedRelease:
    periods = half_years(dt.date(2021, 1, 1), dt.date(2022, 12, 31))
    results = example_results(nwd_study, seed=9, scale=0.5, periods=periods)
    est = results.estimates.copy()
    est.loc[est["outcome"] == nwd_study.analysis.primary_outcome.id, "dof"] = [5, 5000, 5000]
    from dataclasses import replace
    return check_results(replace(results, estimates=est), nwd_study)


@pytest.fixture(scope="module")
def html(release: CheckedRelease, nwd_study: StudyFile) -> str:
    return render_report(release, nwd_study, META)


def test_tables_in_the_report_are_the_released_tables(release: CheckedRelease, html: str
                                                      ) -> None:
    parser = _Tables()
    parser.feed(html)
    assert {"flow", "cohort", "events_entered_care_12m"} <= set(parser.tables)
    for name, cells in parser.tables.items():
        assert cells == [str(v) for v in release.output(name).table.to_numpy().ravel()], name


def test_self_contained_and_script_free(html: str) -> None:
    parser = _Tables()
    parser.feed(html)
    assert not [t for t, _ in parser.tags if t in ("script", "iframe", "link")]
    srcs = [a.get("src") or "" for t, a in parser.tags if t == "img"]
    assert len(srcs) >= 6 and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = [a.get("href") or "" for t, a in parser.tags if t == "a"]
    assert "privacy-notice.html" in hrefs
    assert all(h.startswith(("#", "privacy-notice.html")) for h in hrefs)


def test_withheld_model_is_shown_as_suppressed(html: str) -> None:
    assert "withheld: too few residual degrees of freedom" in html


def test_methods_follow_the_study_file(release: CheckedRelease, nwd_study: StudyFile,
                                       html: str) -> None:
    assert "Illustrative schedule" in html and "999 draws" in html
    assert re.search(r"counts below 10 suppressed, zeros too", html)
    real = nwd_study.model_copy(update={"design": nwd_study.design.model_copy(
        update={"illustrative_schedule": False})})
    other = render_report(release, real, META, notice_href=None)
    assert "Illustrative schedule" not in other
    assert 'href="privacy-notice.html"' not in other
