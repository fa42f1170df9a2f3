"""A whole release through `check_results`: every output checked, two audiences kept apart,
nothing small left, cluster-level rules for models, means that would pin a small total
withheld, and a later release checked against an earlier one."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from trialvault.disclose import check
from trialvault.disclose.across import Earlier
from trialvault.disclose.check import MEANS, check_results
from trialvault.disclose.example import example_results
from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.outputs import CheckedRelease, fmt_p
from trialvault.study.model import StudyFile

RULE_CODES = ("threshold", "zero", "secondary", "rounding", "dominance", "p_ratio", "all_same",
              "nonzero", "residual_dof", "min_clusters")


@pytest.fixture(scope="module")
def study(nwd_study: StudyFile) -> StudyFile:
    # Yearly tables and four outcomes keep the linear programs small for unit tests.
    keep = [o for o in nwd_study.analysis.outcomes if o.id in (
        "entered_care_12m", "residential_placement_12m", "neet_16_17", "placement_moves_12m")]
    return nwd_study.replace(
        analysis=nwd_study.analysis.replace(outcomes=keep),
        disclosure=nwd_study.disclosure.replace(table_period="year"))


@pytest.fixture(scope="module")
def small_results(study: StudyFile) -> ResultsInput:
    return example_results(study, seed=3, scale=0.08)


@pytest.fixture(scope="module")
def release(small_results: ResultsInput, study: StudyFile) -> CheckedRelease:
    return check_results(small_results, study)


def test_every_output_is_checked(release: CheckedRelease, study: StudyFile) -> None:
    names = [o.name for o in release.outputs]
    assert names[:3] == ["flow", "allocation", "cohort"]
    binary = [o.id for o in study.analysis.outcomes if o.kind == "binary"]
    assert all(f"events_{o}" in names for o in binary)
    assert {"outcomes_by_condition", "missing_data", "baseline", MEANS, "estimates",
            "event_study"} <= set(names)
    assert set(release.reviews) == set(names)
    assert "aged 12 to 17" in release.output("cohort").context
    assert [d["code"] for d in release.la_order] == [str(c) for c in study.la_codes]


def test_no_count_output_shows_a_small_number(release: CheckedRelease) -> None:
    threshold = release.rules["threshold"]
    for out in release.outputs:
        if out.kind != "counts":
            continue
        for text in out.table.to_numpy().ravel():
            assert text in ("c", "z") or int(text) >= threshold, (out.name, text)
    findings = [f for r in release.reviews.values() for f in r.audit]
    assert len(findings) > 50 and all(f["protected"] for f in findings)


def test_what_leaves_says_nothing_about_single_cells(release: CheckedRelease) -> None:
    public = json.dumps([o for o in release.public_json()["outputs"]
                         if o["kind"] in ("counts", "magnitude")])
    # No rule code next to a cell, no list of rounded cells, no true value of a changed cell.
    for code in RULE_CODES:
        assert f'"{code}"' not in public, code
    assert '"changes"' not in public and '"cells"' not in public and '"audit"' not in public
    internal = release.internal_json()
    events = internal["reviews"]["events_residential_placement_12m"]
    hidden = [c for c in events["cells"] if c["action"] == "suppressed"]
    assert hidden and all(c["value"] is not None and c["rule"] for c in hidden)
    # Which suppressed quantity each secondary cell protects is recorded for reviewers.
    secondary = [c for r in internal["reviews"].values() for c in r["cells"]
                 if c["rule"] == "secondary"]
    assert secondary and all(c["protects"] for c in secondary)


def test_json_round_trip(release: CheckedRelease) -> None:
    again = CheckedRelease.from_json(json.loads(json.dumps(release.public_json())),
                                     json.loads(json.dumps(release.internal_json())))
    assert again.public_json() == release.public_json()
    assert again.internal_json() == release.internal_json()
    assert again.status == release.status


def test_models_below_cluster_level_dof_or_clusters_are_withheld(
        small_results: ResultsInput, study: StudyFile) -> None:
    est = small_results.estimates.copy()
    est.loc[0, "params"] = est.loc[0, "cells"] - 4  # 4 residual dof at the LA × period level
    est.loc[1, "clusters"] = 1
    # (the model checks alone: the count tables are the same as in `release`)
    out, review = check._estimates(replace(small_results, estimates=est), study)
    table = out.table
    assert list(table.iloc[0][["estimate", "ci_low", "ci_high", "p_value"]]) == ["c"] * 4
    assert table.iloc[1]["estimate"] == "c" and table.iloc[2]["estimate"] != "c"
    rules = {c.rule for c in review.cells if c.action == "withheld"}
    assert rules == {"residual_dof", "min_clusters"}


def test_event_study_points_from_one_la_are_suppressed(small_results: ResultsInput,
                                                       study: StudyFile) -> None:
    es = small_results.event_study.copy()
    es.loc[0, "clusters"] = 1
    es.loc[1, "n"] = 4
    out, _ = check._series(replace(small_results, event_study=es), study)
    assert out.table.iloc[0]["estimate"] == "c" and out.table.iloc[1]["estimate"] == "c"
    assert out.table.iloc[2]["estimate"] != "c"


def test_a_mean_resting_on_few_non_zero_children_is_withheld(small_results: ResultsInput,
                                                             study: StudyFile) -> None:
    mag = small_results.magnitude.copy()
    # 400 children, 6 with a move: the mean (0.02) times n would give the 8 moves away.
    mag.loc[0, ["n", "nonzero", "total", "top1", "top2", "top_n", "minimum", "maximum"]] = [
        400, 6, 8.0, 2.0, 2.0, 4.0, 0.0, 2.0]
    mag.loc[1, ["n", "nonzero", "total", "top1", "top2", "top_n", "minimum", "maximum"]] = [
        400, 60, 90.0, 60.0, 25.0, 85.0, 0.0, 60.0]  # two children dominate
    out, review, _ = check._means(replace(small_results, magnitude=mag), study, [])
    table = out.table
    assert (table.iloc[0] == "c").all()
    rules = {c.rule for c in review.cells if c.action == "suppressed"}
    assert {"nonzero", "dominance"} <= rules


def test_p_values_are_never_printed_as_zero() -> None:
    assert fmt_p(0.0) == "< 0.001" and fmt_p(0.0004) == "< 0.001"
    assert fmt_p(0.0206) == "0.021" and fmt_p(float("nan")) == ""


def test_a_later_release_keeps_earlier_suppressions_and_is_audited_jointly(
        small_results: ResultsInput, release: CheckedRelease, study: StudyFile) -> None:
    # One child erased from the largest stratum between the two releases.
    strata = small_results.strata.copy()
    k = int(strata["n"].idxmax())
    strata.loc[k, "n"] -= 1
    key = tuple(strata.loc[k, ["la_code", "period", "exposed"]])
    outcomes = small_results.outcomes.copy()
    hit = (outcomes[["la_code", "period", "exposed"]].apply(tuple, axis=1) == key)
    outcomes.loc[hit & (outcomes["undefined"] > 0), "undefined"] -= 1
    fixed = outcomes.loc[hit & ~(outcomes["undefined"] >= 0)]
    assert fixed.empty
    for o in outcomes.loc[hit, "outcome"]:
        row = hit & (outcomes["outcome"] == o)
        total = outcomes.loc[row, ["measured", "missing", "undefined"]].sum(axis=1).iloc[0]
        if total > strata.loc[k, "n"]:
            outcomes.loc[row, "measured"] -= 1
            events = outcomes.loc[row, "events"].iloc[0]
            outcomes.loc[row, "events"] = min(events, outcomes.loc[row, "measured"].iloc[0])
    base = small_results.baseline.copy()
    for char in base["characteristic"].unique():
        rows = base[(base["characteristic"] == char) & (base["exposed"] == key[2])
                    & (base["n"] > 0)].index
        base.loc[rows[0], "n"] -= 1
    later = replace(small_results, strata=strata, outcomes=outcomes, baseline=base)
    earlier = Earlier.from_internal("REL-1", release.internal_json())
    assert earlier is not None
    second = check_results(later, study, earlier=[earlier])
    assert len(second.across) == 1 and second.across[0]["all_protected"]
    assert second.across[0]["intruder_model"] == "removals only"
    before = {(o.name, r, c) for o in release.outputs if o.kind == "counts"
              for r in o.table.index for c in o.table.columns if o.table.loc[r, c] == "c"}
    after = {(o.name, r, c) for o in second.outputs if o.kind == "counts"
             for r in o.table.index for c in o.table.columns if o.table.loc[r, c] == "c"}
    assert before <= after


def test_structure_for_later_releases_stays_inside(release: CheckedRelease) -> None:
    structure = release.internal_json()["structure"]
    assert structure["atoms"] and structure["cells"] and structure["identities"]
    assert "structure" not in release.public_json()
    values = np.array([v for _, v, _ in structure["atoms"]])
    assert (values >= 0).all()
    assert isinstance(pd.DataFrame(structure["cells"]), pd.DataFrame)
