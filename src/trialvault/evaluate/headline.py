"""The plan's effect estimators and their inference, on the difference scale.

Models (the study's `analysis.primary_model`):

- `immediate`: one exposure coefficient with LA and period fixed effects and the covariates
  (Hussey & Hughes 2007). It estimates the mean effect among exposed children only when the
  effect is the same for every exposed child.
- `exposure_time`: one effect per period since the LA's step at the child's index date
  (0, 1, ..., `exposure_time_max` and over pooled), the "exposure time indicator" model of
  Kenny et al. (2022, *Stat Med* 41:4311); the estimand — the mean effect among exposed
  children — is the average of those effects weighted by the exposed children at each
  exposure time. It stays unbiased when the effect builds up after the step.

Transition (`analysis.transition_months`): children indexed in the months just before their
LA's step spend much of their follow-up under the intervention; they are left out of every
effect model (and counted).

Inference methods on the estimand (one row each): `randomisation` (exact randomisation
inference over every allowed assignment of LAs to steps with the model's estimate of the
estimand as the statistic, CI by test inversion: `randomisation.randomisation_estimand`),
`cr2` (cluster-robust CR2, Bell–McCaffrey df: `small_sample`), `lmm_satterthwaite` and
`lmm_kenward_roger` (nested exchangeable mixed model: `mixed`), `model_hc1` (children treated
as independent: a sensitivity that ignores clustering). The wild cluster bootstrap and the
immediate model's randomisation test of its coefficient run in `run`.
docs/operating-characteristics.md measures each on data that break the model.

`analyse_primary(analysis, study)` is the one call for "the plan's primary analysis of the
primary outcome on an in-memory cohort" (used by design simulations as well as `evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from trialvault.errors import TrialvaultError
from trialvault.evaluate.cohort import PERIOD_MONTHS
from trialvault.evaluate.design import _dummies, _encode, _full_rank
from trialvault.evaluate.mixed import MixedFit, fit_mixed, kenward_roger, satterthwaite
from trialvault.evaluate.randomisation import randomisation_estimand
from trialvault.evaluate.small_sample import ContrastTest, cr2_contrast, hc1_contrast
from trialvault.study.model import StudyFile

# Human-readable names of the inference methods (the report and the summary print these).
METHOD_NAMES: dict[str, str] = {
    "cr2": "cluster-robust CR2 standard error, Bell–McCaffrey (Satterthwaite) df, t test",
    "lmm_satterthwaite": "mixed model (random LA and LA×period), REML, Satterthwaite df",
    "lmm_kenward_roger": "mixed model (random LA and LA×period), REML, Kenward–Roger adjusted "
                         "standard error and df",
    "model_hc1": "child-level HC1 standard error, normal approximation (ignores clustering)",
    "randomisation": "randomisation inference over every allowed assignment of LAs to steps "
                     "(exact p-value; confidence interval by test inversion; the statistic "
                     "and the shift inverted are named in the note)",
    "randomisation_ipw": "randomisation inference over every allowed assignment of LAs to "
                         "steps, inverse probability weighted (weights held fixed)",
    "cr2_ipw": "cluster-robust CR2 standard error, Bell–McCaffrey df, inverse probability "
               "weighted",
    "wild_cluster_bootstrap": "restricted wild cluster bootstrap (Webb weights)",
}
ESTIMAND_NAMES: dict[str, str] = {
    "mean_effect_among_exposed": "mean effect among exposed children (indexed on or after "
                                 "their LA's step): risk or mean difference",
}
MODEL_METHODS = ("cr2", "lmm_satterthwaite", "lmm_kenward_roger", "model_hc1")
MAIN_GROUPS = ("edge_of_care", "care_leaver")


@dataclass(frozen=True)
class EffectEstimate:
    """One estimator × inference method's answer about the estimand."""

    outcome: str
    population: str
    model: str
    method: str
    estimand: str
    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    note: str = ""

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PreparedModel:
    """The numeric pieces of one outcome's effect model."""

    X: np.ndarray
    y: np.ndarray
    contrast: np.ndarray
    cluster: np.ndarray
    period: np.ndarray
    mixed_X: np.ndarray
    mixed_contrast: np.ndarray
    n: int


def in_transition(frame: pd.DataFrame, months: int) -> pd.Series:
    """Children indexed within `months` before their LA's step (their follow-up straddles it)."""
    if months <= 0:
        return pd.Series(False, index=frame.index)
    index = pd.to_datetime(frame["index_date"])
    step = pd.to_datetime(frame["step_date"])
    start = step - pd.DateOffset(months=months)
    return (index >= start) & (index < step)


def model_rows(frame: pd.DataFrame, outcome: str, study: StudyFile,
               groups: tuple[str, ...] = MAIN_GROUPS, *, transition: bool = True
               ) -> pd.DataFrame:
    """Rows an effect model of `outcome` uses: measured, in `groups`, not in transition
    (`transition=False` keeps those: randomisation inference decides per assignment)."""
    rows = frame[frame[outcome].notna()]
    if "cohort_group" in rows.columns:
        rows = rows[rows["cohort_group"].isin(groups)]
    if transition and "step_date" in rows.columns:
        rows = rows[~in_transition(rows, study.analysis.transition_months)]
    return rows.reset_index(drop=True)


def treatment_columns(frame: pd.DataFrame, model: str, k_max: int
                      ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Exposure columns and the estimand's weights on them (the exposed children's shares)."""
    exposed = frame["exposed"].to_numpy(dtype=float)
    if model == "immediate":
        return exposed[:, None], ["exposed"], np.array([1.0])
    k = (frame["period"] - frame["step_period"]).to_numpy(dtype=np.int64)
    k = np.clip(k, 0, k_max)
    levels = sorted(set(k[exposed == 1].tolist()))
    if not levels:
        raise TrialvaultError("no exposed child: the exposure-time model has nothing to fit")
    cols = np.column_stack([(exposed == 1) & (k == lv) for lv in levels]).astype(float)
    weights = cols.sum(axis=0) / cols.sum()
    names = [f"exposure_time_{lv}{'+' if lv == k_max else ''}" for lv in levels]
    return cols, names, weights


def _nuisance_blocks(frame: pd.DataFrame, study: StudyFile
                     ) -> tuple[list[pd.DataFrame], pd.DataFrame, pd.DataFrame,
                                list[pd.DataFrame]]:
    base = [pd.DataFrame({"intercept": np.ones(len(frame))})]
    la = _dummies(frame["la_code"].astype("int64").astype(str), "la")
    # Integer levels sort numerically, so the first period is the reference as in `design`.
    period = _dummies(frame["period"].astype("int64"), "period")
    covs = [_encode(frame[c], c) for c in study.analysis.covariates if c in frame.columns]
    return base, la, period, covs


def nuisance_matrix(frame: pd.DataFrame, study: StudyFile) -> np.ndarray:
    """The effect models' other columns: intercept, LA, period and the plan's covariates."""
    base, la, period, covs = _nuisance_blocks(frame, study)
    return _full_rank(pd.concat([*base, la, period, *covs], axis=1)).to_numpy(dtype=float)


def prepare_model(frame: pd.DataFrame, outcome: str, study: StudyFile, *,
                  model: str | None = None) -> PreparedModel:
    """[exposure columns, intercept, LA, period, covariates] and the estimand's contrast.

    The mixed model's matrix has no LA columns (LA is its random effect)."""
    a = study.analysis
    model = model or a.primary_model
    if frame.empty:
        raise TrialvaultError(f"outcome '{outcome}': no child to analyse")
    T, _, weights = treatment_columns(frame, model, a.exposure_time_max)
    base, la, period, covs = _nuisance_blocks(frame, study)
    fixed = pd.concat([pd.DataFrame(T, columns=[f"t{i}" for i in range(T.shape[1])]), *base,
                       la, period, *covs], axis=1)
    fixed = _full_rank(fixed)
    mixed = _full_rank(pd.concat([pd.DataFrame(T, columns=[f"t{i}" for i in range(T.shape[1])]),
                                  *base, period, *covs], axis=1))
    kept = [f"t{i}" for i in range(T.shape[1])]
    for name, matrix in (("fixed", fixed), ("mixed", mixed)):
        lost = [c for c in kept if c not in matrix.columns]
        if lost:
            raise TrialvaultError(f"outcome '{outcome}': exposure is collinear with the LA "
                                  f"and period effects ({name} model)")
    contrast = np.zeros(fixed.shape[1])
    contrast[: T.shape[1]] = weights
    mixed_contrast = np.zeros(mixed.shape[1])
    mixed_contrast[: T.shape[1]] = weights
    return PreparedModel(X=fixed.to_numpy(dtype=float), y=frame[outcome].to_numpy(dtype=float),
                         contrast=contrast, cluster=frame["la_code"].to_numpy(dtype=np.int64),
                         period=frame["period"].to_numpy(dtype=np.int64),
                         mixed_X=mixed.to_numpy(dtype=float), mixed_contrast=mixed_contrast,
                         n=len(frame))


def _estimate(outcome: str, population: str, model: str, method: str, estimand: str,
              test: Any, n: int, note: str = "") -> EffectEstimate:
    return EffectEstimate(outcome=outcome, population=population, model=model, method=method,
                          estimand=estimand, estimate=float(test.estimate), se=float(test.se),
                          df=float(test.df), ci_low=float(test.ci_low),
                          ci_high=float(test.ci_high), p_value=float(test.p_value), n=n,
                          note=note)


def failed(outcome: str, population: str, model: str, method: str, estimand: str, n: int,
           note: str) -> EffectEstimate:
    nan = float("nan")
    return EffectEstimate(outcome, population, model, method, estimand, nan, nan, nan, nan, nan,
                          nan, n, note)


def estimate_effects(prepared: PreparedModel, outcome: str, study: StudyFile, *,
                     population: str = "main", model: str | None = None,
                     methods: tuple[str, ...] = MODEL_METHODS,
                     weights: np.ndarray | None = None) -> tuple[list[EffectEstimate],
                                                                 dict[str, float]]:
    """The estimand by each model-based method; plus the mixed model's variance components."""
    a = study.analysis
    model = model or a.primary_model
    out: list[EffectEstimate] = []
    components: dict[str, float] = {}
    fit: MixedFit | None = None
    for method in methods:
        try:
            if method == "cr2":
                test: ContrastTest | Any = cr2_contrast(prepared.X, prepared.y, prepared.cluster,
                                                        prepared.contrast, alpha=a.alpha,
                                                        weights=weights)
            elif method == "model_hc1":
                test = hc1_contrast(prepared.X, prepared.y, prepared.contrast, alpha=a.alpha)
            elif method in ("lmm_satterthwaite", "lmm_kenward_roger"):
                if fit is None:
                    fit = fit_mixed(prepared.mixed_X, prepared.y, prepared.cluster,
                                    prepared.period)
                small = satterthwaite if method == "lmm_satterthwaite" else kenward_roger
                test = small(fit, prepared.mixed_contrast, alpha=a.alpha)
                c, cp, e = fit.sigma2
                components = {"sigma2_cluster": c, "sigma2_cluster_period": cp,
                              "sigma2_residual": e, "icc": fit.icc, "cac": fit.cac}
            else:
                raise TrialvaultError(f"unknown inference method {method}")
        except (np.linalg.LinAlgError, ValueError, TrialvaultError) as exc:
            out.append(failed(outcome, population, model, method, a.estimand, prepared.n,
                              f"not estimable: {type(exc).__name__}"))
            continue
        note = "inverse probability weights" if weights is not None else ""
        out.append(_estimate(outcome, population, model, method, a.estimand, test, prepared.n,
                             note))
    return out, components


def randomisation_effect(frame: pd.DataFrame, outcome: str, study: StudyFile, *,
                         population: str = "main", model: str | None = None,
                         weights: np.ndarray | None = None,
                         shift: str | None = None,
                         statistic: str | None = None) -> EffectEstimate:
    """Randomisation inference on the estimand: `model`'s estimate as the statistic, exact
    p-value over every allowed assignment of LAs to steps, CI by test inversion.

    `frame`: the rows `model_rows(..., transition=False)` gives (children in transition are
    left out per assignment); `weights` aligned with them (IPW)."""
    a = study.analysis
    model = model or a.primary_model
    shift = shift or a.randomisation_shift
    if frame.empty:
        raise TrialvaultError(f"outcome '{outcome}': no child to analyse")
    steps = {s.la: s.step_date for s in study.design.rollout}
    months = PERIOD_MONTHS[a.period]
    first = study.data_period.first_year
    step_period = {d: ((d.year - first) * 12 + d.month - 1) // months for d in steps.values()}
    transition = None
    if a.transition_months > 0:
        transition = {d: (pd.Timestamp(d) - pd.DateOffset(months=a.transition_months)).date()
                      for d in steps.values()}
    res = randomisation_estimand(
        frame[outcome].to_numpy(dtype=float), nuisance_matrix(frame, study),
        la=frame["la_code"].to_numpy(dtype=np.int64),
        period=frame["period"].to_numpy(dtype=np.int64),
        index_day=_index_day(frame), steps=steps, step_period=step_period, model=model,
        k_max=a.exposure_time_max, alpha=a.alpha, weights=weights, transition=transition,
        shift=shift, statistic=statistic or a.randomisation_statistic, outcome=outcome)
    nan = float("nan")
    used = statistic or a.randomisation_statistic
    note = (f"{res.n_assignments} assignments, statistic: "
            f"{'studentised (estimate / CR0 SE)' if used == 't' else 'the estimate'}, "
            f"{shift} shift inverted")
    if res.n_degenerate:
        note += f"; {res.n_degenerate} collinear with the fixed effects left out"
    return EffectEstimate(outcome=outcome, population=population, model=model,
                          method="randomisation", estimand=a.estimand, estimate=res.estimate,
                          se=nan, df=nan, ci_low=res.ci_low, ci_high=res.ci_high,
                          p_value=res.p_value, n=len(frame), note=note)


def _index_day(frame: pd.DataFrame) -> np.ndarray:
    if "index_day" in frame.columns:
        return frame["index_day"].to_numpy(dtype=np.int64)
    days = pd.to_datetime(frame["index_date"]).to_numpy().astype("datetime64[D]")
    return days.astype(np.int64)


def analyse_primary(analysis: pd.DataFrame, study: StudyFile, *,
                    method: str | None = None) -> EffectEstimate:
    """The plan's primary analysis of the primary outcome on an in-memory cohort.

    `analysis`: one row per cohort child with at least la_code, period, step_period, exposed,
    index_date or index_day, the primary outcome, the plan's covariates and (optionally)
    cohort_group and step_date (for the transition rule) — the table `build_analysis_table`
    returns, or one simulated without files (`trialvault.synth.simulate_cohort`). Returns the
    estimand's estimate by the plan's `primary_model` with its `primary_inference` (or
    `method`): a model-based method or randomisation inference over the study's rollout (the
    wild bootstrap runs in `evaluate` only).
    """
    primary = study.analysis.primary_outcome.id
    method = method or study.analysis.primary_inference
    if method == "randomisation":
        return randomisation_effect(model_rows(analysis, primary, study, transition=False),
                                    primary, study)
    if method not in MODEL_METHODS:
        raise TrialvaultError(f"analyse_primary: method '{method}' is not one of "
                              f"{', '.join((*MODEL_METHODS, 'randomisation'))}")
    rows = model_rows(analysis, primary, study)
    prepared = prepare_model(rows, primary, study)
    (result,), _ = estimate_effects(prepared, primary, study, methods=(method,))
    return result


def finite(value: float) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
