"""Randomisation inference for the stepped wedge: every assignment of LAs to steps the design allows.

The design randomises which LA takes which step date. The reference set is every *distinct*
assignment of the schedule's step dates to the LAs: all permutations of the multiset of dates
(5! = 120 for five distinct steps; with several LAs sharing a step, permutations that only swap
LAs within a step are the same assignment and counted once: n! / ∏ k_j!).

Test statistic: the exposure coefficient of the linear (probability) model with LA and period
fixed effects and the plan's covariates — β̂_a = x̃_a'y / x̃_a'x̃_a with x̃_a the exposure under
assignment a, partialled out of W (Frisch–Waugh–Lovell). Exposure under a is recomputed from each
child's index date: exposed = index_date ≥ step date of the child's LA under a.

p-value: share of assignments with |T_a| ≥ |T_obs| (the observed assignment included), exact
under the sharp null of no effect for any child.

Confidence interval by test inversion (Rosenbaum 2002, *Observational Studies*, 2nd ed., ch. 2;
for stepped wedges Kennedy-Shaffer, de Gruttola & Lipsitch 2020, *Stat Med* 39(7):815–844, and
Rabideau & Wang 2021, *Stat Med* 40(20):4442–4456, who invert tests built on individual-level
regression statistics as done here): under the sharp null of a constant additive effect τ (the
LPM's risk difference), the untreated outcome is y − τ·x_obs and the outcome under assignment a
is y − τ·x_obs + τ·x_a. By linearity of OLS the statistic centred
at τ is T_a(τ) = b_a − τ·c_a with b_a = β̂_a(y) and c_a = x̃_a'x_obs / x̃_a'x̃_a (c_obs = 1).
p(τ) is a step function whose jumps are the roots of (b_a − τc_a)² = (β̂ − τ)²; we find them all,
so the interval {τ : p(τ) > α} is exact (its hull is reported; ±inf when unbounded).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from trialvault.errors import TrialvaultError
from trialvault.evaluate.design import Design

_EPOCH = dt.date(1970, 1, 1)
_REL_TOL = 1e-10


@dataclass(frozen=True)
class RandomisationResult:
    outcome: str
    estimate: float
    p_value: float
    ci_low: float
    ci_high: float
    n_assignments: int
    """Assignments in the reference set (each counted once)."""
    n_degenerate: int = 0
    """Assignments where exposure is collinear with the fixed effects (left out)."""


def count_assignments(step_dates: Sequence[dt.date]) -> int:
    """n! / ∏ k_j! for a schedule with k_j LAs at step j."""
    total = math.factorial(len(step_dates))
    for k in Counter(step_dates).values():
        total //= math.factorial(k)
    return total


def distinct_assignments(step_dates: Sequence[dt.date]) -> Iterator[tuple[dt.date, ...]]:
    """Every distinct permutation of the multiset of step dates, in lexicographic order."""
    items = sorted(step_dates)
    n = len(items)
    # Narayana's next-permutation algorithm visits each distinct multiset permutation once.
    while True:
        yield tuple(items)
        i = n - 2
        while i >= 0 and items[i] >= items[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while items[j] <= items[i]:
            j -= 1
        items[i], items[j] = items[j], items[i]
        items[i + 1:] = reversed(items[i + 1:])


def randomisation_test(design: Design, steps: dict[int, dt.date], *, alpha: float,
                       max_assignments: int = 200_000) -> RandomisationResult:
    """Exact RI p-value and test-inversion CI for the exposure effect in `design`.

    `steps` maps each cluster (LA code) to its observed step date; the reference set permutes
    those dates over the LAs.
    """
    # Every LA of the schedule takes part, even one with no cohort member for this outcome:
    # its step date is still one of the dates being permuted.
    las = sorted(steps)
    unknown = sorted(set(design.clusters) - set(las))
    if unknown:
        raise TrialvaultError(f"randomisation inference: {len(unknown)} cluster(s) in the data "
                              "have no step in design.rollout")
    observed = tuple(steps[la] for la in las)
    n_total = count_assignments(observed)
    if n_total > max_assignments:
        raise TrialvaultError(
            f"randomisation inference: {n_total} assignments exceed the limit of "
            f"{max_assignments}; enumerate fewer steps or raise the limit")

    # Column of each design row's LA within `las`.
    la_pos = np.searchsorted(np.asarray(las), np.asarray(design.clusters))[design.cluster]
    x_obs = design.x
    x_tilde_obs = design.partial_out(x_obs)
    d_obs = float(x_tilde_obs @ x_obs)
    if d_obs <= _REL_TOL * max(1.0, float(x_obs @ x_obs)):
        raise TrialvaultError(
            f"outcome '{design.outcome}': exposure is collinear with the LA and period effects")
    beta = float(x_tilde_obs @ design.y) / d_obs

    b_list: list[float] = []
    c_list: list[float] = []
    n_degenerate = 0
    batch: list[np.ndarray] = []
    for assignment in distinct_assignments(observed):
        if assignment == observed:
            continue  # counted once below with T_obs(τ) = β̂ − τ
        step_day = np.array([(d - _EPOCH).days for d in assignment], dtype=np.int64)
        batch.append((design.index_day >= step_day[la_pos]).astype(float))
        if len(batch) == 16:
            n_degenerate += _score_batch(design, batch, x_obs, b_list, c_list)
            batch = []
    if batch:
        n_degenerate += _score_batch(design, batch, x_obs, b_list, c_list)

    b = np.asarray(b_list)
    c = np.asarray(c_list)
    n_ref = len(b) + 1
    p_value = _p_value(b, c, beta, 0.0)
    lo, hi = _invert(b, c, beta, alpha)
    return RandomisationResult(outcome=design.outcome, estimate=beta, p_value=p_value,
                               ci_low=lo, ci_high=hi, n_assignments=n_ref,
                               n_degenerate=n_degenerate)


def _score_batch(design: Design, batch: list[np.ndarray], x_obs: np.ndarray,
                 b_out: list[float], c_out: list[float]) -> int:
    xs = np.column_stack(batch)
    xt = design.partial_out(xs)
    denom = np.einsum("ij,ij->j", xt, xs)
    scale = np.maximum(1.0, np.einsum("ij,ij->j", xs, xs))
    ok = denom > _REL_TOL * scale
    b = (xt.T @ design.y)[ok] / denom[ok]
    c = (xt.T @ x_obs)[ok] / denom[ok]
    b_out.extend(b.tolist())
    c_out.extend(c.tolist())
    return int((~ok).sum())


def _p_value(b: np.ndarray, c: np.ndarray, beta: float, tau: float) -> float:
    t_obs = abs(beta - tau)
    t = np.abs(b - tau * c)
    extreme = t >= t_obs * (1 - _REL_TOL) - _REL_TOL
    return float((int(extreme.sum()) + 1) / (len(b) + 1))


def _invert(b: np.ndarray, c: np.ndarray, beta: float, alpha: float) -> tuple[float, float]:
    """Hull of {τ : p(τ) > alpha}, exact: p only changes where (b − τc)² = (β̂ − τ)²."""
    roots: list[float] = [beta]
    # (c² − 1)τ² − 2(bc − β̂)τ + (b² − β̂²) = 0 for each assignment
    qa, qb, qc = c * c - 1.0, -2.0 * (b * c - beta), b * b - beta * beta
    lin = np.abs(qa) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        roots += list((-qc[lin] / qb[lin])[np.isfinite(-qc[lin] / qb[lin])])
        disc = qb[~lin] ** 2 - 4 * qa[~lin] * qc[~lin]
        real = disc >= 0
        sq = np.sqrt(disc[real])
        a2 = 2 * qa[~lin][real]
        roots += list((-qb[~lin][real] - sq) / a2) + list((-qb[~lin][real] + sq) / a2)
    pts = np.unique(np.asarray([r for r in roots if np.isfinite(r)]))
    # Probe the middle of every interval between breakpoints, and beyond both ends.
    span = max(1.0, float(np.ptp(pts)) if len(pts) > 1 else abs(beta))
    probes = np.concatenate([[pts[0] - span], (pts[:-1] + pts[1:]) / 2, [pts[-1] + span]])
    accepted = [k for k, tau in enumerate(probes) if _p_value(b, c, beta, float(tau)) > alpha]
    if not accepted:
        return float("nan"), float("nan")
    first, last = accepted[0], accepted[-1]
    lo = -math.inf if first == 0 else float(pts[first - 1])
    hi = math.inf if last == len(probes) - 1 else float(pts[last])
    return lo, hi
