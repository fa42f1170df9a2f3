"""A real vault folder: users, passwords, sessions, roles, re-key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from trialvault.errors import AccessDenied, IntegrityError, TrialvaultError
from trialvault.trust import Keyring
from trialvault.vault import (
    FAST_TEST_KDF,
    add_user,
    audit_entries,
    change_password,
    default_user,
    evaluator_recipient,
    init_vault,
    list_users,
    open_vault,
    rekey,
    remove_user,
    verify_audit,
)
from trialvault.vault.session import FAILURE_LOG
from trialvault.vault.store import VaultBusy, connect_file

PASSWORD = "correct horse battery staple"  # as in conftest
ANA = "ana reads the trial data"


def _snapshot(folder: Path) -> dict[str, str]:
    # .lock holds the pid of the last process that opened the vault: not vault content.
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != ".lock"}


def test_init_layout_and_pubkey(vault: tuple[Path, str]) -> None:
    folder, recipient = vault
    names = {p.name for p in folder.iterdir()}
    assert {"child.duckdb", "rights.duckdb", "secrets.duckdb", "results.duckdb",
            "releases.duckdb", "audit.duckdb", "keyslots.json", "audit.chain"} <= names
    assert recipient.startswith("age1")
    assert evaluator_recipient(folder) == recipient
    assert default_user(folder) == "dm"
    # The evaluator's secret key is only inside the encrypted database.
    for p in folder.iterdir():
        if p.is_file():
            assert b"AGE-SECRET-KEY" not in p.read_bytes()


def test_init_refuses_existing_folder(vault: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = vault
    with pytest.raises(TrialvaultError, match="already exists"):
        init_vault(folder, "x", PASSWORD, kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="must be a data-manager"):
        init_vault(tmp_path / "other", "x", PASSWORD, role="analyst", kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="at least 12 characters"):
        init_vault(tmp_path / "other", "x", "pw", kdf_params=FAST_TEST_KDF)
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_two_users_and_removal_locks_out(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    add_user(folder, "dm", PASSWORD, "ana", ANA, "analyst", kdf_params=FAST_TEST_KDF)
    with open_vault(folder, "ana", ANA, command="t", args={}, write=False) as s:
        assert s.role == "analyst" and s.user == "ana"
        assert s.domains == {"child", "outputs", "audit"}
        fp = s.key_fingerprints["child"]
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.key_fingerprints["child"] == fp
        secrets_fp = s.key_fingerprints["secrets"]
    assert [u.user for u in list_users(folder)] == ["dm", "ana"]
    with pytest.raises(AccessDenied, match="needs role data-manager"):
        add_user(folder, "ana", ANA, "eve", "eve is a new person here", "dpo",
                 kdf_params=FAST_TEST_KDF)
    remove_user(folder, "dm", PASSWORD, "ana")
    with (pytest.raises(AccessDenied, match="no key slot for user 'ana'"),
          open_vault(folder, "ana", ANA, command="t", args={})):
        pass
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.key_fingerprints["child"] != fp  # removal re-keyed what ana could decrypt
        assert s.key_fingerprints["secrets"] == secrets_fp  # ...and only that
    assert verify_audit(folder, "dm", PASSWORD).ok


def test_wrong_password_touches_nothing(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    before = _snapshot(folder)
    with (pytest.raises(AccessDenied, match="wrong password for user 'dm'"),
          open_vault(folder, "dm", "not the password", command="status", args={})):
        pass
    after = _snapshot(folder)
    failure = after.pop(FAILURE_LOG)
    assert after == before and failure
    line = json.loads((folder / FAILURE_LOG).read_text().splitlines()[-1])
    assert line["user"] == "dm" and line["command"] == "status"
    assert "not the password" not in (folder / FAILURE_LOG).read_text()


def test_passwd(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    new = "a brand new vault passphrase"
    change_password(folder, "dm", PASSWORD, new, kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied), open_vault(folder, "dm", PASSWORD, command="t", args={}):
        pass
    with open_vault(folder, "dm", new, command="t", args={}) as s:
        assert s.user == "dm"


def test_session_error_rolls_back_and_is_audited(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    with (pytest.raises(duckdb.ConversionException),
          open_vault(folder, "dm", PASSWORD, command="boom", args={"password": "s"}) as s):
        s.con.execute("CREATE TABLE main.scratch (a INTEGER)")
        s.record(rows_touched={"main.scratch": 1})
        s.con.execute("SELECT 'ZQXJ-value'::INTEGER")
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT count(*) FROM duckdb_tables() "
                             "WHERE table_name = 'scratch'").fetchone() == (0,)
    begin, end = [e for e in audit_entries(folder, "dm", PASSWORD) if e.command == "boom"]
    assert begin.phase == "begin" and begin.args == {}  # the password argument is dropped
    assert end.result == "error" and end.error == "ConversionException"
    assert end.rows_touched == {"main.scratch": 1} and end.begin_seq == begin.seq
    assert verify_audit(folder, "dm", PASSWORD).ok


def test_read_only_session_discards_changes(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    with open_vault(folder, "dm", PASSWORD, command="look", args={}, write=False) as s:
        s.con.execute("CREATE TABLE main.scratch AS SELECT 1 AS a")
    with open_vault(folder, "dm", PASSWORD, command="t", args={}) as s:
        assert s.con.execute("SELECT count(*) FROM duckdb_tables() "
                             "WHERE table_name = 'scratch'").fetchone() == (0,)
        s.con.execute("CREATE TABLE main.kept AS SELECT 1 AS a")
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT a FROM main.kept").fetchall() == [(1,)]


def test_session_cannot_write_files(vault: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = vault
    out = tmp_path / "leak.csv"
    with (pytest.raises(duckdb.PermissionException),
          open_vault(folder, "dm", PASSWORD, command="t", args={}) as s):
        s.con.execute(f"COPY (SELECT 1) TO '{out}'")
    with (pytest.raises(duckdb.Error, match="locked"),
          open_vault(folder, "dm", PASSWORD, command="t", args={}) as s):
        s.con.execute("SET enable_external_access = true")
    assert not out.exists()


def test_one_session_at_a_time(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    with (open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False),
          pytest.raises(VaultBusy, match="open in another process"),
          open_vault(folder, "dm", PASSWORD, command="t2", args={})):
        pass


def test_rekey_keeps_data_and_retires_old_key(vault: tuple[Path, str]) -> None:
    folder, recipient = vault
    with open_vault(folder, "dm", PASSWORD, command="t", args={}) as s:
        s.con.execute("CREATE TABLE main.kept AS SELECT range AS a FROM range(1000)")
    old_key = Keyring.load(folder).unlock("dm", PASSWORD).domain_keys["child"]
    report = rekey(folder, "dm", PASSWORD)
    assert report.old_fingerprints != report.new_fingerprints and report.slots == 1
    assert report.domains == ["child", "register", "secrets", "outputs", "audit"]
    new_key = Keyring.load(folder).unlock("dm", PASSWORD).domain_keys["child"]
    assert new_key != old_key
    with pytest.raises(IntegrityError, match="does not open with the vault's data key"):
        connect_file(folder / "child.duckdb", old_key, temp_dir=folder / "tmp").close()
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT sum(a) FROM main.kept").fetchone() == (499500,)
    assert sorted(p.name for p in folder.iterdir() if "rekey" in p.name) == []
    result = verify_audit(folder, "dm", PASSWORD)
    assert result.ok, result.problems
    commands = [(e.command, e.phase) for e in audit_entries(folder, "dm", PASSWORD)]
    assert commands[-8:-1] == [("t", "end"), ("rekey", "begin"), ("rekey", "end"),
                             ("t", "begin"), ("t", "end"), ("audit verify", "begin"),
                             ("audit verify", "end")]
    assert evaluator_recipient(folder) == recipient


def test_rekey_needs_role(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    add_user(folder, "dm", PASSWORD, "ana", ANA, "analyst", kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="needs role data-manager or dpo"):
        rekey(folder, "ana", ANA)
