"""Creating a vault, managing its users, re-keying it, and its audit log's witnesses."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from trialvault import __version__
from trialvault.errors import AccessDenied, IntegrityError, TrialvaultError
from trialvault.seal import generate_identity
from trialvault.trust import (
    DEFAULT_KDF,
    DOMAINS,
    REKEY_ROLES,
    KdfParams,
    Keyring,
    Slot,
    UnlockedSlot,
    catalog_file,
    cert_hash,
    new_domain_key,
)
from trialvault.vault import audit, store
from trialvault.vault.schema import CATALOG_DDL
from trialvault.vault.session import (
    LOCK_NAME,
    REKEY_SUFFIX,
    VaultSession,
    append_audit,
    connect,
    new_session,
    open_vault,
    private_files,
    unlock,
    vault_lock,
)

EVALUATOR_IDENTITY = "evaluator_identity"
TOMBSTONE_KEY = "tombstone_key"
VAULT_FORMAT = "trialvault-vault/2"


@dataclass(frozen=True)
class RekeyReport:
    domains: list[str]
    old_fingerprints: dict[str, str]
    new_fingerprints: dict[str, str]
    slots: int
    bytes_before: int
    bytes_after: int


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def init_vault(vault_dir: Path, user: str, password: str, *, role: str = "data-manager",
               kdf_params: KdfParams | None = None, study_id: str | None = None,
               person: str | None = None) -> str:
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
        with private_files():
            recipient = _build(staging, user, password, kdf_params or DEFAULT_KDF, study_id,
                               person or user)
        if vault_dir.exists():
            vault_dir.rmdir()
        os.replace(staging, vault_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return recipient


def create_catalogs(con: duckdb.DuckDBPyConnection) -> None:
    for ddls in CATALOG_DDL.values():
        for ddl in ddls:
            con.execute(ddl)
    con.execute(audit.AUDIT_DDL)


def _build(folder: Path, user: str, password: str, kdf: KdfParams, study_id: str | None,
           person: str) -> str:
    folder.chmod(0o700)
    keyring = Keyring.create(folder)
    domain_keys = {d: new_domain_key() for d in DOMAINS}
    root = keyring.create_root(user, person, password, domain_keys, kdf)
    identity, recipient = generate_identity()
    keyring.set_evaluator(root, recipient)
    con = connect(folder, domain_keys, sandbox=False, create=True)
    try:
        create_catalogs(con)
        session = new_session(con, keyring, root, folder, "init", True)
        session.begin_entry = append_audit(session, "begin", {
            "user": user, "study_id": study_id, "certs": [_cert(keyring, root.slot)]})
        con.execute("INSERT INTO audit.vault_info VALUES (?, ?, ?, ?, ?)",
                    [keyring.vault_id, study_id, _now(), __version__, VAULT_FORMAT])
        con.execute("INSERT INTO secrets.secrets VALUES (?, ?)", [EVALUATOR_IDENTITY, identity])
        con.execute("INSERT INTO rights.secrets VALUES (?, ?)",
                    [TOMBSTONE_KEY, secrets.token_hex(32)])
        _register(con, keyring, [root.slot], by=user, seq=session.begin_entry.seq)
        session.record(detail={"recipient": recipient,
                               "key_fingerprints": keyring.domain_fingerprints()})
        append_audit(session, "end", {})
        for catalog in _catalogs():
            con.execute(f"CHECKPOINT {catalog}")
    finally:
        con.close()
    keyring.save()
    (folder / LOCK_NAME).touch(mode=0o600)
    return recipient


def _catalogs() -> list[str]:
    return [c for d in DOMAINS.values() for c in d.catalogs]


def _cert(keyring: Keyring, slot: Slot) -> dict[str, Any]:
    return dict(keyring.slot_doc(slot.user)["cert"])


def _register(con: duckdb.DuckDBPyConnection, keyring: Keyring, slots: list[Slot], *, by: str,
              seq: int) -> None:
    for slot in slots:
        cert = _cert(keyring, slot)
        con.execute("INSERT OR REPLACE INTO rights.slot_registry VALUES (?, ?, ?, ?, ?, ?, ?, "
                    "NULL)", [cert_hash(cert), slot.slot_id, slot.user, slot.role, _now(), by,
                              seq])


def list_users(vault_dir: Path) -> list[Slot]:
    """The key slots (user, person, role, created) as their certificates state them; needs no
    password: keyslots.json holds no secret in the clear. Use `check_slots` to verify them."""
    return Keyring.load(vault_dir).slots


def check_slots(vault_dir: Path) -> dict[str, list[str]]:
    """Slots whose certificate chain does not verify (user → reasons); no password needed."""
    return Keyring.load(vault_dir).all_problems()


def default_user(vault_dir: Path) -> str:
    """The user a command acts as when none is named: the vault's only user."""
    slots = Keyring.load(vault_dir).slots
    if len(slots) == 1:
        return slots[0].user
    raise AccessDenied(f"{vault_dir} has {len(slots)} users: name yours with --user NAME (or "
                       "set TRIALVAULT_USER); `trialvault users list` shows them")


def add_user(vault_dir: Path, user: str, password: str, new_user: str, new_password: str,
             role: str, *, person: str | None = None,
             kdf_params: KdfParams | None = None) -> Slot:
    """A data-manager gives `new_user` (a distinct `person`) a key slot with `role`'s keys."""
    with open_vault(vault_dir, user, password, command="users add",
                    args={"new_user": new_user, "role": role, "person": person or new_user}
                    ) as session:
        session.require_role("data-manager")
        ring = session._keyring
        slot = ring.add_slot(session._unlocked, new_user, role, new_password, person=person,
                             kdf=kdf_params or DEFAULT_KDF)
        assert session.begin_entry is not None
        _register(session.con, ring, [slot], by=session.user, seq=session.begin_entry.seq)
        ring.save()
        session.record(detail={"slot_id": slot.slot_id, "certs": [_cert(ring, slot)]})
    return slot


def remove_user(vault_dir: Path, user: str, password: str, target: str, *,
                rekey_after: bool = True) -> Slot:
    """Delete `target`'s key slot (re-issuing the certificates it signed); then, by default,
    re-key every domain it could decrypt, so a copied key of theirs opens nothing new."""
    with open_vault(vault_dir, user, password, command="users remove",
                    args={"target": target, "rekey": rekey_after}) as session:
        session.require_role("data-manager")
        ring = session._keyring
        held = _held_by(ring, target)
        if ring.cert_problems(ring.slot_doc(target)):
            # A planted or edited slot: it issued nothing valid; drop it as it is.
            slot, reissued = ring.drop_unverified(target), list[str]()
        else:
            slot, reissued = ring.remove_slot(session._unlocked, target)
        session.con.execute("UPDATE rights.slot_registry SET retired_at = ? WHERE slot_id = ?",
                            [_now(), slot.slot_id])
        survivors = [s for s in ring.slots if cert_hash(_cert(ring, s)) in reissued]
        assert session.begin_entry is not None
        _register(session.con, ring, survivors, by=session.user, seq=session.begin_entry.seq)
        ring.save()
        session.record(detail={"slot_id": slot.slot_id, "domains_held": sorted(held),
                               "certs": [_cert(ring, s) for s in survivors]})
    if rekey_after:
        rekey(vault_dir, user, password, domains=held or None)
    return slot


def _held_by(ring: Keyring, user: str) -> set[str]:
    cert = ring.slot_doc(user).get("cert") or {}
    domains = cert.get("domains")
    return {d for d in domains if d in DOMAINS} if isinstance(domains, list) else set(DOMAINS)


def change_password(vault_dir: Path, user: str, old_password: str, new_password: str, *,
                    kdf_params: KdfParams | None = None) -> None:
    """Re-wrap the user's own slot under a new password (their keys are unchanged)."""
    with open_vault(vault_dir, user, old_password, command="passwd", args={}) as session:
        session._keyring.change_password(user, old_password, new_password,
                                         kdf_params or DEFAULT_KDF)
        session._keyring.save()


def evaluator_recipient(vault_dir: Path) -> str:
    """The public age recipient LAs seal packages to, checked against a data manager's
    signature in the key ring; needs no password (it is public)."""
    return Keyring.load(vault_dir).evaluator_recipient()


def evaluator_identity(con: duckdb.DuckDBPyConnection) -> str:
    """The evaluator's secret age identity (secrets domain: data managers only)."""
    return _secret(con, "secrets", EVALUATOR_IDENTITY)


def tombstone_key(con: duckdb.DuckDBPyConnection) -> bytes:
    """The key of erased children's hashes (register domain: data managers and DPOs)."""
    return bytes.fromhex(_secret(con, "rights", TOMBSTONE_KEY))


def _secret(con: duckdb.DuckDBPyConnection, catalog: str, name: str) -> str:
    attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()"
                                          ).fetchall()}
    if catalog not in attached:
        raise AccessDenied(f"this session does not hold the key of the {name.replace('_', ' ')}")
    row = con.execute(f"SELECT value FROM {catalog}.secrets WHERE name = ?", [name]).fetchone()
    if row is None:
        raise IntegrityError(f"vault has no {name} (damaged vault)")
    return str(row[0])


def registered_certs(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Hashes of the certificates audited `users add`/init/migrate created and not retired,
    that the audit log also names (both must agree)."""
    registry = {r[0] for r in con.execute(
        "SELECT cert_hash FROM rights.slot_registry WHERE retired_at IS NULL").fetchall()}
    audited: set[str] = set()
    for command in audit.CERT_COMMANDS:
        for entry in audit.read_entries(con, command=command):
            certs = entry.args.get("certs") if entry.phase == "begin" else (
                entry.detail.get("certs") if entry.result == "ok" else None)
            audited.update(cert_hash(c) for c in certs or [] if isinstance(c, dict))
    return registry & audited


def rekey(vault_dir: Path, user: str, password: str, *, domains: set[str] | None = None
          ) -> RekeyReport:
    """Copy each rotated domain's files under a fresh key, seal the new keys to every slot
    granted them, and retire the old files and keys. Deleted rows are not carried over, so
    after an erasure they are gone from the live files; old copies are useless without the
    old keys, which no slot holds any longer.

    Refused (nothing changed, an audit entry written) when any slot in the key ring is not
    one an audited `users add` created. Crash-safe: the new keys are staged in the key ring
    only once every new file is complete; an interrupted swap is rolled forward at the next
    open.
    """
    with vault_lock(vault_dir):
        keyring, unlocked = unlock(vault_dir, user, password, "rekey")
        rotate = sorted(domains if domains is not None else unlocked.domain_keys,
                        key=list(DOMAINS).index)
        con = connect(vault_dir, unlocked.domain_keys, sandbox=False)
        session = new_session(con, keyring, unlocked, vault_dir, "rekey", True)
        try:
            session.begin_entry = append_audit(session, "begin", {"domains": rotate})
            try:
                new_keys = _copy_domains(session, unlocked, rotate)
            except BaseException as exc:
                _discard_fresh(vault_dir)
                with contextlib.suppress(duckdb.Error, OSError):
                    append_audit(session, "end", {}, exc)
                raise
        finally:
            con.close()
        old = {d: keyring.domain_fingerprints()[d] for d in rotate}
        bytes_before = _size(vault_dir, rotate)
        files = [c for d in rotate for c in DOMAINS[d].catalogs]
        keyring.stage_keys(new_keys, files)
        keyring.save()
        for catalog in files:
            live = vault_dir / catalog_file(catalog)
            os.replace(live.with_name(live.name + REKEY_SUFFIX), live)
            live.with_name(live.name + ".wal").unlink(missing_ok=True)
        keyring.commit_keys()
        keyring.save()
        # The outcome goes into the (possibly new) audit file, opened with the new keys.
        after = keyring.unlock(user, password) if "audit" in rotate else unlocked
        con = connect(vault_dir, after.domain_keys)
        try:
            session = new_session(con, keyring, after, vault_dir, "rekey", True)
            session.begin_entry = _last_begin(con)
            session.record(detail={"old_fingerprints": old,
                                   "new_fingerprints": {d: keyring.domain_fingerprints()[d]
                                                        for d in rotate}})
            append_audit(session, "end", {})
        finally:
            con.close()
        return RekeyReport(domains=rotate, old_fingerprints=old,
                           new_fingerprints={d: keyring.domain_fingerprints()[d]
                                             for d in rotate},
                           slots=len(keyring.slots), bytes_before=bytes_before,
                           bytes_after=_size(vault_dir, rotate))


def _last_begin(con: duckdb.DuckDBPyConnection) -> audit.AuditEntry | None:
    begins = [e for e in audit.read_entries(con, last=5, command="rekey") if e.phase == "begin"]
    return begins[-1] if begins else None


def _copy_domains(session: VaultSession, unlocked: UnlockedSlot, rotate: list[str]
                  ) -> dict[str, bytes]:
    """Check every slot, then copy each rotated domain's catalogs into fresh files."""
    con, ring = session.con, session._keyring
    if session.role not in REKEY_ROLES:
        raise AccessDenied(f"`rekey` needs role {' or '.join(REKEY_ROLES)}; {session.user!r} "
                           f"is {session.role}")
    missing = [d for d in rotate if d not in unlocked.domain_keys]
    if missing:
        raise AccessDenied(f"{session.user!r} does not hold the {', '.join(missing)} key(s) and "
                           "cannot rotate them")
    problems = ring.all_problems(registered_certs(con))
    if problems:
        listed = "; ".join(f"{who}: {', '.join(why)}" for who, why in problems.items())
        raise IntegrityError(f"re-key refused, nothing changed: the key ring holds slots that "
                             f"no audited `users add` created or that do not verify — {listed}."
                             " Remove them with `trialvault users remove NAME` first")
    new_keys = {d: new_domain_key() for d in rotate}
    for domain in rotate:
        for catalog in DOMAINS[domain].catalogs:
            fresh = session.vault_dir / (catalog_file(catalog) + REKEY_SUFFIX)
            fresh.unlink(missing_ok=True)
            con.execute(f"CHECKPOINT {catalog}")
            store.attach(con, fresh, new_keys[domain], "fresh")
            try:
                con.execute(f"COPY FROM DATABASE {catalog} TO fresh")
                con.execute("CHECKPOINT fresh")
            finally:
                con.execute("DETACH fresh")
    return new_keys


def _discard_fresh(vault_dir: Path) -> None:
    for leftover in vault_dir.glob(f"*.duckdb{REKEY_SUFFIX}*"):
        leftover.unlink(missing_ok=True)


def _size(vault_dir: Path, domains: list[str]) -> int:
    return sum((vault_dir / catalog_file(c)).stat().st_size
               for d in domains for c in DOMAINS[d].catalogs
               if (vault_dir / catalog_file(c)).exists())


def audit_entries(vault_dir: Path, user: str, password: str, *, last: int | None = None
                  ) -> list[audit.AuditEntry]:
    """The audit log (the last `last` entries when given); reading it is itself audited."""
    with open_vault(vault_dir, user, password, command="audit show", args={"last": last},
                    write=False) as session:
        return audit.read_entries(session.con, last=last)


def verify_audit(vault_dir: Path, user: str, password: str, *,
                 witnesses: list[Path] | None = None) -> audit.AuditVerification:
    """Recompute the hash chain and signatures; compare with audit.chain and the witnesses
    (signed chain heads kept elsewhere: `audit witness` files and LA ingest receipts)."""
    loaded = [(p.name, audit.load_witness(p)) for p in witnesses or []]
    with open_vault(vault_dir, user, password, command="audit verify",
                    args={"witnesses": [p.name for p in witnesses or []]},
                    write=False) as session:
        result = audit.verify(session.con, vault_dir, vault_id=session.vault_id,
                              witnesses=loaded, running=session.begin_entry.seq
                              if session.begin_entry else None)
        session.record(detail={"ok": result.ok, "problems": len(result.problems),
                               "entries": result.entries, "witnesses": len(loaded)})
        return result


def write_witness(vault_dir: Path, user: str, password: str, out: Path) -> dict[str, Any]:
    """A signed chain head (this command's own begin entry) to keep outside the vault."""
    with open_vault(vault_dir, user, password, command="audit witness", args={},
                    write=False) as session:
        begin = session.begin_entry
        assert begin is not None
        witness = audit.make_witness(session.signer, vault_id=session.vault_id,
                                     user=session.user, slot_id=session.slot_id,
                                     seq=begin.seq, digest_=begin.hash)
        session.record(detail={"witness_seq": begin.seq})
    from trialvault.files import write_atomic
    from trialvault.trust import canonical

    write_atomic(out, canonical(witness) + b"\n")
    return witness


def slot_registry_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute("SELECT * FROM rights.slot_registry ORDER BY audit_seq").fetchall()

