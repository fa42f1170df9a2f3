"""Randomisation inference: the reference set, the exact p-value and the test-inversion CI."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialvault.errors import TrialvaultError
from trialvault.evaluate.design import build_design
from trialvault.evaluate.randomisation import (
    RandomisationResult,
    count_assignments,
    distinct_assignments,
    randomisation_estimand,
    randomisation_test,
)

D = [dt.date(2020, 1, 1) + dt.timedelta(days=180 * i) for i in range(6)]


def test_five_distinct_steps_give_120_assignments() -> None:
    got = list(distinct_assignments(D[:5]))
    assert len(got) == 120 == count_assignments(D[:5])
    assert len(set(got)) == 120
    assert all(sorted(a) == D[:5] for a in got)


def test_ties_count_distinct_assignments_only() -> None:
    schedule = [D[0], D[1], D[1], D[2], D[3]]  # two LAs share the second step
    got = list(distinct_assignments(schedule))
    assert len(got) == len(set(got)) == 60 == count_assignments(schedule)
    three_at_one = [D[0], D[0], D[0], D[1], D[1]]
    assert len(list(distinct_assignments(three_at_one))) == 10  # 5! / (3! 2!)


@given(st.lists(st.sampled_from(D[:4]), min_size=1, max_size=6))
def test_assignment_count_is_the_multinomial(schedule: list[dt.date]) -> None:
    got = list(distinct_assignments(schedule))
    assert len(got) == len(set(got)) == count_assignments(schedule)
    assert tuple(schedule) in got
    assert count_assignments(schedule) <= math.factorial(len(schedule))


def _brute_force_stats(data: pd.DataFrame, steps: dict[int, dt.date], tau: float) -> tuple[
        float, list[float]]:
    """Refit the LPM for every assignment on y − τ·x_obs + τ·x_a (the sharp-null outcome)."""
    las = sorted(steps)
    observed = tuple(steps[la] for la in las)
    index = pd.to_datetime(data["index_date"]).dt.date
    base = build_design(data, "y", [])  # LA and period effects do not depend on the assignment
    t_obs, ref = None, []
    for a in distinct_assignments(observed):
        step = dict(zip(las, a, strict=True))
        x_a = np.array([d >= step[la] for d, la in zip(index, data["la_code"], strict=True)],
                       dtype=float)
        y = data["y"].to_numpy() - tau * data["exposed"].to_numpy() + tau * x_a
        coef = np.linalg.lstsq(np.column_stack([x_a, base.W]), y, rcond=None)[0][0] - tau
        if a == observed:
            t_obs = coef
        else:
            ref.append(coef)
    assert t_obs is not None
    return t_obs, ref


@pytest.fixture
def small(analysis_factory: Callable[..., pd.DataFrame],
          toy_steps: dict[int, dt.date]) -> tuple[pd.DataFrame, dict[int, dt.date]]:
    return analysis_factory(7, per_cell=6, periods=12, effect=0.2), toy_steps


def test_p_value_and_ci_match_brute_force_refits(
        small: tuple[pd.DataFrame, dict[int, dt.date]]) -> None:
    data, steps = small
    res = randomisation_test(build_design(data, "y", []), steps, alpha=0.05)
    assert res.n_assignments == 120 and res.n_degenerate == 0
    t_obs, ref = _brute_force_stats(data, steps, 0.0)
    assert res.estimate == pytest.approx(t_obs, abs=1e-10)
    expected_p = (1 + sum(abs(r) >= abs(t_obs) - 1e-12 for r in ref)) / 120
    assert res.p_value == pytest.approx(expected_p)
    assert res.ci_low < res.estimate < res.ci_high

    def p_at(tau: float) -> float:
        t, others = _brute_force_stats(data, steps, tau)
        return (1 + sum(abs(r) >= abs(t) - 1e-12 for r in others)) / 120

    eps = 1e-6
    assert p_at(res.ci_low + eps) > 0.05 >= p_at(res.ci_low - eps)
    assert p_at(res.ci_high - eps) > 0.05 >= p_at(res.ci_high + eps)


def test_null_p_values_are_roughly_uniform(analysis_factory: Callable[..., pd.DataFrame],
                                           toy_steps: dict[int, dt.date]) -> None:
    ps = [randomisation_test(build_design(analysis_factory(s, per_cell=5), "y", []), toy_steps,
                             alpha=0.05).p_value for s in range(20)]
    assert min(ps) >= 1 / 120
    assert sum(p < 0.05 for p in ps) <= 4  # 20 draws at 5%: 4+ has probability < 2%
    assert np.mean(ps) == pytest.approx(0.5, abs=0.2)


def test_cluster_without_a_step_is_refused(
        small: tuple[pd.DataFrame, dict[int, dt.date]]) -> None:
    data, steps = small
    partial = {la: d for la, d in steps.items() if la != 505}
    with pytest.raises(TrialvaultError, match="no step"):
        randomisation_test(build_design(data, "y", []), partial, alpha=0.05)


# --- the estimand's estimate as the statistic (exposure-time model) -------------------------

K_MAX = 3


def _period_of(d: dt.date) -> int:
    return (d.year - 2019) * 4 + (d.month - 1) // 3


def _nuisance(data: pd.DataFrame) -> np.ndarray:
    return build_design(data, "y", ["sex"]).W


def _et_fit(data: pd.DataFrame, W: np.ndarray, y: np.ndarray, steps: dict[int, dt.date],
            keep: np.ndarray | None = None, *, t: bool = False
            ) -> tuple[float, np.ndarray, np.ndarray]:
    """Refit the exposure-time model as if `steps` had been drawn: (estimate of the mean
    effect among the exposed — or with `t` that over its CR0 cluster-robust SE —, per-level
    effects, the levels)."""
    index = pd.to_datetime(data["index_date"]).dt.date
    exposed = np.array([d >= steps[la] for d, la in zip(index, data["la_code"], strict=True)])
    k = np.clip(data["period"].to_numpy() - np.array([_period_of(steps[la])
                                                      for la in data["la_code"]]), 0, K_MAX)
    keep = np.ones(len(y), bool) if keep is None else keep
    levels = np.unique(k[exposed & keep])
    D = ((k[:, None] == levels[None, :]) & exposed[:, None]).astype(float)
    X = np.column_stack([D, W])[keep]
    full = np.linalg.lstsq(X, y[keep], rcond=None)[0]
    coef = full[:len(levels)]
    shares = D[keep].sum(axis=0) / D[keep].sum()
    est = float(shares @ coef)
    if t:
        c = np.r_[shares, np.zeros(W.shape[1])]
        v = X @ np.linalg.solve(X.T @ X, c)
        e = y[keep] - X @ full
        la = data["la_code"].to_numpy()[keep]
        est /= np.sqrt(sum(float(v[la == g] @ e[la == g]) ** 2 for g in np.unique(la)))
    return est, coef, levels


def _et_columns(data: pd.DataFrame, steps: dict[int, dt.date], levels: np.ndarray
                ) -> np.ndarray:
    index = pd.to_datetime(data["index_date"]).dt.date
    exposed = np.array([d >= steps[la] for d, la in zip(index, data["la_code"], strict=True)])
    k = np.clip(data["period"].to_numpy() - np.array([_period_of(steps[la])
                                                      for la in data["la_code"]]), 0, K_MAX)
    return ((k[:, None] == levels[None, :]) & exposed[:, None]).astype(float)


def _ri(data: pd.DataFrame, steps: dict[int, dt.date], shift: str,
        transition: dict[dt.date, dt.date] | None = None, statistic: str = "estimate"
        ) -> RandomisationResult:
    return randomisation_estimand(
        data["y"].to_numpy(float), _nuisance(data), la=data["la_code"].to_numpy(),
        period=data["period"].to_numpy(), index_day=data["index_day"].to_numpy(),
        steps=steps, step_period={d: _period_of(d) for d in steps.values()},
        model="exposure_time", k_max=K_MAX, alpha=0.05, shift=shift, transition=transition,
        statistic=statistic)


def _brute_p(data: pd.DataFrame, steps: dict[int, dt.date], tau: float, shift: str,
             transition: dict[dt.date, dt.date] | None = None, t: bool = False) -> float:
    """p(τ) by refitting every assignment on the outcome the sharp null implies."""
    las = sorted(steps)
    W, y = _nuisance(data), data["y"].to_numpy(float)
    day = data["index_day"].to_numpy()

    def kept(s: dict[int, dt.date]) -> np.ndarray | None:
        if transition is None:
            return None
        start = np.array([(transition[s[la]] - dt.date(1970, 1, 1)).days
                          for la in data["la_code"]])
        step = np.array([(s[la] - dt.date(1970, 1, 1)).days for la in data["la_code"]])
        return ~((day >= start) & (day < step))

    beta, coef, levels = _et_fit(data, W, y, steps, kept(steps))
    effect = np.full(len(levels), tau)
    if shift == "profile":
        effect = tau + coef - beta
    y0 = y - _et_columns(data, steps, levels) @ effect
    t_obs = _et_fit(data, W, y0, steps, kept(steps), t=t)[0]
    others = []
    for a in distinct_assignments(tuple(steps[la] for la in las)):
        s = dict(zip(las, a, strict=True))
        if s != steps:
            others.append(_et_fit(data, W, y0, s, kept(s), t=t)[0])
    return (1 + sum(abs(t) >= abs(t_obs) - 1e-12 for t in others)) / 120


@pytest.fixture
def ramped(analysis_factory: Callable[..., pd.DataFrame],
           toy_steps: dict[int, dt.date]) -> tuple[pd.DataFrame, dict[int, dt.date]]:
    """Toy trial whose effect builds up over the quarters after the step."""
    data = analysis_factory(11, per_cell=6, periods=12, effect=0.0)
    k = np.clip(data["period"] - data["step_period"], 0, K_MAX)
    rng = np.random.default_rng(5)
    bump = data["exposed"] * (rng.random(len(data)) < 0.1 * (k + 1))
    data["y"] = np.clip(data["y"] + bump, 0, 1)
    return data, toy_steps


@pytest.mark.parametrize("shift", ["constant", "profile"])
def test_estimand_statistic_p_and_ci_match_brute_force_refits(
        ramped: tuple[pd.DataFrame, dict[int, dt.date]], shift: str) -> None:
    data, steps = ramped
    res = _ri(data, steps, shift)
    assert res.n_assignments == 120 and res.n_degenerate == 0
    W, y = _nuisance(data), data["y"].to_numpy(float)
    assert res.estimate == pytest.approx(_et_fit(data, W, y, steps)[0], abs=1e-10)
    assert res.p_value == pytest.approx(_brute_p(data, steps, 0.0, "constant"))
    assert res.ci_low < res.estimate < res.ci_high
    eps = 1e-6
    assert _brute_p(data, steps, res.ci_low + eps, shift) > 0.05 >= _brute_p(
        data, steps, res.ci_low - eps, shift)
    assert _brute_p(data, steps, res.ci_high - eps, shift) > 0.05 >= _brute_p(
        data, steps, res.ci_high + eps, shift)


@pytest.mark.parametrize("shift", ["constant", "profile"])
def test_studentised_statistic_p_and_ci_match_brute_force_refits(
        ramped: tuple[pd.DataFrame, dict[int, dt.date]], shift: str) -> None:
    data, steps = ramped
    res = _ri(data, steps, shift, statistic="t")
    assert res.p_value == pytest.approx(_brute_p(data, steps, 0.0, "constant", t=True))
    assert res.ci_low < res.estimate < res.ci_high
    eps = 1e-6
    assert _brute_p(data, steps, res.ci_low + eps, shift, t=True) > 0.05 >= _brute_p(
        data, steps, res.ci_low - eps, shift, t=True)
    assert _brute_p(data, steps, res.ci_high - eps, shift, t=True) > 0.05 >= _brute_p(
        data, steps, res.ci_high + eps, shift, t=True)


def test_transition_children_are_left_out_per_assignment(
        ramped: tuple[pd.DataFrame, dict[int, dt.date]]) -> None:
    data, steps = ramped
    window = {d: quarter_before(d) for d in steps.values()}
    res = _ri(data, steps, "constant", transition=window)
    # The window matters: the observed fit already leaves children out.
    assert abs(res.estimate - _ri(data, steps, "constant").estimate) > 1e-6
    assert res.p_value == pytest.approx(_brute_p(data, steps, 0.0, "constant", window))
    eps = 1e-6
    assert _brute_p(data, steps, res.ci_low + eps, "constant", window) > 0.05 >= _brute_p(
        data, steps, res.ci_low - eps, "constant", window)


def quarter_before(d: dt.date) -> dt.date:
    return dt.date(d.year - (d.month == 1), (d.month - 4) % 12 + 1, 1)


def test_immediate_model_equals_the_coefficient_test(
        small: tuple[pd.DataFrame, dict[int, dt.date]]) -> None:
    """With one exposure column the estimand's statistic is the exposure coefficient."""
    data, steps = small
    old = randomisation_test(build_design(data, "y", ["sex"]), steps, alpha=0.05)
    new = randomisation_estimand(
        data["y"].to_numpy(float), _nuisance(data), la=data["la_code"].to_numpy(),
        period=data["period"].to_numpy(), index_day=data["index_day"].to_numpy(), steps=steps,
        step_period={d: _period_of(d) for d in steps.values()}, model="immediate",
        k_max=K_MAX, alpha=0.05)
    assert new.estimate == pytest.approx(old.estimate, abs=1e-12)
    assert new.p_value == old.p_value
    assert (new.ci_low, new.ci_high) == pytest.approx((old.ci_low, old.ci_high), abs=1e-9)
