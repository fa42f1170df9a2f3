"""A plain-text summary of an evaluation (for the CLI and the demo; the library never prints)."""

from __future__ import annotations

import math

import pandas as pd

from trialvault.evaluate.results import EvaluationResults


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return f"[{_num(lo, digits)}, {_num(hi, digits)}]"


def render_summary(results: EvaluationResults) -> str:
    """Cohort, exposure, each outcome's model estimates and few-cluster inference, CS overall."""
    p = results.provenance
    lines = [
        f"Evaluation of study '{results.study_id}'"
        + (f" — run {p['run_id']}" if p.get("run_id") else ""),
        f"Cohort: {results.cohort_size} children; excluded before the cohort (rights): "
        f"{results.excluded_children}; seed {results.seed}",
    ]
    exp = results.exposure_counts.pivot_table(index="la_code", columns="exposed",
                                              values="children", fill_value=0)
    lines.append("Children by LA (unexposed / exposed): " + "; ".join(
        f"{la}: {int(row.get(0, 0))} / {int(row.get(1, 0))}" for la, row in exp.iterrows()))
    lines += ["", *_headline_lines(results), ""]
    header = f"{'outcome':<28}{'measure / method':<24}{'estimate':>9}  {'95% CI':<20}{'p':>6}"
    lines.append(header)
    lines.append("-" * len(header))

    def row(outcome: str, label: str, est: float | None, lo: float, hi: float,
            p_value: float | None) -> str:
        est_text = "" if est is None else _num(est)
        p_text = "" if p_value is None else _num(p_value)
        return (f"{outcome:<28}{label:<24}{est_text:>9}  {_ci(lo, hi):<20}{p_text:>6}")

    for outcome, est in results.estimates.groupby("outcome", sort=False):
        for _, r in est.iterrows():
            if pd.isna(r["estimate"]):
                lines.append(f"{outcome:<28}{r['model']:<24}{'':>9}  {r['note']}")
                continue
            lines.append(row(str(outcome), str(r["measure"]), r["estimate"], r["ci_low"],
                             r["ci_high"], r["p_value"]))
        few = results.few_cluster[results.few_cluster["outcome"] == outcome]
        for _, r in few.iterrows():
            label = {"randomisation": f"  RI, {r['replicates']} assignments",
                     "wild_cluster_bootstrap": f"  WCB, {r['replicates']} draws"}.get(
                         str(r["method"]), f"  {r['method']}")
            if pd.isna(r["p_value"]):
                if not str(r["note"]).startswith(("no cohort member", "outcome does not")):
                    lines.append(f"{'':<28}{label:<24}{'':>9}  {r['note']}")
                continue
            lines.append(row("", label, None, r["ci_low"], r["ci_high"], r["p_value"]))
        aggs = results.did_aggregates[results.did_aggregates["outcome"] == outcome]
        simple = aggs[aggs["type"] == "simple"]
        if not simple.empty:
            s = simple.iloc[0]
            lines.append(row("", "  CS ATT (simple)", s["overall_att"], s["ci_low"],
                             s["ci_high"], None))
    return "\n".join(lines)


def _headline_lines(results: EvaluationResults) -> list[str]:
    """The plan's hierarchy: estimand, primary inference, adjusted p-values, ICC/CAC."""
    from trialvault.evaluate.headline import ESTIMAND_NAMES, METHOD_NAMES

    p = results.provenance
    head = results.headline
    if head.empty:
        return []
    method = str(p.get("primary_inference", ""))
    detail = ""
    if method == "randomisation":
        statistic = {"estimate": "the estimate", "t": "the studentised estimate"}.get(
            str(p.get("randomisation_statistic")), str(p.get("randomisation_statistic")))
        detail = (f" (statistic: {statistic}; CI inverts a {p.get('randomisation_shift')} "
                  "shift)")
    lines = [
        f"Estimand: {ESTIMAND_NAMES.get(str(p.get('estimand')), p.get('estimand'))}",
        f"Primary inference: {method} — {METHOD_NAMES.get(method, method)}{detail}; model "
        f"{p.get('primary_model')}; secondary outcomes adjusted by {p.get('multiplicity')}; "
        f"missing NEET/attendance: {p.get('missing_data')} (complete case as sensitivity)",
        f"{'outcome':<28}{'role':<11}{'estimate':>9}  {'95% CI':<20}{'df':>6}{'p':>7}{'p adj':>7}",
    ]
    for _, r in head.iterrows():
        if pd.isna(r["estimate"]):
            lines.append(f"{r['outcome']:<28}{r['role']:<11}{'':>9}  {r['note']}")
            continue
        lines.append(f"{r['outcome']:<28}{r['role']:<11}{_num(r['estimate']):>9}  "
                     f"{_ci(r['ci_low'], r['ci_high']):<20}{_num(r['df'], 1):>6}"
                     f"{_num(r['p_value']):>7}{_num(r['p_adjusted']):>7}")
    vc = results.variance_components
    primary = vc[vc["outcome"] == p.get("primary_outcome")]
    if not primary.empty:
        v = primary.iloc[0]
        lines.append(f"Primary outcome: ICC {_num(v['icc'], 4)}, cluster autocorrelation "
                     f"{_num(v['cac'], 3)} (mixed model, REML)")
    dropped = results.did_dropped
    if not dropped.empty:
        lines.append(f"Callaway–Sant'Anna: {len(dropped)} ATT(g,t) cell(s) not estimable "
                     "(no not-yet-treated LA), listed in results.did_dropped")
    return lines
