"""CR2 / Bell–McCaffrey and the mixed model's REML + Satterthwaite df against R.

References: tests/reference/small_sample_reference.csv, made by tests/reference/small_sample.R
(R 4.2.2, clubSandwich 0.5.8, lme4 1.1.31, lmerTest 3.1.3, pbkrtest 0.5.2) from the shipped
datasets tests/reference/data/sw_seed*.csv. R is not needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialvault.evaluate.mixed import fit_mixed, kenward_roger, satterthwaite
from trialvault.evaluate.small_sample import cluster_robust_contrast, cr2_contrast

REF = Path(__file__).resolve().parents[2] / "reference"
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return pd.read_csv(REF / "small_sample_reference.csv").set_index(["dataset", "method"])


def _data(seed: int) -> pd.DataFrame:
    return pd.read_csv(REF / "data" / f"sw_seed{seed}.csv")


def _fixed(d: pd.DataFrame, treatment: pd.DataFrame) -> np.ndarray:
    la = pd.get_dummies(d["la"], prefix="la", drop_first=True, dtype=float)
    period = pd.get_dummies(d["period"], prefix="p", drop_first=True, dtype=float)
    return np.column_stack([np.ones(len(d)), treatment, la, period, d["x1"]])


@pytest.mark.parametrize("seed", SEEDS)
def test_cr2_immediate_effect_equals_clubsandwich(reference: pd.DataFrame, seed: int) -> None:
    d = _data(seed)
    X = _fixed(d, d[["exposed"]])
    c = np.zeros(X.shape[1])
    c[1] = 1
    ours = cr2_contrast(X, d["y"].to_numpy(float), d["la"].to_numpy(), c)
    ref = reference.loc[(f"sw_seed{seed}", "cr2_immediate")]
    assert ours.estimate == pytest.approx(ref["estimate"], abs=1e-10)
    assert ours.se == pytest.approx(ref["se"], rel=1e-8)
    assert ours.df == pytest.approx(ref["df"], rel=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_cr2_exposure_time_contrast_equals_clubsandwich(reference: pd.DataFrame,
                                                        seed: int) -> None:
    d = _data(seed)
    ket = pd.get_dummies(d["ket"], prefix="k", drop_first=True, dtype=float)
    X = _fixed(d, ket)
    c = np.zeros(X.shape[1])
    c[1:5] = d.loc[d["ket"] > 0, "ket"].value_counts(normalize=True).sort_index().to_numpy()
    ours = cr2_contrast(X, d["y"].to_numpy(float), d["la"].to_numpy(), c)
    ref = reference.loc[(f"sw_seed{seed}", "cr2_exposure_time")]
    assert ours.estimate == pytest.approx(ref["estimate"], abs=1e-10)
    assert ours.se == pytest.approx(ref["se"], rel=1e-8)
    assert ours.df == pytest.approx(ref["df"], rel=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_weighted_cr2_is_close_to_clubsandwich(reference: pd.DataFrame, seed: int) -> None:
    """WLS: the √w-scaled OLS (inverse-variance working model) is within 2% of clubSandwich's
    SE for `lm(weights=)` and its df within 0.02 (clubSandwich's weighted-lm target differs)."""
    d = _data(seed)
    X = _fixed(d, d[["exposed"]])
    c = np.zeros(X.shape[1])
    c[1] = 1
    ours = cr2_contrast(X, d["y"].to_numpy(float), d["la"].to_numpy(), c,
                        weights=d["w"].to_numpy())
    ref = reference.loc[(f"sw_seed{seed}", "cr2_weighted")]
    assert ours.estimate == pytest.approx(ref["estimate"], abs=1e-10)
    assert ours.se == pytest.approx(ref["se"], rel=0.02)
    assert ours.df == pytest.approx(ref["df"], abs=0.02)


@pytest.mark.parametrize("seed", SEEDS)
def test_mixed_model_equals_lme4_and_lmertest(reference: pd.DataFrame, seed: int) -> None:
    d = _data(seed)
    period = pd.get_dummies(d["period"], prefix="p", drop_first=True, dtype=float)
    X = np.column_stack([np.ones(len(d)), d["exposed"], period, d["x1"]])
    fit = fit_mixed(X, d["y"].to_numpy(float), d["la"].to_numpy(), d["period"].to_numpy())
    c = np.zeros(X.shape[1])
    c[1] = 1
    test = satterthwaite(fit, c)
    ref = reference.loc[f"sw_seed{seed}"]
    for ours, name in zip(fit.sigma2, ("lmm_var_cluster", "lmm_var_cluster_period",
                                       "lmm_var_residual"), strict=True):
        assert ours == pytest.approx(ref.loc[name, "estimate"], rel=2e-3, abs=1e-6)
    assert test.estimate == pytest.approx(ref.loc["lmm_satterthwaite", "estimate"], abs=1e-6)
    assert test.se == pytest.approx(ref.loc["lmm_satterthwaite", "se"], rel=1e-4)
    assert test.df == pytest.approx(ref.loc["lmm_satterthwaite", "df"], rel=1e-3)
    # ICC and CAC follow from the variances.
    c_, cp, e = fit.sigma2
    assert fit.icc == pytest.approx((c_ + cp) / (c_ + cp + e))
    assert fit.cac == pytest.approx(c_ / (c_ + cp))


@pytest.mark.parametrize("seed", SEEDS)
def test_kenward_roger_equals_pbkrtest(reference: pd.DataFrame, seed: int) -> None:
    """lmerTest's contest(ddf = "Kenward-Roger") (pbkrtest's vcovAdj and Lb_ddf): the
    adjusted SE and df, to the precision of the REML variances (rel. 2e-3 above)."""
    d = _data(seed)
    period = pd.get_dummies(d["period"], prefix="p", drop_first=True, dtype=float)
    X = np.column_stack([np.ones(len(d)), d["exposed"], period, d["x1"]])
    fit = fit_mixed(X, d["y"].to_numpy(float), d["la"].to_numpy(), d["period"].to_numpy())
    c = np.zeros(X.shape[1])
    c[1] = 1
    kr = kenward_roger(fit, c)
    ref = reference.loc[(f"sw_seed{seed}", "lmm_kenward_roger")]
    assert kr.estimate == pytest.approx(ref["estimate"], abs=1e-6)
    assert kr.se == pytest.approx(ref["se"], rel=1e-4)
    assert kr.df == pytest.approx(ref["df"], rel=1e-3)
    # The adjustment only ever widens the model-based interval.
    assert kr.se > satterthwaite(fit, c).se


def test_cr3_is_wider_than_cr2_and_t_reference_uses_g_minus_1() -> None:
    d = _data(1)
    X = _fixed(d, d[["exposed"]])
    c = np.zeros(X.shape[1])
    c[1] = 1
    y, la = d["y"].to_numpy(float), d["la"].to_numpy()
    cr2 = cr2_contrast(X, y, la, c)
    cr3 = cluster_robust_contrast(X, y, la, c, adjustment="CR3", reference="clusters_minus_1")
    assert cr3.estimate == cr2.estimate and cr3.se > cr2.se and cr3.df == 4.0
    # CR3 by its definition: Σ_g (p_g'e_g)² with p_g = (I − H_gg)^{-1} X_g (X'X)^{-1} c,
    # the pseudo-inverse on the cluster's fixed-effect direction (I − H_gg is singular there).
    q, _ = np.linalg.qr(X)
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    e = y - X @ coef
    mc = np.linalg.solve(X.T @ X, c)
    total = 0.0
    for g in np.unique(la):
        rows = la == g
        H = q[rows] @ q[rows].T
        total += float((np.linalg.pinv(np.eye(rows.sum()) - H, rcond=1e-8) @ (X[rows] @ mc))
                       @ e[rows]) ** 2
    assert cr3.se == pytest.approx(np.sqrt(total), rel=1e-8)


def test_cr2_with_five_clusters_has_few_degrees_of_freedom() -> None:
    """The point of CR2 + BM: with 5 clusters the t reference has about G − 1 df, not n − k."""
    d = _data(1)
    X = _fixed(d, d[["exposed"]])
    c = np.zeros(X.shape[1])
    c[1] = 1
    assert cr2_contrast(X, d["y"].to_numpy(float), d["la"].to_numpy(), c).df < 5
