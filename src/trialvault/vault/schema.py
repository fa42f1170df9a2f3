"""What the vault's databases hold: the harmonised tables (docs/architecture.md) and bookkeeping.

Catalogs (one per file; which trust domain each belongs to: `trialvault.trust.domains`):
- `vault` (child domain, the default catalog):
  `raw`         every package's tables as received (+ package_id, ingest_batch); history kept;
  `harmonised`  the current view: per LA, the rows of its latest extract, minus erased children;
  `meta`        packages (with their validation lines), ingest batches, rights flags,
                release children.
- `rights` (register domain): the rights register, tombstones, the tombstone key, the registry
  of key-slot certificates.
- `secrets` (secrets domain): the evaluator's age identity, trusted LA signing keys.
- `results`, `releases` (outputs domain): aggregates only.
- `audit` (audit domain): the signed audit log and `vault_info`.
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


# DDL per catalog, run when a vault (or a migrated one) is created. Stages create their own
# tables lazily in the catalogs of their domain but never create schemas: a schema named like a
# catalog (`rights`, `results`, ...) in the default catalog would make every reference ambiguous.
CATALOG_DDL: dict[str, list[str]] = {
    "vault": [
        "CREATE SCHEMA IF NOT EXISTS meta",
        "CREATE SCHEMA IF NOT EXISTS raw",
        "CREATE SCHEMA IF NOT EXISTS harmonised",
        """CREATE TABLE IF NOT EXISTS meta.ingest_batches (
            ingest_batch INTEGER PRIMARY KEY, started_at VARCHAR NOT NULL,
            user_name VARCHAR NOT NULL, packages INTEGER NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS meta.packages (
            package_id VARCHAR PRIMARY KEY, la_code INTEGER NOT NULL, extract_date DATE NOT NULL,
            study_id VARCHAR NOT NULL, spec_version VARCHAR, created_at VARCHAR,
            file_name VARCHAR NOT NULL, file_sha256 VARCHAR NOT NULL,
            ingest_batch INTEGER NOT NULL, ingested_at VARCHAR NOT NULL,
            manifest VARCHAR NOT NULL, validation_csv BLOB NOT NULL,
            tombstoned_rows INTEGER NOT NULL)""",
        *[_create(schema, table) for schema in ("raw", "harmonised") for table in TABLES],
    ],
    "rights": [
        # Erased children, as HMAC(tombstone key, "la:child"); the key is in rights.secrets.
        """CREATE TABLE IF NOT EXISTS rights.tombstones (
            la_code INTEGER NOT NULL, child_hash VARCHAR NOT NULL, created_at VARCHAR NOT NULL,
            PRIMARY KEY (la_code, child_hash))""",
        "CREATE TABLE IF NOT EXISTS rights.secrets (name VARCHAR PRIMARY KEY, "
        "value VARCHAR NOT NULL)",
        # Every key-slot certificate an audited `users add` (or init/migrate) created: a re-key
        # wraps keys only for slots listed here (a planted slot in keyslots.json is refused).
        """CREATE TABLE IF NOT EXISTS rights.slot_registry (
            cert_hash VARCHAR PRIMARY KEY, slot_id VARCHAR NOT NULL, user_name VARCHAR NOT NULL,
            role VARCHAR NOT NULL, added_at VARCHAR NOT NULL, added_by VARCHAR NOT NULL,
            audit_seq BIGINT NOT NULL, retired_at VARCHAR)""",
    ],
    "secrets": [
        "CREATE TABLE IF NOT EXISTS secrets.secrets (name VARCHAR PRIMARY KEY, "
        "value VARCHAR NOT NULL)",
        # LA signing keys the vault trusts (`trialvault la trust`; vault.la_keys).
        """CREATE TABLE IF NOT EXISTS secrets.la_keys (
            public_key VARCHAR PRIMARY KEY, la_code INTEGER NOT NULL, fingerprint VARCHAR NOT NULL,
            registered_at VARCHAR NOT NULL, registered_by VARCHAR NOT NULL, retired_at VARCHAR)""",
    ],
    "results": [],
    "releases": [],
    "audit": [
        """CREATE TABLE IF NOT EXISTS audit.vault_info (
            vault_id VARCHAR NOT NULL, study_id VARCHAR, created_at VARCHAR NOT NULL,
            trialvault_version VARCHAR NOT NULL, format VARCHAR NOT NULL)""",
    ],
}
