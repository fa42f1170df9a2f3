"""Build a `ResultsInput` inside an open vault session from one evaluation run.

The **rules come from the vault**: the study file in force when the evaluation ran is stored
with the run (`results.run_study`); a release applies exactly that study, and a request that
names any other study file is refused. The estimates come from the run's `results.*` tables.
The LA × period tables are recomputed from the evaluation's own cohort and outcome SQL
(`trialvault.evaluate.cohort.build_analysis_table`, which applies the rights exclusions) and
reduced to aggregates at once (`aggregate`); the per-child frame never leaves this module
except as the (la_code, child_id) list the release records in the vault. A run whose cohort no
longer matches the data (an erasure or a new extract since) is refused. The data's origin
(synthetic, real, unknown) is read from the package manifests.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from trialvault.disclose.aggregate import aggregate_cohort
from trialvault.disclose.inputs import (
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    VARIANCE_COLUMNS,
    ResultsInput,
)
from trialvault.errors import PolicyRefusal
from trialvault.study.load import parse_study, study_from_json, study_json, study_json_sha256
from trialvault.study.model import StudyFile

# Provenance fields a release may carry (no counts, no paths beyond the study file's name).
_SAFE_PROVENANCE = ("study_id", "study_file", "study_sha256", "study_model_sha256",
                    "audit_head_seq", "audit_head_hash", "seed", "primary_outcome", "estimand",
                    "primary_model", "primary_inference", "multiplicity", "missing_data")
EVENT_TABLES = ("referrals", "assessments", "s47", "cin_plans", "cp_plans", "cla_episodes")


@dataclass(frozen=True)
class RunStudy:
    """The study file stored with an evaluation run."""

    study: StudyFile
    text: str
    format: str
    sha256: str
    model_sha256: str
    file_name: str | None


@dataclass(frozen=True)
class VaultResults:
    """What a release request reads from the vault."""

    run_id: str
    run_created_at: str
    study: RunStudy
    results: ResultsInput
    children: list[tuple[int, str]]  # who the release counts: stays in the vault


def _exists(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND "
                      "(database_name = ? OR schema_name = ?)", [table, catalog, catalog]
                      ).fetchone()
    return bool(row and row[0])


def latest_run(con: duckdb.DuckDBPyConnection, study_id: str | None = None,
               run_id: str | None = None) -> tuple[str, str, int, dict[str, Any], str]:
    """(run_id, created_at, cohort_size, provenance, study_id) of the chosen or latest run."""
    if not _exists(con, "results", "runs"):
        raise PolicyRefusal("the vault holds no evaluation results: run `trialvault evaluate`")
    sql = ("SELECT run_id, CAST(created_at AS VARCHAR), cohort_size, provenance, study_id "
           "FROM results.runs WHERE TRUE")
    params: list[Any] = []
    if study_id:
        sql += " AND study_id = ?"
        params.append(study_id)
    if run_id:
        sql += " AND run_id = ?"
        params.append(run_id)
    row = con.execute(sql + " ORDER BY created_at DESC LIMIT 1", params).fetchone()
    if row is None:
        raise PolicyRefusal(f"no evaluation run {run_id or ''} "
                            f"{'for study ' + repr(study_id) + ' ' if study_id else ''}"
                            "in the vault".replace("  ", " "))
    return str(row[0]), str(row[1]), int(row[2]), json.loads(row[3]), str(row[4])


def run_study(con: duckdb.DuckDBPyConnection, run_id: str, provenance: dict[str, Any],
              given: StudyFile | None = None, given_sha256: str | None = None) -> RunStudy:
    """The study in force for `run_id`; a `given` study file that differs is refused."""
    row = (con.execute("SELECT study_text, study_format, study_sha256, study_model_sha256, "
                       "study_file FROM results.run_study WHERE run_id = ?", [run_id]).fetchone()
           if _exists(con, "results", "run_study") else None)
    if row is None:
        # A run made before the study was stored with it: accept only a study file whose hash
        # the run's provenance names, so the rules are still the run's.
        if given is None:
            raise PolicyRefusal(f"evaluation run {run_id} does not store its study file: run "
                                "`trialvault evaluate` again (or name the study file it used)")
        ok = (given_sha256 is not None and given_sha256 == provenance.get("study_sha256")) or \
            study_json_sha256(given) == provenance.get("study_model_sha256")
        if not ok:
            raise PolicyRefusal(f"the study file given is not the one evaluation run {run_id} "
                                "used: a release applies the rules in force for its run")
        text = study_json(given)
        return RunStudy(given, text, "json", hashlib.sha256(text.encode()).hexdigest(),
                        study_json_sha256(given), None)
    text, fmt, sha, name = str(row[0]), str(row[1]), str(row[2]), row[4]
    if hashlib.sha256(text.encode("utf-8")).hexdigest() != sha:
        raise PolicyRefusal(f"the study file stored with run {run_id} does not match its hash")
    study = (parse_study(tomllib.loads(text)) if fmt == "toml"
             else study_from_json(text))
    if given is not None and study_json_sha256(given) != study_json_sha256(study) and given_sha256 != sha:
        raise PolicyRefusal(f"the study file given differs from the one in force when "
                            f"evaluation run {run_id} was made (SHA-256 {sha[:12]}…): a "
                            "release applies the run's rules; run `trialvault evaluate` with "
                            "the new study file first")
    return RunStudy(study, text, fmt, sha, study_json_sha256(study), None if name is None else str(name))


def data_origin(con: duckdb.DuckDBPyConnection) -> str:
    """synthetic when any current package says so, real only when every one does, else
    unknown (a manifest without `origin`, or no package at all)."""
    if not _exists(con, "meta", "packages"):
        return "unknown"
    rows = con.execute("SELECT la_code, manifest FROM meta.packages ORDER BY ingest_batch, "
                       "ingested_at").fetchall()
    current: dict[int, str] = {}
    for la, manifest in rows:
        origin = str(json.loads(manifest).get("origin", "unknown")).lower()
        current[int(la)] = origin if origin in ("synthetic", "real") else "unknown"
    origins = set(current.values())
    if "synthetic" in origins:
        return "synthetic"
    return "real" if origins == {"real"} else "unknown"


def _removed(con: duckdb.DuckDBPyConnection, cohort_size: int) -> list[tuple[str, str, int]]:
    """Children with any social-care event → excluded by rights (by kind) → not eligible."""
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'harmonised' "
        "AND table_catalog = current_database()").fetchall()}
    tables = [t for t in EVENT_TABLES if t in present]
    union = " UNION ".join(f"SELECT la_code, child_id FROM harmonised.{t}" for t in tables)
    restricted = objecting = 0
    start = 0
    if tables:
        flags = ("SELECT la_code, child_id, bool_or(kind = 'restriction') AS restricted FROM "
                 "meta.rights_flags WHERE status = 'active' GROUP BY ALL"
                 if _exists(con, "meta", "rights_flags") else
                 "SELECT NULL::INTEGER AS la_code, NULL::VARCHAR AS child_id, "
                 "NULL::BOOLEAN AS restricted WHERE FALSE")
        row = con.execute(
            f"WITH everyone AS ({union}), flags AS ({flags}) SELECT count(*), "
            "count(*) FILTER (WHERE f.restricted), count(*) FILTER (WHERE NOT f.restricted) "
            "FROM everyone e LEFT JOIN flags f USING (la_code, child_id)").fetchone()
        if row:
            start, restricted, objecting = int(row[0]), int(row[1]), int(row[2])
    return [
        ("rights_restriction", "Excluded: processing restricted (data-subject right)",
         restricted),
        ("rights_objection", "Excluded: objected to processing (data-subject right)",
         objecting),
        ("not_eligible", "Not eligible: no qualifying event at an eligible age with full "
                         "follow-up", start - restricted - objecting - cohort_size),
    ]


def _params(model: str, support: pd.Series, study: StudyFile) -> float:
    """Parameters a model estimates at the LA × period level."""
    clusters, periods, k = (int(support["clusters"]), int(support["periods"]),
                            int(support["covariates"]))
    if model == "callaway_santanna":
        return float(clusters + periods)
    base = clusters + periods - 1 + k
    if model == "exposure_time":
        return float(base + study.analysis.exposure_time_max + 1)
    return float(base + 1)


def _estimates(con: duckdb.DuckDBPyConnection, run_id: str, study: StudyFile,
               support: pd.DataFrame) -> pd.DataFrame:
    primary = study.analysis.primary_outcome.id
    sup = support.set_index(["outcome", "population"])
    head = (con.execute("SELECT * FROM results.headline WHERE run_id = ?", [run_id]).df()
            if _exists(con, "results", "headline") else pd.DataFrame())
    inf = (con.execute("SELECT * FROM results.inference WHERE run_id = ?", [run_id]).df()
           if _exists(con, "results", "inference") else pd.DataFrame())
    rows: list[dict[str, Any]] = []
    chosen = {(str(h["outcome"]), str(h["population"]), str(h["model"]), str(h["method"])):
              h for _, h in head.iterrows()}
    for _, r in inf.iterrows():
        key = (str(r["outcome"]), str(r["population"]), str(r["model"]), str(r["method"]))
        h = chosen.get(key)
        rows.append({**{c: r.get(c) for c in ("outcome", "population", "model", "method",
                                              "estimate", "se", "df", "ci_low", "ci_high",
                                              "p_value", "n", "note")},
                     "measure": "difference", "primary": h is not None,
                     "p_adjusted": h["p_adjusted"] if h is not None else np.nan,
                     "multiplicity": h["multiplicity"] if h is not None else ""})
    est = con.execute("SELECT * FROM results.estimates WHERE run_id = ?", [run_id]).df()
    for _, r in est.iterrows():
        ratio = str(r["measure"]).endswith("ratio")
        if not ratio and not inf.empty:
            continue  # the difference scale is in `inference`
        rows.append({"outcome": r["outcome"], "population": "main",
                     "model": f"immediate_{r['model']}", "method": "model_hc1",
                     "measure": r["measure"], "estimate": r["estimate"], "se": r["se"],
                     "df": np.nan, "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "p_value": r["p_value"], "n": r["n"], "note": r["note"],
                     "primary": False, "p_adjusted": np.nan, "multiplicity": ""})
    did = con.execute("SELECT outcome, overall_att, overall_se, ci_low, ci_high FROM "
                      "results.did_aggregates WHERE run_id = ? AND type = 'simple'",
                      [run_id]).df()
    for _, r in did.iterrows():
        rows.append({"outcome": r["outcome"], "population": "main",
                     "model": "callaway_santanna", "method": "clustered_by_la",
                     "measure": "difference", "estimate": r["overall_att"],
                     "se": r["overall_se"], "df": np.nan, "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "p_value": np.nan, "n": np.nan,
                     "note": "simple aggregation of ATT(g,t)", "primary": False,
                     "p_adjusted": np.nan, "multiplicity": ""})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=ESTIMATE_COLUMNS)
    frame["role"] = np.where(frame["outcome"] == primary, "primary", "secondary")
    for col in ("clusters", "cells", "params"):
        frame[col] = np.nan
    for i, r in frame.iterrows():
        where = (str(r["outcome"]), str(r["population"]))
        if where not in sup.index:
            continue
        s = sup.loc[where]
        frame.loc[i, ["clusters", "cells", "params"]] = [
            s["clusters"], s["cells"], _params(str(r["model"]), s, study)]
    return frame.reindex(columns=ESTIMATE_COLUMNS)


def _event_support(con: duckdb.DuckDBPyConnection, run_id: str, analysis: pd.DataFrame,
                   study: StudyFile) -> pd.DataFrame:
    """Treated LAs and their children behind each event-study point: a point at event time e
    averages ATT(g, g + e) over the groups g estimated there, so its LAs are those groups'
    (with few LAs left at long exposure times a point may rest on one LA)."""
    from trialvault.disclose.aggregate import main_mask

    att = con.execute("SELECT outcome, group_period, period FROM results.did_att_gt WHERE "
                      "run_id = ? AND att IS NOT NULL", [run_id]).df()
    main = analysis[main_mask(analysis, study)]
    rel = main["period"] - main["step_period"]
    rows = []
    for (outcome, e), part in att.assign(e=att["period"] - att["group_period"]).groupby(
            ["outcome", "e"]):
        groups = set(part["group_period"].astype(int))
        mine = main[main["step_period"].isin(groups) & (rel == int(e))
                    & main[str(outcome)].notna()]
        las = main.loc[main["step_period"].isin(groups), "la_code"].nunique()
        rows.append({"outcome": str(outcome), "event_time": int(e), "n": len(mine),
                     "clusters": int(las)})
    return pd.DataFrame(rows, columns=["outcome", "event_time", "n", "clusters"])


def read_results(con: duckdb.DuckDBPyConnection, *, run_id: str | None = None,
                 study: StudyFile | None = None, study_sha256: str | None = None
                 ) -> VaultResults:
    """The aggregates of one evaluation run (default: the latest) with its own study."""
    from trialvault.evaluate.cohort import build_analysis_table

    run_id, created_at, cohort_size, provenance, run_study_id = latest_run(
        con, study.study.id if study is not None else None, run_id)
    stored = run_study(con, run_id, provenance, study, study_sha256)
    rules_study = stored.study
    analysis = build_analysis_table(con, rules_study).analysis
    counts = con.execute("SELECT la_code, period, sum(children) AS n FROM results.cohort_counts "
                         "WHERE run_id = ? GROUP BY ALL ORDER BY ALL", [run_id]).df()
    now = (analysis.groupby(["la_code", "period"]).size().rename("n").reset_index()
           .sort_values(["la_code", "period"]).reset_index(drop=True))
    if len(analysis) != cohort_size or not np.array_equal(
            counts.to_numpy(dtype=np.int64), now.to_numpy(dtype=np.int64)):
        raise PolicyRefusal(f"evaluation run {run_id} no longer matches the data in the vault "
                            "(children were added, erased or newly excluded since): run "
                            "`trialvault evaluate` again, then request the release")
    agg = aggregate_cohort(analysis, rules_study, removed=_removed(con, cohort_size))
    event = con.execute("SELECT outcome, event_time, att AS estimate, ci_low, ci_high FROM "
                        "results.event_study WHERE run_id = ? ORDER BY outcome, event_time",
                        [run_id]).df()
    event = event.merge(_event_support(con, run_id, analysis, rules_study),
                        on=["outcome", "event_time"], how="left")
    event[["n", "clusters"]] = event[["n", "clusters"]].fillna(0).astype(int)
    variance = (con.execute("SELECT outcome, icc, cac, clusters, n FROM "
                            "results.variance_components WHERE run_id = ? AND population = "
                            "'main'", [run_id]).df()
                if _exists(con, "results", "variance_components")
                else pd.DataFrame(columns=VARIANCE_COLUMNS))
    results = ResultsInput(
        la_codes=list(rules_study.la_codes), periods=agg.periods, strata=agg.strata,
        outcomes=agg.outcomes, magnitude=agg.magnitude, baseline=agg.baseline, flow=agg.flow,
        estimates=_estimates(con, run_id, rules_study, agg.support),
        event_study=event.reindex(columns=EVENT_STUDY_COLUMNS), variance=variance,
        provenance={"run_id": run_id, "run_created_at": created_at,
                    "study_sha256": stored.sha256, "study_model_sha256": stored.model_sha256,
                    **{k: str(provenance[k]) for k in _SAFE_PROVENANCE
                       if k in provenance and k not in ("study_sha256", "study_model_sha256")}},
        data_origin=data_origin(con))
    del run_study_id
    children = [(int(la), str(c)) for la, c in zip(analysis["la_code"], analysis["child_id"],
                                                    strict=True)]
    return VaultResults(run_id, created_at, stored, results, children)
