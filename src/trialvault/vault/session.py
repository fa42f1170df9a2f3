"""Opening the vault: unlock a key slot, attach the domains it holds, audit the command.

`open_vault(...)` is the one way into the data. It holds an exclusive lock on the vault folder
for the whole session and:

1. unlocks the user's key slot (certificate chain, then password) — a refusal touches nothing
   but one line in `access-failures.log`;
2. attaches only the catalogs of the domains the slot holds keys for (a role that may not
   read the rights register has no `rights` catalog in its session: the key is not there);
3. commits a signed *begin* entry to the audit log before the caller sees any data;
4. runs the caller's block in one transaction on `con` (DuckDB lets one transaction write one
   attached database; a block that must also write a second domain asks `writer(catalog)` for
   a connection with its own transaction, committed after the main one);
5. commits a signed *end* entry with the outcome, row counts and details — on failure too,
   after rolling the work back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from trialvault.errors import AccessDenied, IntegrityError, NotFound
from trialvault.trust import (
    DOMAINS,
    Keyring,
    Signer,
    UnlockedSlot,
    catalog_file,
    domain_of_catalog,
)
from trialvault.vault import audit, store

LOCK_NAME = ".lock"
# Seconds a command keeps trying when another process holds the vault (the CLI's `--wait`).
_default_wait = 0.0


def set_default_wait(seconds: float) -> None:
    """How long `open_vault` (and `vault_lock`) retry a held lock unless told otherwise."""
    global _default_wait
    _default_wait = max(float(seconds), 0.0)

FAILURE_LOG = "access-failures.log"
REKEY_SUFFIX = ".rekey"
UNKNOWN_USER = "(no such user)"


@dataclass
class VaultSession:
    """An open vault. `con` has the held domains attached (`vault` = child data, default).

    Run statements on `con` directly; do not COMMIT or ROLLBACK (the session does, with the
    audit entries). `con` cannot read or write files (DuckDB external access is off).
    """

    con: duckdb.DuckDBPyConnection
    user: str
    role: str
    slot_id: str
    person: str
    vault_dir: Path
    vault_id: str
    domains: frozenset[str]
    key_fingerprints: dict[str, str]
    ring_hash: str
    command: str
    write: bool
    # Internal: the vault's own admin functions need them; other stages never should.
    _keyring: Keyring = field(repr=False)
    _unlocked: UnlockedSlot = field(repr=False)
    rows_touched: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    begin_entry: audit.AuditEntry | None = None
    end_entry: audit.AuditEntry | None = None
    _writers: dict[str, duckdb.DuckDBPyConnection] = field(default_factory=dict, repr=False)

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

    def require_domain(self, *domains: str) -> None:
        """Refuse unless the slot holds the keys of every domain named."""
        missing = [d for d in domains if d not in self.domains]
        if missing:
            raise AccessDenied(f"`{self.command}` needs the {', '.join(missing)} domain "
                               f"key(s); {self.user!r} ({self.role}) does not hold them")

    def holds(self, domain: str) -> bool:
        return domain in self.domains

    @property
    def signer(self) -> Signer:
        """The acting user's signing key (approvals, receipts, witnesses)."""
        return self._unlocked.signer

    def derive_key(self, domain: str, info: bytes, salt: bytes) -> bytes:
        """A 256-bit key derived (HKDF-SHA256) from a held domain key for one purpose (`info`)
        and instance (`salt`), e.g. an export's keys. The domain key itself never leaves."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        self.require_domain(domain)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(
            self._unlocked.domain_keys[domain])

    def writer(self, catalog: str) -> duckdb.DuckDBPyConnection:
        """A connection for writes to `catalog` when `con` already writes another domain.

        It has its own transaction, committed right after the main one (rolled back with it
        on failure). Reads on it see its own writes; `con` sees them only after commit."""
        if catalog not in self._writers:
            self.require_domain(domain_of_catalog(catalog))
            cursor = self.con.cursor()
            cursor.execute(f"USE {catalog}")
            cursor.execute("BEGIN TRANSACTION")
            self._writers[catalog] = cursor
        return self._writers[catalog]


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files created meanwhile (DuckDB's databases, WALs, spills; the key ring) are 0600."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def vault_lock(vault_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Exclusive lock on the vault folder (released when the process dies, even by kill -9),
    with private file modes while held. `wait`: seconds to keep trying before refusing."""
    if not (vault_dir / "keyslots.json").exists():
        raise NotFound(f"{vault_dir}: not a vault (no keyslots.json; run `trialvault init`, or "
                       "name the vault with --vault DIR or TRIALVAULT_VAULT)")
    fd = os.open(vault_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(_default_wait if wait is None else wait, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _lock_holder(fd)
                    raise store.VaultBusy(f"{vault_dir}: the vault is open in another process"
                                    f"{holder}; try again when it has finished") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": _now()}).encode(), 0)
        with private_files():
            yield
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 200, 0).decode() or "{}")
        return f" (process {int(info['pid'])}, since {str(info['since'])[:19]})"
    except (ValueError, KeyError, TypeError, OSError):
        return ""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def log_failure(vault_dir: Path, user: str, command: str, reason: str, *,
                known_user: bool = True, fixed_reason: bool = False) -> None:
    """One line per refused unlock. A name that matched no slot is not stored (it may be a
    mistyped password or a child's code typed in the wrong box), nor a reason that could quote
    it — unless the caller vouches the reason is fixed text (`fixed_reason`)."""
    line = json.dumps({"at": _now(), "user": user if known_user else UNKNOWN_USER,
                       "command": command, "reason": reason if known_user or fixed_reason
                       else "no key slot for that user name"})
    fd = os.open(vault_dir / FAILURE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def unlock(vault_dir: Path, user: str, password: str, command: str
           ) -> tuple[Keyring, UnlockedSlot]:
    """The key ring and the user's unlocked slot (call under `vault_lock`). Logs a refusal."""
    keyring = Keyring.load(vault_dir)
    recover_interrupted_rekey(vault_dir, keyring)
    known = any(s.user == user for s in keyring.slots)
    try:
        unlocked = keyring.unlock(user, password)
    except (AccessDenied, IntegrityError) as exc:
        log_failure(vault_dir, user, command, str(exc), known_user=known)
        raise
    return keyring, unlocked


def connect(vault_dir: Path, keys: dict[str, bytes], *, sandbox: bool = True,
            create: bool = False) -> duckdb.DuckDBPyConnection:
    temp_dir = vault_dir / store.TEMP_DIR_NAME
    temp_dir.mkdir(mode=0o700, exist_ok=True)
    # Spill files of a killed process are useless (encrypted with a key that died with it).
    for stale in temp_dir.glob("duckdb_temp_*"):
        stale.unlink(missing_ok=True)
    return store.connect(vault_dir, keys, sandbox=sandbox, create=create)


def new_session(con: duckdb.DuckDBPyConnection, keyring: Keyring, unlocked: UnlockedSlot,
                vault_dir: Path, command: str, write: bool) -> VaultSession:
    fingerprints = keyring.domain_fingerprints()
    slot = unlocked.slot
    return VaultSession(
        con=con, user=slot.user, role=slot.role, slot_id=slot.slot_id, person=slot.person,
        vault_dir=vault_dir, vault_id=keyring.vault_id,
        domains=frozenset(unlocked.domain_keys),
        key_fingerprints={d: fingerprints[d] for d in unlocked.domain_keys},
        ring_hash=keyring.ring_hash(), command=command, write=write, _keyring=keyring,
        _unlocked=unlocked)


@contextlib.contextmanager
def open_vault(vault_dir: Path, user: str, password: str, *, command: str,
               args: dict[str, Any], write: bool = True, wait: float | None = None,
               audit_read: bool = True) -> Iterator[VaultSession]:
    """Unlock, attach, audit the start, run the caller's block in one transaction, audit the
    outcome (see module doc). `write=False` rolls the block's changes back.

    `audit_read=False` (with `write=False` only) writes no entries: for the console's page
    views, whose signed-in session is audited once at login and at logout (an entry per page
    view drowned the log). A wrong password is still logged. It gives no power the keys do
    not: whoever holds a password and the files can read without the CLI anyway; what the
    log guarantees is that every change is recorded, and a change cannot happen here."""
    if not audit_read and write:
        raise ValueError("open_vault: only a read (write=False) may skip its audit entries")
    with vault_lock(vault_dir, wait=wait):
        keyring, unlocked = unlock(vault_dir, user, password, command)
        con = connect(vault_dir, unlocked.domain_keys)
        session = new_session(con, keyring, unlocked, vault_dir, command, write)
        if not audit_read:
            try:
                con.execute("BEGIN TRANSACTION")
                try:
                    yield session
                finally:
                    _rollback(con)
                    _rollback_writers(session)
            finally:
                for cursor in session._writers.values():
                    with contextlib.suppress(duckdb.Error):
                        cursor.close()
                con.close()
            return
        try:
            session.begin_entry = append_audit(session, "begin", args)
            con.execute("BEGIN TRANSACTION")
            try:
                yield session
                if write:
                    con.execute("COMMIT")
                    _commit_writers(session)
                else:
                    _rollback(con)
                    _rollback_writers(session)
            except BaseException as exc:
                # DuckDB keeps an interrupted query running until told (duckdb#15925): stop
                # it first, or closing waits for it.
                with contextlib.suppress(duckdb.Error, RuntimeError):
                    con.interrupt()
                _rollback(con)
                _rollback_writers(session)
                with contextlib.suppress(duckdb.Error, OSError):
                    session.end_entry = append_audit(session, "end", {}, exc)
                raise
            session.end_entry = append_audit(session, "end", {})
        finally:
            for cursor in session._writers.values():
                with contextlib.suppress(duckdb.Error):
                    cursor.close()
            con.close()


def _commit_writers(session: VaultSession) -> None:
    committed: list[str] = []
    for catalog, cursor in session._writers.items():
        try:
            cursor.execute("COMMIT")
        except duckdb.Error:
            _rollback_writers(session)
            raise IntegrityError(f"`{session.command}`: the main work was committed but the "
                                 f"{catalog} part was not ({', '.join(committed) or 'none'} "
                                 "committed); run the command again to finish it") from None
        committed.append(catalog)


def _rollback_writers(session: VaultSession) -> None:
    for cursor in session._writers.values():
        _rollback(cursor)


def append_audit(session: VaultSession, phase: str, args: dict[str, Any],
                 exc: BaseException | None = None) -> audit.AuditEntry:
    """Commit one signed entry in a transaction of its own; witness it in audit.chain."""
    con = session.con
    begin = session.begin_entry
    con.execute("BEGIN TRANSACTION")
    try:
        entry = audit.append_entry(
            con, session.signer, user=session.user, slot_id=session.slot_id,
            command=session.command, args=args,
            rows_touched=session.rows_touched if phase == "end" else {},
            detail=session.detail if phase == "end" else {},
            result="started" if phase == "begin" else ("error" if exc else "ok"),
            error=audit.describe_error(exc) if exc else None, phase=phase,
            ring_hash=session.ring_hash, begin_seq=begin.seq if begin and phase == "end"
            else None)
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise
    audit.append_chain(session.vault_dir, entry.hash)
    return entry


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


def recover_interrupted_rekey(vault_dir: Path, keyring: Keyring) -> None:
    """Finish a re-key that a crash interrupted after its new keys were staged (roll forward:
    every new file was complete and on disk before staging); otherwise drop half-made copies."""
    pending = keyring.pending
    if pending is None:
        for leftover in vault_dir.glob(f"*.duckdb{REKEY_SUFFIX}*"):
            leftover.unlink(missing_ok=True)
        return
    for catalog in pending["files"]:
        fresh = vault_dir / (catalog_file(catalog) + REKEY_SUFFIX)
        live = vault_dir / catalog_file(catalog)
        if fresh.exists():
            os.replace(fresh, live)
            live.with_name(live.name + ".wal").unlink(missing_ok=True)
    keyring.commit_keys()
    keyring.save()


def domain_files(vault_dir: Path, domains: frozenset[str] | set[str] | None = None
                 ) -> list[Path]:
    """The database files of the given domains (all when None)."""
    names = domains if domains is not None else set(DOMAINS)
    return [vault_dir / catalog_file(c) for d in DOMAINS.values() if d.name in names
            for c in d.catalogs]
