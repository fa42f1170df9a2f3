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
    count_assignments,
    distinct_assignments,
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
