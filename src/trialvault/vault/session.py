"""Opening the vault: unlock a key slot, attach the encrypted database, audit the command.

`open_vault(...)` is the one way into the data. It holds an exclusive lock on the vault folder
for the whole session, runs the caller's work in ONE DuckDB transaction, and on exit appends
one hash-chained audit entry: in the same transaction as the work when it succeeds, in a
transaction of its own (after rolling the work back) when it fails. A wrong password touches
nothing in the vault; it adds one line (time, user name, command, reason) to the plaintext
`access-failures.log` so repeated guessing shows up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from trialvault.errors import AccessDenied, IntegrityError, TrialvaultError
from trialvault.vault import audit, store
from trialvault.vault.keyslots import Keyfile, Slot

LOCK_NAME = ".lock"
FAILURE_LOG = "access-failures.log"
REKEY_SUFFIX = ".rekey"


@dataclass
class VaultSession:
    """An open vault. `con` has the encrypted database as its default catalog.

    Run statements on `con` directly; do not COMMIT or ROLLBACK (the session does, with the
    audit entry). `con` cannot read or write files (DuckDB external access is off).
    """

    con: duckdb.DuckDBPyConnection
    user: str
    role: str
    slot_id: str
    vault_dir: Path
    data_key_fingerprint: str
    command: str
    write: bool
    # Internal: the vault's own admin functions need them; other stages never should.
    _keyfile: Keyfile = field(repr=False)
    _data_key: bytes = field(repr=False)
    rows_touched: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    def record(self, rows_touched: dict[str, int] | None = None,
               detail: dict[str, Any] | None = None) -> None:
        """Add row counts (summed per name) and details (no row values!) to the audit entry."""
        for name, count in (rows_touched or {}).items():
            self.rows_touched[name] = self.rows_touched.get(name, 0) + int(count)
        self.detail.update(detail or {})

    def require_role(self, *roles: str) -> None:
        """Refuse unless the user's role is one of `roles`."""
        if self.role not in roles:
            raise AccessDenied(f"`{self.command}` needs role {' or '.join(roles)}; "
                               f"{self.user!r} is {self.role}")


@contextlib.contextmanager
def vault_lock(vault_dir: Path) -> Iterator[None]:
    """Exclusive lock on the vault folder (released when the process dies, even by kill -9)."""
    if not (vault_dir / "keyslots.json").exists():
        raise TrialvaultError(f"{vault_dir}: not a vault (no keyslots.json; run `trialvault "
                              "init`)")
    fd = os.open(vault_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise store.VaultBusy(f"{vault_dir}: the vault is open in another process") from None
        yield
    finally:
        os.close(fd)


def log_failure(vault_dir: Path, user: str, command: str, reason: str) -> None:
    line = json.dumps({"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                       "user": user, "command": command, "reason": reason})
    with open(vault_dir / FAILURE_LOG, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def unlock(vault_dir: Path, user: str, password: str, command: str
           ) -> tuple[Keyfile, bytes, Slot]:
    """Keyfile, data key and slot (call under `vault_lock`). Logs a refused attempt."""
    keyfile = Keyfile.load(vault_dir)
    recover_interrupted_rekey(vault_dir, keyfile)
    try:
        data_key, slot = keyfile.unlock(user, password)
    except AccessDenied as exc:
        log_failure(vault_dir, user, command, str(exc))
        raise
    return keyfile, data_key, slot


def connect(vault_dir: Path, data_key: bytes, *, sandbox: bool = True
            ) -> duckdb.DuckDBPyConnection:
    db_path = vault_dir / store.DB_NAME
    if not db_path.exists():
        raise IntegrityError(f"{db_path}: the vault database is missing")
    temp_dir = vault_dir / store.TEMP_DIR_NAME
    temp_dir.mkdir(mode=0o700, exist_ok=True)
    # Spill files of a killed process are useless (encrypted with a key that died with it).
    for stale in temp_dir.glob("duckdb_temp_*"):
        stale.unlink(missing_ok=True)
    return store.connect(db_path, data_key, temp_dir=temp_dir, sandbox=sandbox)


@contextlib.contextmanager
def open_vault(vault_dir: Path, user: str, password: str, *, command: str,
               args: dict[str, Any], write: bool = True) -> Iterator[VaultSession]:
    """Unlock, attach, run the caller's block in one transaction, audit it (see module doc).

    `write=False` rolls the block's changes back (a read-only command cannot change data);
    the audit entry is still written.
    """
    with vault_lock(vault_dir):
        keyfile, data_key, slot = unlock(vault_dir, user, password, command)
        con = connect(vault_dir, data_key)
        session = VaultSession(con=con, user=slot.user, role=slot.role, slot_id=slot.slot_id,
                               vault_dir=vault_dir,
                               data_key_fingerprint=keyfile.doc["data_key_fingerprint"],
                               command=command, write=write, _keyfile=keyfile,
                               _data_key=data_key)
        try:
            con.execute("BEGIN TRANSACTION")
            try:
                yield session
                if not write:
                    con.execute("ROLLBACK")
                    con.execute("BEGIN TRANSACTION")
                entry = _append(session, args, "ok", None)
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con)
                _audit_failure(session, args, exc)
                raise
            audit.append_chain(vault_dir, entry.hash)
        finally:
            con.close()


def _append(session: VaultSession, args: dict[str, Any], result: str, error: str | None
            ) -> audit.AuditEntry:
    return audit.append_entry(session.con, user=session.user, slot_id=session.slot_id,
                              command=session.command, args=args,
                              rows_touched=session.rows_touched, detail=session.detail,
                              result=result, error=error)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def _audit_failure(session: VaultSession, args: dict[str, Any], exc: BaseException) -> None:
    """Record a failed command; never mask the original error."""
    con = session.con
    try:
        con.execute("BEGIN TRANSACTION")
        entry = _append(session, args, "error", audit.describe_error(exc))
        con.execute("COMMIT")
    except duckdb.Error:
        _rollback(con)
        return
    audit.append_chain(session.vault_dir, entry.hash)


def recover_interrupted_rekey(vault_dir: Path, keyfile: Keyfile) -> None:
    """Finish or undo a re-key that a crash interrupted (see keyslots module)."""
    fresh = vault_dir / (store.DB_NAME + REKEY_SUFFIX)
    if "pending" not in keyfile.doc:
        # A crash while copying: the half-made copy was never referenced.
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
        return
    if fresh.exists():
        # The swap never happened: the old database and key are still the vault's.
        fresh.unlink()
        fresh.with_name(fresh.name + ".wal").unlink(missing_ok=True)
        pending = keyfile.drop_new_key()
        audit.remove_last_chain_line(vault_dir, pending["audit_hash"])
    else:
        keyfile.commit_new_key()
    keyfile.save()
