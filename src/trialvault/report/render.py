"""The HTML report of a release: one self-contained, printable file.

`render_report(release, study, meta)` reads only a `CheckedRelease` (disclosure-checked outputs)
and the study file (the public design and methods). Templates are package data
(`report/templates`); figures are PNG data URIs (see `plots`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from trialvault import __version__
from trialvault.disclose.frequency import COHORT, FLOW, denominators_table, events_table
from trialvault.disclose.outputs import CheckedOutput, CheckedRelease
from trialvault.report import plots
from trialvault.study.model import StudyFile

_TOTAL = "Total"
_CONTROLS = {"notyettreated": "not-yet-treated", "nevertreated": "never-treated"}


@dataclass(frozen=True)
class Figure:
    """One embedded figure with its caption."""

    title: str
    uri: str
    caption: str


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.report").joinpath("templates", name).read_text(
            encoding="utf-8"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _interior(out: CheckedOutput) -> pd.DataFrame:
    """Numeric interior of an LA × period table (totals dropped; suppressed cells NaN)."""
    num = out.numeric()
    return num.drop(index=_TOTAL, columns=_TOTAL, errors="ignore")


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _estimates(release: CheckedRelease) -> pd.DataFrame:
    if not release.has("estimates"):
        return pd.DataFrame(columns=["outcome", "analysis", "estimate", "ci_low", "ci_high",
                                     "p_value", "ri_p_value", "text"])
    t = release.output("estimates").table
    out = t[["outcome", "analysis"]].copy()
    for c in ("estimate", "ci_low", "ci_high", "p_value", "ri_p_value"):
        out[c] = t[c].map(_num)
    out["suppressed"] = t["estimate"] == release.output("estimates").symbol
    return out.reset_index(drop=True)


def _fmt(value: float, digits: int = 3) -> str:
    return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _trend_figures(release: CheckedRelease, study: StudyFile, starts: list[dt.date],
                   codes: list[int]) -> list[Figure]:
    figs = []
    for o in study.analysis.outcomes:
        if release.has(events_table(o.id)):
            events = _interior(release.output(events_table(o.id)))
            base_name = (denominators_table(o.id) if release.has(denominators_table(o.id))
                         else COHORT)
            denom = _interior(release.output(base_name))
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = events / denom.where(denom > 0)
            uri = plots.trends_by_la(rate, starts, study, codes, ylabel="% of children",
                                     percent=True)
            denominator = ("children with the outcome defined" if base_name != COHORT
                           else "all cohort members")
            caption = (f"Share of children with the outcome ({denominator} as denominator), "
                       "computed from the released, rounded counts; gaps are suppressed cells. "
                       "The dashed line marks each local authority's step.")
        elif release.has(f"mean_{o.id}"):
            means = _interior(release.output(f"mean_{o.id}"))
            label = "% of sessions" if o.kind == "rate" else "mean per child"
            uri = plots.trends_by_la(means, starts, study, codes, ylabel=label, percent=False)
            caption = ("Released cell means; gaps are suppressed cells. The dashed line marks "
                       "each local authority's step.")
        else:
            continue
        figs.append(Figure(o.title, uri, caption))
    return figs


def _methods(study: StudyFile, release: CheckedRelease) -> dict[str, list[str]]:
    a, c, d = study.analysis, study.cohort, study.disclosure
    months = a.follow_up_months
    steps = sorted(study.design.rollout, key=lambda s: s.step_date)
    methods = [
        f"Design: {study.design.type} with {len(steps)} clusters (unit: "
        f"{study.design.cluster}); each switches from usual practice to "
        f"{study.study.intervention} at its step.",
        f"Cohort: {c.description} Children enter at their first qualifying event "
        f"({', '.join(c.qualifying_events)}) aged {c.min_age_years} to {c.max_age_years}, "
        f"between {study.data_period.start:%d %B %Y} and {months} months before "
        f"{study.data_period.end:%d %B %Y}, so that every child has {months} months of "
        "follow-up. A child is exposed when the index date is on or after the step date of "
        "their local authority.",
        f"Outcomes ({months}-month follow-up): " + "; ".join(
            f"{o.title} ({o.kind}{', primary' if o.primary else ''})" for o in a.outcomes) + ".",
        f"Primary analysis: Hussey & Hughes models ({', '.join(a.models)}) with fixed effects "
        f"for local authority and {a.period}, adjusted for {', '.join(a.covariates) or 'none'}; "
        f"{round(100 * (1 - a.alpha))}% confidence intervals.",
        "Few-cluster inference: randomisation inference over every allowed assignment of the "
        "local authorities to the steps" + (" (enabled)" if a.randomisation_inference else
                                            " (disabled)") +
        f", and a wild cluster bootstrap ({a.wild_bootstrap_draws} draws, "
        f"{a.wild_bootstrap_weights} weights).",
        "Sensitivity: Callaway & Sant'Anna staggered difference-in-differences with "
        f"{_CONTROLS[a.did_control_group]} local authorities as controls; event-study "
        "aggregation by time since the step.",
        f"Disclosure control (study file): counts below {d.threshold} suppressed"
        f"{', zeros too' if d.zeros_disclosive else ''}; secondary suppression so no "
        "suppressed cell can be recovered from totals or linked tables; counts rounded to the "
        f"nearest {d.rounding_base}; magnitude cells checked for dominance "
        f"(n={d.dominance_n}, k={d.dominance_k}) and p-ratio ({d.p_ratio}); models need "
        f"{d.min_residual_dof} residual degrees of freedom. Suppressed cells show as "
        f"'{d.suppression_symbol}'. Release approved by {d.reviewers_required} people.",
    ]
    limitations = [
        f"Only {len(steps)} clusters: cluster-robust standard errors are unreliable, so the "
        "randomisation-inference and wild-bootstrap intervals should carry the weight.",
        "Released tables are rounded and suppressed: rates in the trend figures are computed "
        "from rounded counts and are approximate.",
        "Outcomes come from statutory returns: events outside the participating local "
        "authorities, or not recorded in the returns, are not seen.",
    ]
    if study.design.illustrative_schedule:
        limitations.insert(0, "The rollout schedule is illustrative: " + study.design.schedule_note)
    return {"methods": methods, "limitations": limitations}


def render_report(release: CheckedRelease, study: StudyFile, meta: dict[str, Any], *,
                  notice_href: str | None = "privacy-notice.html") -> str:
    """The report page. `meta`: the release request (release_id, run_id, requested_by,
    requested_at, status, reviews, note) as `ReleaseRecord.meta()` gives it."""
    codes = [int(k) for k in release.la_names]
    starts = [dt.date.fromisoformat(p["start"]) for p in release.periods]
    labels = [p["label"] for p in release.periods]
    est = _estimates(release)
    primary = study.analysis.primary_outcome
    prim = est[est["outcome"] == primary.id]
    headline = prim[prim["analysis"].str.contains("lpm|difference", regex=True)
                    & ~prim["suppressed"]].head(1)
    diff_rows = prim[~prim["analysis"].str.contains("ratio") & ~prim["suppressed"]].assign(
        label=lambda f: f["analysis"])
    figures: dict[str, Any] = {
        "rollout": Figure("Stepped-wedge rollout", plots.rollout_diagram(study, starts, labels),
                          "Each row is a local authority in step order; shaded periods are "
                          f"under {study.study.intervention}."),
        "trends": _trend_figures(release, study, starts, codes),
        "forest": (Figure("Primary outcome: estimates on the difference scale",
                          plots.forest(diff_rows, null=0.0, xlabel="risk difference / ATT"),
                          "Points are estimates, bars the confidence intervals.")
                   if not diff_rows.empty else None),
        "event_study": None,
    }
    if release.has("event_study"):
        es = release.output("event_study").table
        pts = es[es["outcome"] == primary.id]
        frame = pd.DataFrame({c: pts[c].map(_num) for c in ("event_time", "estimate", "ci_low",
                                                           "ci_high")})
        if frame["estimate"].notna().any():
            figures["event_study"] = Figure(
                "Event study (Callaway–Sant'Anna)",
                plots.event_study(frame, title=primary.title, period_word=study.analysis.period),
                "Average effect by time relative to the step; suppressed points are omitted.")
    cohort_total = release.output(COHORT).table.loc[_TOTAL, _TOTAL] if release.has(COHORT) else ""
    count_outputs = [o for o in release.outputs if o.kind == "counts" and not o.withheld]
    context = {
        "study": study, "release": release, "meta": meta, "version": __version__,
        "generated": dt.date.today().isoformat(), "notice_href": notice_href,
        "figures": figures, "labels": labels,
        "flow": release.output(FLOW) if release.has(FLOW) else None,
        "cohort": release.output(COHORT) if release.has(COHORT) else None,
        "primary": primary, "primary_events": (release.output(events_table(primary.id))
                                                if release.has(events_table(primary.id)) else None),
        "headline": headline.to_dict("records")[0] if not headline.empty else None,
        "cohort_total": cohort_total, "primary_rows": prim.to_dict("records"),
        "secondary_rows": est[est["outcome"] != primary.id].to_dict("records"),
        "titles": {o.id: o.title for o in study.analysis.outcomes},
        "fmt": _fmt, "count_outputs": count_outputs,
        **_methods(study, release),
        "steps": sorted(study.design.rollout, key=lambda s: (s.step_date, s.la)),
    }
    return _environment().get_template("report.html.j2").render(**context)
