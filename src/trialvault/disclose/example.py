"""Synthetic results in the shape `ResultsInput` takes, for tests and benchmarks.

A made-up cohort (no child, real or synthetic, stands behind a row: no codes, drawn here from a
seeded generator) goes through the same `aggregate.aggregate_cohort` a release uses inside the
vault; estimates, the event study and ICCs are drawn to look plausible.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trialvault.disclose.aggregate import (
    MAIN_GROUPS,
    aggregate_cohort,
    last_index_date,
    outcome_applies,
)
from trialvault.disclose.inputs import (
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    VARIANCE_COLUMNS,
    ResultsInput,
)
from trialvault.study.model import StudyFile

# Baseline risk (binary) or mean (count, rate) per outcome, by position in the study file.
_BINARY_RISKS = (0.12, 0.02, 0.30, 0.45, 0.97, 0.08)
_COUNT_MEANS = (0.25, 0.6)
_ETHNICITY = ("WBRI", "WOTH", "MWBC", "APKN", "BAFR", "CHNE", "OOTH", "NOBT")


def example_cohort(study: StudyFile, *, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """One made-up analysis row per child, with the evaluation's columns."""
    rng = np.random.default_rng(seed)
    n = max(50, int(study.design.target_sample * scale))
    start = pd.Timestamp(study.data_period.start)
    days = (pd.Timestamp(last_index_date(study)) - start).days + 1
    weights = rng.uniform(0.4, 1.6, len(study.la_codes))
    la = rng.choice(study.la_codes, size=n, p=weights / weights.sum())
    index = start + pd.to_timedelta(rng.integers(0, days, n), unit="D")
    steps = pd.to_datetime(pd.Series(la).map({c: study.step_date(c) for c in study.la_codes}))
    months = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}[study.analysis.period]
    period = ((index.year - start.year) * 12 + index.month - 1) // months
    step_period = ((steps.dt.year - start.year) * 12 + steps.dt.month - 1) // months
    group = rng.choice(["edge_of_care", "looked_after", "care_leaver"], size=n,
                       p=[0.85, 0.1, 0.05])
    age = np.where(group == "care_leaver", rng.integers(16, 22, n), rng.integers(12, 18, n))
    frame = pd.DataFrame({
        "la_code": la, "child_id": [f"x{i}" for i in range(n)],
        "index_date": index.date, "period": period.to_numpy(),
        "step_date": steps.to_numpy(), "step_period": step_period.to_numpy(),
        "exposed": (index >= steps.to_numpy()).astype(int),
        "cohort_group": group, "age_years_at_index": age,
        "sex": rng.choice(["1", "2"], n), "ethnicity": rng.choice(_ETHNICITY, n),
        "disability": rng.random(n) < 0.1, "uasc": rng.random(n) < 0.04,
    })
    binary = [o for o in study.analysis.outcomes if o.kind == "binary"]
    others = [o for o in study.analysis.outcomes if o.kind != "binary"]
    for k, o in enumerate(binary):
        p = _BINARY_RISKS[k % len(_BINARY_RISKS)] - 0.02 * frame["exposed"]
        values = (rng.random(n) < p.clip(0, 1)).astype(float)
        frame[o.id] = values
    for k, o in enumerate(others):
        mean = _COUNT_MEANS[k % len(_COUNT_MEANS)]
        frame[o.id] = (rng.poisson(mean, n).astype(float) if o.kind == "count"
                       else rng.beta(1, 12, n))
    for o in study.analysis.outcomes:
        applies = frame["cohort_group"].isin(outcome_applies(study, o.id))
        frame.loc[~applies, o.id] = np.nan
        if o.id == "neet_16_17" or o.kind == "rate":
            expected = applies & (rng.random(n) < 0.5)
            frame[f"{o.id}_expected"] = expected.astype(int)
            observed = expected & (rng.random(n) < 0.6)
            frame.loc[~observed, o.id] = np.nan
    return frame


SENSITIVITY_ANALYSES = (("exposure_time", "cr2"), ("exposure_time", "lmm_satterthwaite"),
                        ("immediate", "cr2"), ("immediate", "randomisation"),
                        ("immediate", "wild_cluster_bootstrap"),
                        ("callaway_santanna", "clustered_by_la"))


def _analyses(study: StudyFile) -> list[tuple[str, str]]:
    """The plan's primary analysis first (whatever the study names), then the usual others."""
    primary = (study.analysis.primary_model, study.analysis.primary_inference)
    return [primary, *(pair for pair in SENSITIVITY_ANALYSES if pair != primary)]


def example_results(study: StudyFile, *, seed: int = 0, scale: float = 1.0,
                    origin: str = "synthetic") -> ResultsInput:
    """Aggregate results with realistic sizes: `scale` multiplies the target sample."""
    rng = np.random.default_rng(seed + 1)
    cohort = example_cohort(study, seed=seed, scale=scale)
    removed = [("rights_restriction", "Excluded: processing restricted", int(rng.integers(0, 4))),
               ("rights_objection", "Excluded: objected to processing", int(rng.integers(0, 4))),
               ("not_eligible", "Not eligible", int(rng.integers(200, 900)))]
    agg = aggregate_cohort(cohort, study, removed=removed)
    est, es = [], []
    main = cohort[cohort["cohort_group"].isin(MAIN_GROUPS)]
    for o in study.analysis.outcomes:
        sup = agg.support.set_index(["outcome", "population"]).loc[(o.id, "main")]
        for model, method in _analyses(study):
            eff = rng.normal(-0.02, 0.01)
            se = abs(rng.normal(0.01, 0.002))
            primary = (model, method) == (study.analysis.primary_model,
                                          study.analysis.primary_inference)
            params = (sup["clusters"] + sup["periods"] + (9 if model == "exposure_time" else 1)
                      + sup["covariates"] - 1)
            est.append({"outcome": o.id, "role": "primary" if o.primary else "secondary",
                        "population": "main", "model": model, "method": method,
                        "measure": "difference", "estimate": eff, "se": se, "df": 3.4,
                        "ci_low": eff - 2.8 * se, "ci_high": eff + 2.8 * se,
                        "p_value": float(rng.uniform(0, 1)),
                        "p_adjusted": float(rng.uniform(0, 1)) if primary else np.nan,
                        "multiplicity": study.analysis.multiplicity if primary else "",
                        "primary": primary, "n": sup["n"], "clusters": sup["clusters"],
                        "cells": sup["cells"], "params": params, "note": ""})
        for e in range(-4, 9):
            eff = 0.0 if e < 0 else rng.normal(-0.02, 0.01)
            es.append((o.id, e, eff, eff - 0.03, eff + 0.03))
    event = pd.DataFrame(es, columns=["outcome", "event_time", "estimate", "ci_low", "ci_high"])
    event = event.merge(agg.event_support, on=["outcome", "event_time"], how="left")
    event[["n", "clusters"]] = event[["n", "clusters"]].fillna(0).astype(int)
    variance = pd.DataFrame([(o.id, 0.01, 0.8, len(study.la_codes), len(main))
                             for o in study.analysis.outcomes], columns=VARIANCE_COLUMNS)
    return ResultsInput(
        la_codes=list(study.la_codes), periods=agg.periods, strata=agg.strata,
        outcomes=agg.outcomes, magnitude=agg.magnitude, baseline=agg.baseline, flow=agg.flow,
        estimates=pd.DataFrame(est).reindex(columns=ESTIMATE_COLUMNS),
        event_study=event.reindex(columns=EVENT_STUDY_COLUMNS), variance=variance,
        provenance={"source": "synthetic example (trialvault.disclose.example)",
                    "seed": str(seed)}, data_origin=origin)


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
