"""What the vault database holds: the harmonised tables (docs/architecture.md) and bookkeeping.

Schemas:
- `raw`         every package's tables as received (+ package_id, ingest_batch); history kept.
- `harmonised`  the current view: per LA, the rows of its latest extract, minus erased children.
- `meta`        packages, ingest batches, audit log, secrets (evaluator identity, tombstone key),
                tombstones of erased children.
Other stages add their own tables (`rights_flags`, `results`) in their own schemas or `main`.
"""

from __future__ import annotations

# Lineage every harmonised row carries, besides la_code and child_id.
PREPARE_LINEAGE = ("source_file", "source_line")
VAULT_LINEAGE = ("package_id", "ingest_batch")
KEY_COLUMNS = ("la_code", "child_id")

_KEY = [("la_code", "INTEGER"), ("child_id", "VARCHAR")]
_LINE = [("source_file", "VARCHAR"), ("source_line", "INTEGER")]


def _d(*names: str) -> list[tuple[str, str]]:
    return [(n, "DATE") for n in names]


def _v(*names: str) -> list[tuple[str, str]]:
    return [(n, "VARCHAR") for n in names]


def _i(*names: str) -> list[tuple[str, str]]:
    return [(n, "INTEGER") for n in names]


def _b(*names: str) -> list[tuple[str, str]]:
    return [(n, "BOOLEAN") for n in names]


# The package (= harmonised) tables: name → (column, DuckDB type) besides key and lineage.
# Order follows the table in docs/architecture.md.
TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "children": [*_v("sex", "ethnicity"), *_b("disability", "uasc"),
                 *_i("age_months_at_reference"), *_d("reference_date")],
    "referrals": [*_i("collection_year"), *_d("referral_date"),
                  *_v("referral_source", "primary_need_code"), *_d("cin_closure_date"),
                  *_v("reason_for_closure"), *_b("referral_nfa"), *_i("age_months")],
    "assessments": [*_i("collection_year"),
                    *_d("referral_date", "assessment_start_date", "assessment_authorised_date"),
                    *_v("assessment_factors"), *_i("age_months")],
    "s47": [*_i("collection_year"),
            *_d("referral_date", "s47_start_date", "icpc_target_date", "icpc_date"),
            *_b("icpc_not_required"), *_i("age_months")],
    "cin_plans": [*_i("collection_year"),
                  *_d("referral_date", "cin_plan_start_date", "cin_plan_end_date"),
                  *_i("age_months")],
    "cp_plans": [*_i("collection_year"),
                 *_d("referral_date", "cp_plan_start_date", "cp_plan_end_date"),
                 *_v("initial_category_of_abuse", "latest_category_of_abuse"),
                 *_i("number_of_previous_cpp", "age_months")],
    "cla_episodes": [*_i("collection_year"), *_d("episode_start_date", "episode_end_date"),
                     *_v("reason_new_episode", "legal_status", "category_of_need",
                         "placement_type", "placement_provider", "reason_episode_ceased",
                         "reason_place_change"), *_i("age_months")],
    "missing": [*_i("collection_year"), *_v("missing_type"),
                *_d("missing_start_date", "missing_end_date"), *_i("age_months")],
    "attendance": [*_v("academic_year", "term"),
                   *_i("sessions_possible", "sessions_authorised_absence",
                       "sessions_unauthorised_absence"),
                   *_b("fsm_eligible", "pupil_premium"), *_i("age_months")],
    "neet": [*_d("activity_month"), *_v("activity_code"), *_b("neet"), *_i("age_months")],
}
TABLES: tuple[str, ...] = tuple(TABLE_COLUMNS)


def package_columns(table: str) -> list[tuple[str, str]]:
    """Columns a package table may carry, in order: key, data, prepare lineage."""
    return [*_KEY, *TABLE_COLUMNS[table], *_LINE]


def stored_columns(table: str) -> list[tuple[str, str]]:
    """Columns of `raw.<table>` and `harmonised.<table>`: package columns + vault lineage."""
    return [*package_columns(table), ("package_id", "VARCHAR"), ("ingest_batch", "INTEGER")]


def _create(schema: str, table: str) -> str:
    cols = ", ".join(f"{name} {kind}" for name, kind in stored_columns(table))
    return f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({cols})"


META_DDL = [
    "CREATE SCHEMA IF NOT EXISTS meta",
    "CREATE SCHEMA IF NOT EXISTS raw",
    "CREATE SCHEMA IF NOT EXISTS harmonised",
    """CREATE TABLE IF NOT EXISTS meta.vault_info (
        vault_id VARCHAR NOT NULL, study_id VARCHAR, created_at VARCHAR NOT NULL,
        trialvault_version VARCHAR NOT NULL)""",
    # Secrets that must survive a re-key: the evaluator's age identity, the tombstone HMAC key.
    "CREATE TABLE IF NOT EXISTS meta.secrets (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS meta.ingest_batches (
        ingest_batch INTEGER PRIMARY KEY, started_at VARCHAR NOT NULL, user_name VARCHAR NOT NULL,
        packages INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.packages (
        package_id VARCHAR PRIMARY KEY, la_code INTEGER NOT NULL, extract_date DATE NOT NULL,
        study_id VARCHAR NOT NULL, spec_version VARCHAR, created_at VARCHAR,
        file_name VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
        ingest_batch INTEGER NOT NULL, ingested_at VARCHAR NOT NULL,
        manifest VARCHAR NOT NULL, validation_csv BLOB NOT NULL,
        tombstoned_rows INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta.tombstones (
        la_code INTEGER NOT NULL, child_hash VARCHAR NOT NULL, created_at VARCHAR NOT NULL,
        PRIMARY KEY (la_code, child_hash))""",
    *[_create(schema, table) for schema in ("raw", "harmonised") for table in TABLES],
]
