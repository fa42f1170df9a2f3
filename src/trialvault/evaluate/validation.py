"""Checking the evaluation against the truth: synthetic data with a planted effect.

`truth_run` simulates one synthetic trial (`trialvault.synth`), loads its harmonised tables into
an in-memory DuckDB under schema `harmonised`, evaluates the study's primary outcome and reports
each interval next to the planted value. `coverage_summary` turns many runs into the figures the
issue asks for: CI coverage with a planted effect, and the share of RI p < 0.05 with none.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from trialvault.evaluate.run import run_evaluation
from trialvault.study.model import StudyFile

INTERVALS = ("model", "randomisation", "wild_cluster_bootstrap", "callaway_santanna")


def load_harmonised_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, Any]) -> None:
    """Create `harmonised.<name>` from each Arrow table / DataFrame in `tables`."""
    con.execute("CREATE SCHEMA IF NOT EXISTS harmonised")
    for name, table in tables.items():
        con.register("tv_incoming", table)
        con.execute(f"CREATE OR REPLACE TABLE harmonised.{name} AS SELECT * FROM tv_incoming")
        con.unregister("tv_incoming")


def primary_only(study: StudyFile) -> StudyFile:
    """The study with its primary outcome only (the plan's other settings unchanged)."""
    analysis = study.analysis.replace(outcomes=[study.analysis.primary_outcome])
    return study.replace(analysis=analysis)


def simulate(study: StudyFile, *, seed: int, scale: float, effects: dict[str, float]) -> Any:
    """The synth stage's generator (fault-free: error_rate 0)."""
    from trialvault.synth import simulate as synth_simulate

    return synth_simulate(study, seed=seed, scale=scale, effects=effects, error_rate=0.0)


def truth_run(study: StudyFile, *, seed: int, effect: float, scale: float = 1.0
              ) -> dict[str, Any]:
    """Simulate with `effect` planted on the primary outcome, evaluate it, compare to truth."""
    primary = study.analysis.primary_outcome.id
    clock = time.perf_counter()
    world = simulate(study, seed=seed, scale=scale, effects={primary: effect})
    tables = world.harmonised()
    truth = world.truth()
    simulated = time.perf_counter() - clock
    con = duckdb.connect()
    try:
        load_harmonised_tables(con, tables)
        clock = time.perf_counter()
        res = run_evaluation(con, primary_only(study), seed=seed, did_outcomes="primary")
        evaluated = time.perf_counter() - clock
    finally:
        con.close()
    planted = float(truth["effects"][primary]["value"])
    diff = res.primary("difference")
    few = res.few_cluster[res.few_cluster["outcome"] == primary].set_index("method")
    cs = res.did_aggregates.query("outcome == @primary and type == 'simple'")
    row: dict[str, Any] = {
        "seed": seed, "planted": planted, "cohort": res.cohort_size,
        "estimate": float(diff["estimate"]),
        "model_low": float(diff["ci_low"]), "model_high": float(diff["ci_high"]),
        "model_p": float(diff["p_value"]),
        "simulate_s": simulated, "evaluate_s": evaluated,
    }
    for method in ("randomisation", "wild_cluster_bootstrap"):
        r = few.loc[method]
        row.update({f"{method}_low": float(r["ci_low"]), f"{method}_high": float(r["ci_high"]),
                    f"{method}_p": float(r["p_value"])})
    if not cs.empty:
        row.update({"callaway_santanna_low": float(cs["ci_low"].iloc[0]),
                    "callaway_santanna_high": float(cs["ci_high"].iloc[0]),
                    "callaway_santanna_estimate": float(cs["overall_att"].iloc[0])})
    return row


def coverage_summary(runs: pd.DataFrame) -> dict[str, float]:
    """Share of runs whose interval covers the planted value, and of p < 0.05, per method."""
    out: dict[str, float] = {"n_runs": float(len(runs))}
    for method in INTERVALS:
        lo, hi = runs.get(f"{method}_low"), runs.get(f"{method}_high")
        if lo is None or hi is None:
            continue
        covered = (lo <= runs["planted"]) & (runs["planted"] <= hi)
        out[f"coverage_{method}"] = float(covered.mean())
        p = runs.get(f"{method}_p")
        if p is not None:
            out[f"p_below_0.05_{method}"] = float((p < 0.05).mean())
    out["mean_estimate"] = float(runs["estimate"].mean())
    out["mean_bias"] = float((runs["estimate"] - runs["planted"]).mean())
    return out
