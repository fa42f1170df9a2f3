"""A whole release through `check_results`: every output checked, nothing small left."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from trialvault.disclose.check import check_results
from trialvault.disclose.example import example_results, half_years
from trialvault.disclose.outputs import CheckedRelease
from trialvault.disclose.rules import describe
from trialvault.study.model import StudyFile


@pytest.fixture(scope="module")
def small_results(nwd_study: StudyFile):  # type: ignore[no-untyped-def]
    periods = half_years(dt.date(2020, 1, 1), dt.date(2021, 12, 31))
    return example_results(nwd_study, seed=3, scale=0.15, periods=periods)


@pytest.fixture(scope="module")
def release(small_results, nwd_study: StudyFile) -> CheckedRelease:  # type: ignore[no-untyped-def]
    return check_results(small_results, nwd_study)


def test_every_output_is_checked_with_context(release: CheckedRelease, nwd_study: StudyFile
                                              ) -> None:
    names = [o.name for o in release.outputs]
    assert names[:2] == ["flow", "cohort"]
    binary = [o.id for o in nwd_study.analysis.outcomes if o.kind == "binary"]
    others = [o.id for o in nwd_study.analysis.outcomes if o.kind != "binary"]
    assert all(f"events_{o}" in names for o in binary)
    assert all(f"mean_{o}" in names for o in others)
    assert {"estimates", "event_study"} <= set(names)
    for out in release.outputs:
        assert out.status in {"pass", "review", "fail"}
        assert out.context and out.rules
    assert "aged 12 to 17" in release.output("cohort").context


def test_no_count_output_shows_a_small_number(release: CheckedRelease) -> None:
    threshold = release.rules["threshold"]
    for out in release.outputs:
        if out.kind != "counts":
            continue
        for text in out.table.to_numpy().ravel():
            assert text == "c" or int(text) >= threshold, (out.name, text)
        assert out.audit["all_protected"] is True


def test_changes_name_the_rule_and_never_the_value(release: CheckedRelease,
                                                   nwd_study: StudyFile) -> None:
    events = release.output("events_residential_placement_12m")
    suppressed = [c for c in events.changes if c.action == "suppressed"]
    assert suppressed and all(c.rule in {"threshold", "zero", "secondary"} for c in suppressed)
    rules = nwd_study.disclosure
    for change in suppressed:
        # The reason is the rule's fixed wording (thresholds only), never the cell's value.
        assert change.reason.removeprefix("protects another suppressed quantity: ") == describe(
            change.rule, rules)
    assert set(json.loads(json.dumps(events.to_json()))["changes"][0]) == {
        "row", "column", "action", "rule", "reason"}


def test_json_round_trip(release: CheckedRelease) -> None:
    again = CheckedRelease.from_json(json.loads(json.dumps(release.to_json())))
    assert again.to_json() == release.to_json()
    assert again.output("cohort").numeric().shape == release.output("cohort").table.shape


def test_models_without_enough_residual_dof_are_withheld(small_results, nwd_study: StudyFile
                                                         ) -> None:  # type: ignore[no-untyped-def]
    est = small_results.estimates.copy()
    est.loc[0, "dof"] = 4
    est.loc[1, "dof"] = np.nan
    results = _replace(small_results, estimates=est, binary=small_results.binary.iloc[:0])
    out = check_results(results, nwd_study).output("estimates")
    row0 = out.table.iloc[0]
    assert list(row0[["estimate", "ci_low", "ci_high", "p_value", "ri_p_value"]]) == ["c"] * 5
    assert out.table.iloc[1]["estimate"] != "c"
    assert out.status == "review"
    assert {r.code for r in out.rules} == {"residual_dof", "missing"}


def test_event_study_points_from_few_children_are_suppressed(small_results, nwd_study: StudyFile
                                                             ) -> None:  # type: ignore[no-untyped-def]
    es = small_results.event_study.copy()
    es.loc[0, "n"] = 4
    out = check_results(_replace(small_results, event_study=es,
                                 binary=small_results.binary.iloc[:0]), nwd_study
                        ).output("event_study")
    assert out.table.iloc[0]["estimate"] == "c"
    assert out.status == "review"


def test_dominated_magnitude_cell_is_suppressed(small_results, nwd_study: StudyFile
                                                ) -> None:  # type: ignore[no-untyped-def]
    mag = small_results.magnitude.copy()
    k = mag.index[mag["outcome"] == "placement_moves_12m"][0]
    mag.loc[k, ["n", "total", "top1", "top2", "top_n"]] = [40, 20.0, 12.0, 6.0, 18.0]
    out = check_results(_replace(small_results, magnitude=mag,
                                 binary=small_results.binary.iloc[:0]), nwd_study
                        ).output("mean_placement_moves_12m")
    assert out.table.iloc[0, 0] == "c"
    assert any(c.rule == "dominance" for c in out.changes)


def _replace(results, **frames: pd.DataFrame):  # type: ignore[no-untyped-def]
    from dataclasses import replace
    return replace(results, **frames)
