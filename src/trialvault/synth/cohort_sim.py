"""A fast cohort-level simulation: the analysis table of the edge-of-care cohort, no histories.

Operating characteristics need hundreds of trials per scenario at the trial's scale (~18,000
children); building every child's case history and running the SQL takes seconds per trial.
This path draws the same cohort the generator would (children first referred in the data
period, the same age groups, UASC and disability shares, LA sizes) and their primary outcome
from the generator's own outcome model (`histories.care_probability`'s cell baselines,
scenario shifts, covariate shifts, ramped LA effects and clipping), vectorised. Its random
stream is not the generator's, so it gives different children for a seed, with the same
distribution: `benchmarks/bench_operating.py` runs full-pipeline trials beside it to show that.
Known simplification: UASC is the child's true status (the SQL reads it from records at the
index date, which miss a few UASC children who were re-referred).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trialvault.study.model import StudyFile
from trialvault.synth.histories import AGE_GROUPS
from trialvault.synth.params import (
    DISABILITY_CARE_SHIFT,
    EPOCH,
    UASC_CARE_SHIFT,
    age_months_vec,
    date_of,
    resolve,
    ymd,
)


def simulate_cohort(study: StudyFile, *, seed: int, scale: float = 1.0,
                    effects: dict[str, float] | None = None,
                    scenario: dict[str, float] | None = None
                    ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(analysis table of the primary outcome, truth) for one simulated trial.

    The table has the columns `evaluate.headline.analyse_primary` reads: la_code, child_id,
    index_date, index_day, period, step_period, step_date, exposed, cohort_group, sex,
    age_years_at_index, uasc, disability and entered_care_12m. The truth holds the estimand
    (mean effect among exposed children, after clipping, ramp and LA deviations)."""
    p = resolve(study, seed=seed, scale=scale, effects=effects or {}, error_rate=0.0,
                scenario=scenario)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    weights = np.array([g[0] for g in AGE_GROUPS])
    parts = []
    effect_sum, exposed_n = 0.0, 0
    for la in p.la_codes:
        n = p.referred[la]
        index = p.data_start + np.floor(rng.random(n) * (p.data_end - p.data_start + 1)).astype(
            np.int64)
        group = rng.choice(len(AGE_GROUPS), size=n, p=weights / weights.sum())
        lo = np.array([g[1] for g in AGE_GROUPS])[group]
        hi = np.array([g[2] for g in AGE_GROUPS])[group]
        dob = index - (lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64))
        am = age_months_vec(dob, index)
        keep = (index <= p.index_end) & (am >= p.min_age_months) & (am <= p.max_age_months)
        index, am = index[keep], am[keep]
        m = len(index)
        uasc = (am >= 14 * 12) & (rng.random(m) < 0.05)
        disabled = rng.random(m) < 0.10
        male = rng.random(m) < np.where(uasc, 0.92, 0.52)
        y, mo, _ = ymd(index)
        period = ((y - p.first_year) * 12 + mo - 1) // 3
        step_period = p.period(p.step_day[la])
        exposed = index >= p.step_day[la]
        cells = np.array([p.care_cell(la, q) for q in range(p.n_periods)])
        k = np.clip(period - step_period, 0, p.n_periods)
        effect_k = np.array([p.care_effect(la, q) for q in range(p.n_periods + 1)])
        p0 = np.clip(cells[np.clip(period, 0, p.n_periods - 1)] + UASC_CARE_SHIFT * uasc
                     + DISABILITY_CARE_SHIFT * disabled, 0.0, 1.0)
        p1 = np.where(exposed, np.clip(p0 + effect_k[k], 0.0, 1.0), p0)
        effect_sum += float((p1 - p0)[exposed].sum())
        exposed_n += int(exposed.sum())
        outcome = (rng.random(m) < p1).astype(float)
        step = date_of(p.step_day[la])
        parts.append(pd.DataFrame({
            "la_code": la, "child_id": [f"{la}-{i}" for i in range(m)],
            "index_date": (index.astype("datetime64[D]")).astype(object),
            "index_day": index - 0, "period": period, "step_period": step_period,
            "step_date": step, "exposed": exposed.astype(int), "cohort_group": "edge_of_care",
            "sex": np.where(male, "1", "2"), "age_years_at_index": am // 12,
            "uasc": uasc, "disability": disabled, "entered_care_12m": outcome}))
    frame = pd.concat(parts, ignore_index=True)
    truth = {"estimand": {"name": "mean_effect_among_exposed", "outcome": "entered_care_12m",
                          "value": effect_sum / exposed_n if exposed_n else None,
                          "nominal": p.effect("entered_care_12m")},
             "scenario": dict(p.scenario), "cohort": {"n": len(frame)}, "epoch": EPOCH}
    return frame, truth
