"""Power by simulation: the analytic model checked by Monte Carlo, and the plan's own analysis.

Two simulators:

- `check_analytic(...)`: a cheap cluster-period simulator of exactly the model the analytic
  power assumes (cluster and cluster-period effects with the design's correlation structure,
  binomial counts of children in each cluster-period), analysed by the same GLS estimator with
  the covariance known. Its rejection rate must match `analytic.power_of` within Monte Carlo
  error; binomial sampling (not normal) checks the variance σ² = p̄(1 − p̄).
- `simulate_power(...)`: `trialvault design simulate`. Each trial is drawn by the project's
  generator (`trialvault.synth`: the cohort-level path, or the full case histories and the
  cohort SQL with `full=True`), analysed by the plan's primary analysis
  (`trialvault.evaluate.analyse_primary`: estimand, model and small-sample inference), in
  parallel processes. Power (p < alpha with the effect planted), coverage of the confidence
  interval against each trial's true estimand, and size (p < alpha with no effect planted).

Both the generator and the evaluation are reached only through `_draw_trial` and `_analyse`,
so a change of their public API touches one place.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from trialvault.design.analytic import (
    Assumptions,
    cluster_covariance,
    correlation_matrix,
)
from trialvault.design.matrix import DesignMatrix
from trialvault.errors import UsageError
from trialvault.study.model import StudyFile

Progress = Callable[[int, int | None, str], None]


# --- the analytic model by Monte Carlo ------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    power: float
    mc_se: float
    reps: int
    mean_estimate: float


def _gls_weights(design: DesignMatrix, m: np.ndarray, a: Assumptions, sigma2: float
                 ) -> tuple[list[np.ndarray], float]:
    """Per cluster, the GLS weights of θ̂ on its period means; and Var(θ̂)."""
    n_clusters, n_periods = design.shape
    corr = correlation_matrix(n_periods, a)
    parts, info = [], np.zeros((n_periods + 1, n_periods + 1))
    for i in range(n_clusters):
        seen = design.observed[i]
        x = np.column_stack([np.eye(n_periods)[seen], design.exposure[i, seen]])
        vinv_x = np.linalg.solve(cluster_covariance(m[i, seen], a, sigma2,
                                                    corr[np.ix_(seen, seen)]), x)
        parts.append(vinv_x)
        info += x.T @ vinv_x
    cov = np.linalg.inv(info)
    return [(p @ cov)[:, -1] for p in parts], float(cov[-1, -1])


def check_analytic(design: DesignMatrix, m: np.ndarray, a: Assumptions, *, baseline: float,
                   effect: float, reps: int, seed: int) -> CheckResult:
    """Rejection rate of the GLS Wald test on simulated binary cluster-period data.

    Cross-sectional designs: the cluster-period risk is baseline + period trend + θ·x + u_ij,
    u_i ~ N(0, σ²ρC) (σ² = p̄(1 − p̄), C the cluster autocorrelation), clipped to [0, 1], and
    the count of events among m_ij children is binomial. Closed cohorts: the period means are
    drawn from the model's normal distribution (each child contributes to every period)."""
    from scipy import stats

    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    mean = baseline + effect / 2
    sigma2 = mean * (1 - mean)
    weights, variance = _gls_weights(design, m, a, sigma2)
    n_clusters, n_periods = design.shape
    trend = 0.01 * np.linspace(-1, 1, n_periods)  # a secular trend the period effects absorb
    corr = correlation_matrix(n_periods, a)
    estimates = np.zeros(reps)
    for i in range(n_clusters):
        seen = design.observed[i]
        x = np.nan_to_num(design.exposure[i])
        if a.cohort == "closed":
            cov = cluster_covariance(m[i, seen], a, sigma2, corr[np.ix_(seen, seen)])
            ybar = (baseline + trend[seen] + effect * x[seen]
                    + rng.multivariate_normal(np.zeros(seen.sum()), cov, size=reps))
        else:
            u = rng.multivariate_normal(np.zeros(n_periods), sigma2 * a.icc * corr, size=reps)
            risk = np.clip(baseline + trend + effect * x + u, 0.0, 1.0)[:, seen]
            size = np.rint(m[i, seen]).astype(np.int64)
            ybar = rng.binomial(size, risk) / size
        estimates += ybar @ weights[i]
    crit = stats.norm.ppf(1 - a.alpha / 2)
    rejected = np.abs(estimates) / math.sqrt(variance) > crit
    power = float(rejected.mean())
    return CheckResult(power=power, mc_se=math.sqrt(max(power * (1 - power), 1e-12) / reps),
                       reps=reps, mean_estimate=float(estimates.mean()))


# --- the plan's own analysis on the project's generator ------------------------------------

@dataclass(frozen=True)
class TrialResult:
    null: bool
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    estimand: float


@dataclass(frozen=True)
class SimulationResult:
    power: float
    coverage: float
    size: float
    reps: int
    null_reps: int
    failed: int
    mean_estimate: float
    mean_estimand: float
    mc_se_power: float
    method: str
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _draw_trial(study: StudyFile, *, seed: int, effects: dict[str, float],
                scenario: dict[str, float], full: bool) -> tuple[Any, float]:
    """Adapter to the synth stage: (the cohort's analysis table, the true estimand)."""
    if not full:
        from trialvault.synth import simulate_cohort

        frame, truth = simulate_cohort(study, seed=seed, effects=effects, scenario=scenario)
        return frame, float(truth["estimand"]["value"] or 0.0)
    import duckdb

    from trialvault.evaluate.cohort import build_analysis_table
    from trialvault.evaluate.validation import load_harmonised_tables
    from trialvault.synth import simulate

    world = simulate(study, seed=seed, effects=effects, scenario=scenario, error_rate=0.0)
    truth = world.truth()
    con = duckdb.connect()
    try:
        load_harmonised_tables(con, world.harmonised())
        frame = build_analysis_table(con, study).analysis
    finally:
        con.close()
    return frame, float(truth["estimand"]["value"] or 0.0)


def _analyse(frame: Any, study: StudyFile) -> Any:
    """Adapter to the evaluate stage: the plan's primary analysis."""
    from trialvault.evaluate import analyse_primary

    return analyse_primary(frame, study)


def with_drawn_order(study: StudyFile, seed: int) -> StudyFile:
    """The study with its step dates given to the LAs in an order drawn from `seed`.

    The trial randomises that order, and randomisation inference is exact over that draw, not
    for one fixed order: a simulation of its operating characteristics draws it per trial."""
    rollout = list(study.design.rollout)
    order = np.random.default_rng(np.random.SeedSequence([seed, 1711])).permutation(
        len(rollout))
    dates = [rollout[i].step_date for i in order]
    steps = [r.replace(step_date=d) for r, d in zip(rollout, dates, strict=True)]
    return study.replace(design=study.design.replace(rollout=steps))


def _one_trial(task: tuple[StudyFile, int, bool, dict[str, float], dict[str, float], bool, bool]
               ) -> TrialResult | None:
    study, seed, null, effects, scenario, full, draw_order = task
    from threadpoolctl import threadpool_limits

    if draw_order:
        study = with_drawn_order(study, seed)
    planted = {k: 0.0 for k in effects} if null else effects
    with threadpool_limits(limits=1, user_api="blas"):
        frame, estimand = _draw_trial(study, seed=seed, effects=planted, scenario=scenario,
                                      full=full)
        est = _analyse(frame, study)
    if not all(math.isfinite(v) for v in (est.estimate, est.p_value, est.ci_low, est.ci_high)):
        return None
    return TrialResult(null=null, estimate=est.estimate, ci_low=est.ci_low, ci_high=est.ci_high,
                       p_value=est.p_value, estimand=estimand)


def simulate_power(study: StudyFile, *, effects: dict[str, float],
                   scenario: dict[str, float] | None = None, reps: int, null_reps: int | None = None,
                   seed: int = 1, jobs: int = 1, full: bool = False, draw_order: bool = True,
                   progress: Progress | None = None) -> SimulationResult:
    """`reps` trials with `effects` planted and `null_reps` (default `reps`) with none.

    `draw_order`: each trial draws its rollout order (as the trial will); False keeps the
    study file's for every trial (power for that one order)."""
    import time

    primary = study.analysis.primary_outcome.id
    if primary not in effects:
        raise UsageError(f"plant an effect on the primary outcome: --effect {primary}=VALUE")
    if reps < 1:
        raise UsageError("--reps must be at least 1")
    null_reps = reps if null_reps is None else null_reps
    scenario = dict(scenario or {})
    tasks = [(study, seed + i, False, effects, scenario, full, draw_order) for i in range(reps)]
    tasks += [(study, seed + 1_000_000 + i, True, effects, scenario, full, draw_order)
              for i in range(null_reps)]
    started = time.perf_counter()
    results: list[TrialResult | None] = []
    jobs = max(1, min(jobs, os.cpu_count() or 1, len(tasks)))
    report = progress or (lambda done, total, what: None)
    report(0, len(tasks), "trials")
    if jobs == 1:
        for task in tasks:
            results.append(_one_trial(task))
            report(len(results), len(tasks), "trials")
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for result in pool.map(_one_trial, tasks, chunksize=1):
                results.append(result)
                report(len(results), len(tasks), "trials")
    ok = [r for r in results if r is not None]
    planted = [r for r in ok if not r.null]
    nulls = [r for r in ok if r.null]
    alpha = study.analysis.alpha
    power = float(np.mean([r.p_value < alpha for r in planted])) if planted else float("nan")
    coverage = float(np.mean([r.ci_low <= r.estimand <= r.ci_high for r in planted])
                     ) if planted else float("nan")
    size = float(np.mean([r.p_value < alpha for r in nulls])) if nulls else float("nan")
    a = study.analysis
    return SimulationResult(
        power=power, coverage=coverage, size=size, reps=len(planted), null_reps=len(nulls),
        failed=len(results) - len(ok),
        mean_estimate=float(np.mean([r.estimate for r in planted])) if planted else float("nan"),
        mean_estimand=float(np.mean([r.estimand for r in planted])) if planted else float("nan"),
        mc_se_power=math.sqrt(power * (1 - power) / len(planted)) if planted else float("nan"),
        method=f"{'full pipeline (case histories, cohort SQL)' if full else 'cohort-level synth'}"
               f" -> analyse_primary: {a.primary_model} model, {a.primary_inference} inference, "
               f"alpha {alpha:g}, rollout order "
               f"{'drawn per trial' if draw_order else 'fixed'}",
        seconds=time.perf_counter() - started)
