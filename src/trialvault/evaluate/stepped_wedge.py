"""Hussey & Hughes (2007) stepped-wedge model, child level, with fixed LA and period effects.

outcome_i = f(β·exposed_i + LA_i + period_i + covariates_i). The plan's `analysis.models` names
the two fits; what each means depends on the outcome's kind:

| plan model | binary outcome | count or rate outcome |
|---|---|---|
| `logit` (ratio scale) | logistic GLM → odds ratio | Poisson (quasi-likelihood) log-link GLM → rate ratio |
| `lpm` (difference scale) | linear probability model → risk difference | linear model → mean difference |

Standard errors are heteroskedasticity-robust (HC1 sandwich; a linear probability model is
heteroskedastic by construction). They treat children as independent given the fixed effects;
with five clusters the few-cluster methods (randomisation inference, wild cluster bootstrap)
are the inference to read, and these intervals are reported beside them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy.stats import norm

from trialvault.evaluate.design import Design

OutcomeKind = str  # "binary" | "count" | "rate" (the study model's Literal)

_MEASURES: dict[tuple[str, bool], tuple[str, str]] = {
    # (plan model, binary?) -> (fitted model, effect measure)
    ("logit", True): ("logit", "odds_ratio"),
    ("logit", False): ("poisson", "rate_ratio"),
    ("lpm", True): ("lpm", "risk_difference"),
    ("lpm", False): ("linear", "mean_difference"),
}


@dataclass(frozen=True)
class ModelEstimate:
    """The exposure effect from one fitted model."""

    outcome: str
    model: str
    measure: str
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    """Standard error of the coefficient (log scale for ratio measures)."""
    p_value: float
    n: int
    n_params: int
    df_resid: int
    note: str = ""


def difference_measure(kind: OutcomeKind) -> str:
    return _MEASURES[("lpm", kind == "binary")][1]


def fit_hussey_hughes(design: Design, kind: OutcomeKind, models: list[str],
                      alpha: float) -> list[ModelEstimate]:
    """One `ModelEstimate` per plan model (see the module table), with a (1 − alpha) CI."""
    out = []
    for plan_model in models:
        fitted, measure = _MEASURES[(plan_model, kind == "binary")]
        out.append(_fit_one(design, fitted, measure, alpha))
    return out


def _fit_one(design: Design, fitted: str, measure: str, alpha: float) -> ModelEstimate:
    X = np.column_stack([design.x, design.W])
    z = float(norm.ppf(1 - alpha / 2))
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if fitted in ("lpm", "linear"):
                res = sm.OLS(design.y, X).fit(cov_type="HC1")
            else:
                family = (sm.families.Binomial() if fitted == "logit"
                          else sm.families.Poisson())
                # lstsq per IRLS step: same estimates as the default pinv, ~1/3 faster.
                res = sm.GLM(design.y, X, family=family).fit(cov_type="HC1",
                                                               wls_method="lstsq")
            beta, se = float(res.params[0]), float(res.bse[0])
            p_value = float(res.pvalues[0])
            df_resid = round(float(res.df_resid))
        except (np.linalg.LinAlgError, ValueError) as exc:
            beta = se = p_value = float("nan")
            df_resid = design.n - design.n_params
            notes.append(f"fit failed: {type(exc).__name__}")
    # Keep only the warning's class name: messages can quote data-dependent values.
    notes += sorted({type(w.message).__name__ for w in caught
                     if issubclass(w.category, Warning)})
    if not np.isfinite(se) or se <= 0:
        notes.append("no finite standard error")
    lo, hi = beta - z * se, beta + z * se
    if measure.endswith("ratio"):
        est, lo, hi = float(np.exp(beta)), float(np.exp(lo)), float(np.exp(hi))
    else:
        est = beta
    return ModelEstimate(outcome=design.outcome, model=fitted, measure=measure, estimate=est,
                         ci_low=lo, ci_high=hi, se=se, p_value=p_value, n=design.n,
                         n_params=design.n_params, df_resid=df_resid, note="; ".join(notes))
