"""excluded_children: restricted and objecting (not overridden) children, nothing else."""

from __future__ import annotations

import datetime as dt

import duckdb

from trialvault.rights import excluded_children
from trialvault.rights.flags import ensure_flags_table

NOW = dt.datetime(2026, 1, 5, 10, 0)


def _flag(con: duckdb.DuckDBPyConnection, flag_id: int, la: int, child: str, kind: str,
          status: str) -> None:
    con.execute("INSERT INTO meta.rights_flags (flag_id, la_code, child_id, kind, status, "
                "set_at, set_by) VALUES (?, ?, ?, ?, ?, ?, 'dpo')",
                [flag_id, la, child, kind, status, NOW])


def test_empty_when_no_flags_table() -> None:
    con = duckdb.connect()
    rel = excluded_children(con)
    assert rel.columns == ["la_code", "child_id"]
    assert rel.fetchall() == []
    # Nothing was created: a read-only session can call it.
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rights_flags'"
                       ).fetchone() == (0,)


def test_active_restriction_and_objection_only() -> None:
    con = duckdb.connect()
    ensure_flags_table(con)
    _flag(con, 1, 354, "C1", "restriction", "active")
    _flag(con, 2, 354, "C2", "objection", "active")
    _flag(con, 3, 354, "C3", "objection", "overridden")
    _flag(con, 4, 807, "C4", "restriction", "lifted")
    _flag(con, 5, 807, "C1", "restriction", "active")   # same code, other LA: another child
    _flag(con, 6, 354, "C1", "objection", "active")     # two flags, one row out
    got = sorted(excluded_children(con).fetchall())
    assert got == [(354, "C1"), (354, "C2"), (807, "C1")]
    assert sorted(con.sql("SELECT * FROM meta.excluded_children").fetchall()) == got


def test_anti_join_removes_flagged_children() -> None:
    con = duckdb.connect()
    ensure_flags_table(con)
    con.execute("CREATE TABLE referrals AS SELECT * FROM (VALUES (354, 'C1'), (354, 'C2'), "
                "(807, 'C1')) t(la_code, child_id)")
    _flag(con, 1, 354, "C1", "restriction", "active")
    excluded = excluded_children(con)  # noqa: F841 - referenced by name in the SQL below
    kept = con.sql("SELECT * FROM referrals ANTI JOIN excluded USING (la_code, child_id) "
                   "ORDER BY ALL").fetchall()
    assert kept == [(354, "C2"), (807, "C1")]
