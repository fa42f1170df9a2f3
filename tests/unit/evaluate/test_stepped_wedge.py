"""Hussey & Hughes fits agree with statsmodels' formula interface and recover a planted effect."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from trialvault.errors import StudyFileError
from trialvault.evaluate.design import MISSING_LEVEL, build_design
from trialvault.evaluate.stepped_wedge import fit_hussey_hughes

COVS = ["sex", "age_years_at_index", "uasc"]
FORMULA = "y ~ exposed + C(la_code) + C(period) + C(sex) + age_years_at_index + C(uasc)"


def test_design_has_full_rank_and_named_columns(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    data = analysis_factory(1)
    design = build_design(data, "y", COVS)
    assert design.w_names[0] == "intercept"
    assert sum(n.startswith("la_") for n in design.w_names) == 4
    assert sum(n.startswith("period_") for n in design.w_names) == 11
    assert np.linalg.matrix_rank(np.column_stack([design.x, design.W])) == design.n_params
    assert design.clusters == sorted(data["la_code"].unique())


def test_design_drops_missing_outcomes_and_codes_missing_covariates(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    data = analysis_factory(2)
    data.loc[:9, "y"] = np.nan
    data["sex"] = data["sex"].astype(object)
    data.loc[10:19, "sex"] = None
    data.loc[20:29, "age_years_at_index"] = np.nan
    design = build_design(data, "y", COVS)
    assert design.n == len(data) - 10
    assert f"sex_{MISSING_LEVEL}" in design.w_names
    assert "age_years_at_index_missing" in design.w_names


def test_unknown_covariate_names_the_study_key(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(StudyFileError, match=r"analysis\.covariates.*shoe_size"):
        build_design(analysis_factory(1), "y", ["shoe_size"])


def test_lpm_and_logit_match_statsmodels_formulas(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    data = analysis_factory(3, effect=0.1)
    design = build_design(data, "y", COVS)
    lpm, logit = fit_hussey_hughes(design, "binary", ["lpm", "logit"], alpha=0.05)
    ref_lpm = smf.ols(FORMULA, data).fit(cov_type="HC1")
    assert lpm.measure == "risk_difference"
    assert lpm.estimate == pytest.approx(ref_lpm.params["exposed"], rel=1e-9)
    lo, hi = ref_lpm.conf_int().loc["exposed"]
    assert (lpm.ci_low, lpm.ci_high) == (pytest.approx(lo, rel=1e-9), pytest.approx(hi, rel=1e-9))
    ref_logit = smf.glm(FORMULA, data, family=__import__("statsmodels.api").api.families.Binomial()
                        ).fit(cov_type="HC1")
    assert logit.measure == "odds_ratio"
    assert logit.estimate == pytest.approx(np.exp(ref_logit.params["exposed"]), rel=1e-7)
    assert logit.ci_low < logit.estimate < logit.ci_high
    assert lpm.n == len(data) and lpm.df_resid == len(data) - design.n_params


def test_planted_risk_difference_is_recovered(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    data = analysis_factory(4, effect=0.15, per_cell=150)
    (lpm,) = fit_hussey_hughes(build_design(data, "y", COVS), "binary", ["lpm"], alpha=0.05)
    assert lpm.ci_low < 0.15 < lpm.ci_high
    assert lpm.estimate == pytest.approx(0.15, abs=0.05)


def test_count_outcomes_use_rate_ratio_and_mean_difference(
        analysis_factory: Callable[..., pd.DataFrame]) -> None:
    data = analysis_factory(5)
    ratio, diff = fit_hussey_hughes(build_design(data, "count_y", COVS), "count",
                                    ["logit", "lpm"], alpha=0.05)
    assert (ratio.model, ratio.measure) == ("poisson", "rate_ratio")
    assert (diff.model, diff.measure) == ("linear", "mean_difference")
    assert ratio.ci_low < 1.0 < ratio.ci_high  # no planted effect on counts
