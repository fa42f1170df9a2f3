"""The HTML report of a release: one self-contained, printable file a trial statistician can sign.

`render_report(release, study, meta)` reads only a `CheckedRelease` (the public,
disclosure-checked outputs) and the study file stored with the evaluation run (design, plan,
methods). It lays out, in the order of a CONSORT report for a stepped-wedge trial: participant
flow by LA, period and condition; baseline characteristics and outcomes by condition; missing
outcomes; the primary outcome with the inference the analysis plan names as primary, the other
analyses as sensitivity and the checks that disagree with it; secondary outcomes with the
plan's multiplicity handling. Every figure takes its LA order and step dates from the study and
the release's row keys. A report built from data not declared real carries the banner
"SYNTHETIC DATA — not results of the trial" on every page. Rates are computed from the released
(rounded) counts, so they add nothing to what the tables show.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from trialvault import __version__
from trialvault.disclose.frequency import (
    ALLOCATION,
    BASELINE,
    BY_CONDITION,
    COHORT,
    CONDITIONS,
    FLOW,
    MISSING_DATA,
    events_table,
)
from trialvault.disclose.outputs import CheckedOutput, CheckedRelease, fmt_p
from trialvault.report import plots
from trialvault.study.model import StudyFile

_TOTAL = "Total"
SYNTHETIC_BANNER = "SYNTHETIC DATA — not results of the trial"
_CONTROLS = {"notyettreated": "not-yet-treated", "nevertreated": "never-treated"}
MODEL_NAMES = {
    "exposure_time": "exposure-time model (one effect per period since the step, averaged "
                     "over exposed children)",
    "immediate": "immediate-effect model (Hussey & Hughes)",
    "immediate_logit": "logistic model (odds ratio)",
    "immediate_poisson": "Poisson quasi-likelihood model (rate ratio)",
    "immediate_lpm": "linear probability model", "immediate_linear": "linear model",
    "callaway_santanna": "Callaway–Sant'Anna staggered difference-in-differences",
}
_FALLBACK_METHODS = {"clustered_by_la": "standard errors clustered by local authority",
                     "model_hc1": "child-level HC1 standard errors (ignore clustering)"}


def method_names() -> dict[str, str]:
    try:
        from trialvault.evaluate.headline import METHOD_NAMES
    except ImportError:  # pragma: no cover - the evaluate stage names them
        return dict(_FALLBACK_METHODS)
    return {**_FALLBACK_METHODS, **METHOD_NAMES}


def estimand_names() -> dict[str, str]:
    try:
        from trialvault.evaluate.headline import ESTIMAND_NAMES
    except ImportError:  # pragma: no cover
        return {}
    return dict(ESTIMAND_NAMES)


@dataclass(frozen=True)
class Figure:
    """One embedded figure with its caption and the step dates it marks (title → date)."""

    title: str
    uri: str
    caption: str
    marks: dict[str, str] = field(default_factory=dict)

    @property
    def marks_json(self) -> str:
        return json.dumps(self.marks, sort_keys=True)


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.report").joinpath("templates", name).read_text(
            encoding="utf-8"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _num(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def fmt(value: float, digits: int = 3) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def fmt_pct(part: float, whole: float) -> str:
    if not (np.isfinite(part) and np.isfinite(whole)) or whole <= 0:
        return ""
    return f"{100 * part / whole:.1f}%"


def _interior(out: CheckedOutput) -> pd.DataFrame:
    """Numeric interior of an LA × period table (totals dropped; suppressed cells NaN), its
    rows keyed by LA code."""
    num = out.numeric()
    if out.row_keys and len(out.row_keys) == len(num.index):
        num.index = pd.Index(out.row_keys)
    return num.drop(index=_TOTAL, columns=_TOTAL, errors="ignore")


def _estimates(release: CheckedRelease) -> pd.DataFrame:
    cols = ["outcome", "role", "population", "model", "method", "measure", "estimate",
            "ci_low", "ci_high", "p_value", "p_adjusted", "multiplicity", "primary", "clusters",
            "note", "suppressed"]
    if not release.has("estimates") or release.output("estimates").withheld:
        return pd.DataFrame(columns=cols)
    out = release.output("estimates")
    t = out.table.reset_index(drop=True)
    frame = t[["outcome", "role", "population", "model", "method", "measure", "multiplicity",
               "primary", "clusters", "note"]].copy()
    for c in ("estimate", "ci_low", "ci_high", "p_value", "p_adjusted"):
        frame[c] = t[c].map(_num)
    frame["suppressed"] = t["estimate"] == out.symbol
    frame["primary"] = frame["primary"] == "yes"
    return frame[cols]


def _method_label(row: dict[str, Any]) -> str:
    names = method_names()
    model = MODEL_NAMES.get(str(row["model"]), str(row["model"]))
    return f"{model}; {names.get(str(row['method']), str(row['method']))}"


def _trend_figures(release: CheckedRelease, study: StudyFile, starts: list[dt.date]
                   ) -> list[Figure]:
    from trialvault.disclose.aggregate import has_expected

    if not release.has(COHORT):
        return []
    cohort = _interior(release.output(COHORT))
    step_of = {d["code"]: dt.date.fromisoformat(d["step_date"]) for d in release.la_order}
    name_of = {d["code"]: d["name"] for d in release.la_order}
    figs = []
    for o in study.analysis.outcomes:
        if not release.has(events_table(o.id)) or has_expected(o.id):
            continue
        events = _interior(release.output(events_table(o.id)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = events / cohort.reindex(index=events.index, columns=events.columns).where(
                cohort > 0)
        panels = [(name_of[str(code)], step_of[str(code)]) for code in rate.index]
        uri, marks = plots.trends_by_la(rate, starts, panels, ylabel="per 100 children",
                                        percent=True)
        figs.append(Figure(f"{o.title}, by local authority", uri,
                           "Children with the outcome per 100 children of the main analysis "
                           "indexed in each period, from the released (rounded) counts; gaps "
                           "are suppressed cells. The dashed line marks each local authority's "
                           "step (from the study's rollout schedule).", marks))
    return figs


def _baseline_rows(release: CheckedRelease) -> list[dict[str, Any]]:
    if not release.has(BASELINE) or not release.has(ALLOCATION):
        return []
    totals = release.output(ALLOCATION).numeric().loc[_TOTAL]
    base = release.output(BASELINE)
    rows = []
    last = None
    for label, row in base.table.iterrows():
        char, _, cat = str(label).partition(": ")
        cells = []
        for cond in CONDITIONS:
            text = str(row[cond])
            pct = fmt_pct(_num(text), float(totals[cond])) if text != base.symbol else ""
            cells.append(f"{text} ({pct})" if pct else text)
        rows.append({"characteristic": char if char != last else "", "category": cat,
                     "cells": cells})
        last = char
    return rows


def _outcome_rows(release: CheckedRelease, study: StudyFile) -> list[dict[str, Any]]:
    if not release.has(BY_CONDITION):
        return []
    table = release.output(BY_CONDITION).table
    symbol = release.output(BY_CONDITION).symbol
    means = release.output("means_by_condition").table if release.has(
        "means_by_condition") else None
    rows = []
    for o in study.analysis.outcomes:
        measured_label = f"{o.title}: children measured"
        if measured_label not in table.index:
            continue
        cells = []
        for cond in CONDITIONS:
            n_text = str(table.loc[measured_label, cond])
            if o.kind == "binary":
                e_text = str(table.loc[f"{o.title}: children with the outcome", cond])
                pct = fmt_pct(_num(e_text), _num(n_text)) if symbol not in (e_text,
                                                                            n_text) else ""
                value = f"{e_text} of {n_text}" + (f" ({pct})" if pct else "")
            else:
                m = str(means.loc[o.title, cond]) if means is not None and \
                    o.title in means.index else ""
                unit = "% of sessions" if o.kind == "rate" else "per child"
                value = (f"mean {m} {unit} (n = {n_text})" if m and m != symbol
                         else f"{symbol} (n = {n_text})")
            cells.append(value)
        rows.append({"title": o.title, "kind": o.kind, "primary": o.primary, "cells": cells})
    return rows


def _consistency(primary_row: dict[str, Any] | None, rows: pd.DataFrame,
                 event: pd.DataFrame) -> list[str]:
    """Where the other analyses disagree with the primary one, said in words."""
    notes: list[str] = []
    if primary_row is None:
        return notes
    est = float(primary_row["estimate"])
    cs = rows[(rows["model"] == "callaway_santanna") & ~rows["suppressed"]]
    for _, r in cs.iterrows():
        other = float(r["estimate"])
        if not np.isfinite(other):
            continue
        ratio = other / est if est else float("inf")
        if np.sign(other) != np.sign(est):
            notes.append(f"The Callaway–Sant'Anna estimate ({fmt(other)}) has the opposite sign "
                         f"to the primary estimate ({fmt(est)}).")
        elif abs(ratio) >= 2 or abs(ratio) <= 0.5:
            notes.append(f"The Callaway–Sant'Anna estimate ({fmt(other)}) is {abs(ratio):.1f} "
                         f"times the primary estimate ({fmt(est)}). It compares each local "
                         "authority only with those not yet treated and weights periods "
                         "differently; a large gap points to effects that change over time or "
                         "differ between local authorities, or to trends the fixed period "
                         "effects do not capture.")
    if not event.empty:
        pre = event[(event["event_time"] < 0) & ((event["ci_low"] > 0) | (event["ci_high"] < 0))]
        if len(pre):
            times = ", ".join(str(int(e)) for e in pre["event_time"])
            notes.append(f"Before the step, event-study point(s) at {times} period(s) exclude "
                         "zero: the outcome moved before the intervention started (anticipation, "
                         "or trends differing between local authorities), so the difference "
                         "after the step may not all be its effect.")
    return notes


def _methods(study: StudyFile, release: CheckedRelease) -> dict[str, list[str]]:
    a, c, d = study.analysis, study.cohort, study.disclosure
    months = a.follow_up_months
    names = method_names()
    steps = sorted(study.design.rollout, key=lambda s: s.step_date)
    kinds = {o.kind for o in a.outcomes}
    scale = []
    if "binary" in kinds:
        scale.append("binary outcomes on the risk-difference scale (odds ratios from a "
                     "logistic model as a sensitivity analysis)")
    if kinds & {"count", "rate"}:
        scale.append("count and rate outcomes on the mean-difference scale (rate ratios from "
                     "a Poisson quasi-likelihood model as a sensitivity analysis)")
    estimand = estimand_names().get(a.estimand, a.estimand.replace("_", " "))
    methods = [
        f"Design: {study.design.type} with {len(steps)} clusters (unit: "
        f"{study.design.cluster}); each switches from usual practice to "
        f"{study.study.intervention} at its step.",
        f"Cohort: {c.description} Children enter at their first qualifying event "
        f"({', '.join(c.qualifying_events)}) aged {c.min_age_years} to {c.max_age_years} "
        f"(care leavers to {c.care_leaver_max_age_years}), between "
        f"{study.data_period.start:%d %B %Y} and {months} months before "
        f"{study.data_period.end:%d %B %Y}. A child is exposed when the index date is on or "
        "after the step date of their local authority. Children already looked after at the "
        "index date are analysed only as a subgroup.",
        f"Estimand: {estimand}.",
        f"Primary analysis: {MODEL_NAMES.get(a.primary_model, a.primary_model)} with fixed "
        f"effects for local authority and {a.period}, adjusted for "
        f"{', '.join(a.covariates) or 'no covariates'}; inference by "
        f"{names.get(a.primary_inference, a.primary_inference)}; "
        f"{round(100 * (1 - a.alpha))}% confidence intervals. Outcomes: " + "; ".join(scale)
        + ".",
        "Sensitivity analyses: every other model and inference method the plan lists "
        "(randomisation inference over the allowed assignments of local authorities to steps, "
        f"a wild cluster bootstrap with {a.wild_bootstrap_draws} draws and "
        f"{a.wild_bootstrap_weights} weights, a mixed model, child-level standard errors) and "
        "Callaway & Sant'Anna staggered difference-in-differences with "
        f"{_CONTROLS[a.did_control_group]} local authorities as controls, with an event study "
        "by time since the step.",
        f"Secondary outcomes: p-values adjusted for multiplicity by {a.multiplicity} over the "
        "secondary outcomes as one family; the primary outcome is tested alone at "
        f"alpha = {a.alpha}.",
        f"Missing outcomes (NEET, school attendance, from linked files): {a.missing_data} "
        "(inverse probability weighting on the covariates when 'ipw'), with the complete-case "
        "analysis as sensitivity; counts of missing values are given by condition.",
        f"Disclosure control (study file): counts below {d.threshold} suppressed"
        f"{', zeros too' if d.zeros_disclosive else ''}; secondary suppression so no "
        "suppressed value can be recovered from totals, linked tables or earlier releases; "
        f"counts rounded to the nearest {d.rounding_base}; means published only with at least "
        f"{d.threshold} children with a non-zero value; models need {d.min_residual_dof} "
        f"residual degrees of freedom on local authority × period cells and at least "
        f"{d.min_clusters} local authorities per estimate. Suppressed values show as "
        f"'{d.suppression_symbol}'. Approved by {d.reviewers_required} output checkers other "
        "than the requester.",
    ]
    limitations = [
        f"Only {len(steps)} clusters: inference rests on few local authorities; the analysis "
        "plan's primary inference is built for that, and the other methods are shown beside it.",
        "Released tables are rounded and suppressed: rates in this report are computed from "
        "rounded counts and are approximate.",
        "Outcomes come from statutory returns: events outside the participating local "
        "authorities, or not recorded in the returns, are not seen.",
    ]
    if study.design.illustrative_schedule:
        limitations.insert(0, "The rollout schedule is illustrative: " + study.design.schedule_note)
    return {"methods": methods, "limitations": limitations}


def banner(release: CheckedRelease) -> str | None:
    """The banner every page of a report not built from declared-real data carries."""
    return None if release.data_origin == "real" else SYNTHETIC_BANNER


def render_report(release: CheckedRelease, study: StudyFile, meta: dict[str, Any], *,
                  notice_href: str | None = "privacy-notice.html") -> str:
    """The report page. `meta`: the release request (`ReleaseRecord.meta()`), with
    `approvals` (reviewer, reviewed_at) once verified."""
    starts = [dt.date.fromisoformat(p["start"]) for p in release.periods]
    labels = [p["label"] for p in release.periods]
    est = _estimates(release)
    primary = study.analysis.primary_outcome
    prim = est[(est["outcome"] == primary.id) & (est["population"] == "main")]
    head = prim[prim["primary"] & ~prim["suppressed"]]
    headline = head.to_dict("records")[0] if not head.empty else None
    sensitivity = prim[~prim["primary"]].assign(label=lambda f: [
        _method_label(r) for r in f.to_dict("records")])
    diff = prim[(prim["measure"] == "difference") & ~prim["suppressed"]].assign(
        label=lambda f: [("PRIMARY: " if r["primary"] else "") + MODEL_NAMES.get(
            str(r["model"]), str(r["model"])).split(" (")[0] + " / " + str(r["method"])
            for r in f.to_dict("records")]).sort_values("primary", ascending=False,
                                                         kind="stable")
    event = pd.DataFrame(columns=["event_time", "estimate", "ci_low", "ci_high"])
    if release.has("event_study"):
        es = release.output("event_study").table
        pts = es[es["outcome"] == primary.id]
        event = pd.DataFrame({c: pts[c].map(_num) for c in ("event_time", "estimate",
                                                           "ci_low", "ci_high")}).dropna()
    steps = sorted(study.design.rollout, key=lambda s: (s.step_date, s.la))
    rollout_uri, rollout_marks = plots.rollout_diagram(
        [(study.la(s.la).name, s.step_date) for s in steps], starts, labels,
        study.study.intervention)
    figures: dict[str, Any] = {
        "rollout": Figure("Stepped-wedge rollout", rollout_uri, "Each row is a local authority "
                          "in step order (study file); shaded periods are under "
                          f"{study.study.intervention}.", rollout_marks),
        "trends": _trend_figures(release, study, starts),
        "forest": (Figure("Primary outcome: every analysis on the difference scale",
                          plots.forest(diff, null=0.0, xlabel="risk or mean difference"),
                          "Points are estimates, bars the confidence intervals; the first "
                          "line is the plan's primary analysis.") if not diff.empty else None),
        "event_study": (Figure("Event study (Callaway–Sant'Anna)", plots.event_study(
            event, title=primary.title, period_word=study.analysis.period),
            "Average effect by time relative to the step; suppressed points (too few local "
            "authorities or children) are omitted.") if not event.empty else None),
    }
    secondary = est[(est["role"] == "secondary") & est["primary"]
                    & (est["population"] == "main")].to_dict("records")
    subgroup = est[est["population"] != "main"].to_dict("records")
    titles = {o.id: o.title for o in study.analysis.outcomes}
    get = release.output
    context = {
        "study": study, "release": release, "meta": meta, "version": __version__,
        "generated": dt.date.today().isoformat(), "notice_href": notice_href,
        "banner": banner(release), "figures": figures, "labels": labels,
        "flow": get(FLOW) if release.has(FLOW) else None,
        "allocation": get(ALLOCATION) if release.has(ALLOCATION) else None,
        "cohort": get(COHORT) if release.has(COHORT) else None,
        "missing": get(MISSING_DATA) if release.has(MISSING_DATA) else None,
        "variance": get("variance_components") if release.has("variance_components") else None,
        "baseline_rows": _baseline_rows(release), "outcome_rows": _outcome_rows(release, study),
        "conditions": CONDITIONS, "primary": primary, "headline": headline,
        "headline_method": _method_label(headline) if headline else "",
        "sensitivity": sensitivity.to_dict("records"), "secondary": secondary,
        "subgroup": subgroup, "titles": titles,
        "consistency": _consistency(headline, prim, event),
        "fmt": fmt, "fmt_p": fmt_p, "isfinite": lambda v: v is not None and math.isfinite(v),
        "count_outputs": [o for o in release.outputs if not o.withheld],
        "withheld": [o for o in release.outputs if o.withheld],
        "level": round(100 * (1 - study.analysis.alpha)),
        **_methods(study, release),
        "steps": steps,
    }
    return _environment().get_template("report.html.j2").render(**context)
