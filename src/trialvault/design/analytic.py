"""Analytic power and minimum detectable effect of a (stepped-wedge) cluster design.

The model is the linear mixed model of the cluster-period means (Hussey & Hughes 2007; Hooper
et al. 2016; Kasza et al. 2019): fixed period effects and the treatment effect θ, and a
within-cluster covariance of the cluster-period means ȳ_ij with m_ij members,

    Var(ȳ_ij)       = σ² [ρ + (1 − ρ)(1 + 0)/m_ij]
    Cov(ȳ_ij, ȳ_ik) = σ² [ρ·c_jk + (1 − ρ)·π/m]        (j ≠ k)

where σ² is the total variance of one observation, ρ the within-period ICC, c_jk the cluster
autocorrelation between periods j and k — 1 (Hussey & Hughes), a constant CAC
(block-exchangeable, Hooper et al. 2016; Girling & Hemming 2016) or CAC^|j−k|
(exponential decay, Kasza et al. 2019) — and π the individual autocorrelation: 0 for a
cross-sectional design (new people each period), > 0 for a closed cohort (the same m people
every period; Hooper et al. 2016). Binary outcomes are on the risk-difference scale with
σ² = p̄(1 − p̄), p̄ the mean of the control and intervention risks (Hussey & Hughes 2007).

Var(θ̂) is the θ element of (Σ_i X_iᵀ V_i⁻¹ X_i)⁻¹, the generalised least squares estimator on
the design matrix (numpy), not a closed form, so any design works: unequal volumes, missing
cluster-periods, several clusters per step. Power is that of the two-sided Wald test
(normal; or t with `df` degrees of freedom), the design effect is Var(θ̂) over the variance of
an individually randomised trial of the same total size with equal arms, 4σ²/N.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from trialvault.design.matrix import DesignMatrix
from trialvault.errors import UsageError

Correlation = Literal["block_exchangeable", "exponential_decay"]
CohortType = Literal["cross_sectional", "closed"]


@dataclass(frozen=True)
class Assumptions:
    """The correlation model and the outcome's scale."""

    icc: float
    cac: float = 1.0
    correlation: Correlation = "block_exchangeable"
    cohort: CohortType = "cross_sectional"
    iac: float = 0.0
    alpha: float = 0.05
    df: float | None = None  # None: normal (Wald z) test

    def __post_init__(self) -> None:
        if not 0 <= self.icc < 1 or math.isnan(self.icc):
            raise UsageError(f"ICC {self.icc}: must be in [0, 1)")
        if not 0 <= self.cac <= 1:
            raise UsageError(f"CAC {self.cac}: must be in [0, 1]")
        if not 0 <= self.iac < 1:
            raise UsageError(f"individual autocorrelation {self.iac}: must be in [0, 1)")
        if self.cohort == "cross_sectional" and self.iac:
            raise UsageError("an individual autocorrelation needs a closed cohort")
        if not 0 < self.alpha < 1:
            raise UsageError(f"alpha {self.alpha}: must be in (0, 1)")
        if self.df is not None and self.df <= 0:
            raise UsageError(f"df {self.df}: must be positive")


@dataclass(frozen=True)
class PowerResult:
    power: float | None
    mdes: float | None
    variance: float          # Var(θ̂) at the effect (or at the MDES)
    design_effect: float
    method: str
    effect: float | None
    sigma2: float
    total_n: float

    def as_json(self) -> dict[str, object]:
        return {"power": self.power, "mdes": self.mdes, "variance": self.variance,
                "design_effect": self.design_effect, "method": self.method}


def correlation_matrix(n_periods: int, a: Assumptions) -> np.ndarray:
    """c_jk: the cluster autocorrelation between periods j and k."""
    lag = np.abs(np.subtract.outer(np.arange(n_periods), np.arange(n_periods)))
    if a.correlation == "exponential_decay":
        return np.power(a.cac, lag, dtype=float)
    c = np.full((n_periods, n_periods), a.cac)
    np.fill_diagonal(c, 1.0)
    return c


def cluster_covariance(m: np.ndarray, a: Assumptions, sigma2: float,
                       corr: np.ndarray) -> np.ndarray:
    """Covariance of one cluster's observed period means (m: members per observed period)."""
    if a.cohort == "closed":
        if np.ptp(m) > 1e-9:
            raise UsageError("a closed cohort has the same members every period: give one "
                             "volume per cluster")
        within = (1 - a.icc) / m[0] * ((1 - a.iac) * np.eye(len(m)) + a.iac)
    else:
        within = np.diag((1 - a.icc) / m)
    return sigma2 * (a.icc * corr + within)


def treatment_variance(design: DesignMatrix, m: np.ndarray, a: Assumptions,
                       sigma2: float) -> float:
    """Var(θ̂) by generalised least squares with period fixed effects."""
    n_clusters, n_periods = design.shape
    corr = correlation_matrix(n_periods, a)
    info = np.zeros((n_periods + 1, n_periods + 1))
    for i in range(n_clusters):
        seen = design.observed[i]
        x = np.column_stack([np.eye(n_periods)[seen], design.exposure[i, seen]])
        v = cluster_covariance(m[i, seen], a, sigma2, corr[np.ix_(seen, seen)])
        info += x.T @ np.linalg.solve(v, x)
    unobserved = ~design.observed.any(axis=0)
    keep = np.r_[~unobserved, True]  # a period nobody observes has no effect to estimate
    info = info[np.ix_(keep, keep)]
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        raise UsageError("the design cannot separate the exposure from the period effects "
                         "(every cluster switches at the same time)") from None
    variance = float(cov[-1, -1])
    if not np.isfinite(variance) or variance <= 0 or np.linalg.cond(info) > 1e13:
        raise UsageError("the design cannot separate the exposure from the period effects "
                         "(every cluster switches at the same time)")
    return variance


NORMAL = NormalDist()


def power_of(effect: float, variance: float, a: Assumptions) -> float:
    """Two-sided power of the Wald test of θ = 0 when θ = effect."""
    z = abs(effect) / math.sqrt(variance)
    if a.df is None:
        # statistics.NormalDist, not SciPy: importing scipy.stats costs ~1-2 s, and
        # `design power` must answer in under a second.
        crit = NORMAL.inv_cdf(1 - a.alpha / 2)
        return NORMAL.cdf(z - crit) + NORMAL.cdf(-z - crit)
    from scipy import stats

    crit = stats.t.ppf(1 - a.alpha / 2, a.df)
    return float(stats.t.cdf(z - crit, a.df) + stats.t.cdf(-z - crit, a.df))


def _increasing_root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """The root of an increasing function on [lo, hi] (f(lo) < 0 <= f(hi)), by bisection to
    machine precision: power rises with the effect, so this always converges (and needs no
    SciPy import, see `power_of`)."""
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return hi


def binary_sigma2(baseline: float, effect: float) -> float:
    p1 = baseline + effect
    if not 0 < baseline < 1:
        raise UsageError(f"baseline risk {baseline}: must be in (0, 1)")
    if not 0 <= p1 <= 1:
        raise UsageError(f"baseline {baseline} plus effect {effect} leaves [0, 1]")
    mean = (baseline + p1) / 2
    return mean * (1 - mean)


def _method(design: DesignMatrix, a: Assumptions, binary: bool) -> str:
    n_clusters, n_periods = design.shape
    if a.cac == 1 and a.cohort == "cross_sectional":
        model = "Hussey & Hughes (2007) random cluster intercept"
    elif a.correlation == "exponential_decay":
        model = f"exponential decay, CAC {a.cac:g}^lag (Kasza et al. 2019)"
    else:
        model = f"block-exchangeable, CAC {a.cac:g} (Hooper et al. 2016)"
    cohort = ("closed cohort, individual autocorrelation "
              f"{a.iac:g}" if a.cohort == "closed" else "cross-sectional")
    test = "Wald z test" if a.df is None else f"t test, {a.df:g} df"
    scale = "risk difference, variance p̄(1−p̄)" if binary else "mean difference"
    return (f"GLS on {n_clusters} clusters × {n_periods} periods; {model}; {cohort}; ICC "
            f"{a.icc:g}; {scale}; two-sided {test}, alpha {a.alpha:g}")


def analyse(design: DesignMatrix, m: np.ndarray, a: Assumptions, *,
            baseline: float | None = None, sd: float | None = None,
            effect: float | None = None, power: float | None = None) -> PowerResult:
    """Power for `effect`, or the minimum detectable effect (MDES) for `power`.

    Binary outcomes give `baseline` (control risk); others give `sd` (total SD of one
    observation). For a binary MDES the variance depends on the effect: it is solved for a
    decrease and for an increase, and the larger magnitude is reported (the direction
    towards p = 0.5 has the larger variance), so the statement holds either way."""
    if (effect is None) == (power is None):
        raise UsageError("give either an effect (for power) or a power (for the MDES)")
    if (baseline is None) == (sd is None):
        raise UsageError("give a baseline risk (binary outcome) or an SD (other outcomes)")
    if power is not None and not a.alpha < power < 1:
        raise UsageError(f"power {power}: must be between alpha and 1")
    if sd is not None and sd <= 0:
        raise UsageError(f"SD {sd}: must be positive")
    binary = baseline is not None
    p0 = float(baseline) if baseline is not None else 0.0
    total_n = float(np.nansum(np.where(design.observed, m, 0.0)))
    unit = 1.0 if sd is None else float(sd) ** 2  # variance scales with σ²: solve once at σ² = 1
    var_unit = treatment_variance(design, m, a, unit)
    method = _method(design, a, binary)

    def sigma2(d: float) -> float:
        return binary_sigma2(p0, d) if binary else unit

    def result(d: float, pw: float | None, mdes: float | None) -> PowerResult:
        s2 = sigma2(d)
        variance = var_unit * s2 / unit
        return PowerResult(power=pw, mdes=mdes, variance=variance,
                           design_effect=variance / (4 * s2 / total_n), method=method,
                           effect=d, sigma2=s2, total_n=total_n)

    if effect is not None:
        s2 = sigma2(effect)
        return result(effect, power_of(effect, var_unit * s2 / unit, a), None)
    target = float(power)  # type: ignore[arg-type]
    if not binary:
        d = _increasing_root(lambda x: power_of(x, var_unit, a) - target, 0.0,
                             50 * math.sqrt(var_unit))
        return result(d, target, d)
    candidates = []
    for sign, limit in ((-1.0, p0), (1.0, 1 - p0)):
        def gap(x: float, sign: float = sign) -> float:
            return power_of(sign * x, var_unit * sigma2(sign * x), a) - target
        if gap(limit) < 0:
            continue  # no effect in this direction reaches the power
        candidates.append((_increasing_root(gap, 0.0, limit), sign))
    if not candidates:
        raise UsageError(f"no risk difference reaches power {target:g} with this design")
    mdes, sign = max(candidates)
    return result(sign * mdes, target, mdes)
