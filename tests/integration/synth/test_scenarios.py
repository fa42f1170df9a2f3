"""Named departures from the model (`--scenario`): what they plant and what the truth records."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from trialvault.evaluate.cohort import build_analysis_table
from trialvault.evaluate.headline import analyse_primary
from trialvault.evaluate.validation import load_harmonised_tables
from trialvault.study import StudyFile
from trialvault.synth import simulate, simulate_cohort


def test_children_in_care_for_years_with_moves_never_count_as_entering_care(
        nwd_study: StudyFile) -> None:
    world = simulate(nwd_study, seed=4, scale=0.15, effects={"entered_care_12m": -0.04},
                     scenario={"in_care_moves": 1.5})
    tables = world.harmonised()
    episodes = tables["cla_episodes"].to_pandas()
    # The scenario puts placement changes of long-stay children inside the data period ...
    in_window = episodes[(episodes["episode_start_date"].astype(str) >= "2019-01-01")
                         & (episodes["reason_new_episode"] != "S")]
    assert len(in_window) > 200
    con = duckdb.connect()
    load_harmonised_tables(con, tables)
    analysis = build_analysis_table(con, nwd_study).analysis
    groups = analysis["cohort_group"].value_counts()
    # ... some are indexed while in care (an assessment): the named subgroup, never an entry.
    assert groups["looked_after"] > 10
    looked_after = analysis[analysis["cohort_group"] == "looked_after"]
    assert looked_after["entered_care_12m"].isna().all()
    # The edge-of-care cohort is exactly the generator's: its care entries are the planted ones.
    drawn = world.drawn_outcomes()
    edge = analysis[analysis["cohort_group"] == "edge_of_care"].merge(
        drawn.assign(child_id=drawn["child_id"].astype(str)), on=["la_code", "child_id"])
    assert len(edge) == (analysis["cohort_group"] == "edge_of_care").sum()
    assert (edge["entered_care_12m"] == edge["care"].astype(float)).all()


def test_truth_records_the_estimand_under_a_ramp(nwd_study: StudyFile) -> None:
    _, plain = simulate_cohort(nwd_study, seed=2, effects={"entered_care_12m": -0.06})
    _, ramp = simulate_cohort(nwd_study, seed=2, effects={"entered_care_12m": -0.06},
                              scenario={"effect_ramp_quarters": 8})
    assert plain["estimand"]["value"] == pytest.approx(-0.06, abs=1e-9)
    # Exposure times 0-16 quarters: the ramp dilutes the mean effect among the exposed.
    assert -0.05 < ramp["estimand"]["value"] < -0.035
    world = simulate(nwd_study, seed=2, scale=0.1, effects={"entered_care_12m": -0.06},
                     scenario={"effect_ramp_quarters": 8})
    truth = world.truth()
    assert truth["scenario"] == {"effect_ramp_quarters": 8}
    assert -0.055 < truth["estimand"]["value"] < -0.03


def test_a_tenth_off_an_eight_percent_baseline_is_clipped_and_recorded(
        nwd_study: StudyFile) -> None:
    frame, truth = simulate_cohort(nwd_study, seed=5, effects={"entered_care_12m": -0.10})
    value = truth["estimand"]["value"]
    assert -0.10 < value < -0.06  # clipped at 0 for low-risk children
    assert frame.loc[frame["exposed"] == 1, "entered_care_12m"].mean() < 0.02 + 0.6 * 0.05


def test_the_fast_path_and_the_plans_primary_analysis(nwd_study: StudyFile) -> None:
    frame, truth = simulate_cohort(nwd_study, seed=9, effects={"entered_care_12m": -0.05})
    assert 16_000 < len(frame) < 20_000  # the trial's scale
    result = analyse_primary(frame, nwd_study)
    assert result.method == nwd_study.analysis.primary_inference
    assert result.model == nwd_study.analysis.primary_model
    assert result.estimand == "mean_effect_among_exposed"
    assert result.ci_low < truth["estimand"]["value"] < result.ci_high
    if result.method == "randomisation":
        # An exact test over the orderings of the five LAs' start dates (5! = 120): a p value
        # on that grid and no degrees of freedom.
        assert not np.isfinite(result.df)
        assert result.p_value * 120 == pytest.approx(round(result.p_value * 120))
    else:  # a t reference with few clusters
        assert np.isfinite(result.df) and result.df < 5
