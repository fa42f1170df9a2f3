"""`create_table_from_columns`: Python lists into DuckDB with no pyarrow and no parameters.
Every value must arrive exactly as given, whatever its text; a value never becomes SQL."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.sql import create_table_from_columns, quote_literal

# Any text a reader can hand over: XML and strict UTF-8 never yield NUL or lone surrogates.
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=30)
_CON = duckdb.connect()  # one database for every example: a connection costs more than a load


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.none() | _TEXT, st.none() | st.integers(-2**63, 2**63 - 1)),
                max_size=40),
       st.integers(1, 7))
def test_any_rows_round_trip_exactly(rows: list[tuple[str | None, int | None]],
                                     chunk: int) -> None:
    con = _CON
    con.execute("DROP TABLE IF EXISTS t")
    create_table_from_columns(con, "t", [("text", "VARCHAR"), ("n", "BIGINT")],
                              {"text": [r[0] for r in rows], "n": [r[1] for r in rows]},
                              chunk_rows=chunk)
    # rowid is insertion order: the rows come back in order, in as many chunks as it took
    assert con.execute("SELECT text, n FROM t ORDER BY rowid").fetchall() == rows


@settings(max_examples=150, deadline=None)
@given(_TEXT)
def test_any_text_is_one_literal(text: str) -> None:
    assert _CON.execute(f"SELECT {quote_literal(text)}").fetchone() == (text,)


def test_an_injection_attempt_stays_a_value() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE victim (x INTEGER)")
    evil = ["'); DROP TABLE victim; --", "\"}]', '{}'); DROP TABLE victim; --", "\\'"]
    create_table_from_columns(con, "t", [("v", "VARCHAR")], {"v": evil})
    assert con.execute("SELECT v FROM t ORDER BY rowid").fetchall() == [(e,) for e in evil]
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'victim'"
                       ).fetchone() == (1,)


def test_a_value_of_the_wrong_type_is_an_error_that_does_not_quote_it() -> None:
    con = duckdb.connect()
    with pytest.raises(ValueError) as caught:
        create_table_from_columns(con, "t", [("n", "INTEGER")], {"n": ["CHILD-0042"]})
    assert "CHILD-0042" not in str(caught.value) and "rows 1-" in str(caught.value)


def test_types_columns_and_lengths_are_checked() -> None:
    con = duckdb.connect()
    with pytest.raises(ValueError, match="type"):
        create_table_from_columns(con, "t", [("n", "INTEGER); DROP TABLE x; --")], {"n": [1]})
    with pytest.raises(ValueError, match="match"):
        create_table_from_columns(con, "t", [("n", "INTEGER")], {"m": [1]})
    with pytest.raises(ValueError, match="length"):
        create_table_from_columns(con, "t", [("a", "INTEGER"), ("b", "INTEGER")],
                                  {"a": [1], "b": [1, 2]})
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\x00b")


def test_no_parameter_and_no_arrow_is_used() -> None:
    # DuckDB's client imports pyarrow for a query parameter or an Arrow scan; a fresh process
    # shows the loader needs neither.
    import subprocess
    import sys

    code = ("import sys, duckdb\n"
            "from trialvault.sql import create_table_from_columns\n"
            "con = duckdb.connect()\n"
            "create_table_from_columns(con, 't', [('a', 'VARCHAR')], {'a': ['x', None]})\n"
            "assert con.execute('SELECT count(a) FROM t').fetchone() == (1,)\n"
            "print(sorted(m for m in ('pyarrow', 'numpy', 'pandas') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"


def test_insert_appends_and_a_bad_create_leaves_no_table() -> None:
    from trialvault.sql import insert_columns

    con = duckdb.connect()
    con.execute("CREATE TABLE t (a VARCHAR, n INTEGER)")
    insert_columns(con, "t", [("a", "VARCHAR"), ("n", "INTEGER")], {"a": ["x"], "n": [1]})
    insert_columns(con, "t", [("a", "VARCHAR"), ("n", "INTEGER")], {"a": [None], "n": [2]})
    assert con.execute("SELECT a, n FROM t ORDER BY n").fetchall() == [("x", 1), (None, 2)]
    with pytest.raises(ValueError, match="length"):
        create_table_from_columns(con, "u", [("a", "INTEGER"), ("b", "INTEGER")],
                                  {"a": [1], "b": [1, 2]})
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'u'"
                       ).fetchone() == (0,)
