"""A real vault folder: users, passwords, sessions, roles, re-key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from trialvault.errors import AccessDenied, IntegrityError, TrialvaultError
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
from trialvault.vault.keyslots import Keyfile
from trialvault.vault.session import FAILURE_LOG
from trialvault.vault.store import DB_NAME, VaultBusy, connect

PASSWORD = "correct horse battery staple"  # as in conftest


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def test_init_layout_and_pubkey(vault: tuple[Path, str]) -> None:
    folder, recipient = vault
    names = {p.name for p in folder.iterdir()}
    assert {"vault.duckdb", "keyslots.json", "audit.chain"} <= names
    assert recipient.startswith("age1")
    assert evaluator_recipient(folder, "dm", PASSWORD) == recipient
    assert default_user(folder) == "dm"
    # The evaluator's secret key is only inside the encrypted database.
    for p in folder.iterdir():
        if p.is_file():
            assert b"AGE-SECRET-KEY" not in p.read_bytes()


def test_init_refuses_existing_folder(vault: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = vault
    with pytest.raises(TrialvaultError, match="already exists"):
        init_vault(folder, "x", "pw", kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="must be a data-manager"):
        init_vault(tmp_path / "other", "x", "pw", role="analyst", kdf_params=FAST_TEST_KDF)
    assert not (tmp_path / "other").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_two_users_and_removal_locks_out(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    add_user(folder, "dm", PASSWORD, "ana", "ana-pw", "analyst", kdf_params=FAST_TEST_KDF)
    with open_vault(folder, "ana", "ana-pw", command="t", args={}, write=False) as s:
        assert s.role == "analyst" and s.user == "ana"
        fp = s.data_key_fingerprint
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.data_key_fingerprint == fp
    assert [u.user for u in list_users(folder)] == ["dm", "ana"]
    with pytest.raises(AccessDenied, match="needs role data-manager"):
        add_user(folder, "ana", "ana-pw", "eve", "pw", "dpo", kdf_params=FAST_TEST_KDF)
    remove_user(folder, "dm", PASSWORD, "ana")
    with (pytest.raises(AccessDenied, match="no key slot for user 'ana'"),
          open_vault(folder, "ana", "ana-pw", command="t", args={})):
        pass
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.data_key_fingerprint != fp  # removal re-keyed the vault
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
    change_password(folder, "dm", PASSWORD, "new-pw", kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied):
        evaluator_recipient(folder, "dm", PASSWORD)
    assert evaluator_recipient(folder, "dm", "new-pw").startswith("age1")


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
    entry = next(e for e in audit_entries(folder, "dm", PASSWORD) if e.command == "boom")
    assert entry.result == "error" and entry.error == "ConversionException"
    assert entry.args == {} and entry.rows_touched == {"main.scratch": 1}
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
    old_key, _ = Keyfile.load(folder).unlock("dm", PASSWORD)
    report = rekey(folder, "dm", PASSWORD)
    assert report.old_fingerprint != report.new_fingerprint and report.slots == 1
    new_key, _ = Keyfile.load(folder).unlock("dm", PASSWORD)
    assert new_key != old_key
    with pytest.raises(IntegrityError, match="does not open with the vault's data key"):
        connect(folder / DB_NAME, old_key, temp_dir=folder / "tmp").close()
    with open_vault(folder, "dm", PASSWORD, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT sum(a) FROM main.kept").fetchone() == (499500,)
    assert sorted(p.name for p in folder.iterdir() if "rekey" in p.name) == []
    result = verify_audit(folder, "dm", PASSWORD)
    assert result.ok, result.problems
    assert [e.command for e in audit_entries(folder, "dm", PASSWORD)][-4:] == [
        "t", "rekey", "t", "audit verify"]
    assert evaluator_recipient(folder, "dm", PASSWORD) == recipient


def test_rekey_needs_role(vault: tuple[Path, str]) -> None:
    folder, _ = vault
    add_user(folder, "dm", PASSWORD, "ana", "ana-pw", "analyst", kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="needs role data-manager or dpo"):
        rekey(folder, "ana", "ana-pw")
