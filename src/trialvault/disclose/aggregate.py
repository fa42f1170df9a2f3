"""From one analysis row per child to the aggregates a release is built from.

`aggregate_cohort(analysis, study, removed=...)` reduces the evaluation's analysis table (inside
the vault, or a made-up one in tests) at once to counts per stratum (LA × table period ×
exposed) of the main analysis population, per outcome state, per baseline category, the
magnitude evidence of count/rate outcomes by condition, and the cluster-level support of every
model (children, LAs, LA × period cells). Nothing per child leaves this module.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml

from trialvault.disclose.inputs import (
    BASELINE_COLUMNS,
    FLOW_COLUMNS,
    MAGNITUDE_COLUMNS,
    OUTCOME_COLUMNS,
    Period,
)
from trialvault.study.model import StudyFile

_LABEL = {1: "{y}-{m:02d}", 3: "{y} Q{q}", 6: "{y} H{h}", 12: "{y}"}
_MONTHS = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
# The groups the effect models analyse (evaluate.headline.MAIN_GROUPS): children already looked
# after at the index date are a subgroup, never pooled in.
MAIN_GROUPS = ("edge_of_care", "care_leaver")
# Outcomes whose value some children should have but may lack (evaluate.cohort).
EXPECTED_SUFFIX = "_expected"


def table_months(study: StudyFile) -> int:
    """Months per column of the released LA × period tables."""
    analysis = _MONTHS[study.analysis.period]
    wanted = study.disclosure.table_period
    return analysis if wanted == "analysis" else max(analysis, _MONTHS[wanted])


def period_of(day: dt.date, months: int) -> Period:
    """The table period holding `day`: label and first day."""
    k = (day.month - 1) // months
    start = dt.date(day.year, k * months + 1, 1)
    label = _LABEL[months].format(y=day.year, m=start.month, q=k + 1, h=k + 1)
    return Period(label, start)


def last_index_date(study: StudyFile) -> dt.date:
    return (pd.Timestamp(study.data_period.end)
            - pd.DateOffset(months=study.analysis.follow_up_months)).date()


def study_periods(study: StudyFile) -> list[Period]:
    """Every table period an index date can fall in (from the study, not from the data: a
    period without children is a zero, not a missing column)."""
    months = table_months(study)
    out: list[Period] = []
    day, last = study.data_period.start, last_index_date(study)
    while day <= last:
        p = period_of(day, months)
        out.append(p)
        day = (pd.Timestamp(p.start) + pd.DateOffset(months=months)).date()
    return out


def period_end(period: Period, months: int) -> dt.date:
    return (pd.Timestamp(period.start) + pd.DateOffset(months=months)).date()


def possible_exposures(study: StudyFile, la_code: int, period: Period) -> list[int]:
    """Exposure statuses the design allows in a stratum of the main analysis: unexposed only
    before the LA's transition window, exposed only from its step on."""
    step = study.step_date(la_code)
    transition = (pd.Timestamp(step)
                  - pd.DateOffset(months=study.analysis.transition_months)).date()
    end = period_end(period, table_months(study))
    return [e for e, ok in ((0, period.start < transition), (1, end > step)) if ok]


def main_groups(study: StudyFile) -> tuple[str, ...]:
    """Main-analysis cohort groups the study's qualifying events can produce."""
    groups = ["edge_of_care"]
    if "care_leaver" in study.cohort.qualifying_events:
        groups.append("care_leaver")
    return tuple(groups)


def outcome_applies(study: StudyFile, outcome_id: str) -> tuple[str, ...]:
    from trialvault.evaluate.cohort import outcome_groups

    return tuple(outcome_groups(study, outcome_id))


def has_expected(outcome_id: str) -> bool:
    from trialvault.evaluate.cohort import EXPECTED_COLUMNS

    return outcome_id in EXPECTED_COLUMNS


def can_be_undefined(study: StudyFile, outcome_id: str) -> bool:
    """Whether a main-analysis child can lack the outcome: it does not apply to their cohort
    group, or is expected only of some children (a structural zero otherwise)."""
    return has_expected(outcome_id) or not set(main_groups(study)) <= set(
        outcome_applies(study, outcome_id))


@cache
def baseline_spec() -> list[dict[str, Any]]:
    text = resources.files("trialvault.disclose").joinpath("baseline.yaml").read_text("utf-8")
    return list(yaml.safe_load(text)["characteristics"])


def categorise(values: pd.Series, spec: dict[str, Any]) -> tuple[pd.Series, list[str]]:
    """Each child's category of one characteristic, and the categories in published order."""
    if spec.get("flag"):
        cats = ["Yes", "No"]
        return values.fillna(False).astype(bool).map({True: "Yes", False: "No"}), cats
    other = str(spec["other"])
    out = pd.Series(other, index=values.index, dtype=object)
    if "bands" in spec:
        num = pd.to_numeric(values, errors="coerce")
        for label, (lo, hi) in spec["bands"].items():
            out[(num >= lo) & (num <= hi)] = label
        return out, [*spec["bands"], other]
    text = values.astype(object).where(values.notna(), None).map(
        lambda v: None if v is None else str(v).strip())
    for label, codes in spec["categories"].items():
        out[text.isin([str(c) for c in codes])] = label
    return out, [*spec["categories"], other]


@dataclass(frozen=True)
class CohortAggregates:
    periods: list[Period]
    strata: pd.DataFrame
    outcomes: pd.DataFrame
    magnitude: pd.DataFrame
    baseline: pd.DataFrame
    flow: pd.DataFrame
    support: pd.DataFrame  # outcome × population: n, clusters, cells, periods, covariates
    event_support: pd.DataFrame  # outcome × event_time: n, clusters


def main_mask(analysis: pd.DataFrame, study: StudyFile) -> pd.Series:
    from trialvault.evaluate.headline import in_transition

    mask = analysis["cohort_group"].isin(MAIN_GROUPS)
    if "step_date" in analysis.columns:
        mask &= ~in_transition(analysis, study.analysis.transition_months)
    return mask


def _evidence(values: np.ndarray, top_n: int) -> dict[str, float]:
    top = np.sort(values)[::-1]
    n = len(values)
    return {"n": n, "nonzero": int((values != 0).sum()), "total": float(values.sum()),
            "top1": float(top[0]) if n else 0.0, "top2": float(top[1]) if n > 1 else 0.0,
            "top_n": float(top[:top_n].sum()), "minimum": float(values.min()) if n else np.nan,
            "maximum": float(values.max()) if n else np.nan,
            "negatives": int((values < 0).sum())}


def aggregate_cohort(analysis: pd.DataFrame, study: StudyFile, *,
                     removed: list[tuple[str, str, int]]) -> CohortAggregates:
    """See the module doc. `removed`: (step, label, children) removed before the cohort was
    built (rights, eligibility), in order."""
    periods = study_periods(study)
    months = table_months(study)
    by_label = {p.label: p for p in periods}
    index = pd.to_datetime(analysis["index_date"]).dt.date
    labels = index.map(lambda d: period_of(d, months).label)
    if not set(labels) <= set(by_label):
        raise ValueError("an index date lies outside the study's data period")
    main = main_mask(analysis, study)
    frame = analysis[main].assign(tperiod=labels[main])

    keys = [(la, p.label, e) for la in study.la_codes for p in periods
            for e in possible_exposures(study, la, p)]
    grid = pd.MultiIndex.from_tuples(keys, names=["la_code", "period", "exposed"])
    got = frame.groupby(["la_code", "tperiod", "exposed"]).size()
    got.index = got.index.set_names(["la_code", "period", "exposed"])
    stray = got.index.difference(grid)
    if len(stray) and got.loc[stray].sum() > 0:
        raise ValueError("a child's exposure contradicts the rollout schedule")
    strata = got.reindex(grid, fill_value=0).rename("n").reset_index()

    gkeys = ["la_code", "tperiod", "exposed"]
    outcome_rows = []
    for o in study.analysis.outcomes:
        value = frame[o.id]
        measured = value.notna()
        expected_col = f"{o.id}{EXPECTED_SUFFIX}"
        expected = (frame[expected_col].astype(bool) if expected_col in frame.columns
                    else pd.Series(False, index=frame.index))
        parts = pd.DataFrame({
            "measured": measured, "events": measured & (value.fillna(0) > 0)
            if o.kind == "binary" else False,
            "missing": ~measured & expected, "undefined": ~measured & ~expected})
        agg = parts.groupby([frame[k] for k in gkeys]).sum()
        agg.index = agg.index.set_names(["la_code", "period", "exposed"])
        agg = agg.reindex(grid, fill_value=0).astype(np.int64).reset_index()
        outcome_rows.append(agg.assign(outcome=o.id))
    outcomes = pd.concat(outcome_rows, ignore_index=True)[OUTCOME_COLUMNS]

    mags = []
    top_n = study.disclosure.dominance_n
    for o in study.analysis.outcomes:
        if o.kind == "binary":
            continue
        for e in (0, 1):
            v = frame.loc[frame["exposed"] == e, o.id].dropna().to_numpy(dtype=float)
            mags.append({"outcome": o.id, "exposed": e, **_evidence(v, top_n)})
    magnitude = pd.DataFrame(mags, columns=MAGNITUDE_COLUMNS)

    base = []
    for spec in baseline_spec():
        col = spec["column"]
        values = frame[col] if col in frame.columns else pd.Series(None, index=frame.index)
        cats, order = categorise(values, spec)
        counts = pd.crosstab(cats, frame["exposed"]).reindex(index=order, columns=[0, 1],
                                                              fill_value=0)
        for cat in order:
            for e in (0, 1):
                base.append((spec["id"], spec["title"], cat, e, int(counts.loc[cat, e])))
    baseline = pd.DataFrame(base, columns=BASELINE_COLUMNS)

    not_main = analysis[~main]
    looked_after = int((not_main["cohort_group"] == "looked_after").sum())
    flow_rows = [(step, label, "before_cohort", int(n)) for step, label, n in removed]
    flow_rows.append(("looked_after", "In the cohort, looked after at the index date: analysed "
                      "only as a subgroup", "in_cohort", looked_after))
    flow_rows.append(("transition", "In the cohort, indexed in the transition window before "
                      "the step: left out of the effect models", "in_cohort",
                      len(not_main) - looked_after))
    flow = pd.DataFrame(flow_rows, columns=FLOW_COLUMNS)
    return CohortAggregates(periods, strata, outcomes, magnitude, baseline, flow,
                            model_support(analysis, frame, study),
                            event_support(frame, study))


def model_support(analysis: pd.DataFrame, main: pd.DataFrame, study: StudyFile
                  ) -> pd.DataFrame:
    """Per outcome and population: children, LAs and LA × analysis period cells the models
    use, the analysis periods and covariate columns (for cluster-level degrees of freedom)."""
    rows = []
    covs = [c for c in study.analysis.covariates if c in analysis.columns]
    subgroup = analysis[analysis["cohort_group"] == "looked_after"]
    for o in study.analysis.outcomes:
        for population, frame in (("main", main), ("looked_after", subgroup)):
            used = frame[frame[o.id].notna()]
            k = sum(max(1, used[c].nunique() - 1) if used[c].dtype == object
                    or str(used[c].dtype) in ("str", "string", "category") else 1
                    for c in covs) if len(used) else 0
            rows.append({"outcome": o.id, "population": population, "n": len(used),
                         "clusters": int(used["la_code"].nunique()),
                         "cells": int(used.groupby(["la_code", "period"]).ngroups)
                         if len(used) else 0,
                         "periods": int(used["period"].nunique()), "covariates": int(k)})
    return pd.DataFrame(rows)


def event_support(main: pd.DataFrame, study: StudyFile) -> pd.DataFrame:
    """Children and LAs behind each event time (analysis periods since the LA's step)."""
    rows = []
    rel = main["period"] - main["step_period"]
    for o in study.analysis.outcomes:
        used = main[main[o.id].notna()]
        r = rel[used.index]
        for e, part in used.groupby(r):
            rows.append({"outcome": o.id, "event_time": int(e), "n": len(part),
                         "clusters": int(part["la_code"].nunique())})
    return pd.DataFrame(rows, columns=["outcome", "event_time", "n", "clusters"])
