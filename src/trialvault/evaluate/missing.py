"""Outcomes missing for children who should have them, and inverse probability weighting.

NEET and attendance come from files linked by UPN, so some children who should have a value
(aged 16-17 during follow-up; of school age) have none. Complete-case analysis is unbiased
only if that happens at random; when it depends on the children's characteristics, the LA,
the period or exposure (e.g. NWD hubs keep better track of young people), weighting each
observed child by 1 / P(observed | those) removes the bias (Seaman & White 2013, *Stat Methods
Med Res* 22:278). The observation model is a logistic GLM (statsmodels) on exposure, LA and
period effects and the plan's covariates, fitted among the children expected to be measured.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from trialvault.evaluate.design import _dummies, _encode, _full_rank

# Weights are capped at this multiple of their mean (a few children with tiny probabilities
# must not carry the estimate); the cap is reported when it binds.
WEIGHT_CAP = 20.0


@dataclass(frozen=True)
class MissingSummary:
    expected: int
    observed: int
    by_exposure: pd.DataFrame
    """exposed, expected, observed, missing."""


def summarise(frame: pd.DataFrame, outcome: str, expected_col: str) -> MissingSummary:
    exp = frame[frame[expected_col] == 1]
    seen = exp[outcome].notna()
    by = (pd.DataFrame({"exposed": exp["exposed"].astype(int), "observed": seen.astype(int)})
          .groupby("exposed").agg(expected=("observed", "size"), observed=("observed", "sum"))
          .reset_index())
    by["missing"] = by["expected"] - by["observed"]
    return MissingSummary(expected=len(exp), observed=int(seen.sum()), by_exposure=by)


def ipw_weights(frame: pd.DataFrame, outcome: str, expected_col: str,
                covariates: list[str]) -> tuple[pd.Series, str]:
    """Weights 1 / P(observed) for the observed children among the expected ones.

    Returns the weights (index of `frame`, observed expected children only) and a note."""
    exp = frame[frame[expected_col] == 1].reset_index()
    seen = exp[outcome].notna().to_numpy(dtype=float)
    if seen.min() == 1.0:
        return pd.Series(1.0, index=exp.loc[seen == 1, "index"]), "no missing values"
    blocks = [pd.DataFrame({"intercept": np.ones(len(exp)),
                            "exposed": exp["exposed"].to_numpy(dtype=float)}),
              _dummies(exp["la_code"].astype("int64").astype(str), "la"),
              _dummies(exp["period"].astype("int64").map(lambda p: f"{p:03d}"), "period")]
    blocks += [_encode(exp[c], c) for c in covariates if c in exp.columns]
    X = _full_rank(pd.concat(blocks, axis=1)).to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation in a small cell: probabilities near 0/1
        fit = sm.GLM(seen, X, family=sm.families.Binomial()).fit()
    prob = np.clip(fit.predict(X), 1e-3, 1.0)
    w = 1.0 / prob[seen == 1]
    cap = WEIGHT_CAP * w.mean()
    note = ""
    if (w > cap).any():
        note = f"{int((w > cap).sum())} weight(s) capped at {WEIGHT_CAP:g}× the mean"
        w = np.minimum(w, cap)
    return pd.Series(w, index=exp.loc[seen == 1, "index"].to_numpy()), note
