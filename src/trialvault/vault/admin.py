"""Creating a vault, managing its users, and re-keying it."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from trialvault import __version__
from trialvault.errors import AccessDenied, TrialvaultError
from trialvault.seal import generate_identity, recipient_of
from trialvault.vault import audit, store
from trialvault.vault.keyslots import (
    DEFAULT_KDF,
    KdfParams,
    Keyfile,
    Slot,
    fingerprint,
    new_data_key,
)
from trialvault.vault.schema import META_DDL
from trialvault.vault.session import (
    LOCK_NAME,
    REKEY_SUFFIX,
    VaultSession,
    _audit_failure,
    _rollback,
    connect,
    log_failure,
    open_vault,
    unlock,
    vault_lock,
)

EVALUATOR_IDENTITY = "evaluator_identity"
TOMBSTONE_KEY = "tombstone_key"
REKEY_ROLES = ("data-manager", "dpo")


@dataclass(frozen=True)
class RekeyReport:
    old_fingerprint: str
    new_fingerprint: str
    slots: int
    bytes_before: int
    bytes_after: int


def init_vault(vault_dir: Path, user: str, password: str, *, role: str = "data-manager",
               kdf_params: KdfParams | None = None, study_id: str | None = None) -> str:
    """Create a vault folder with one data-manager; return the evaluator's age recipient.

    The folder is built beside its target and renamed into place, so a failed init leaves
    nothing. `kdf_params` exists for tests (e.g. FAST_TEST_KDF); the default costs ~0.4 s.
    """
    if role != "data-manager":
        raise AccessDenied("the first user of a vault must be a data-manager (who adds the rest)")
    vault_dir = vault_dir.absolute()
    if vault_dir.exists() and (not vault_dir.is_dir() or any(vault_dir.iterdir())):
        raise TrialvaultError(f"{vault_dir}: already exists and is not an empty folder")
    vault_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{vault_dir.name}.init-", dir=vault_dir.parent))
    try:
        recipient = _build(staging, user, password, kdf_params or DEFAULT_KDF, study_id)
        if vault_dir.exists():
            vault_dir.rmdir()
        os.replace(staging, vault_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return recipient


def _build(folder: Path, user: str, password: str, kdf: KdfParams, study_id: str | None
           ) -> str:
    folder.chmod(0o700)
    keyfile = Keyfile.create(folder)
    data_key = new_data_key()
    slot = keyfile.add_slot(user, "data-manager", password, data_key, kdf)
    identity, recipient = generate_identity()
    con = store.connect(folder / store.DB_NAME, data_key, temp_dir=folder / store.TEMP_DIR_NAME)
    try:
        con.execute("BEGIN TRANSACTION")
        for ddl in (*META_DDL, audit.AUDIT_DDL):
            con.execute(ddl)
        con.execute("INSERT INTO meta.vault_info VALUES (?, ?, ?, ?)",
                    [keyfile.vault_id, study_id,
                     dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), __version__])
        con.execute("INSERT INTO meta.secrets VALUES (?, ?), (?, ?)",
                    [EVALUATOR_IDENTITY, identity, TOMBSTONE_KEY, secrets.token_hex(32)])
        entry = audit.append_entry(con, user=user, slot_id=slot.slot_id, command="init",
                                   args={"user": user, "study_id": study_id}, rows_touched={},
                                   detail={"recipient": recipient,
                                           "data_key_fingerprint": fingerprint(data_key)},
                                   result="ok", error=None)
        con.execute("COMMIT")
    finally:
        con.close()
    keyfile.save()
    audit.append_chain(folder, entry.hash)
    (folder / LOCK_NAME).touch(mode=0o600)
    return recipient


def list_users(vault_dir: Path) -> list[Slot]:
    """The key slots (user, role, created); needs no password: keyslots.json is plaintext."""
    return Keyfile.load(vault_dir).slots


def default_user(vault_dir: Path) -> str:
    """The user a command acts as when none is named: the only user, else the first
    data-manager (in order of creation)."""
    slots = Keyfile.load(vault_dir).slots
    if len(slots) == 1:
        return slots[0].user
    managers = [s.user for s in slots if s.role == "data-manager"]
    if not managers:
        raise AccessDenied(f"{vault_dir}: name the user (--user or TRIALVAULT_USER)")
    return managers[0]


def add_user(vault_dir: Path, user: str, password: str, new_user: str, new_password: str,
             role: str, *, kdf_params: KdfParams | None = None) -> Slot:
    """A data-manager gives `new_user` a key slot with `role`."""
    with open_vault(vault_dir, user, password, command="users add",
                    args={"new_user": new_user, "role": role}) as session:
        session.require_role("data-manager")
        slot = session._keyfile.add_slot(new_user, role, new_password, session._data_key,
                                         kdf_params or DEFAULT_KDF)
        session._keyfile.save()
        session.record(detail={"slot_id": slot.slot_id})
    return slot


def remove_user(vault_dir: Path, user: str, password: str, target: str, *,
                rekey_after: bool = True) -> Slot:
    """Delete `target`'s key slot; then (by default) re-key so a copied data key is useless."""
    with open_vault(vault_dir, user, password, command="users remove",
                    args={"target": target, "rekey": rekey_after}) as session:
        session.require_role("data-manager")
        slot = session._keyfile.remove_slot(target)
        session._keyfile.save()
        session.record(detail={"slot_id": slot.slot_id})
    if rekey_after:
        rekey(vault_dir, user, password)
    return slot


def change_password(vault_dir: Path, user: str, old_password: str, new_password: str, *,
                    kdf_params: KdfParams | None = None) -> None:
    """Re-wrap the user's own slot under a new password (the data key is unchanged)."""
    with open_vault(vault_dir, user, old_password, command="passwd", args={}) as session:
        session._keyfile.change_password(user, old_password, new_password,
                                         kdf_params or DEFAULT_KDF)
        session._keyfile.save()


def evaluator_recipient(vault_dir: Path, user: str, password: str) -> str:
    """The public age recipient LAs seal packages to (read from the encrypted database)."""
    with open_vault(vault_dir, user, password, command="pubkey", args={}, write=False) as s:
        return recipient_of(read_secret(s.con, EVALUATOR_IDENTITY))


def read_secret(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """A secret kept inside the encrypted database (evaluator identity, tombstone key)."""
    row = con.execute("SELECT value FROM meta.secrets WHERE name = ?", [name]).fetchone()
    if row is None:
        raise TrialvaultError(f"vault has no {name} (damaged vault)")
    return str(row[0])


def rekey(vault_dir: Path, user: str, password: str) -> RekeyReport:
    """Copy the database into a new file under a fresh data key, re-wrap every slot, and
    retire the old file and key. Deleted rows are not carried over, so after an erasure
    they are gone from the live file; the old file's blocks are useless without its key.

    Crash-safe: until the swap the old file and key stay the vault's; an interrupted swap is
    finished or undone the next time the vault is opened.
    """
    with vault_lock(vault_dir):
        keyfile, old_key, slot = unlock(vault_dir, user, password, "rekey")
        if slot.role not in REKEY_ROLES:
            log_failure(vault_dir, user, "rekey", f"role {slot.role} may not re-key")
            raise AccessDenied(f"`rekey` needs role {' or '.join(REKEY_ROLES)}; {user!r} is "
                               f"{slot.role}")
        db_path = vault_dir / store.DB_NAME
        fresh = vault_dir / (store.DB_NAME + REKEY_SUFFIX)
        new_key = new_data_key()
        bytes_before = _size(db_path)
        con = connect(vault_dir, old_key, sandbox=False)
        try:
            try:
                con.execute("CHECKPOINT")
                store.attach(con, fresh, new_key, "fresh")
                con.execute(f"COPY FROM DATABASE {store.CATALOG} TO fresh")
                con.execute("USE fresh")
                con.execute("BEGIN TRANSACTION")
                entry = audit.append_entry(
                    con, user=slot.user, slot_id=slot.slot_id, command="rekey", args={},
                    rows_touched={}, detail={"old_fingerprint": fingerprint(old_key),
                                             "new_fingerprint": fingerprint(new_key)},
                    result="ok", error=None)
                con.execute("COMMIT")
                con.execute("CHECKPOINT fresh")
                con.execute(f"USE {store.CATALOG}")
                con.execute("DETACH fresh")
            except BaseException as exc:
                _rollback(con)
                with contextlib.suppress(Exception):
                    con.execute(f"USE {store.CATALOG}")
                    con.execute("DETACH fresh")
                fresh.unlink(missing_ok=True)
                fresh.with_name(fresh.name + ".wal").unlink(missing_ok=True)
                _audit_failure(VaultSession(con=con, user=slot.user, role=slot.role,
                                            slot_id=slot.slot_id, vault_dir=vault_dir,
                                            data_key_fingerprint=fingerprint(old_key),
                                            command="rekey", write=True, _keyfile=keyfile,
                                            _data_key=old_key), {}, exc)
                raise
        finally:
            con.close()
        # Two-phase swap (see keyslots module): stage, witness, rename, commit.
        keyfile.stage_new_key(new_key, entry.hash)
        keyfile.save()
        audit.append_chain(vault_dir, entry.hash)
        os.replace(fresh, db_path)
        db_path.with_name(db_path.name + ".wal").unlink(missing_ok=True)
        keyfile.commit_new_key()
        keyfile.save()
        return RekeyReport(old_fingerprint=fingerprint(old_key),
                           new_fingerprint=fingerprint(new_key), slots=len(keyfile.slots),
                           bytes_before=bytes_before, bytes_after=_size(db_path))


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def audit_entries(vault_dir: Path, user: str, password: str, *, last: int | None = None
                  ) -> list[audit.AuditEntry]:
    """The audit log (the last `last` entries when given); reading it is itself audited."""
    with open_vault(vault_dir, user, password, command="audit show", args={"last": last},
                    write=False) as session:
        return audit.read_entries(session.con, last=last)


def verify_audit(vault_dir: Path, user: str, password: str) -> audit.AuditVerification:
    """Recompute the hash chain and compare it with audit.chain (checked before this
    command's own entry is added)."""
    with open_vault(vault_dir, user, password, command="audit verify", args={},
                    write=False) as session:
        result = audit.verify(session.con, vault_dir)
        session.record(detail={"ok": result.ok, "problems": len(result.problems),
                               "entries": result.entries})
        return result
