"""The whole evaluation: cohort → Hussey & Hughes → few-cluster inference → Callaway–Sant'Anna.

`run_evaluation(con, study)` works on any DuckDB connection holding schema `harmonised` (a vault
session's, or an in-memory one loaded with synthetic tables). `evaluate_vault(...)` opens the
vault, runs it and stores the results in the vault's `results` schema; nothing leaves the vault.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from trialvault.engines import Engine
from trialvault.errors import TrialvaultError
from trialvault.evaluate.bootstrap import wild_cluster_bootstrap
from trialvault.evaluate.cohort import (
    EXPECTED_COLUMNS,
    OUTCOME_IDS,
    CohortBuild,
    build_analysis_table,
    excluded_child_keys,
    outcome_groups,
)
from trialvault.evaluate.design import Design, build_design
from trialvault.evaluate.did import cs_for_cohort, dropped_cells
from trialvault.evaluate.headline import (
    MAIN_GROUPS,
    MODEL_METHODS,
    EffectEstimate,
    estimate_effects,
    failed,
    in_transition,
    model_rows,
    prepare_model,
    randomisation_effect,
)
from trialvault.evaluate.missing import ipw_weights, summarise
from trialvault.evaluate.randomisation import randomisation_test
from trialvault.evaluate.results import (
    TABLES,
    EvaluationResults,
    collect_provenance,
    write_results,
)
from trialvault.evaluate.stepped_wedge import difference_measure, fit_hussey_hughes
from trialvault.study.load import load_study
from trialvault.study.model import Outcome, StudyFile

EVALUATE_COMMAND = "evaluate"
# Roles that may run the evaluation on row-level data inside the vault.
EVALUATOR_ROLES = ("analyst", "data-manager")


def run_evaluation(con: duckdb.DuckDBPyConnection, study: StudyFile, *,
                   seed: int | None = None, did_outcomes: str = "all",
                   engine: Engine | None = None) -> EvaluationResults:
    """Evaluate every outcome of `study` on `harmonised.*` in `con`.

    `seed` defaults to the study's `analysis.seed`; it drives the wild bootstrap's weights
    only (randomisation inference enumerates, csdid's analytic SEs draw nothing).
    `did_outcomes`: "all" or "primary" — which outcomes get the Callaway–Sant'Anna analysis.
    `engine`: derive the cohort and outcomes on another engine (e.g. Spark) from the same SQL;
    the harmonised tables and the rights exclusions are read from `con`. Models run here.
    """
    # One BLAS thread: the matrices are tall and thin (threads gain little), sums come out
    # bit-identical whatever the machine, and a busy machine cannot stall OpenBLAS spin-waits.
    with threadpool_limits(limits=1, user_api="blas"):
        return _run(con, study, seed, did_outcomes, engine)


def _build(con: duckdb.DuckDBPyConnection, study: StudyFile, engine: Engine | None
           ) -> CohortBuild:
    if engine is None:
        return build_analysis_table(con, study)
    from trialvault.engines.evaluation import (
        build_analysis_on_engine,
        excluded_table,
        load_harmonised_from_vault,
    )

    load_harmonised_from_vault(engine, con)
    return build_analysis_on_engine(engine, study,
                                    excluded=excluded_table(excluded_child_keys(con)))


def _run(con: duckdb.DuckDBPyConnection, study: StudyFile, seed: int | None,
         did_outcomes: str, engine: Engine | None = None) -> EvaluationResults:
    a = study.analysis
    seed = a.seed if seed is None else seed
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    built = _build(con, study, engine)
    timings["cohort_sql"] = time.perf_counter() - clock
    data = built.analysis
    if data.empty:
        raise TrialvaultError("the cohort is empty: no child has a qualifying event at an "
                              "eligible age inside the data period")
    steps = {s.la: s.step_date for s in study.design.rollout}
    # One independent stream per outcome, so adding an outcome does not move the others' draws.
    streams = np.random.SeedSequence(seed).spawn(len(a.outcomes))

    estimates, few, att_gt, aggs, levels, dropped = [], [], [], [], [], []
    inference: list[dict[str, Any]] = []
    components: list[dict[str, Any]] = []
    missing_rows: list[dict[str, Any]] = []
    headline: list[dict[str, Any]] = []
    for outcome, stream in zip(a.outcomes, streams, strict=True):
        clock = time.perf_counter()
        # The main analyses: edge-of-care children (and care leavers where the outcome applies
        # to them), never the children already looked after, outside the transition window.
        rows = model_rows(data, outcome.id, study)
        measured = len(rows) > 0
        design = build_design(rows, outcome.id, list(a.covariates)) if measured else None
        if design is None or np.ptp(design.y) == 0:
            # Nothing to estimate (no record, or e.g. no child went missing): say so per method.
            note = ("no cohort member has this outcome measured" if design is None
                    else "outcome does not vary in the cohort: not estimable")
            estimates += [{**_note_row(outcome, "", note), "kind": outcome.kind, "model": m,
                           "n": len(rows)} for m in a.models]
            few += [_note_row(outcome, m, note) for m in ("randomisation",
                                                           "wild_cluster_bootstrap")]
            headline.append(_headline_row(outcome, study, None, len(rows), note))
            continue
        for est in fit_hussey_hughes(design, outcome.kind, list(a.models), a.alpha):
            estimates.append({"kind": outcome.kind, **est.__dict__})
        timings[f"models:{outcome.id}"] = time.perf_counter() - clock
        clock = time.perf_counter()
        results, vc = _model_inference(data, rows, outcome, study)
        inference += [r.row() for r in results]
        if vc:
            components.append({"outcome": outcome.id, "population": "main", **vc,
                               "n": len(rows), "clusters": int(rows["la_code"].nunique()),
                               "cells": int(rows.groupby(["la_code", "period"]).ngroups)})
        timings[f"inference:{outcome.id}"] = time.perf_counter() - clock
        ipw_rows, miss = _missing_data(data, outcome, study)
        missing_rows += miss
        inference += [r.row() for r in ipw_rows]
        few_rows = _few_cluster(design, outcome, steps, study, stream, timings)
        few += few_rows
        # The immediate model's randomisation test is a sensitivity row of its own, unless the
        # plan's primary model is the immediate one (then `_model_inference` has it already).
        inference += [_few_as_inference(r, outcome, study, len(rows)) for r in few_rows
                      if not (r["method"] == "randomisation" and a.primary_model == "immediate")]
        if study.cohort.looked_after_at_index == "subgroup" and \
                "looked_after" in outcome_groups(study, outcome.id):
            inference += [r.row() for r in _subgroup(data, outcome, study)]
        headline.append(_headline_row(outcome, study, _pick_primary(inference, outcome, study),
                                      len(rows), "", miss))
        if did_outcomes == "all" or outcome.primary:
            clock = time.perf_counter()
            try:
                did = cs_for_cohort(rows, outcome.id, control_group=a.did_control_group,
                                    alpha=a.alpha)
            except TrialvaultError as exc:
                few.append(_note_row(outcome, "callaway_santanna", str(exc)))
            else:
                att_gt.append(did.att_gt.rename(columns={"group": "group_period",
                                                         "t": "period"})
                              .assign(outcome=outcome.id))
                aggs.append(did.aggregates.assign(outcome=outcome.id))
                levels.append(did.by_level.assign(outcome=outcome.id))
                dropped.append(dropped_cells(rows, outcome.id, did).assign(outcome=outcome.id))
            timings[f"did:{outcome.id}"] = time.perf_counter() - clock

    provenance = collect_provenance(con, study, seed=seed)
    return EvaluationResults(
        study_id=study.study.id, seed=seed, cohort_size=len(data),
        excluded_children=built.excluded_children,
        cohort_counts=_cohort_counts(data),
        outcome_counts=_outcome_counts(data, a.outcomes),
        estimates=_frame("estimates", estimates),
        few_cluster=_frame("few_cluster", few),
        did_att_gt=_concat("did_att_gt", att_gt, shift=True),
        did_aggregates=_concat("did_aggregates", aggs),
        did_levels=_concat("did_levels", levels),
        provenance={**provenance, "missing_tables": list(built.missing_tables)},
        timings=timings,
        headline=_adjust(_frame("headline", headline), study),
        inference=_frame("inference", inference),
        variance_components=_frame("variance_components", components),
        missing_data=_frame("missing_data", missing_rows),
        did_dropped=_concat("did_dropped", dropped),
        cohort_groups=_cohort_groups(data, study),
    )


def _model_inference(data: pd.DataFrame, rows: pd.DataFrame, outcome: Outcome,
                     study: StudyFile) -> tuple[list[EffectEstimate], dict[str, float]]:
    """The estimand by the primary model with every model-based method and randomisation
    inference, and the immediate model with CR2 when the primary model is another (so the two
    can be compared)."""
    a = study.analysis
    try:
        prepared = prepare_model(rows, outcome.id, study)
    except TrialvaultError as exc:
        return [failed(outcome.id, "main", a.primary_model, m, a.estimand, len(rows), str(exc))
                for m in (*MODEL_METHODS, "randomisation")], {}
    out, vc = estimate_effects(prepared, outcome.id, study)
    out.append(_randomisation(model_rows(data, outcome.id, study, transition=False),
                              outcome, study))
    for other in ("immediate", "exposure_time"):
        if other == a.primary_model:
            continue
        try:
            alt = prepare_model(rows, outcome.id, study, model=other)
        except TrialvaultError as exc:
            out.append(failed(outcome.id, "main", other, "cr2", a.estimand, len(rows), str(exc)))
            continue
        out += estimate_effects(alt, outcome.id, study, model=other, methods=("cr2",))[0]
    return out, vc


def _randomisation(frame: pd.DataFrame, outcome: Outcome, study: StudyFile, *,
                   weights: np.ndarray | None = None, method: str = "randomisation"
                   ) -> EffectEstimate:
    """Randomisation inference on the estimand by the primary model (a failed row if the
    assignments cannot be enumerated or exposure is collinear)."""
    a = study.analysis
    try:
        res = randomisation_effect(frame, outcome.id, study, weights=weights)
    except TrialvaultError as exc:
        return failed(outcome.id, "main", a.primary_model, method, a.estimand, len(frame),
                      str(exc))
    if method != res.method:
        res = EffectEstimate(**{**res.row(), "method": method,
                                "note": f"inverse probability weights held fixed; {res.note}"})
    return res


def _missing_data(data: pd.DataFrame, outcome: Outcome, study: StudyFile
                  ) -> tuple[list[EffectEstimate], list[dict[str, Any]]]:
    """Counts of missing values and, for outcomes from linked files, the IPW analyses (CR2 and
    randomisation inference on the weighted estimate)."""
    col = EXPECTED_COLUMNS.get(outcome.id)
    if col is None or col not in data.columns:
        return [], []
    a = study.analysis
    free = data[data["cohort_group"].isin(MAIN_GROUPS)]
    main = free
    if "step_date" in main.columns:
        main = main[~in_transition(main, a.transition_months)]
    summary = summarise(main, outcome.id, col)
    rows = [{"outcome": outcome.id, **r} for r in summary.by_exposure.to_dict("records")]
    if summary.observed == 0:
        return [], rows
    covariates = list(a.covariates)
    weights, note = ipw_weights(main, outcome.id, col, covariates)
    analysed = main.loc[weights.index].reset_index(drop=True)
    label = "; ".join(x for x in ("inverse probability weights", note) if x)
    try:
        prepared = prepare_model(analysed, outcome.id, study)
        (res,), _ = estimate_effects(prepared, outcome.id, study, methods=("cr2",),
                                     weights=weights.to_numpy())
    except TrialvaultError as exc:
        res = failed(outcome.id, "main", a.primary_model, "cr2_ipw", a.estimand, len(analysed),
                     str(exc))
    else:
        res = EffectEstimate(**{**res.row(), "method": "cr2_ipw", "note": label})
    # Randomisation inference drops the children in transition per assignment, so its weights
    # come from every expected child (the same weights when there is no transition window).
    if len(free) != len(main):
        weights, _ = ipw_weights(free, outcome.id, col, covariates)
    ri = _randomisation(free.loc[weights.index].reset_index(drop=True), outcome, study,
                        weights=weights.to_numpy(), method="randomisation_ipw")
    return [res, ri], rows


def _subgroup(data: pd.DataFrame, outcome: Outcome, study: StudyFile) -> list[EffectEstimate]:
    """The named subgroup of children already looked after at the index date (exploratory)."""
    a = study.analysis
    rows = model_rows(data, outcome.id, study, groups=("looked_after",))
    if len(rows) < 10 or rows[outcome.id].nunique() < 2:
        return [failed(outcome.id, "looked_after", a.primary_model, "cr2", a.estimand, len(rows),
                       "too few children looked after at the index date with this outcome")]
    try:
        prepared = prepare_model(rows, outcome.id, study)
    except TrialvaultError as exc:
        return [failed(outcome.id, "looked_after", a.primary_model, "cr2", a.estimand,
                       len(rows), str(exc))]
    return estimate_effects(prepared, outcome.id, study, population="looked_after",
                            methods=("cr2",))[0]


def _few_as_inference(row: dict[str, Any], outcome: Outcome, study: StudyFile, n: int
                      ) -> dict[str, Any]:
    nan = float("nan")
    return {"outcome": outcome.id, "population": "main", "model": "immediate",
            "method": row["method"], "estimand": study.analysis.estimand,
            "estimate": row["estimate"], "se": nan, "df": nan, "ci_low": row["ci_low"],
            "ci_high": row["ci_high"], "p_value": row["p_value"], "n": n, "note": row["note"]}


def _pick_primary(inference: list[dict[str, Any]], outcome: Outcome, study: StudyFile
                  ) -> dict[str, Any] | None:
    """The plan's primary inference row for this outcome (IPW when the plan says so)."""
    a = study.analysis
    method: str = a.primary_inference
    model = a.primary_model if method in (*MODEL_METHODS, "randomisation") else "immediate"
    if a.missing_data == "ipw" and outcome.id in EXPECTED_COLUMNS and method in (
            "cr2", "randomisation"):
        method = f"{method}_ipw"
    for r in inference:
        if (r["outcome"], r["population"], r["model"], r["method"]) == (
                outcome.id, "main", model, method):
            return r
    return None


def _headline_row(outcome: Outcome, study: StudyFile, chosen: dict[str, Any] | None, n: int,
                  note: str, missing: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    a = study.analysis
    nan = float("nan")
    expected = sum(int(m["expected"]) for m in missing or [])
    lost = sum(int(m["missing"]) for m in missing or [])
    base = {"outcome": outcome.id, "role": "primary" if outcome.primary else "secondary",
            "population": "main", "estimand": a.estimand,
            "multiplicity": "none (primary)" if outcome.primary else a.multiplicity,
            "missing_data": (a.missing_data if outcome.id in EXPECTED_COLUMNS
                             else "none expected"),
            "n_analysed": n, "n_expected": expected if missing else n,
            "n_missing": lost, "p_adjusted": nan}
    if chosen is None:
        return {**base, "model": a.primary_model, "method": a.primary_inference,
                "estimate": nan, "se": nan, "df": nan, "ci_low": nan, "ci_high": nan,
                "p_value": nan, "note": note or "primary inference not available"}
    return {**base, **{k: chosen[k] for k in ("model", "method", "estimate", "se", "df",
                                              "ci_low", "ci_high", "p_value")},
            "note": chosen.get("note", "") or note}


def _adjust(headline: pd.DataFrame, study: StudyFile) -> pd.DataFrame:
    """Multiplicity: the primary outcome alone at alpha; the secondaries as one family."""
    from statsmodels.stats.multitest import multipletests

    out = headline.copy()
    primary = out["role"] == "primary"
    out.loc[primary, "p_adjusted"] = out.loc[primary, "p_value"]
    sec = (~primary) & out["p_value"].notna()
    method = study.analysis.multiplicity
    if sec.any():
        p = out.loc[sec, "p_value"].to_numpy(dtype=float)
        adjusted = p if method == "none" else multipletests(p, alpha=study.analysis.alpha,
                                                            method=method)[1]
        out.loc[sec, "p_adjusted"] = adjusted
    return out


def _cohort_groups(data: pd.DataFrame, study: StudyFile) -> pd.DataFrame:
    frame = data.assign(in_transition=in_transition(data, study.analysis.transition_months)
                        .astype(int))
    return (frame.groupby(["cohort_group", "exposed", "in_transition"], as_index=False).size()
            .rename(columns={"size": "children"}))


def _few_cluster(design: Design, outcome: Outcome, steps: dict[int, dt.date],
                 study: StudyFile, stream: np.random.SeedSequence,
                 timings: dict[str, float]) -> list[dict[str, Any]]:
    a = study.analysis
    measure = difference_measure(outcome.kind)
    rows: list[dict[str, Any]] = []
    if a.randomisation_inference:
        clock = time.perf_counter()
        try:
            ri = randomisation_test(design, steps, alpha=a.alpha)
        except TrialvaultError as exc:
            rows.append(_note_row(outcome, "randomisation", str(exc)))
        else:
            note = (f"{ri.n_degenerate} assignment(s) collinear with the fixed effects left out"
                    if ri.n_degenerate else "")
            rows.append({"outcome": outcome.id, "method": "randomisation", "measure": measure,
                         "estimate": ri.estimate, "ci_low": ri.ci_low, "ci_high": ri.ci_high,
                         "p_value": ri.p_value, "replicates": ri.n_assignments, "note": note})
        timings[f"ri:{outcome.id}"] = time.perf_counter() - clock
    if a.wild_bootstrap_draws > 0:
        clock = time.perf_counter()
        try:
            wb = wild_cluster_bootstrap(design, draws=a.wild_bootstrap_draws,
                                        weights=a.wild_bootstrap_weights,
                                        rng=np.random.default_rng(stream), alpha=a.alpha)
        except TrialvaultError as exc:
            rows.append(_note_row(outcome, "wild_cluster_bootstrap", str(exc)))
        else:
            rows.append({"outcome": outcome.id, "method": "wild_cluster_bootstrap",
                         "measure": measure, "estimate": wb.estimate, "ci_low": wb.ci_low,
                         "ci_high": wb.ci_high, "p_value": wb.p_value, "replicates": wb.draws,
                         "note": f"restricted (null imposed), {wb.weights} weights, CRV1 t"})
        timings[f"wcb:{outcome.id}"] = time.perf_counter() - clock
    return rows


def _note_row(outcome: Outcome, method: str, note: str) -> dict[str, Any]:
    nan = float("nan")
    return {"outcome": outcome.id, "method": method, "measure": "", "estimate": nan,
            "ci_low": nan, "ci_high": nan, "p_value": nan, "replicates": 0, "note": note}


def _cohort_counts(data: pd.DataFrame) -> pd.DataFrame:
    return (data.groupby(["la_code", "period", "period_start", "exposed"], as_index=False)
            .size().rename(columns={"size": "children"}))


def _outcome_counts(data: pd.DataFrame, outcomes: list[Outcome]) -> pd.DataFrame:
    rows = []
    for o in outcomes:
        for exposed, part in data.groupby("exposed"):
            values = part[o.id].dropna()
            rows.append({"outcome": o.id, "exposed": int(exposed),
                         "children": len(values), "total": float(values.sum()),
                         "mean": float(values.mean()) if len(values) else float("nan")})
    return _frame("outcome_counts", rows)


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=[n for n, _ in TABLES[table]])


def _concat(table: str, parts: list[pd.DataFrame], *, shift: bool = False) -> pd.DataFrame:
    names = [n for n, _ in TABLES[table]]
    if not parts:
        return pd.DataFrame(columns=names)
    out = pd.concat(parts, ignore_index=True)
    if shift:
        # csdid numbers periods from 1 (0 = never treated); store our 0-based period index.
        out["group_period"] = out["group_period"].astype(int) - 1
        out["period"] = out["period"].astype(int) - 1
    return out.reindex(columns=names)


def evaluate_vault(vault_dir: Path, user: str, password: str, study: Path | StudyFile, *,
                   seed: int | None = None, engine: Engine | None = None) -> EvaluationResults:
    """Open the vault, evaluate, store the results (schema `results`), return them.

    The provenance records the vault's audit head as it was before this command's own entry,
    the study file's SHA-256 (when given a path), package versions and the seed.
    """
    from trialvault.vault import open_vault

    study_path = study if isinstance(study, Path) else None
    model = load_study(study) if isinstance(study, Path) else study
    args = {"study": model.study.id, "seed": seed if seed is not None else model.analysis.seed,
            "engine": engine.name if engine is not None else "duckdb"}
    with open_vault(vault_dir, user, password, command=EVALUATE_COMMAND, args=args,
                    write=True) as session:
        session.require_role(*EVALUATOR_ROLES)
        results = run_evaluation(session.con, model, seed=seed, engine=engine)
        provenance = collect_provenance(session.con, model, seed=results.seed,
                                        study_path=study_path)
        run_id = write_results(session.con, results, provenance)
        session.record(rows_touched={"results.runs": 1},
                       detail={"run_id": run_id, "cohort_size": results.cohort_size,
                               "excluded_children": results.excluded_children})
    return EvaluationResults(**{**results.__dict__,
                                "provenance": {**results.provenance, **provenance,
                                               "run_id": run_id}})


__all__ = ["OUTCOME_IDS", "evaluate_vault", "run_evaluation"]
