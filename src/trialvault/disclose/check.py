"""Check a whole release: every output of an evaluation through the disclosure rules.

`check_results(results, study, earlier=...)` returns a `CheckedRelease`: the count tables
protected together (primary + secondary suppression, rounding, integer audit — `frequency`),
jointly with every earlier release of the study (`across`); means by condition (threshold,
non-zero contributors, dominance, p-ratio, all-values-the-same); model estimates (residual
degrees of freedom on LA × period cells, LAs behind each estimate) and the event-study series
(children and LAs behind each point). Only what this returns reaches a release folder.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import pandas as pd

from trialvault.disclose import across
from trialvault.disclose.aggregate import last_index_date
from trialvault.disclose.frequency import (
    ALLOCATION,
    BASELINE,
    BY_CONDITION,
    COHORT,
    CONDITIONS,
    FLOW,
    MISSING_DATA,
    CountTables,
    audit_counts,
    denominators_table,
    events_table,
    protect_counts,
    publish,
)
from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.outputs import (
    CellReview,
    CheckedOutput,
    CheckedRelease,
    OutputReview,
    RuleResult,
    fmt_number,
    worst,
)
from trialvault.disclose.protect import Protection, protect_group, secure_exactly
from trialvault.disclose.rules import (
    ACROSS,
    ALL_SAME,
    DOMINANCE,
    MIN_CLUSTERS,
    MISSING,
    NONZERO,
    P_RATIO,
    RESIDUAL_DOF,
    THRESHOLD,
    MagnitudeEvidence,
    Status,
    describe,
    magnitude_unsafe,
    model_dof_status,
)
from trialvault.study.model import StudyFile

_MAGNITUDE_RULES = (THRESHOLD, NONZERO, DOMINANCE, P_RATIO, ALL_SAME)
MEANS = "means_by_condition"
ESTIMATES, EVENT_STUDY, VARIANCE = "estimates", "event_study", "variance_components"
_SUPPRESSED_WORDS = "'{symbol}' marks a suppressed value."


def population(study: StudyFile) -> str:
    """Who the tables count, in words generated from the study file."""
    return (f"Children aged {study.cohort.min_age_years} to {study.cohort.max_age_years} at "
            f"their first qualifying event ({', '.join(study.cohort.qualifying_events)}) "
            f"between {study.data_period.start:%d %B %Y} and {last_index_date(study):%d %B %Y}"
            f", so that each has {study.analysis.follow_up_months} months of follow-up, in the "
            "main analysis (not already looked after at the index date); children whose "
            "records are restricted or objected to are excluded, erased records are deleted.")


def _count_specs(tables: CountTables, results: ResultsInput, study: StudyFile
                 ) -> list[tuple[str, str, str, str, str]]:
    rules = study.disclosure
    period_word = "period of the index date"
    words = (f" Counts are rounded to the nearest {rules.rounding_base}, each on its own, so "
             "rows may not add up. " if rules.rounding_base > 1 else " ")
    words += _SUPPRESSED_WORDS.format(symbol=rules.suppression_symbol)
    pop = population(study)
    specs = [
        (FLOW, "Participant flow", "Step", "Children counted at each step from the data to the "
         f"main analysis (CONSORT flow for a stepped-wedge trial).{words}", ""),
        (ALLOCATION, "Main analysis by local authority and condition", "Local authority",
         "Children of the main analysis indexed before (unexposed) and on or after (exposed) "
         f"their local authority's step.{words}", "Condition"),
        (COHORT, "Main analysis by local authority and period", "Local authority",
         f"Children of the main analysis by local authority and {period_word}. {pop}{words}",
         "Period"),
    ]
    outcomes = {o.id: o for o in study.analysis.outcomes}
    for o in study.analysis.outcomes:
        if denominators_table(o.id) in tables.layout:
            specs.append((denominators_table(o.id), f"{o.title}: children measured",
                          "Local authority", f"Children of the main analysis for whom "
                          f"'{o.title}' is measured, by local authority and {period_word}."
                          f"{words}", "Period"))
        if events_table(o.id) in tables.layout:
            specs.append((events_table(o.id), f"{o.title}: children with the outcome",
                          "Local authority", f"Children of the main analysis with the outcome "
                          f"'{o.title}', by local authority and {period_word}.{words}",
                          "Period"))
    del outcomes
    specs += [
        (BY_CONDITION, "Outcomes by condition", "Outcome", "Children measured and children "
         f"with each binary outcome, by condition (main analysis).{words}", "Condition"),
        (MISSING_DATA, "Missing outcomes by condition", "Outcome", "Children who should have "
         "the outcome (by age) and children for whom it is missing from the linked files, by "
         f"condition.{words}", "Condition"),
        (BASELINE, "Baseline characteristics by condition", "Characteristic", "Children of the "
         f"main analysis by characteristic at the index date and condition.{words}",
         "Condition"),
    ]
    return [s for s in specs if s[0] in tables.layout and tables.layout[s[0]].rows]


def _means(results: ResultsInput, study: StudyFile, earlier: Sequence[across.Earlier]
           ) -> tuple[CheckedOutput, OutputReview, list[dict[str, object]]]:
    rules = study.disclosure
    outcomes = {o.id: o for o in study.analysis.outcomes}
    mag = results.magnitude.reset_index(drop=True)
    rows = [f"{outcomes[str(o)].title}" for o in dict.fromkeys(mag["outcome"])]
    text = pd.DataFrame("", index=pd.Index(rows, name="Outcome"), columns=list(CONDITIONS),
                        dtype=object)
    reviews: list[CellReview] = []
    counts = dict.fromkeys(_MAGNITUDE_RULES, 0)
    structure: list[dict[str, object]] = []
    if not mag.empty:
        ev = MagnitudeEvidence(
            n=mag["n"].to_numpy(np.int64), total=mag["total"].to_numpy(float),
            top1=mag["top1"].to_numpy(float), top2=mag["top2"].to_numpy(float),
            top_n=mag["top_n"].to_numpy(float), minimum=mag["minimum"].to_numpy(float),
            maximum=mag["maximum"].to_numpy(float), negatives=mag["negatives"].to_numpy(np.int64),
            nonzero=mag["nonzero"].to_numpy(np.int64))
        flags = magnitude_unsafe(ev, rules)
    for k, r in mag.iterrows():
        o = outcomes[str(r["outcome"])]
        row, col = o.title, CONDITIONS[int(r["exposed"])]
        n = int(r["n"])
        mean = float(r["total"]) / n if n else float("nan")
        shown = (fmt_number(100 * mean, 1) if o.kind == "rate" else fmt_number(mean, 2))
        i = int(str(k))
        hit = next((c for c in _MAGNITUDE_RULES if flags[c][i]), None)
        if hit is None:
            hit = across.mean_revealed(earlier, o.id, int(r["exposed"]), n, shown, o.kind)
        if hit is not None:
            text.loc[row, col] = rules.suppression_symbol
            if hit in counts:
                counts[hit] += 1
            reviews.append(CellReview(row, col, mean, rules.suppression_symbol, "suppressed",
                                      hit, describe(hit, rules)))
        else:
            text.loc[row, col] = shown
            reviews.append(CellReview(row, col, mean, shown, "published", "", ""))
        structure.append({"outcome": o.id, "exposed": int(r["exposed"]), "n": n,
                          "shown": text.loc[row, col], "kind": o.kind})
    rules_ = [RuleResult(code, describe(code, rules), "review" if k else "pass", k)
              for code, k in counts.items()]
    status: Status = "review" if any(c.action == "suppressed" for c in reviews) else "pass"
    context = ("Mean per child of each count outcome (rates: mean percentage of possible "
               "sessions) by condition, main analysis; the children measured are in the "
               "outcomes-by-condition table. No total is published, so no suppressed mean can "
               "be recovered by differencing. "
               + _SUPPRESSED_WORDS.format(symbol=rules.suppression_symbol))
    out = CheckedOutput(MEANS, "Count and rate outcomes by condition: means", "magnitude",
                        context, text, rules.suppression_symbol)
    return out, OutputReview(MEANS, status, rules_, reviews), structure


def cluster_dof(row: pd.Series, study: StudyFile) -> tuple[float | None, int | None]:
    """Residual degrees of freedom on LA × analysis period cells, and the LAs behind a row."""
    if pd.isna(row.get("cells")) or pd.isna(row.get("params")):
        return None, None if pd.isna(row.get("clusters")) else int(row["clusters"])
    return float(row["cells"]) - float(row["params"]), int(row["clusters"])


ESTIMATE_TEXT = ["outcome", "role", "population", "model", "method", "measure", "estimate",
                 "se", "df", "ci_low", "ci_high", "p_value", "p_adjusted", "multiplicity",
                 "primary", "clusters", "note"]
_NUMERIC = ("estimate", "se", "df", "ci_low", "ci_high")


def _estimates(results: ResultsInput, study: StudyFile) -> tuple[CheckedOutput, OutputReview]:
    rules = study.disclosure
    est = results.estimates.reset_index(drop=True)
    index = [f"{r.outcome} | {r.population} | {r.model} | {r.method}"
             for r in est.itertuples(index=False)]
    text = pd.DataFrame("", index=pd.Index(index, name="Estimate"), columns=ESTIMATE_TEXT,
                        dtype=object)
    reviews: list[CellReview] = []
    n_dof = n_clusters = n_unknown = 0
    for k, row in est.iterrows():
        label = index[int(str(k))]
        dof, clusters = cluster_dof(row, study)
        dof_status = model_dof_status(dof, rules)
        few = clusters is not None and clusters < rules.min_clusters
        for c in ("outcome", "role", "population", "model", "method", "measure",
                  "multiplicity", "note"):
            text.loc[label, c] = "" if pd.isna(row[c]) else str(row[c])
        text.loc[label, "primary"] = "yes" if bool(row["primary"]) else "no"
        text.loc[label, "clusters"] = "" if clusters is None else str(clusters)
        withhold = dof_status == "fail" or few
        for c in (*_NUMERIC, "p_value", "p_adjusted"):
            v = row[c]
            if withhold and not pd.isna(v):
                text.loc[label, c] = rules.suppression_symbol
            elif c in ("p_value", "p_adjusted"):
                text.loc[label, c] = "" if pd.isna(v) else f"{float(v):.4g}"
            else:
                text.loc[label, c] = fmt_number(float(v), 4) if not pd.isna(v) else ""
        if withhold:
            rule = MIN_CLUSTERS if few else RESIDUAL_DOF
            n_clusters += few
            n_dof += not few
            reviews.append(CellReview(label, "all", None if dof is None else dof,
                                      rules.suppression_symbol, "withheld", rule,
                                      describe(rule, rules)
                                      + f" (here {clusters} LAs, dof {dof})"))
        else:
            n_unknown += dof_status == "review"
            reviews.append(CellReview(label, "all", dof, "published", "published", "",
                                      f"{clusters} LAs, cluster-level dof {dof}"))
    rules_ = [RuleResult(RESIDUAL_DOF, describe(RESIDUAL_DOF, rules),
                         "review" if n_dof else "pass", n_dof),
              RuleResult(MIN_CLUSTERS, describe(MIN_CLUSTERS, rules),
                         "review" if n_clusters else "pass", n_clusters)]
    if n_unknown:
        rules_.append(RuleResult(MISSING, "cluster-level degrees of freedom unknown: a "
                                 "reviewer must judge these models", "review", n_unknown))
    withheld_all = bool(len(est)) and all(c.action == "withheld" for c in reviews)
    status: Status = "fail" if est.empty or withheld_all else worst(
        [r.status for r in rules_])
    level = round(100 * (1 - study.analysis.alpha))
    context = (f"Effect estimates with {level}% confidence intervals and p-values, one row per "
               "outcome, population, model and inference method; 'primary' marks the "
               "analysis plan's primary inference. Secondary outcomes carry p-values adjusted "
               f"for multiplicity. {describe(RESIDUAL_DOF, rules).capitalize()}; "
               f"{describe(MIN_CLUSTERS, rules)}. "
               + _SUPPRESSED_WORDS.format(symbol=rules.suppression_symbol))
    out = CheckedOutput(ESTIMATES, "Effect estimates", "estimates", context, text,
                        rules.suppression_symbol, withheld=status == "fail")
    return out, OutputReview(ESTIMATES, status, rules_, reviews)


def _series(results: ResultsInput, study: StudyFile) -> tuple[CheckedOutput, OutputReview]:
    rules = study.disclosure
    es = results.event_study.reset_index(drop=True)
    cols = ["outcome", "event_time", "estimate", "ci_low", "ci_high"]
    index = [f"{o} | {int(e)}" for o, e in zip(es["outcome"], es["event_time"], strict=True)]
    text = pd.DataFrame("", index=pd.Index(index, name="Point"), columns=cols, dtype=object)
    reviews: list[CellReview] = []
    counts = {THRESHOLD: 0, MIN_CLUSTERS: 0}
    for k, row in es.iterrows():
        label = index[int(str(k))]
        text.loc[label, "outcome"] = str(row["outcome"])
        text.loc[label, "event_time"] = str(int(row["event_time"]))
        n = None if pd.isna(row["n"]) else int(row["n"])
        clusters = None if pd.isna(row["clusters"]) else int(row["clusters"])
        hit = (THRESHOLD if n is None or n < rules.threshold else
               MIN_CLUSTERS if clusters is None or clusters < rules.min_clusters else None)
        for c in cols[2:]:
            text.loc[label, c] = (rules.suppression_symbol if hit else
                                  fmt_number(float(row[c]), 4) if not pd.isna(row[c]) else "")
        if hit:
            counts[hit] += 1
            reviews.append(CellReview(label, "all", n, rules.suppression_symbol, "suppressed",
                                      hit, f"{describe(hit, rules)} (here {n} children, "
                                      f"{clusters} LAs)"))
        else:
            reviews.append(CellReview(label, "all", n, "published", "published", "",
                                      f"{n} children, {clusters} LAs"))
    rules_ = [RuleResult(THRESHOLD, f"points estimated from fewer than {rules.threshold} "
                         "children are suppressed", "review" if counts[THRESHOLD] else "pass",
                         counts[THRESHOLD]),
              RuleResult(MIN_CLUSTERS, describe(MIN_CLUSTERS, rules),
                         "review" if counts[MIN_CLUSTERS] else "pass", counts[MIN_CLUSTERS])]
    status: Status = "review" if any(counts.values()) else "pass"
    context = ("Event-study (Callaway–Sant'Anna) average effects by time relative to each local "
               "authority's step, with confidence intervals; points resting on fewer than "
               f"{rules.min_clusters} local authorities or {rules.threshold} children are "
               "suppressed. " + _SUPPRESSED_WORDS.format(symbol=rules.suppression_symbol))
    out = CheckedOutput(EVENT_STUDY, "Event-study effects by time since the step", "series",
                        context, text, rules.suppression_symbol)
    return out, OutputReview(EVENT_STUDY, status, rules_, reviews)


def _variance(results: ResultsInput, study: StudyFile) -> tuple[CheckedOutput, OutputReview]:
    rules = study.disclosure
    var = results.variance.reset_index(drop=True)
    cols = ["icc", "cac", "clusters"]
    text = pd.DataFrame("", index=pd.Index([str(o) for o in var["outcome"]], name="Outcome"),
                        columns=cols, dtype=object)
    reviews = []
    for _, row in var.iterrows():
        few = pd.isna(row["clusters"]) or int(row["clusters"]) < rules.min_clusters
        for c in ("icc", "cac"):
            text.loc[str(row["outcome"]), c] = (rules.suppression_symbol if few else
                                                fmt_number(float(row[c]), 4))
        text.loc[str(row["outcome"]), "clusters"] = "" if pd.isna(row["clusters"]) else str(
            int(row["clusters"]))
        reviews.append(CellReview(str(row["outcome"]), "all", None,
                                  rules.suppression_symbol if few else "published",
                                  "withheld" if few else "published",
                                  MIN_CLUSTERS if few else "", ""))
    status: Status = "review" if any(r.action == "withheld" for r in reviews) else "pass"
    out = CheckedOutput(VARIANCE, "Intra-cluster and cluster autocorrelation", "variance",
                        "Intra-cluster correlation (ICC) and cluster autocorrelation (CAC) "
                        "from the mixed model, per outcome (main analysis).", text,
                        rules.suppression_symbol)
    return out, OutputReview(VARIANCE, status, [], reviews)


def _protect(results: ResultsInput, study: StudyFile, row_names: list[str],
             earlier: Sequence[across.Earlier], rounding: bool) -> CountTables:
    protection = Protection()
    tables = protect_counts(results, study, row_names, rounding=rounding, protection=protection)
    if not earlier:
        return tables
    # Cells an earlier release suppressed stay suppressed; then protect alone and jointly
    # with each earlier release until nothing changes (suppression only grows).
    ids = {c.id for c in tables.group.cells}
    for e in earlier:  # every earlier release, of the same counts or not
        for cid in e.suppressed_ids():
            if cid in ids and cid not in protection.suppressed:
                protection.suppressed[cid] = ACROSS
                protection.secondary_for[cid] = f"suppressed in release {e.release_id}"
    _reprotect(tables, study, across.representatives(
        [e for e in earlier if not e.same_data(tables)]), rounding)
    return tables


def _protect_and_audit(results: ResultsInput, study: StudyFile, row_names: list[str],
                       earlier: Sequence[across.Earlier], rounding: bool
                       ) -> tuple[CountTables, list[dict[str, object]]]:
    """Protect, then prove on the integers; a target the proof finds short is secured exactly
    and everything is protected and proven again (suppression only grows, so this ends)."""
    rules = study.disclosure
    tables = _protect(results, study, row_names, earlier, rounding)
    same = [e for e in earlier if e.same_data(tables)]
    others = [e for e in earlier if not e.same_data(tables)]
    earlier = across.representatives(others)
    covered = [e for e in others if e not in earlier]
    kept: list[dict[str, object]] = [
        {"release_id": e.release_id, "intruder_model": model, "quantities": 0,
         "all_protected": True, "narrowest_range": None, "unprotected": []}
        for group, model in ((same, "same counts as this release (suppressions kept)"),
                             (covered, "same counts as an earlier release checked jointly"))
        for e in group]
    while True:
        audit_counts(tables, rules)
        short = [f for fs in tables.findings.values() for f in fs if not f.protected]
        before = len(tables.protection.suppressed)
        if short:
            secure_exactly(tables.group, short, rules, tables.protection, rounding=rounding)
        joint = [across.audit_jointly(tables, e, rules, rounding=rounding, repair=True)
                 for e in earlier]
        if len(tables.protection.suppressed) == before:
            return tables, [*kept, *joint]
        _reprotect(tables, study, earlier, rounding)


def _reprotect(tables: CountTables, study: StudyFile, earlier: Sequence[across.Earlier],
               rounding: bool) -> None:
    while True:
        before = len(tables.protection.suppressed)
        protect_group(tables.group, study.disclosure, tables.protection, rounding=rounding)
        for e in earlier:
            across.protect_jointly(tables, e, study.disclosure, tables.protection,
                                   rounding=rounding)
        if len(tables.protection.suppressed) == before:
            return


def check_results(results: ResultsInput, study: StudyFile, *, rounding: bool = True,
                  earlier: Sequence[across.Earlier] = ()) -> CheckedRelease:
    """Run every disclosure rule on one evaluation's aggregate results (jointly with the
    `earlier` releases of the same study)."""
    rules = study.disclosure
    row_names = [study.la(code).name for code in results.la_codes]
    tables, findings = _protect_and_audit(results, study, row_names, earlier, rounding)
    outputs: list[CheckedOutput] = []
    reviews: dict[str, OutputReview] = {}
    for name, title, row_title, context, col_title in _count_specs(tables, results, study):
        out, review = publish(tables, name, rules, title=title, context=context,
                              row_title=row_title, col_title=col_title)
        outputs.append(out)
        reviews[name] = review
    means, review, mag_structure = _means(results, study, earlier)
    if not results.magnitude.empty:
        outputs.append(means)
        reviews[MEANS] = review
    for make, frame in ((_estimates, results.estimates), (_series, results.event_study),
                        (_variance, results.variance)):
        if not frame.empty:
            out, review = make(results, study)
            outputs.append(out)
            reviews[out.name] = review
    if any(not f["all_protected"] for f in findings):
        reviews[COHORT].status = "fail"
    return CheckedRelease(
        study_id=study.study.id, rules=msgspec.to_builtins(rules), outputs=outputs, reviews=reviews,
        provenance=dict(results.provenance),
        periods=[{"label": p.label, "start": p.start.isoformat()} for p in results.periods],
        la_order=[{"code": str(code), "name": study.la(code).name,
                   "step_date": study.step_date(code).isoformat()} for code in results.la_codes],
        data_origin=results.data_origin,
        structure={**across.group_to_json(tables, rules), "magnitude": mag_structure},
        across=findings,
    )
