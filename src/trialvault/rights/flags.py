"""Restriction and objection flags, and the one function the evaluation calls to honour them.

Flags live in the child domain, `meta.rights_flags` (beside the rows they exclude, so the
analyst's evaluation can honour them without holding the rights register's key). A child
flagged *restricted* (UK GDPR Art. 18) or *objecting* (Art. 21) stays stored but is left out of
every evaluation and output from the moment the flag is set, until the restriction is lifted or
the objection is overridden on recorded compelling legitimate grounds. Erased children need no
flag: their rows are gone (see `rights.actions`).

This module never prints or logs a child code; it only builds SQL over the vault connection.
"""

from __future__ import annotations

from typing import Literal

import duckdb

RIGHTS_SCHEMA = "rights"  # the register's catalog (register domain)
FLAGS_SCHEMA = "meta"     # in the child domain's default catalog
FLAGS_TABLE = f"{FLAGS_SCHEMA}.rights_flags"
# A view the evaluation (or anyone with SQL) can read instead of calling the function.
EXCLUDED_VIEW = f"{FLAGS_SCHEMA}.excluded_children"

FlagKind = Literal["restriction", "objection"]
FlagStatus = Literal["active", "lifted", "overridden"]

FLAGS_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {FLAGS_SCHEMA};
CREATE TABLE IF NOT EXISTS {FLAGS_TABLE} (
    flag_id       INTEGER PRIMARY KEY,
    la_code       INTEGER NOT NULL,
    child_id      VARCHAR NOT NULL,
    kind          VARCHAR NOT NULL CHECK (kind IN ('restriction', 'objection')),
    status        VARCHAR NOT NULL CHECK (status IN ('active', 'lifted', 'overridden')),
    request_id    INTEGER,
    set_at        TIMESTAMP NOT NULL,
    set_by        VARCHAR NOT NULL,
    ended_at      TIMESTAMP,
    ended_by      VARCHAR,
    -- why a restriction was lifted, or the compelling legitimate grounds overriding an objection
    end_reason    VARCHAR
);
CREATE OR REPLACE VIEW {EXCLUDED_VIEW} AS
    SELECT DISTINCT la_code, child_id
    FROM {FLAGS_TABLE}
    WHERE status = 'active';
"""

_EMPTY = ("SELECT CAST(NULL AS INTEGER) AS la_code, CAST(NULL AS VARCHAR) AS child_id "
          "WHERE false")


def ensure_flags_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rights schema, the flags table and the exclusion view if absent."""
    con.execute(FLAGS_DDL)


def flags_table_exists(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = ? AND table_name = 'rights_flags'", [FLAGS_SCHEMA]).fetchone()
    return bool(row and row[0])


def excluded_children(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """(la_code INTEGER, child_id VARCHAR) of every child the evaluation must leave out.

    These are children with an active restriction or an objection that has not been
    overridden. Erased children are not listed: their rows no longer exist anywhere. The
    relation is empty (with the same columns) on a vault where no flag was ever set, so a
    read-only session can call it without creating anything.

    Use it as an anti-join before building the cohort, e.g.::

        excl = excluded_children(con)
        con.register("excluded", excl)  # or: excl.set_alias("x") and join
        con.sql("SELECT * FROM harmonised.referrals r ANTI JOIN excluded x "
                "USING (la_code, child_id)")
    """
    if not flags_table_exists(con):
        return con.sql(_EMPTY)
    return con.sql(f"SELECT DISTINCT la_code, child_id FROM {FLAGS_TABLE} "
                   "WHERE status = 'active'")
