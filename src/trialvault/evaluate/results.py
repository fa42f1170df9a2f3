"""What an evaluation produces, and how it is stored in the vault's `results` schema.

Every table carries the run's `run_id`; `results.runs` holds one row per run with its
provenance (vault audit head, study file hash, package versions, seed). Writing happens in the
caller's transaction when there is one (a vault session), else in a transaction of its own, so a
run is stored whole or not at all. Nothing here leaves the vault: release is `disclose`'s job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import uuid
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from trialvault.study.load import (
    parse_study,
    study_from_json,
    study_hash,
    study_json,
    study_json_sha256,
)
from trialvault.study.model import StudyFile

RESULTS_SCHEMA = "results"
PACKAGES = ("trialvault", "duckdb", "numpy", "pandas", "scipy", "statsmodels", "csdid")

# table → columns (name, DuckDB type), besides run_id. Order = DataFrame column order.
TABLES: dict[str, list[tuple[str, str]]] = {
    "cohort_counts": [("la_code", "INTEGER"), ("period", "INTEGER"), ("period_start", "DATE"),
                      ("exposed", "INTEGER"), ("children", "BIGINT")],
    "outcome_counts": [("outcome", "VARCHAR"), ("exposed", "INTEGER"), ("children", "BIGINT"),
                       ("total", "DOUBLE"), ("mean", "DOUBLE")],
    "estimates": [("outcome", "VARCHAR"), ("kind", "VARCHAR"), ("model", "VARCHAR"),
                  ("measure", "VARCHAR"), ("estimate", "DOUBLE"), ("ci_low", "DOUBLE"),
                  ("ci_high", "DOUBLE"), ("se", "DOUBLE"), ("p_value", "DOUBLE"),
                  ("n", "BIGINT"), ("n_params", "INTEGER"), ("df_resid", "BIGINT"),
                  ("note", "VARCHAR")],
    "few_cluster": [("outcome", "VARCHAR"), ("method", "VARCHAR"), ("measure", "VARCHAR"),
                    ("estimate", "DOUBLE"), ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE"),
                    ("p_value", "DOUBLE"), ("replicates", "INTEGER"), ("note", "VARCHAR")],
    "did_att_gt": [("outcome", "VARCHAR"), ("group_period", "INTEGER"), ("period", "INTEGER"),
                   ("att", "DOUBLE"), ("se", "DOUBLE"), ("ci_low", "DOUBLE"),
                   ("ci_high", "DOUBLE")],
    "did_aggregates": [("outcome", "VARCHAR"), ("type", "VARCHAR"), ("overall_att", "DOUBLE"),
                       ("overall_se", "DOUBLE"), ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE")],
    "did_levels": [("outcome", "VARCHAR"), ("type", "VARCHAR"), ("level", "INTEGER"),
                   ("att", "DOUBLE"), ("se", "DOUBLE"), ("ci_low", "DOUBLE"),
                   ("ci_high", "DOUBLE")],
    # The dynamic rows of did_levels again, named for what they are (for report and disclose).
    "event_study": [("outcome", "VARCHAR"), ("event_time", "INTEGER"), ("att", "DOUBLE"),
                    ("se", "DOUBLE"), ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE")],
    # The plan's hierarchy: one row per outcome with the primary inference, the estimand and
    # (secondary outcomes) the multiplicity-adjusted p-value; see docs/architecture.md.
    "headline": [("outcome", "VARCHAR"), ("role", "VARCHAR"), ("population", "VARCHAR"),
                 ("model", "VARCHAR"), ("method", "VARCHAR"), ("estimand", "VARCHAR"),
                 ("estimate", "DOUBLE"), ("se", "DOUBLE"), ("df", "DOUBLE"),
                 ("ci_low", "DOUBLE"), ("ci_high", "DOUBLE"), ("p_value", "DOUBLE"),
                 ("p_adjusted", "DOUBLE"), ("multiplicity", "VARCHAR"),
                 ("missing_data", "VARCHAR"), ("n_analysed", "BIGINT"),
                 ("n_expected", "BIGINT"), ("n_missing", "BIGINT"), ("note", "VARCHAR")],
    # Every estimator × inference method on the estimand (difference scale), incl. sensitivity.
    "inference": [("outcome", "VARCHAR"), ("population", "VARCHAR"), ("model", "VARCHAR"),
                  ("method", "VARCHAR"), ("estimand", "VARCHAR"), ("estimate", "DOUBLE"),
                  ("se", "DOUBLE"), ("df", "DOUBLE"), ("ci_low", "DOUBLE"),
                  ("ci_high", "DOUBLE"), ("p_value", "DOUBLE"), ("n", "BIGINT"),
                  ("note", "VARCHAR")],
    "variance_components": [("outcome", "VARCHAR"), ("population", "VARCHAR"),
                            ("sigma2_cluster", "DOUBLE"), ("sigma2_cluster_period", "DOUBLE"),
                            ("sigma2_residual", "DOUBLE"), ("icc", "DOUBLE"), ("cac", "DOUBLE"),
                            ("n", "BIGINT"), ("clusters", "INTEGER"), ("cells", "INTEGER")],
    "missing_data": [("outcome", "VARCHAR"), ("exposed", "INTEGER"), ("expected", "BIGINT"),
                     ("observed", "BIGINT"), ("missing", "BIGINT")],
    "did_dropped": [("outcome", "VARCHAR"), ("group_period", "INTEGER"), ("period", "INTEGER"),
                    ("reason", "VARCHAR")],
    "cohort_groups": [("cohort_group", "VARCHAR"), ("exposed", "INTEGER"),
                      ("in_transition", "INTEGER"), ("children", "BIGINT")],
}


def empty(table: str) -> pd.DataFrame:
    return pd.DataFrame(columns=[n for n, _ in TABLES[table]])
# The study file in force when the run was made, so a release applies exactly its rules
# (disclose refuses a request made with any other study file). `study_text` is the file as
# read (TOML), or the model's canonical JSON when the run was given a model, not a file.
RUN_STUDY_DDL = f"""CREATE TABLE IF NOT EXISTS {RESULTS_SCHEMA}.run_study (
    run_id VARCHAR PRIMARY KEY, study_file VARCHAR, study_format VARCHAR NOT NULL,
    study_sha256 VARCHAR NOT NULL, study_model_sha256 VARCHAR NOT NULL,
    study_text VARCHAR NOT NULL)"""
# Provenance key carrying the study's text from `collect_provenance` to `write_results`
# (stored in `run_study`, never inside `runs.provenance`).
STUDY_SOURCE_KEY = "study_source"
RUNS_DDL = f"""CREATE TABLE IF NOT EXISTS {RESULTS_SCHEMA}.runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, study_id VARCHAR NOT NULL,
    seed BIGINT NOT NULL, cohort_size BIGINT NOT NULL, excluded_children BIGINT NOT NULL,
    provenance VARCHAR NOT NULL)"""


@dataclass(frozen=True)
class EvaluationResults:
    """Everything one evaluation run produced (aggregates and estimates only, no child rows)."""

    study_id: str
    seed: int
    cohort_size: int
    excluded_children: int
    """Children removed before the cohort was built (rights: restricted or objecting)."""
    cohort_counts: pd.DataFrame
    """Cohort children per LA × period × exposure."""
    outcome_counts: pd.DataFrame
    """Per outcome and exposure: children with the outcome measured, its total and mean."""
    estimates: pd.DataFrame
    """Hussey & Hughes fits: one row per outcome × model (OR/RR or RD/MD, 95% CI)."""
    few_cluster: pd.DataFrame
    """Randomisation inference and wild cluster bootstrap for the difference measure."""
    did_att_gt: pd.DataFrame
    did_aggregates: pd.DataFrame
    did_levels: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    headline: pd.DataFrame = field(default_factory=lambda: empty("headline"))
    """The plan's primary inference per outcome, with the estimand and adjusted p-values."""
    inference: pd.DataFrame = field(default_factory=lambda: empty("inference"))
    variance_components: pd.DataFrame = field(
        default_factory=lambda: empty("variance_components"))
    missing_data: pd.DataFrame = field(default_factory=lambda: empty("missing_data"))
    did_dropped: pd.DataFrame = field(default_factory=lambda: empty("did_dropped"))
    cohort_groups: pd.DataFrame = field(default_factory=lambda: empty("cohort_groups"))
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exposure_counts(self) -> pd.DataFrame:
        """Cohort children per LA and exposure status."""
        return (self.cohort_counts.groupby(["la_code", "exposed"], as_index=False)["children"]
                .sum())

    @property
    def event_study(self) -> pd.DataFrame:
        """Callaway–Sant'Anna dynamic aggregation by event time, per outcome."""
        dyn = self.did_levels[self.did_levels["type"] == "dynamic"]
        return dyn.drop(columns="type").rename(columns={"level": "event_time"}).reset_index(
            drop=True)

    def primary(self, measure_kind: str = "difference") -> pd.Series:
        """The primary outcome's estimate row on the difference or ratio scale."""
        rows = self.estimates[self.estimates["outcome"] == self.provenance["primary_outcome"]]
        is_ratio = rows["measure"].str.endswith("ratio")
        chosen = rows[is_ratio] if measure_kind == "ratio" else rows[~is_ratio]
        return chosen.iloc[0]


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def collect_provenance(con: duckdb.DuckDBPyConnection, study: StudyFile, *, seed: int,
                       study_path: Path | None = None) -> dict[str, Any]:
    """Audit head (when `con` is a vault), study hash, package versions, seed."""
    from trialvault.vault.audit import head

    is_vault = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'audit' AND "
        "table_name = 'entries'").fetchone()
    audit: dict[str, Any] = {"audit_head_seq": None, "audit_head_hash": None}
    if is_vault and is_vault[0]:
        seq, digest = head(con)
        audit = {"audit_head_seq": seq, "audit_head_hash": digest}
    study_id: dict[str, Any]
    if study_path is not None:
        study_id = {"study_file": study_path.name, "study_sha256": study_hash(study_path),
                    STUDY_SOURCE_KEY: {"format": "toml",
                                       "text": study_path.read_bytes().decode("utf-8")}}
    else:
        study_id = {"study_file": None, "study_model_sha256": study_json_sha256(study),
                    STUDY_SOURCE_KEY: {"format": "json", "text": study_json(study)}}
    a = study.analysis
    return {"study_id": study.study.id, **study_id, **audit, "seed": seed,
            "packages": package_versions(),
            "primary_outcome": a.primary_outcome.id, "estimand": a.estimand,
            "primary_model": a.primary_model, "primary_inference": a.primary_inference,
            "randomisation_statistic": a.randomisation_statistic,
            "randomisation_shift": a.randomisation_shift,
            "multiplicity": a.multiplicity, "missing_data": a.missing_data,
            "transition_months": a.transition_months}


def write_results(con: duckdb.DuckDBPyConnection, results: EvaluationResults,
                  provenance: dict[str, Any] | None = None, *,
                  own_transaction: bool = False) -> str:
    """Store `results` under a new run_id in schema `results`; return the run_id.

    `provenance` (e.g. the study file hash and the vault audit head) is merged over
    `results.provenance`. A vault session already runs in one transaction (the default here);
    on a connection in auto-commit mode pass `own_transaction=True` so that a run is stored
    whole or not at all.
    """
    run_id = str(uuid.uuid4())
    prov = {**results.provenance, **(provenance or {})}
    source = prov.pop(STUDY_SOURCE_KEY, None)
    own_tx = own_transaction
    if own_tx:
        con.execute("BEGIN TRANSACTION")
    try:
        # In a vault `results` is a catalog of its own (outputs domain); a plain connection
        # (tests, benchmarks) gets a schema of that name instead.
        if not con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?",
                           [RESULTS_SCHEMA]).fetchone()[0]:  # type: ignore[index]
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {RESULTS_SCHEMA}")
        con.execute(RUNS_DDL)
        con.execute(f"INSERT INTO {RESULTS_SCHEMA}.runs VALUES (?, ?, ?, ?, ?, ?, ?)", [
            run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None), results.study_id,
            results.seed, results.cohort_size, results.excluded_children,
            json.dumps(prov, sort_keys=True, default=str)])
        if isinstance(source, dict):
            _write_run_study(con, run_id, prov, source)
        for table, columns in TABLES.items():
            cols = ", ".join(f"{n} {k}" for n, k in columns)
            con.execute(f"CREATE TABLE IF NOT EXISTS {RESULTS_SCHEMA}.{table} "
                        f"(run_id VARCHAR NOT NULL, {cols})")
            frame: pd.DataFrame = getattr(results, table)
            names = [n for n, _ in columns]
            rows = [[run_id, *(_cell(v) for v in rec)]
                    for rec in frame[names].itertuples(index=False, name=None)]
            if rows:
                marks = ", ".join("?" * (len(names) + 1))
                con.executemany(f"INSERT INTO {RESULTS_SCHEMA}.{table} (run_id, "
                                f"{', '.join(names)}) VALUES ({marks})", rows)
        if own_tx:
            con.execute("COMMIT")
    except BaseException:
        if own_tx:
            con.execute("ROLLBACK")
        raise
    return run_id


def _write_run_study(con: duckdb.DuckDBPyConnection, run_id: str, prov: dict[str, Any],
                     source: dict[str, str]) -> None:
    import tomllib

    text = str(source["text"])
    model = (parse_study(tomllib.loads(text)) if source["format"] == "toml"
             else study_from_json(text))
    con.execute(RUN_STUDY_DDL)
    con.execute(f"INSERT INTO {RESULTS_SCHEMA}.run_study VALUES (?, ?, ?, ?, ?, ?)", [
        run_id, prov.get("study_file"), source["format"],
        hashlib.sha256(text.encode("utf-8")).hexdigest(), study_json_sha256(model), text])


def _cell(value: Any) -> Any:
    """Plain Python values for DuckDB parameters (NaN → NULL)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    return value
