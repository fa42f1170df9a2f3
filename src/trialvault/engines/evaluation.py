"""Cohort and outcomes (`evaluate/sql/cohort.sql`, `outcomes.sql`) through any `Engine`.

The same two SQL files `evaluate.cohort.build_analysis_table` runs on the vault's DuckDB
connection, with the same inputs built from the study file (`tv_params`, `tv_steps`, ...), run
here on an engine whose `harmonised.<table>` tables were loaded from the vault
(`load_harmonised_from_vault`) or read from an encrypted Parquet export (`vault.export`).
The excluded children (rights flags) are an input table, `tv_excluded`, anti-joined before the
cohort is built — exactly as on the vault.

The result is the evaluation stage's own `CohortBuild`, so the designs run unchanged after it.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

from trialvault.engines.base import Engine, EngineError
from trialvault.errors import StudyFileError, TrialvaultError
from trialvault.evaluate import cohort as definitions
from trialvault.study.model import StudyFile
from trialvault.vault.schema import KEY_COLUMNS, TABLE_COLUMNS

HARMONISED = definitions.HARMONISED_SCHEMA
_ARROW = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
          "BOOLEAN": pa.bool_()}
INPUT_TABLES = ("tv_excluded", "tv_params", "tv_qualifying_events", "tv_steps",
                "tv_code_groups")


def excluded_table(keys: Iterable[tuple[int, str]]) -> pa.Table:
    """(la_code, child_id) of excluded children as the `tv_excluded` input."""
    pairs = sorted(set(keys))
    return pa.table({"la_code": pa.array([p[0] for p in pairs], pa.int32()),
                     "child_id": pa.array([p[1] for p in pairs], pa.string())})


def study_inputs(study: StudyFile, excluded: pa.Table) -> dict[str, pa.Table]:
    """The input tables cohort.sql/outcomes.sql read, from the study file (see
    `evaluate.cohort` for their meaning; the values are built the same way)."""
    c = study.cohort
    params = {name: pa.array([value], pa.date32() if definitions.PARAM_TYPES.get(name) == "DATE"
                             else pa.int32())
              for name, value in definitions.study_params(study).items()}
    groups = definitions.code_group_rows()
    return {
        "tv_excluded": excluded,
        "tv_params": pa.table(params),
        "tv_qualifying_events": pa.table({"event_type": pa.array(list(c.qualifying_events),
                                                                 pa.string())}),
        "tv_steps": pa.table({"la_code": pa.array([s.la for s in study.design.rollout],
                                                  pa.int32()),
                              "step_date": pa.array([s.step_date for s in study.design.rollout],
                                                    pa.date32())}),
        "tv_code_groups": pa.table({"group_name": pa.array([g for g, _ in groups], pa.string()),
                                    "code": pa.array([k for _, k in groups], pa.string())}),
    }


def empty_harmonised(table: str) -> pa.Table:
    """A harmonised table with the contract's columns and no rows."""
    cols = [("la_code", "INTEGER"), ("child_id", "VARCHAR"), *TABLE_COLUMNS[table]]
    return pa.schema([(n, _ARROW[k]) for n, k in cols]).empty_table()


def load_harmonised_from_vault(engine: Engine, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Copy every `harmonised.<table>` of an open vault connection into `engine` (contract
    columns only: keys and data, no lineage). Returns rows per table. The rows pass through
    this process's memory only (Arrow), never a file."""
    counts = {}
    for table, columns in TABLE_COLUMNS.items():
        names = ", ".join([*KEY_COLUMNS, *(n for n, _ in columns)])
        arrow = con.execute(f"SELECT {names} FROM {HARMONISED}.{table}").fetch_arrow_table()
        engine.load_table(f"{HARMONISED}.{table}", arrow)
        counts[table] = arrow.num_rows
    return counts


def build_analysis_on_engine(engine: Engine, study: StudyFile, *,
                             excluded: pa.Table) -> definitions.CohortBuild:
    """cohort.sql + outcomes.sql on `engine`'s `harmonised.*` tables for `study`.

    `excluded`: (la_code, child_id) to leave out (`excluded_table(...)`; from the vault's
    `rights.excluded_children(con)` or an export's `rights_flags`).
    """
    unknown = [o.id for o in study.analysis.outcomes if o.id not in definitions.OUTCOME_IDS]
    if unknown:
        raise StudyFileError(f"analysis.outcomes: {unknown} have no definition "
                             f"(known: {list(definitions.OUTCOME_IDS)})")
    engine.load_tables(study_inputs(study, excluded))
    created = [*INPUT_TABLES]
    try:
        missing = _source_views(engine, created)
        _check_clusters(engine, study)
        engine.materialise("tv_cohort", definitions.sql_text("cohort", study))
        created.append("tv_cohort")
        cohort = engine.query("SELECT * FROM tv_cohort").to_pandas()
        outcomes = engine.query(definitions.sql_text("outcomes", study)).to_pandas()
    except EngineError as exc:
        raise TrialvaultError(f"cohort/outcome SQL failed on {engine.name}: {exc}") from None
    finally:
        engine.drop_tables(reversed(created))
    analysis = cohort.merge(outcomes, on=list(KEY_COLUMNS), how="left", validate="one_to_one")
    analysis = definitions._finish(analysis, study)
    return definitions.CohortBuild(analysis=analysis, excluded_children=excluded.num_rows,
                                   missing_tables=tuple(missing))


def _source_views(engine: Engine, created: list[str]) -> list[str]:
    missing = []
    for table, columns in TABLE_COLUMNS.items():
        view = f"tv_src_{table}"
        names = [*KEY_COLUMNS, *(n for n, _ in columns)]
        if not engine.has_table(f"{HARMONISED}.{table}"):
            missing.append(table)
            engine.load_table(view, empty_harmonised(table))
            created.append(view)
            continue
        present = set(engine.columns(f"{HARMONISED}.{table}"))
        lacking = [n for n in names if n not in present]
        if lacking:
            raise TrialvaultError(f"{HARMONISED}.{table} lacks column(s) {lacking}")
        cols = ", ".join(f"t.{n}" for n in names)
        engine.create_view(view, (
            f"SELECT {cols} FROM {HARMONISED}.{table} AS t WHERE NOT EXISTS (SELECT 1 FROM "
            "tv_excluded AS x WHERE x.la_code = t.la_code AND x.child_id = t.child_id)"))
        created.append(view)
    if all(t in missing for t in definitions.EVENT_TABLES):
        raise TrialvaultError(f"no {HARMONISED} table holds qualifying events "
                              f"({', '.join(definitions.EVENT_TABLES)}): nothing to evaluate")
    return missing


def _check_clusters(engine: Engine, study: StudyFile) -> None:
    union = " UNION ".join(f"SELECT DISTINCT la_code FROM tv_src_{t}"
                           for t in definitions.EVENT_TABLES)
    codes = {int(v) for v in engine.query(union)["la_code"].to_pylist() if v is not None}
    stray = sorted(codes - set(study.la_codes))
    if stray:
        raise TrialvaultError(f"harmonised data hold LA code(s) {stray} that the study's "
                              "local_authorities / design.rollout do not list")
