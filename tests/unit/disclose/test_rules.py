"""Primary rules: thresholds from the study file, ACRO's semantics, small literal cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from trialvault.disclose.rules import (
    ALL_SAME,
    DOMINANCE,
    NEGATIVE,
    P_RATIO,
    THRESHOLD,
    MagnitudeEvidence,
    frequency_unsafe,
    magnitude_unsafe,
    model_dof_status,
    round_to_base,
    rounding_interval,
)
from trialvault.study.model import Disclosure, StudyFile


def test_study_file_carries_the_acro_defaults(nwd_study: StudyFile) -> None:
    d = nwd_study.disclosure
    assert (d.threshold, d.dominance_n, d.dominance_k, d.p_ratio, d.min_residual_dof,
            d.zeros_disclosive, d.rounding_base, d.suppression_symbol) == (
        10, 2, 0.9, 0.1, 10, True, 5, "c")


def test_round_half_up_to_base() -> None:
    assert round_to_base([0, 1, 2, 3, 7, 8, 12, 13, 10], 5).tolist() == [0, 0, 0, 5, 5, 10, 10,
                                                                          15, 10]
    assert round_to_base([4, 5, 14, 15], 10).tolist() == [0, 10, 10, 20]
    assert round_to_base([7], 1).tolist() == [7]


@given(st.integers(0, 10_000), st.sampled_from([1, 2, 3, 5, 10]))
def test_rounding_interval_is_exactly_the_preimage(x: int, base: int) -> None:
    shown = int(round_to_base([x], base)[0])
    lo, hi = rounding_interval(shown, base)
    assert lo <= x <= hi
    span = np.arange(max(lo - base, 0), hi + base + 1)
    inside = round_to_base(span, base) == shown
    assert span[inside].min() == lo and span[inside].max() == hi


def test_threshold_and_zero_rules() -> None:
    small, zero = frequency_unsafe([0, 1, 9, 10, 11, 100], Disclosure())
    assert small.tolist() == [False, True, True, False, False, False]
    assert zero.tolist() == [True, False, False, False, False, False]
    _, zero = frequency_unsafe([0, 5], Disclosure(zeros_disclosive=False))
    assert zero.tolist() == [False, False]


def test_a_value_that_would_round_below_the_threshold_is_unsafe() -> None:
    # threshold 7 with rounding to 5: 7 would be shown as 5, a small number.
    small, _ = frequency_unsafe([6, 7, 8], Disclosure(threshold=7, rounding_base=5))
    assert small.tolist() == [True, True, False]
    small, _ = frequency_unsafe([7], Disclosure(threshold=7, rounding_base=5), rounding=False)
    assert small.tolist() == [False]


def _evidence(cells: list[list[float]], n_top: int = 2) -> MagnitudeEvidence:
    tops = [sorted(c, reverse=True) for c in cells]
    return MagnitudeEvidence(
        n=np.array([len(c) for c in cells]), total=np.array([sum(c) for c in cells]),
        top1=np.array([t[0] if t else 0 for t in tops], dtype=float),
        top2=np.array([t[1] if len(t) > 1 else 0 for t in tops], dtype=float),
        top_n=np.array([sum(t[:n_top]) for t in tops], dtype=float),
        minimum=np.array([min(c) if c else np.nan for c in cells]),
        maximum=np.array([max(c) if c else np.nan for c in cells]),
        negatives=np.array([sum(v < 0 for v in c) for c in cells]))


def test_magnitude_rules_on_literal_cells() -> None:
    rules = Disclosure()
    spread = [float(v) for v in range(1, 16)]  # 15 contributors, none dominant
    dominated = [100.0, 5.0, *([1.0] * 9)]  # top 2 = 105 of 114 = 92% >= 90%; rest 9 < 10
    # With n = 2, failing the p-ratio implies failing dominance: rest 4 < 10% of 50.
    p_fail = [50.0, 40.0, *([0.4] * 10)]
    same = [2.0] * 12
    few = [3.0, 4.0, 5.0]
    negative = [5.0, -1.0, *([2.0] * 10)]
    flags = magnitude_unsafe(_evidence([spread, dominated, p_fail, same, few, negative]), rules)
    assert flags[THRESHOLD].tolist() == [False, False, False, False, True, False]
    assert flags[DOMINANCE].tolist() == [False, True, True, False, False, False]
    assert flags[P_RATIO].tolist() == [False, True, True, False, False, False]
    assert flags[ALL_SAME].tolist() == [False, False, False, True, False, False]
    assert flags[NEGATIVE].tolist() == [False, False, False, False, False, True]


def test_all_zero_cell_fails_the_p_ratio_as_in_acro() -> None:
    flags = magnitude_unsafe(_evidence([[0.0] * 12]), Disclosure())
    assert flags[P_RATIO].tolist() == [True] and flags[DOMINANCE].tolist() == [False]


def test_dominance_boundary_is_inclusive_as_in_acro() -> None:
    # ACRO: top_n_sum / sum >= k is disclosive.
    cell = [45.0, 45.0, *([1.0] * 10)]  # 90 / 100 exactly
    assert magnitude_unsafe(_evidence([cell]), Disclosure())[DOMINANCE].tolist() == [True]


def test_residual_dof() -> None:
    rules = Disclosure()
    assert model_dof_status(9, rules) == "fail"
    assert model_dof_status(9, Disclosure(min_residual_dof=5)) == "pass"
    assert model_dof_status(10, rules) == "pass"
    assert model_dof_status(None, rules) == "review"
    assert model_dof_status(float("nan"), rules) == "review"
