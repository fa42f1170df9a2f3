"""Check a whole release: every output of an evaluation through the disclosure rules.

`check_results(results, study)` returns a `CheckedRelease`: the count tables protected together
(primary + secondary suppression, rounding, integer audit — see `frequency`), magnitude tables
(threshold, dominance, p-ratio, all-values-the-same), model estimates (residual degrees of
freedom) and the event-study series (children behind each point). Only what this returns ever
reaches a release folder or the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialvault.disclose.frequency import (
    COHORT,
    FLOW,
    CountTables,
    denominators_table,
    events_table,
    protect_counts,
    publish,
)
from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.outputs import (
    CellChange,
    CheckedOutput,
    CheckedRelease,
    RuleResult,
    fmt_number,
    worst,
)
from trialvault.disclose.rules import (
    ALL_SAME,
    DOMINANCE,
    MISSING,
    NEGATIVE,
    P_RATIO,
    RESIDUAL_DOF,
    THRESHOLD,
    MagnitudeEvidence,
    Status,
    describe,
    magnitude_unsafe,
    model_dof_status,
)
from trialvault.study.model import Disclosure, StudyFile

_MAGNITUDE_RULES = (THRESHOLD, DOMINANCE, P_RATIO, ALL_SAME)


def population(study: StudyFile) -> str:
    """Who the tables count, in words generated from the study file."""
    last_index = (pd.Timestamp(study.data_period.end)
                  - pd.DateOffset(months=study.analysis.follow_up_months)).date()
    return (f"Children aged {study.cohort.min_age_years} to {study.cohort.max_age_years} at "
            f"their first qualifying event ({', '.join(study.cohort.qualifying_events)}) "
            f"between {study.data_period.start:%d %B %Y} and {last_index:%d %B %Y}, so that "
            f"each has {study.analysis.follow_up_months} months of follow-up; children whose "
            "records are restricted, objected to or erased are excluded.")


def _suppression_note(out: CheckedOutput, rules: Disclosure) -> str:
    by_rule: dict[str, int] = {}
    for ch in out.changes:
        if ch.action == "suppressed":
            by_rule[ch.rule] = by_rule.get(ch.rule, 0) + 1
    if not by_rule:
        return "No cell needed suppression."
    parts = ", ".join(f"{k} {rule.replace('_', ' ')}" for rule, k in sorted(by_rule.items()))
    return f"'{rules.suppression_symbol}' marks {sum(by_rule.values())} suppressed cells ({parts})."


def _counts(tables: CountTables, results: ResultsInput, study: StudyFile) -> list[CheckedOutput]:
    rules = study.disclosure
    pop = population(study)
    period_word = "period of index date"
    rounding_note = (f" Counts are rounded to the nearest {rules.rounding_base}; totals are "
                     "computed from the underlying counts, so rows may not add up exactly."
                     if tables.rounding else "")
    outcomes = {o.id: o for o in study.analysis.outcomes}
    specs: list[tuple[str, str, str, str]] = []
    if FLOW in tables.layout and tables.layout[FLOW][0]:
        specs.append((FLOW, "Cohort flow", "Step", "Children counted at each step of building "
                      "the cohort, from the first qualifying event to the analysed cohort."))
    specs.append((COHORT, "Children in the cohort by local authority and period",
                  "Local authority", f"Cohort members by local authority and {period_word}. {pop}"))
    for outcome in results.binary["outcome"].drop_duplicates():
        title = outcomes[outcome].title if outcome in outcomes else str(outcome)
        if denominators_table(outcome) in tables.layout:
            specs.append((denominators_table(outcome), f"{title}: children with the outcome "
                          "defined", "Local authority", f"Cohort members for whom '{title}' "
                          f"is defined, by local authority and {period_word}."))
        specs.append((events_table(outcome), f"{title}: children with the outcome",
                      "Local authority", f"Cohort members with the outcome '{title}', by local "
                      f"authority and {period_word}. The same children as the cohort table, so "
                      "the two tables are protected together."))
    made = []
    for name, title, row_title, context in specs:
        out = publish(tables, name, rules, title=title, context=context, row_title=row_title,
                      col_title="Period")
        out.context = f"{out.context}{rounding_note} {_suppression_note(out, rules)}".strip()
        made.append(out)
    return made


def _magnitude(results: ResultsInput, study: StudyFile, row_names: list[str]
               ) -> list[CheckedOutput]:
    rules = study.disclosure
    outcomes = {o.id: o for o in study.analysis.outcomes}
    made = []
    for outcome, frame in results.magnitude.groupby("outcome", sort=False):
        name = str(outcome)
        kind = outcomes[name].kind if name in outcomes else "count"
        full = frame.set_index(["la_code", "period"]).reindex(
            pd.MultiIndex.from_product([results.la_codes, results.period_labels]))
        full[["n", "negatives"]] = full[["n", "negatives"]].fillna(0)
        ev = MagnitudeEvidence(
            n=full["n"].to_numpy(np.int64), total=full["total"].fillna(0).to_numpy(float),
            top1=full["top1"].fillna(0).to_numpy(float),
            top2=full["top2"].fillna(0).to_numpy(float),
            top_n=full["top_n"].fillna(0).to_numpy(float),
            minimum=full["minimum"].to_numpy(float), maximum=full["maximum"].to_numpy(float),
            negatives=full["negatives"].to_numpy(np.int64))
        flags = magnitude_unsafe(ev, rules)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(ev.n > 0, ev.total / np.where(ev.n > 0, ev.n, 1), np.nan)
        shape = (len(results.la_codes), len(results.period_labels))
        text = pd.DataFrame("", index=pd.Index(row_names, name="Local authority"),
                            columns=results.period_labels, dtype=object)
        changes: list[CellChange] = []
        for k, (i, j) in enumerate(np.ndindex(shape)):
            hit = next((r for r in _MAGNITUDE_RULES if flags[r][k]), None)
            r, c = row_names[i], results.period_labels[j]
            if hit is not None:
                text.iloc[i, j] = rules.suppression_symbol
                changes.append(CellChange(r, c, "suppressed", hit, describe(hit, rules)))
            else:
                text.iloc[i, j] = (fmt_number(100 * mean[k], 1) if kind == "rate"
                                   else fmt_number(mean[k], 2))
        results_ = [RuleResult(code, describe(code, rules),
                               "review" if flags[code].any() else "pass", int(flags[code].sum()))
                    for code in (*_MAGNITUDE_RULES, NEGATIVE)]
        status: Status = "review" if changes or flags[NEGATIVE].any() else "pass"
        title = outcomes[name].title if name in outcomes else name
        unit = "percentage of possible sessions (mean over children)" if kind == "rate" else (
            "mean per child")
        out = CheckedOutput(f"mean_{name}", f"{title}: {unit}", "magnitude",
                            f"{title}, {unit}, by local authority and period of index date. "
                            "Published without totals, so no suppressed cell can be recovered "
                            "by differencing.", text, status, results_, changes, {},
                            rules.suppression_symbol)
        out.context = f"{out.context} {_suppression_note(out, rules)}"
        made.append(out)
    return made


def _estimates(results: ResultsInput, study: StudyFile) -> CheckedOutput:
    rules = study.disclosure
    level = round(100 * (1 - study.analysis.alpha))
    est = results.estimates.reset_index(drop=True)
    cols = ["outcome", "analysis", "estimate", "ci_low", "ci_high", "p_value", "ri_p_value"]
    index = [f"{o} / {a}" for o, a in zip(est["outcome"], est["analysis"], strict=True)]
    text = pd.DataFrame("", index=pd.Index(index, name="Estimate"), columns=cols, dtype=object)
    changes: list[CellChange] = []
    statuses: list[Status] = []
    for k, row in est.iterrows():
        label = index[int(str(k))]
        dof = None if pd.isna(row["dof"]) else float(row["dof"])
        row_status = model_dof_status(dof, rules)
        statuses.append(row_status)
        text.loc[label, "outcome"] = str(row["outcome"])
        text.loc[label, "analysis"] = str(row["analysis"])
        for c in cols[2:]:
            if row_status == "fail":
                text.loc[label, c] = rules.suppression_symbol
            else:
                text.loc[label, c] = fmt_number(row[c], 4)
        if row_status == "fail":
            changes.append(CellChange(label, "all", "withheld", RESIDUAL_DOF,
                                      describe(RESIDUAL_DOF, rules)))
    n_fail = statuses.count("fail")
    n_unknown = statuses.count("review")
    dof_status: Status = "review" if n_fail or n_unknown else "pass"
    rules_ = [RuleResult(RESIDUAL_DOF, describe(RESIDUAL_DOF, rules), dof_status, n_fail)]
    if n_unknown:
        rules_.append(RuleResult(MISSING, "residual degrees of freedom not reported: a reviewer "
                                 "must judge these models", "review", n_unknown))
    status: Status = "fail" if est.empty else worst([dof_status])
    context = (f"Effect estimates with {level}% confidence intervals, conventional p-values and "
               "randomisation-inference p-values (RI), one row per outcome and analysis. Models "
               f"need at least {rules.min_residual_dof} residual degrees of freedom.")
    if n_fail:
        context += f" {n_fail} model(s) withheld for too few residual degrees of freedom."
    return CheckedOutput("estimates", "Effect estimates", "estimates", context, text, status,
                         rules_, changes, {}, rules.suppression_symbol)


def _series(results: ResultsInput, study: StudyFile) -> CheckedOutput:
    rules = study.disclosure
    es = results.event_study.reset_index(drop=True)
    cols = ["outcome", "event_time", "estimate", "ci_low", "ci_high"]
    index = [f"{o} / {int(e)}" for o, e in zip(es["outcome"], es["event_time"], strict=True)]
    text = pd.DataFrame("", index=pd.Index(index, name="Point"), columns=cols, dtype=object)
    changes: list[CellChange] = []
    unknown = 0
    for k, row in es.iterrows():
        label = index[int(str(k))]
        text.loc[label, "outcome"] = str(row["outcome"])
        text.loc[label, "event_time"] = str(int(row["event_time"]))
        small = False
        if pd.isna(row["n"]):
            unknown += 1
        else:
            small = int(row["n"]) < rules.threshold
        for c in cols[2:]:
            text.loc[label, c] = rules.suppression_symbol if small else fmt_number(row[c], 4)
        if small:
            changes.append(CellChange(label, "all", "suppressed", THRESHOLD,
                                      "fewer children behind this point than the threshold "
                                      f"({rules.threshold})"))
    rules_ = [RuleResult(THRESHOLD, f"points estimated from fewer than {rules.threshold} "
                         "children are suppressed", "review" if changes else "pass", len(changes))]
    if unknown:
        rules_.append(RuleResult(MISSING, "number of children behind a point not reported: a "
                                 "reviewer must judge", "review", unknown))
    status: Status = "review" if changes or unknown else "pass"
    context = ("Event-study (Callaway–Sant'Anna) average effects by time relative to each local "
               "authority's step, with confidence intervals.")
    return CheckedOutput("event_study", "Event-study effects by time since the step", "series",
                         context, text, status, rules_, changes, {}, rules.suppression_symbol)


def check_results(results: ResultsInput, study: StudyFile, *, rounding: bool = True
                  ) -> CheckedRelease:
    """Run every disclosure rule on one evaluation's aggregate results."""
    rules = study.disclosure
    row_names = [study.la(code).name for code in results.la_codes]
    tables = protect_counts(results, rules, row_names, rounding=rounding)
    outputs = [*_counts(tables, results, study), *_magnitude(results, study, row_names)]
    if not results.estimates.empty:
        outputs.append(_estimates(results, study))
    if not results.event_study.empty:
        outputs.append(_series(results, study))
    return CheckedRelease(
        study_id=study.study.id, rules=rules.model_dump(), outputs=outputs,
        provenance=dict(results.provenance),
        periods=[{"label": p.label, "start": p.start.isoformat()} for p in results.periods],
        la_names={str(code): study.la(code).name for code in results.la_codes},
    )
