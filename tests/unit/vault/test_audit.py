"""The audit chain on a real (in-memory) DuckDB: hashing, secrets, and every kind of tamper."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialvault.errors import InputFileError
from trialvault.vault import audit


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("CREATE SCHEMA meta")
    con.execute(audit.AUDIT_DDL)
    return con


def _fill(con: duckdb.DuckDBPyConnection, folder: Path, n: int = 4) -> list[audit.AuditEntry]:
    entries = []
    for i in range(n):
        e = audit.append_entry(con, user="alice", slot_id="s1", command=f"cmd{i}",
                               args={"i": i}, rows_touched={"raw.children": i},
                               detail={}, result="ok", error=None)
        audit.append_chain(folder, e.hash)
        entries.append(e)
    return entries


def test_chain_links_and_verifies(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    entries = _fill(con, tmp_path)
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    result = audit.verify(con, tmp_path)
    assert result.ok and result.entries == 4 and result.head == entries[-1].hash
    assert audit.read_entries(con, last=2) == entries[2:]
    assert audit.read_entries(con, last=0) == []


def test_edited_entry(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _fill(con, tmp_path)
    con.execute("UPDATE meta.audit_log SET rows_touched = '{\"raw.children\":0}' WHERE seq = 3")
    problems = audit.verify(con, tmp_path).problems
    assert problems == ["entry 3: content does not match its hash (edited)"]


def test_edited_and_rehashed_entry(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """An attacker who recomputes the edited entry's hash breaks the next link and the file."""
    _fill(con, tmp_path)
    e = audit.read_entries(con)[1]
    body = {**e.body(), "user": "mallory"}
    con.execute("UPDATE meta.audit_log SET user_name = 'mallory', hash = ? WHERE seq = 2",
                [audit.entry_hash(body)])
    problems = audit.verify(con, tmp_path).problems
    assert "entry 3: does not link to the entry before it" in problems
    assert "audit.chain line 2: differs from entry 2" in problems


def test_removed_entry(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _fill(con, tmp_path)
    con.execute("DELETE FROM meta.audit_log WHERE seq = 2")
    problems = audit.verify(con, tmp_path).problems
    assert any("removed or reordered" in p for p in problems)
    assert any("does not link" in p for p in problems)


def test_removed_tail_caught_by_chain_file(con: duckdb.DuckDBPyConnection,
                                           tmp_path: Path) -> None:
    _fill(con, tmp_path)
    con.execute("DELETE FROM meta.audit_log WHERE seq = 4")
    assert audit.verify(con, tmp_path).problems == [
        "audit.chain has 4 hashes but the vault 3 entries (entries were removed from the vault)"]


def test_reordered_entries(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _fill(con, tmp_path)
    con.execute("UPDATE meta.audit_log SET seq = CASE seq WHEN 2 THEN 3 WHEN 3 THEN 2 "
                "ELSE seq END")
    assert not audit.verify(con, tmp_path).ok


def test_tampered_chain_file(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    _fill(con, tmp_path)
    path = tmp_path / audit.CHAIN_NAME
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "f" * 64, *lines[2:]]) + "\n")
    assert audit.verify(con, tmp_path).problems == ["audit.chain line 2: differs from entry 2"]
    path.write_text("\n".join(lines[:2]) + "\n")
    assert "truncated" in audit.verify(con, tmp_path).problems[0]
    path.unlink()
    assert not audit.verify(con, tmp_path).ok


def test_remove_last_chain_line(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    entries = _fill(con, tmp_path, 2)
    audit.remove_last_chain_line(tmp_path, entries[0].hash)  # not last: no-op
    assert len(audit.read_chain(tmp_path)) == 2
    audit.remove_last_chain_line(tmp_path, entries[1].hash)
    assert audit.read_chain(tmp_path) == [entries[0].hash]


def test_secrets_never_recorded() -> None:
    args = {"password": "x", "new_password": "y", "identity": "AGE-SECRET", "data_key": "k",
            "passphrase": "p", "user": "bob", "nested": {"token": "t", "keep": 1},
            "packages": ("a.tvpkg",), "path": Path("/v")}
    assert audit.sanitize_args(args) == {"user": "bob", "nested": {"keep": 1},
                                         "packages": ["a.tvpkg"], "path": "/v"}


def test_errors_recorded_without_values() -> None:
    try:
        duckdb.connect(":memory:").execute("SELECT 'ZQXJ-SECRET'::INTEGER")
    except duckdb.Error as exc:
        assert audit.describe_error(exc) == "ConversionException"
    assert audit.describe_error(InputFileError("bad", file="a.tvpkg", line=3)) == \
        "InputFileError: a.tvpkg, line 3: bad"


@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3), max_leaves=8)))
def test_sanitized_args_hash_stably(args: dict) -> None:
    clean = audit.sanitize_args(args)
    assert audit.canonical(clean) == audit.canonical(audit.sanitize_args(clean))
