"""Synthetic aggregate results in the shape `ResultsInput` takes, for tests and benchmarks.

Made-up numbers from a seeded generator: no child, real or synthetic, stands behind them. The
per-cell contributions for the magnitude evidence are drawn here and reduced to the aggregates at
once, as the evaluation would inside the vault.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.study.model import StudyFile

# Baseline risk (binary) or mean (count, rate) per outcome kind, by position in the study file.
_BINARY_RISKS = (0.12, 0.02, 0.30, 0.45, 0.97, 0.08)
_COUNT_MEANS = (0.25, 0.6)


def half_years(first: dt.date, last: dt.date) -> list[Period]:
    """Half-year periods whose start lies in [first, last]."""
    out = []
    year, half = first.year, 0 if first.month <= 6 else 1
    while dt.date(year, 1 + 6 * half, 1) <= last:
        out.append(Period(f"{year} H{half + 1}", dt.date(year, 1 + 6 * half, 1)))
        year, half = (year + 1, 0) if half else (year, 1)
    return out


def example_results(study: StudyFile, *, seed: int = 0, scale: float = 1.0,
                    periods: list[Period] | None = None) -> ResultsInput:
    """Aggregate results with realistic sizes: `scale` multiplies the cohort size."""
    rng = np.random.default_rng(seed)
    las = study.la_codes
    last_index = (pd.Timestamp(study.data_period.end)
                  - pd.DateOffset(months=study.analysis.follow_up_months)).date()
    periods = periods or half_years(study.data_period.start, last_index)
    labels = [p.label for p in periods]
    per_cell = study.design.target_sample * scale / (len(las) * len(periods))
    size = rng.uniform(0.4, 1.6, size=len(las))
    n = rng.poisson(per_cell * size[:, None], size=(len(las), len(periods)))
    cohort = pd.DataFrame([(la, p, int(n[i, j])) for i, la in enumerate(las)
                           for j, p in enumerate(labels)], columns=["la_code", "period", "n"])
    binary_rows, magnitude_rows = [], []
    binary = [o for o in study.analysis.outcomes if o.kind == "binary"]
    for k, outcome in enumerate(binary):
        risk = _BINARY_RISKS[k % len(_BINARY_RISKS)]
        partial = outcome.id.startswith("neet")
        for i, la in enumerate(las):
            for j, p in enumerate(labels):
                denom = rng.binomial(n[i, j], 0.3) if partial else n[i, j]
                events = rng.binomial(denom, risk)
                binary_rows.append((outcome.id, la, p, int(denom), int(events)))
    others = [o for o in study.analysis.outcomes if o.kind != "binary"]
    for k, outcome in enumerate(others):
        for i, la in enumerate(las):
            for j, p in enumerate(labels):
                size_ij = int(n[i, j]) if outcome.kind == "count" else rng.binomial(n[i, j], 0.8)
                values = (rng.poisson(_COUNT_MEANS[k % len(_COUNT_MEANS)], size=size_ij)
                          .astype(float) if outcome.kind == "count"
                          else rng.beta(1, 12, size=size_ij))
                top = np.sort(values)[::-1]
                magnitude_rows.append((
                    outcome.id, la, p, size_ij, float(values.sum()),
                    float(top[0]) if size_ij else 0.0, float(top[1]) if size_ij > 1 else 0.0,
                    float(top[:study.disclosure.dominance_n].sum()),
                    float(values.min()) if size_ij else np.nan,
                    float(values.max()) if size_ij else np.nan, 0))
    total = int(n.sum())
    removed = [int(rng.integers(0, 8)), int(rng.integers(200, 900)), int(rng.integers(100, 500))]
    flow = pd.DataFrame([
        ("start", "Children with a qualifying event", total + sum(removed)),
        ("rights", "Excluded: restricted, objected or erased", removed[0]),
        ("age", "Excluded: outside the age range at index", removed[1]),
        ("follow_up", "Excluded: index too late for full follow-up", removed[2]),
        ("cohort", "Analysed cohort", total),
    ], columns=["step", "label", "n"])
    est_rows, es_rows = [], []
    for outcome in study.analysis.outcomes:
        for analysis in ("stepped_wedge_lpm", "stepped_wedge_logit", "callaway_santanna"):
            eff = rng.normal(-0.02, 0.01)
            se = abs(rng.normal(0.01, 0.002))
            est_rows.append((outcome.id, analysis, eff, eff - 1.96 * se, eff + 1.96 * se,
                             float(rng.uniform(0, 1)), float(rng.uniform(0, 1)), total - 40.0))
        for e in range(-4, 5):
            eff = 0.0 if e < 0 else rng.normal(-0.02, 0.01)
            es_rows.append((outcome.id, e, eff, eff - 0.03, eff + 0.03,
                            int(rng.integers(5, 3000))))
    return ResultsInput(
        la_codes=las, periods=periods, cohort=cohort,
        binary=pd.DataFrame(binary_rows, columns=["outcome", "la_code", "period", "n", "events"]),
        magnitude=pd.DataFrame(magnitude_rows, columns=[
            "outcome", "la_code", "period", "n", "total", "top1", "top2", "top_n", "minimum",
            "maximum", "negatives"]),
        flow=flow,
        estimates=pd.DataFrame(est_rows, columns=["outcome", "analysis", "estimate", "ci_low",
                                                  "ci_high", "p_value", "ri_p_value", "dof"]),
        event_study=pd.DataFrame(es_rows, columns=["outcome", "event_time", "estimate", "ci_low",
                                                   "ci_high", "n"]),
        provenance={"source": "synthetic example (trialvault.disclose.example)",
                    "seed": str(seed)},
    )
