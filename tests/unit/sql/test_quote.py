"""The identifier quoting helper: any text round-trips as a name and never escapes into SQL."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.sql import quote_ident, quote_qualified


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s))
def test_any_name_is_one_identifier(name: str) -> None:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE {quote_ident(name)} (x INTEGER)")
    con.execute(f"INSERT INTO {quote_ident(name)} VALUES (1)")
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [(name,)]


def test_injection_attempt_stays_a_name() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE victim (x INTEGER)")
    evil = 'x AS SELECT 1; DROP TABLE victim; --"'
    con.execute(f"CREATE TABLE {quote_ident(evil)} AS SELECT 1 AS y")
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'victim'"
                       ).fetchone() == (1,)


def test_qualified_and_nul() -> None:
    assert quote_qualified("raw.children") == '"raw"."children"'
    with pytest.raises(ValueError):
        quote_ident("a\x00b")
