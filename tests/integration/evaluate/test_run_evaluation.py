"""run_evaluation end to end on generated harmonised tables, and storing its results."""

from __future__ import annotations

import json
from collections.abc import Callable

import duckdb
import pytest

from trialvault.evaluate.results import TABLES, EvaluationResults, write_results
from trialvault.evaluate.run import run_evaluation
from trialvault.evaluate.summary import render_summary
from trialvault.study.model import StudyFile

PLANTED = 0.15


@pytest.fixture(scope="module")
def evaluated(nwd_study: StudyFile, toy_vault_con: Callable[..., duckdb.DuckDBPyConnection]
              ) -> tuple[duckdb.DuckDBPyConnection, EvaluationResults]:
    con = toy_vault_con(nwd_study, 1, per_cell=30, effect=PLANTED)
    return con, run_evaluation(con, nwd_study)


def test_cohort_counts_cover_every_la_and_period(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]) -> None:
    _, res = evaluated
    counts = res.cohort_counts
    assert res.cohort_size == 5 * 24 * 30 == counts["children"].sum()
    assert counts.groupby("la_code")["period"].nunique().tolist() == [24] * 5
    assert set(res.exposure_counts["exposed"]) == {0, 1}
    assert res.excluded_children == 0


def test_primary_estimates_recover_the_planted_risk_difference(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]) -> None:
    _, res = evaluated
    rd = res.primary("difference")
    assert rd["measure"] == "risk_difference"
    assert rd["ci_low"] < PLANTED < rd["ci_high"]
    assert res.primary("ratio")["estimate"] > 1
    few = res.few_cluster[res.few_cluster["outcome"] == "entered_care_12m"].set_index("method")
    assert few.loc["randomisation", "replicates"] == 120
    assert few.loc["randomisation", "p_value"] == pytest.approx(1 / 120)  # most extreme
    assert few.loc["randomisation", "ci_low"] < PLANTED < few.loc["randomisation", "ci_high"]
    assert few.loc["wild_cluster_bootstrap", "replicates"] == 999
    assert few.loc["wild_cluster_bootstrap", "ci_low"] < PLANTED
    assert few.loc["wild_cluster_bootstrap", "estimate"] == pytest.approx(rd["estimate"])


def test_every_outcome_has_both_models_and_callaway_santanna(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults],
        nwd_study: StudyFile) -> None:
    _, res = evaluated
    ids = [o.id for o in nwd_study.analysis.outcomes]
    # NEET and attendance rows are absent in this toy vault: those outcomes are never measured.
    measured = [i for i in ids if i not in ("neet_16_17", "unauthorised_absence_rate")]
    assert sorted(res.estimates["outcome"].unique()) == sorted(measured) or \
        set(measured) <= set(res.estimates["outcome"])
    assert set(res.did_aggregates["type"]) == {"simple", "group", "dynamic", "calendar"}
    es = res.event_study[res.event_study["outcome"] == "entered_care_12m"]
    assert es["event_time"].min() < 0 < es["event_time"].max()
    post = res.did_aggregates.query("outcome == 'entered_care_12m' and type == 'simple'").iloc[0]
    assert post["ci_low"] < PLANTED < post["ci_high"]


def test_seed_changes_only_the_bootstrap(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults],
        nwd_study: StudyFile) -> None:
    con, res = evaluated
    again = run_evaluation(con, nwd_study, seed=nwd_study.analysis.seed)
    other = run_evaluation(con, nwd_study, seed=1)
    assert again.few_cluster.equals(res.few_cluster)
    wcb = other.few_cluster["method"] == "wild_cluster_bootstrap"
    assert not other.few_cluster[wcb]["ci_low"].equals(res.few_cluster[wcb]["ci_low"])
    assert other.few_cluster[~wcb].equals(res.few_cluster[~wcb])


def test_write_results_stores_every_table_under_one_run_id(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]) -> None:
    con, res = evaluated
    first = write_results(con, res, {"study_sha256": "abc"}, own_transaction=True)
    second = write_results(con, res, own_transaction=True)
    assert first != second
    for table in TABLES:
        n = con.execute(f"SELECT count(*) FROM results.{table} WHERE run_id = ?",
                        [first]).fetchone()
        assert n == (len(getattr(res, table)),), table
    prov = json.loads(con.execute("SELECT provenance FROM results.runs WHERE run_id = ?",
                                  [first]).fetchone()[0])  # type: ignore[index]
    assert prov["seed"] == res.seed and prov["study_sha256"] == "abc"
    assert {"duckdb", "statsmodels", "csdid"} <= set(prov["packages"])


def test_summary_names_the_primary_outcome_and_the_inference(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]) -> None:
    text = render_summary(evaluated[1])
    assert "entered_care_12m" in text and "RI, 120 assignments" in text
    assert "WCB, 999 draws" in text and "risk_difference" in text


def test_a_failed_write_leaves_no_partial_run(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]) -> None:
    con, res = evaluated
    write_results(con, res, own_transaction=True)
    before = con.execute("SELECT count(*) FROM results.runs").fetchone()
    broken = EvaluationResults(**{**res.__dict__,
                                  "did_levels": res.did_levels.drop(columns="att")})
    with pytest.raises(KeyError):
        write_results(con, broken, own_transaction=True)
    assert con.execute("SELECT count(*) FROM results.runs").fetchone() == before


def test_cohort_on_the_engine_layer_gives_the_same_estimates(
        nwd_study: StudyFile, evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults]
        ) -> None:
    """`evaluate --engine`: the same SQL through the portable layer, the same answer."""
    from trialvault.engines import DuckDBEngine

    con, default = evaluated
    engine = DuckDBEngine()
    try:
        via_engine = run_evaluation(con, nwd_study, engine=engine, did_outcomes="primary")
    finally:
        engine.close()
    assert via_engine.cohort_size == default.cohort_size
    cols = ["outcome", "model", "estimate", "ci_low", "ci_high"]
    left = default.estimates[cols].sort_values(["outcome", "model"]).reset_index(drop=True)
    right = via_engine.estimates[cols].sort_values(["outcome", "model"]).reset_index(drop=True)
    assert left.round(10).equals(right.round(10))


def test_output_names_the_estimand_and_the_primary_inference(
        evaluated: tuple[duckdb.DuckDBPyConnection, EvaluationResults],
        nwd_study: StudyFile) -> None:
    _, res = evaluated
    text = render_summary(res)
    assert "Estimand: mean effect among exposed children" in text
    assert f"Primary inference: {nwd_study.analysis.primary_inference}" in text
    head = res.headline.set_index("outcome")
    primary = head.loc["entered_care_12m"]
    assert (primary["role"], primary["method"], primary["estimand"]) == (
        "primary", nwd_study.analysis.primary_inference, "mean_effect_among_exposed")
    assert primary["ci_low"] < PLANTED < primary["ci_high"]
    assert primary["p_adjusted"] == primary["p_value"]
    secondary = head[head["role"] == "secondary"].dropna(subset=["p_value"])
    assert (secondary["p_adjusted"] >= secondary["p_value"] - 1e-12).all()  # Holm
    assert res.provenance["estimand"] == "mean_effect_among_exposed"
    vc = res.variance_components.set_index("outcome").loc["entered_care_12m"]
    assert 0 <= vc["icc"] < 1 and 0 <= vc["cac"] <= 1
    # Every LA switches: the last periods have no not-yet-treated comparison, listed.
    assert not res.did_dropped.empty
