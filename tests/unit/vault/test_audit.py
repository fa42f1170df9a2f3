"""The audit log on a real (in-memory) DuckDB: signed entries, links, witnesses, tampering."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialvault.errors import InputFileError
from trialvault.trust import Signer, canonical
from trialvault.vault import audit

VAULT = "vault-id-1"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    con.execute("ATTACH ':memory:' AS audit")
    con.execute(audit.AUDIT_DDL)
    return con


@pytest.fixture
def root() -> Signer:
    return Signer.generate()


def _cert(slot: str, signer: Signer, role: str = "data-manager") -> dict[str, str]:
    return {"slot_id": slot, "sign_pub": signer.public, "role": role}


def _fill(con: duckdb.DuckDBPyConnection, folder: Path, root: Signer, n: int = 4
          ) -> list[audit.AuditEntry]:
    """An init pair introducing the root, then begin/end pairs of `n` commands."""
    entries = []

    def add(command: str, phase: str, args: dict, signer: Signer = root, slot: str = "s1",
            begin: int | None = None) -> audit.AuditEntry:  # type: ignore[type-arg]
        e = audit.append_entry(con, signer, user="alice", slot_id=slot, command=command,
                               args=args, rows_touched={}, detail={}, result="ok"
                               if phase == "end" else "started", error=None, phase=phase,
                               ring_hash="r" * 64, begin_seq=begin)
        audit.append_chain(folder, e.hash)
        entries.append(e)
        return e

    b = add("init", "begin", {"certs": [_cert("s1", root)]})
    add("init", "end", {}, begin=b.seq)
    for i in range(n):
        b = add(f"cmd{i}", "begin", {"i": i})
        add(f"cmd{i}", "end", {}, begin=b.seq)
    return entries


def test_chain_links_signs_and_verifies(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    entries = _fill(con, tmp_path, root)
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    result = audit.verify(con, tmp_path, vault_id=VAULT)
    assert result.ok and result.entries == 10 and result.head == entries[-1].hash
    assert result.warnings == []
    assert audit.read_entries(con, last=2) == entries[-2:]


def test_edited_entry(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    _fill(con, tmp_path, root)
    con.execute("UPDATE audit.entries SET command = 'nothing' WHERE seq = 5")
    problems = audit.verify(con, tmp_path, vault_id=VAULT).problems
    assert problems == ["entry 5 (nothing by alice): content does not match its hash (edited)"]


def test_rewritten_and_rehashed_without_the_keys(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    """Entry 4's user and command changed, every later hash recomputed (and audit.chain too):
    the signatures were made by keys the attacker does not hold."""
    _fill(con, tmp_path, root)
    entries = audit.read_entries(con)
    prev = entries[2].hash
    forged = []
    for e in entries[3:]:
        body = {**e.body(), "prev_hash": prev}
        if e.seq == 4:
            body.update(user="mallory", command="harmless")
        digest_ = audit.entry_hash(body)
        con.execute("UPDATE audit.entries SET user_name = ?, command = ?, prev_hash = ?, "
                    "hash = ? WHERE seq = ?", [body["user"], body["command"], prev, digest_,
                                               e.seq])
        forged.append(digest_)
        prev = digest_
    (tmp_path / audit.CHAIN_NAME).write_text(
        "".join(f"{e.hash}\n" for e in entries[:3]) + "".join(f"{h}\n" for h in forged))
    problems = audit.verify(con, tmp_path, vault_id=VAULT).problems
    assert "entry 4 (harmless by mallory): signature does not verify (forged or re-written)" \
        in problems
    assert len(problems) == len(entries) - 3  # every re-hashed entry


def test_attacker_signs_with_own_key(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    _fill(con, tmp_path, root)
    mallory = Signer.generate()
    e = audit.append_entry(con, mallory, user="mallory", slot_id="m1", command="users add",
                           args={}, rows_touched={}, detail={"certs": [_cert("m1", mallory)]},
                           result="ok", error=None, phase="end", ring_hash="r" * 64)
    audit.append_chain(tmp_path, e.hash)
    problems = audit.verify(con, tmp_path, vault_id=VAULT).problems
    assert problems == ["entry 11 (users add by mallory): signed by a slot that no earlier "
                        "entry introduced"]


def test_cut_tail_caught_by_a_witness(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    entries = _fill(con, tmp_path, root)
    head = entries[-1]
    witness = audit.make_witness(root, vault_id=VAULT, user="alice", slot_id="s1",
                                 seq=head.seq, digest_=head.hash)
    con.execute("DELETE FROM audit.entries WHERE seq > 7")
    (tmp_path / audit.CHAIN_NAME).write_text("".join(f"{e.hash}\n" for e in entries[:7]))
    quiet = audit.verify(con, tmp_path, vault_id=VAULT)
    assert quiet.ok  # without a witness a clean cut of both copies is invisible...
    caught = audit.verify(con, tmp_path, vault_id=VAULT, witnesses=[("w.json", witness)])
    assert caught.problems == ["witness w.json: names entry 10, but the log ends at entry 7 "
                               "(entries 8-10 or more were cut from the log)"]


def test_witness_checks(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    entries = _fill(con, tmp_path, root)
    w = audit.make_witness(root, vault_id=VAULT, user="alice", slot_id="s1", seq=3,
                           digest_=entries[2].hash)
    assert audit.verify(con, tmp_path, vault_id=VAULT, witnesses=[("w", w)]).ok
    assert "another vault" in audit.verify(con, tmp_path, vault_id="other",
                                           witnesses=[("w", w)]).problems[0]
    forged = {**w, "hash": "0" * 64}
    assert "signature does not verify" in audit.verify(
        con, tmp_path, vault_id=VAULT, witnesses=[("w", forged)]).problems[0]
    stranger = audit.make_witness(Signer.generate(), vault_id=VAULT, user="x", slot_id="s1",
                                  seq=3, digest_=entries[2].hash)
    assert "signature does not verify" in audit.verify(
        con, tmp_path, vault_id=VAULT, witnesses=[("w", stranger)]).problems[0]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(Exception, match="not an audit witness"):
        audit.load_witness(bad)


def test_removed_and_reordered_entries(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    _fill(con, tmp_path, root)
    con.execute("DELETE FROM audit.entries WHERE seq = 4")
    problems = audit.verify(con, tmp_path, vault_id=VAULT).problems
    assert any("removed or reordered" in p for p in problems)
    assert any("does not link" in p for p in problems)


def test_begin_without_end_is_a_warning(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    _fill(con, tmp_path, root, 1)
    e = audit.append_entry(con, root, user="alice", slot_id="s1", command="ingest", args={},
                           rows_touched={}, detail={}, result="started", error=None,
                           phase="begin", ring_hash="r" * 64)
    audit.append_chain(tmp_path, e.hash)
    result = audit.verify(con, tmp_path, vault_id=VAULT)
    assert result.ok and result.warnings == [
        "entry 5 (ingest by alice) has no outcome entry (the process was killed, or it is the "
        "command running now)"]
    assert audit.verify(con, tmp_path, vault_id=VAULT, running=5).warnings == []


def test_tampered_chain_file(con, tmp_path: Path, root: Signer) -> None:  # type: ignore[no-untyped-def]
    _fill(con, tmp_path, root)
    path = tmp_path / audit.CHAIN_NAME
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "f" * 64, *lines[2:]]) + "\n")
    assert audit.verify(con, tmp_path, vault_id=VAULT).problems == [
        "audit.chain line 2: differs from entry 2"]
    path.write_text("\n".join(lines[:-2]) + "\n" + "\n".join([*lines[-2:], "e" * 64]) + "\n")
    assert "entries 11-11 were removed" in audit.verify(con, tmp_path,
                                                        vault_id=VAULT).problems[0]


def test_legacy_entries_keep_their_hash(con, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = {"seq": 1, "at": "2026-01-01T00:00:00", "user": "u", "slot_id": "s",
            "command": "init", "args": {}, "rows_touched": {}, "detail": {}, "result": "ok",
            "error": None, "prev_hash": audit.GENESIS}
    digest_ = audit.entry_hash(body)
    audit.insert_legacy(con, [(1, body["at"], "u", "s", "init", "{}", "{}", "{}", "ok", None,
                               audit.GENESIS, digest_)])
    audit.append_chain(tmp_path, digest_)
    assert audit.verify(con, tmp_path, vault_id=VAULT).ok
    con.execute("UPDATE audit.entries SET user_name = 'x'")
    assert not audit.verify(con, tmp_path, vault_id=VAULT).ok


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
    assert audit.describe_error(KeyboardInterrupt()) == "interrupted"


@given(st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                  max_size=3), max_leaves=8)))
def test_sanitized_args_hash_stably(args: dict) -> None:  # type: ignore[type-arg]
    clean = audit.sanitize_args(args)
    assert canonical(clean) == canonical(audit.sanitize_args(clean))
