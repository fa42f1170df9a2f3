"""Restricted wild cluster bootstrap: each draw's t* equals an explicit refit with statsmodels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from trialvault.evaluate.bootstrap import (
    WEBB_WEIGHTS,
    _p_value,
    _parts,
    _t_boot,
    _t_obs,
    draw_weights,
    wild_cluster_bootstrap,
)
from trialvault.evaluate.design import Design, build_design


def _refit_t(design: Design, y: np.ndarray, tau: float) -> float:
    """CRV1 t-statistic of (β̂ − τ) from statsmodels (its default small-sample correction)."""
    X = np.column_stack([design.x, design.W])
    res = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": design.cluster})
    return float((res.params[0] - tau) / res.bse[0])


@pytest.fixture
def design(analysis_factory: Callable[..., pd.DataFrame]) -> Design:
    return build_design(analysis_factory(11, per_cell=10, effect=0.1), "y", ["sex", "uasc"])


@pytest.mark.parametrize("tau", [0.0, 0.1, -0.3])
def test_fast_t_star_equals_explicit_refits(design: Design, tau: float) -> None:
    parts = _parts(design)
    t_obs, _ = _t_obs(parts, tau)
    assert t_obs == pytest.approx(_refit_t(design, design.y, tau), rel=1e-8)
    # The restricted DGP: y* = fitted(y − τx on W) + τx + ũ∘v_g
    W = design.W
    gamma = np.linalg.lstsq(W, design.y - tau * design.x, rcond=None)[0]
    u = design.y - tau * design.x - W @ gamma
    V = draw_weights("webb", 6, len(design.clusters), np.random.default_rng(5))
    fast = _t_boot(parts, tau, V)
    for r in range(V.shape[0]):
        y_star = W @ gamma + tau * design.x + u * V[r, design.cluster]
        assert fast[r] == pytest.approx(_refit_t(design, y_star, tau), rel=1e-7)


def test_weights_are_webb_six_point_and_seeded() -> None:
    V = draw_weights("webb", 999, 5, np.random.default_rng(1))
    assert V.shape == (999, 5)
    assert set(np.round(np.unique(V), 12)) == set(np.round(WEBB_WEIGHTS, 12))
    assert np.array_equal(V, draw_weights("webb", 999, 5, np.random.default_rng(1)))
    assert WEBB_WEIGHTS.mean() == pytest.approx(0) and (WEBB_WEIGHTS ** 2).mean() == pytest.approx(1)


def test_rademacher_enumerates_when_draws_exceed_2_to_the_g() -> None:
    V = draw_weights("rademacher", 999, 5, np.random.default_rng(1))
    assert V.shape == (32, 5) and len({tuple(r) for r in V}) == 32


def test_ci_bounds_are_where_the_p_value_crosses_alpha(design: Design) -> None:
    rng = np.random.default_rng(3)
    res = wild_cluster_bootstrap(design, draws=999, weights="webb", rng=rng, alpha=0.05)
    assert res.draws == 999 and res.ci_low < res.estimate < res.ci_high
    V = draw_weights("webb", 999, 5, np.random.default_rng(3))
    parts = _parts(design)
    step = 1e-4 * res.se_crv1
    assert _p_value(parts, res.ci_low + step, V) > 0.05 >= _p_value(parts, res.ci_low - step, V)
    assert _p_value(parts, res.ci_high - step, V) > 0.05 >= _p_value(parts, res.ci_high + step, V)
    assert res.p_value == pytest.approx(_p_value(parts, 0.0, V))


def test_null_p_values_are_not_too_small(analysis_factory: Callable[..., pd.DataFrame]) -> None:
    ps = [wild_cluster_bootstrap(build_design(analysis_factory(s, per_cell=5), "y", []),
                                 draws=199, weights="webb", rng=np.random.default_rng(s),
                                 alpha=0.05).p_value for s in range(20)]
    assert sum(p < 0.05 for p in ps) <= 4
