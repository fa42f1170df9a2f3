"""Build a `ResultsInput` inside an open vault session from one evaluation run.

The estimates come from the run's `results.*` tables. The LA × period tables the report needs
(cohort, outcome events, magnitude evidence, event-study group sizes) are not stored by the
evaluation, so they are recomputed here from the evaluation's own cohort and outcome SQL
(`trialvault.evaluate.cohort.build_analysis_table`, which applies the rights exclusions) and
reduced to aggregates at once; the per-child frame never leaves this function except as the
(la_code, child_id) list the release must record in the vault (`releases.release_children`).
A run whose cohort no longer matches the data (an erasure or a new extract since) is refused:
its estimates and the recomputed tables would describe different children.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.errors import PolicyRefusal
from trialvault.study.model import StudyFile

_LABEL = {1: "{y}-{m:02d}", 3: "{y} Q{q}", 6: "{y} H{h}", 12: "{y}"}
_MONTHS = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
# Provenance fields a release may carry (no counts, no paths beyond the study file's name).
_SAFE_PROVENANCE = ("study_id", "study_file", "study_sha256", "study_model_sha256",
                    "audit_head_seq", "audit_head_hash", "seed", "primary_outcome")
EVENT_TABLES = ("referrals", "assessments", "s47", "cin_plans", "cp_plans", "cla_episodes")


@dataclass(frozen=True)
class VaultResults:
    """What a release request reads from the vault."""

    run_id: str
    run_created_at: str
    results: ResultsInput
    children: list[tuple[int, str]]  # who the release counts: stays in the vault


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


def latest_run(con: duckdb.DuckDBPyConnection, study: StudyFile,
               run_id: str | None = None) -> tuple[str, str, int, dict[str, Any]]:
    """(run_id, created_at, cohort_size, provenance) of the chosen or latest run."""
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'runs' AND "
                         "(database_name = 'results' OR schema_name = 'results')").fetchone()
    if not exists or not exists[0]:
        raise PolicyRefusal("the vault holds no evaluation results: run `trialvault evaluate`")
    sql = ("SELECT run_id, CAST(created_at AS VARCHAR), cohort_size, provenance FROM results.runs "
           "WHERE study_id = ?")
    params: list[Any] = [study.study.id]
    if run_id:
        sql += " AND run_id = ?"
        params.append(run_id)
    row = con.execute(sql + " ORDER BY created_at DESC LIMIT 1", params).fetchone()
    if row is None:
        raise PolicyRefusal(f"no evaluation run {run_id or ''} for study '{study.study.id}' "
                            "in the vault".replace("  ", " "))
    return str(row[0]), str(row[1]), int(row[2]), json.loads(row[3])


def _evidence(values: pd.Series, top_n: int) -> pd.Series:
    """Magnitude evidence of one cell (aggregates only)."""
    v = values.dropna().to_numpy(dtype=float)
    top = np.sort(v)[::-1]
    return pd.Series({
        "n": len(v), "total": float(v.sum()), "top1": float(top[0]) if len(v) else 0.0,
        "top2": float(top[1]) if len(v) > 1 else 0.0, "top_n": float(top[:top_n].sum()),
        "minimum": float(v.min()) if len(v) else np.nan,
        "maximum": float(v.max()) if len(v) else np.nan, "negatives": int((v < 0).sum())})


def _flow(con: duckdb.DuckDBPyConnection, cohort_size: int) -> pd.DataFrame:
    """Children with any social-care event → excluded by rights → not eligible → cohort."""
    from trialvault.rights import excluded_children

    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'harmonised' "
        "AND table_catalog = current_database()").fetchall()}
    tables = [t for t in EVENT_TABLES if t in present]
    union = " UNION ".join(f"SELECT la_code, child_id FROM harmonised.{t}" for t in tables)
    excluded = excluded_children(con)
    con.register("tv_release_excluded", excluded)
    try:
        row = con.execute(
            f"WITH everyone AS ({union}) SELECT count(*), count(x.child_id) FROM everyone e "
            "LEFT JOIN tv_release_excluded x USING (la_code, child_id)").fetchone()
    finally:
        con.unregister("tv_release_excluded")
    start, removed_rights = (int(row[0]), int(row[1])) if row else (0, 0)
    not_eligible = start - removed_rights - cohort_size
    return pd.DataFrame([
        ("start", "Children with a social-care event in the data", start),
        ("rights", "Excluded: restricted or objecting (data-subject rights)", removed_rights),
        ("eligibility", "Not eligible: no qualifying event at an eligible age with full "
                        "follow-up", not_eligible),
        ("cohort", "Analysed cohort", cohort_size),
    ], columns=["step", "label", "n"])


def _estimates(con: duckdb.DuckDBPyConnection, run_id: str, cohort_size: int) -> pd.DataFrame:
    est = con.execute("SELECT outcome, model, measure, estimate, ci_low, ci_high, p_value, "
                      "df_resid FROM results.estimates WHERE run_id = ?", [run_id]).df()
    few = con.execute("SELECT outcome, method, measure, estimate, ci_low, ci_high, p_value "
                      "FROM results.few_cluster WHERE run_id = ?", [run_id]).df()
    did = con.execute("SELECT outcome, overall_att, ci_low, ci_high FROM results.did_aggregates "
                      "WHERE run_id = ? AND type = 'simple'", [run_id]).df()
    cells = con.execute("SELECT outcome, count(*) AS cells FROM results.did_att_gt WHERE "
                        "run_id = ? GROUP BY outcome", [run_id]).df().set_index("outcome")
    rows: list[tuple[Any, ...]] = []
    for outcome in est["outcome"].drop_duplicates():
        part = est[est["outcome"] == outcome]
        mine = few[few["outcome"] == outcome].set_index("method")
        ri = mine["p_value"].get("randomisation", np.nan)
        for _, r in part.iterrows():
            is_diff = not str(r["measure"]).endswith("ratio")
            rows.append((outcome, f"Hussey & Hughes {r['model']} ({r['measure']})",
                         r["estimate"], r["ci_low"], r["ci_high"], r["p_value"],
                         ri if is_diff else np.nan, r["df_resid"]))
        dof = part["df_resid"].max()
        for method, label in (("randomisation", "Randomisation inference"),
                              ("wild_cluster_bootstrap", "Wild cluster bootstrap (Webb)")):
            if method in mine.index:
                m = mine.loc[method]
                rows.append((outcome, f"{label} ({m['measure']})", m["estimate"], m["ci_low"],
                             m["ci_high"], m["p_value"], np.nan, dof))
        d = did[did["outcome"] == outcome]
        if not d.empty:
            # One parameter per ATT(g,t) cell: residual dof = children - cells.
            n_cells = int(cells["cells"].get(outcome, 0))
            rows.append((outcome, "Callaway–Sant'Anna (simple ATT)", d["overall_att"].iloc[0],
                         d["ci_low"].iloc[0], d["ci_high"].iloc[0], np.nan, np.nan,
                         float(cohort_size - n_cells)))
    return pd.DataFrame(rows, columns=["outcome", "analysis", "estimate", "ci_low", "ci_high",
                                       "p_value", "ri_p_value", "dof"])


def read_results(con: duckdb.DuckDBPyConnection, study: StudyFile,
                 run_id: str | None = None) -> VaultResults:
    """The aggregates of one evaluation run (default: the latest) as a `ResultsInput`."""
    from trialvault.evaluate.cohort import build_analysis_table

    run_id, created_at, cohort_size, provenance = latest_run(con, study, run_id)
    analysis = build_analysis_table(con, study).analysis
    stored = con.execute("SELECT la_code, period, sum(children) AS n FROM results.cohort_counts "
                         "WHERE run_id = ? GROUP BY ALL ORDER BY ALL", [run_id]).df()
    now = (analysis.groupby(["la_code", "period"]).size().rename("n").reset_index()
           .sort_values(["la_code", "period"]).reset_index(drop=True))
    if len(analysis) != cohort_size or not np.array_equal(
            stored.to_numpy(dtype=np.int64), now.to_numpy(dtype=np.int64)):
        raise PolicyRefusal(f"evaluation run {run_id} no longer matches the data in the vault "
                            "(children were added, erased or newly excluded since): run "
                            "`trialvault evaluate` again, then request the release")
    months = table_months(study)
    starts = sorted(set(pd.to_datetime(analysis["index_date"]).dt.date))
    periods = sorted({period_of(d, months) for d in starts}, key=lambda p: p.start)
    label_of = {d: period_of(d, months).label for d in starts}
    frame = analysis.assign(tperiod=pd.to_datetime(analysis["index_date"]).dt.date.map(label_of))
    keys = ["la_code", "tperiod"]
    cohort = frame.groupby(keys).size().rename("n").reset_index().rename(
        columns={"tperiod": "period"})
    binary, magnitude = [], []
    top_n = study.disclosure.dominance_n
    for outcome in study.analysis.outcomes:
        col = frame[outcome.id]
        if outcome.kind == "binary":
            agg = frame.assign(m=col.notna(), e=col.fillna(0) > 0).groupby(keys)[["m", "e"]].sum()
            binary.append(agg.rename(columns={"m": "n", "e": "events"}).reset_index()
                          .assign(outcome=outcome.id))
        else:
            agg = frame.groupby(keys)[outcome.id].apply(_evidence, top_n=top_n).unstack()
            magnitude.append(agg.reset_index().assign(outcome=outcome.id))
    event = con.execute("SELECT outcome, event_time, att AS estimate, ci_low, ci_high FROM "
                        "results.event_study WHERE run_id = ? ORDER BY outcome, event_time",
                        [run_id]).df()
    rel = (analysis["period"] - analysis["step_period"]).value_counts()
    event["n"] = event["event_time"].map(rel).fillna(0).astype(int)
    binary_df = (pd.concat(binary) if binary else pd.DataFrame(
        columns=["outcome", "la_code", "tperiod", "n", "events"])).rename(
        columns={"tperiod": "period"})
    magnitude_df = (pd.concat(magnitude) if magnitude else pd.DataFrame(
        columns=["outcome", "la_code", "tperiod"])).rename(columns={"tperiod": "period"})
    results = ResultsInput(
        la_codes=list(study.la_codes), periods=periods, cohort=cohort,
        binary=binary_df.reset_index(drop=True),
        magnitude=magnitude_df.reindex(columns=[
            "outcome", "la_code", "period", "n", "total", "top1", "top2", "top_n", "minimum",
            "maximum", "negatives"]).reset_index(drop=True),
        flow=_flow(con, cohort_size), estimates=_estimates(con, run_id, cohort_size),
        event_study=event,
        provenance={"run_id": run_id, "run_created_at": created_at,
                    **{k: str(provenance[k]) for k in _SAFE_PROVENANCE if k in provenance}})
    children = [(int(la), str(c)) for la, c in zip(analysis["la_code"], analysis["child_id"],
                                                    strict=True)]
    return VaultResults(run_id, created_at, results, children)
