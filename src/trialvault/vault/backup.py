"""Backups that keep erased children erased: `trialvault backup` and `trialvault restore`.

**What key protects a backup.** A copy of the vault folder would carry the key ring: it would
open with any user's unchanged password and show a child erased since (the re-key after an
erasure changes the live keys, not the copy's). So a backup carries *no key ring*. Its data
files (the child and outputs domains) are copied under fresh random keys made for that backup,
and those keys are sealed (age, X25519) to the vault's **backup identity**, a secret kept only in
the register domain of the live vault — the domain where every erasure, restriction and
correction is recorded. No password opens a backup; it opens only through `restore`, run by a
data manager on the vault it came from, which applies those records before the data is back:

1. check the backup (format, this vault's id, the data manager's signature, file hashes) and
   that the inventory does not record it as destroyed;
2. copy each backed-up file under a fresh domain key into a staged file in the vault folder;
3. in the staged child data: delete every tombstoned child (rows and validation lines), set
   restriction and objection flags as the register records them, re-apply every correction of
   the overlay, rebuild the harmonised view;
4. stage the new keys for every slot and swap the files in (the re-key's crash-safe two-phase
   swap: a crash before staging leaves the vault as it was; after it, the next open rolls
   forward to files that were already reconciled).

So restored data can never be read with an erased child in it: the erasure is re-applied
before the files are the vault's. This is the ICO's "beyond use": a backup that still holds an
erased child is kept only until it is destroyed (it is on the "still to destroy" list), is not
used, and cannot be opened except by a restore that erases the child again.

Every backup is registered in the inventory (`vault.inventory`) with the children it holds.
The register, secrets and audit domains and the key ring are not in a backup: they are the
vault's control data (the register is what a restore needs to be safe), small, and kept by the
vault itself; a lost register means backups cannot be opened — by design.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyrage
from pyrage import x25519

from trialvault.errors import AccessDenied, InputFileError, IntegrityError, PolicyRefusal
from trialvault.trust import DOMAINS, Keyring, canonical, catalog_file, new_domain_key, verify
from trialvault.vault import inventory, overlay, store
from trialvault.vault.session import (
    REKEY_SUFFIX,
    append_audit,
    connect,
    new_session,
    unlock,
    vault_lock,
)

BACKUP_FORMAT = "trialvault-backup/1"
MANIFEST = "backup.json"
KEYS_FILE = "keys.age"
BACKUP_IDENTITY = "backup_identity"
BACKED_UP = ("child", "outputs")  # the data; see the module doc for the rest
ROLES = ("data-manager",)


@dataclass(frozen=True)
class BackupReport:
    backup_id: str
    folder: Path
    files: dict[str, int]  # file → bytes
    children: int


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    made_at: str
    erased_children: int
    erased_rows: int
    flags: int
    corrections: int
    harmonised_rows: dict[str, int]
    packages_since: list[str] = field(default_factory=list)
    """Packages ingested after the backup was made: not in it (ask the LAs to send them
    again; their receipts name them)."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _catalogs() -> list[str]:
    return [c for d in BACKED_UP for c in DOMAINS[d].catalogs]


def _backup_recipient(con: duckdb.DuckDBPyConnection) -> str:
    """The public half of the vault's backup identity, made on first use (register domain)."""
    from trialvault.seal import generate_identity, recipient_of

    row = con.execute("SELECT value FROM rights.secrets WHERE name = ?",
                      [BACKUP_IDENTITY]).fetchone()
    if row is not None:
        return recipient_of(str(row[0]))
    identity, recipient = generate_identity()
    con.execute("BEGIN TRANSACTION")
    con.execute("INSERT INTO rights.secrets VALUES (?, ?)", [BACKUP_IDENTITY, identity])
    con.execute("COMMIT")
    return recipient


@contextlib.contextmanager
def _admin(vault_dir: Path, user: str, password: str, command: str, args: dict[str, Any],
           domains: tuple[str, ...] | None = None) -> Any:
    """A data manager's non-sandboxed session (it must attach backup files), audited like
    every command: a begin entry before, an end entry (ok or error) after."""
    with vault_lock(vault_dir):
        keyring, unlocked = unlock(vault_dir, user, password, command)
        keys = {d: k for d, k in unlocked.domain_keys.items()
                if domains is None or d in domains}
        con = connect(vault_dir, keys, sandbox=False)
        session = new_session(con, keyring, unlocked, vault_dir, command, True)
        try:
            session.begin_entry = append_audit(session, "begin", args)
            try:
                if session.role not in ROLES:
                    raise AccessDenied(f"`{command}` needs role {' or '.join(ROLES)}; "
                                       f"{session.user!r} is {session.role}")
                yield session
            except BaseException as exc:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                with contextlib.suppress(duckdb.Error, OSError):
                    append_audit(session, "end", {}, exc)
                raise
            append_audit(session, "end", {})
        finally:
            con.close()


# --- backup ---------------------------------------------------------------------------------

def backup(vault_dir: Path, user: str, password: str, out_dir: Path) -> BackupReport:
    """Write an encrypted backup of the vault's data to `out_dir` (new or empty); register it."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputFileError("the backup folder exists and is not empty", file=str(out_dir))
    if out_dir.absolute().is_relative_to(Path(vault_dir).absolute()):
        raise PolicyRefusal("the backup folder must be outside the vault folder")
    backup_id = str(uuid.uuid4())
    with _admin(vault_dir, user, password, "backup", {"backup_id": backup_id,
                                                       "out": out_dir.name}) as s:
        con = s.con
        recipient = _backup_recipient(con)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            keys = {d: new_domain_key() for d in BACKED_UP}
            files: dict[str, dict[str, Any]] = {}
            for domain in BACKED_UP:
                for catalog in DOMAINS[domain].catalogs:
                    target = work / catalog_file(catalog)
                    con.execute(f"CHECKPOINT {catalog}")
                    store.attach(con, target, keys[domain], "bk")
                    try:
                        con.execute(f"COPY FROM DATABASE {catalog} TO bk")
                        con.execute("CHECKPOINT bk")
                    finally:
                        con.execute("DETACH bk")
                    files[target.name] = {"catalog": catalog, "domain": domain,
                                          "bytes": target.stat().st_size,
                                          "sha256": inventory.sha256_of(target)}
            sealed = pyrage.encrypt(json.dumps({d: k.hex() for d, k in keys.items()}).encode(),
                                    [x25519.Recipient.from_str(recipient)])
            (work / KEYS_FILE).write_bytes(sealed)
            assert s.begin_entry is not None
            body = {"format": BACKUP_FORMAT, "backup_id": backup_id, "vault_id": s.vault_id,
                    "made_at": _now(), "made_by": {"user": s.user, "slot_id": s.slot_id},
                    "audit_seq": s.begin_entry.seq, "domains": list(BACKED_UP),
                    "files": files, "keys": {"file": KEYS_FILE,
                                             "sha256": inventory.sha256_of(work / KEYS_FILE),
                                             "sealed_to": "the vault's backup identity "
                                                          "(register domain)"}}
            manifest = {**body, "signature": s.signer.sign(BACKUP_FORMAT, body),
                        "signer": s.signer.public}
            (work / MANIFEST).write_bytes(canonical(manifest) + b"\n")
            if out_dir.exists():
                out_dir.rmdir()
            os.replace(work, out_dir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        n = _register_backup(con, backup_id, out_dir, s.user)
        s.record(detail={"backup_id": backup_id, "files": len(files), "children": n})
    return BackupReport(backup_id, out_dir, {f: int(v["bytes"]) for f, v in files.items()}, n)


def _register_backup(con: duckdb.DuckDBPyConnection, backup_id: str, out_dir: Path,
                     user: str) -> int:
    from trialvault.rights.actions import child_tables

    union = " UNION ".join(f"SELECT la_code, child_id FROM {t.qualified}"
                           for t in child_tables(con))
    con.execute("BEGIN TRANSACTION")
    try:
        children = con.execute(f"SELECT DISTINCT la_code, child_id FROM ({union})"
                               ).fetch_arrow_table() if union else None
        n = inventory.register(con, artefact_id=backup_id, kind="backup", location=out_dir,
                               user=user, children=children if children is not None else [],
                               sha256=inventory.sha256_of(out_dir))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return n


# --- restore --------------------------------------------------------------------------------

def read_manifest(backup_dir: Path, keyring: Keyring) -> dict[str, Any]:
    """The backup's manifest, checked: format, signature by a slot of this vault, file hashes."""
    path = Path(backup_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"not a readable backup manifest ({type(exc).__name__})",
                             file=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise InputFileError(f"not a {BACKUP_FORMAT} manifest", file=str(path))
    body = {k: v for k, v in manifest.items() if k not in ("signature", "signer")}
    signers = {s.sign_pub for s in keyring.slots if s.role == "data-manager"}
    if manifest.get("signer") not in signers or not verify(
            str(manifest.get("signer")), BACKUP_FORMAT, body, str(manifest.get("signature"))):
        raise IntegrityError(f"{MANIFEST}: not signed by a data manager of this vault (edited, "
                             "or made by another vault)")
    if manifest.get("vault_id") != keyring.vault_id:
        raise IntegrityError("this backup was made by another vault")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {catalog_file(c) for c in _catalogs()}:
        raise InputFileError("the manifest does not list this vault's data files",
                             file=str(path), rule="files")
    for name, entry in {**files, KEYS_FILE: manifest["keys"]}.items():
        file = Path(backup_dir) / name
        if not file.is_file() or inventory.sha256_of(file) != entry.get("sha256"):
            raise IntegrityError(f"{name}: missing or changed since the backup was made")
    return manifest


def restore(vault_dir: Path, user: str, password: str, backup_dir: Path) -> RestoreReport:
    """Put a backup's data back into the vault it came from, erased children erased again,
    flags and corrections as the register records them now (see the module docstring)."""
    backup_dir = Path(backup_dir)
    if not (backup_dir / MANIFEST).exists():
        raise InputFileError(f"no {MANIFEST}: not a trialvault backup", file=str(backup_dir))
    control = ("register", "secrets", "audit")
    with _admin(vault_dir, user, password, "restore", {"backup": backup_dir.name},
                domains=control) as s:
        keyring: Keyring = s._keyring
        manifest = read_manifest(backup_dir, keyring)
        con = s.con
        if inventory.inventory_exists(con):
            row = con.execute("SELECT state, closed_at FROM rights.artefacts WHERE "
                              "artefact_id = ?", [manifest["backup_id"]]).fetchone()
            if row is not None and str(row[0]).startswith("destroyed"):
                raise PolicyRefusal(f"backup {manifest['backup_id']} is recorded as destroyed "
                                    f"({row[1]}): it should not exist; nothing restored")
        identity = _secret(con, BACKUP_IDENTITY)
        try:
            plain = pyrage.decrypt((backup_dir / KEYS_FILE).read_bytes(),
                                   [x25519.Identity.from_str(identity)])
        except Exception:  # pyrage's own error types
            raise IntegrityError("the backup's keys do not open with this vault's backup "
                                 "identity") from None
        old_keys = {d: bytes.fromhex(k) for d, k in json.loads(plain).items()}
        new_keys = {d: new_domain_key() for d in BACKED_UP}
        try:
            for domain in BACKED_UP:
                for catalog in DOMAINS[domain].catalogs:
                    fresh = vault_dir / (catalog_file(catalog) + REKEY_SUFFIX)
                    fresh.unlink(missing_ok=True)
                    store.attach(con, backup_dir / catalog_file(catalog), old_keys[domain],
                                 "bk", read_only=True)
                    store.attach(con, fresh, new_keys[domain], catalog)
                    try:
                        con.execute(f"COPY FROM DATABASE bk TO {catalog}")
                    finally:
                        con.execute("DETACH bk")
            counts = _reconcile(con)
            for catalog in _catalogs():
                con.execute(f"CHECKPOINT {catalog}")
                con.execute("USE rights")
                con.execute(f"DETACH {catalog}")
        except BaseException:
            for leftover in vault_dir.glob(f"*.duckdb{REKEY_SUFFIX}*"):
                leftover.unlink(missing_ok=True)
            raise
        files = _catalogs()
        keyring.stage_keys(new_keys, files)
        keyring.save()
        for catalog in files:
            live = vault_dir / catalog_file(catalog)
            os.replace(live.with_name(live.name + REKEY_SUFFIX), live)
            live.with_name(live.name + ".wal").unlink(missing_ok=True)
        keyring.commit_keys()
        keyring.save()
        in_backup = counts.pop("package_ids")
        report = RestoreReport(manifest["backup_id"], str(manifest["made_at"]), **counts,
                               packages_since=_packages_since(con, manifest, in_backup))
        s.record(detail={"backup_id": report.backup_id, "erased_children": report.erased_children,
                         "erased_rows": report.erased_rows, "flags": report.flags,
                         "corrections": report.corrections,
                         "packages_since": report.packages_since})
    return report


def _packages_since(con: duckdb.DuckDBPyConnection, manifest: dict[str, Any],
                    in_backup: set[str]) -> list[str]:
    """Package ids the inventory registered after the backup was made."""
    if not inventory.inventory_exists(con):
        return []
    made = dt.datetime.fromisoformat(str(manifest["made_at"])).replace(tzinfo=None)
    return [str(r[0]) for r in con.execute(
        "SELECT artefact_id FROM rights.artefacts WHERE kind = 'package' AND created_at > ? "
        "ORDER BY created_at", [made]).fetchall() if str(r[0]) not in in_backup]


def _secret(con: duckdb.DuckDBPyConnection, name: str) -> str:
    row = con.execute("SELECT value FROM rights.secrets WHERE name = ?", [name]).fetchone()
    if row is None:
        raise IntegrityError("this vault has no backup identity: it has made no backup")
    return str(row[0])


def _reconcile(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Apply, in the staged child data (catalog `vault`), everything the register recorded:
    tombstones, flags, corrections; then rebuild the harmonised view."""
    from trialvault.rights.actions import child_tables
    from trialvault.rights.erasure import validation_lines
    from trialvault.vault.admin import tombstone_key
    from trialvault.vault.ingest import _hmac, rebuild_harmonised

    con.execute("USE vault")
    con.execute("BEGIN TRANSACTION")
    try:
        tombs = {(int(la), str(h)) for la, h in con.execute(
            "SELECT la_code, child_hash FROM rights.tombstones").fetchall()}
        tables = child_tables(con)
        union = " UNION ".join(f"SELECT la_code, child_id FROM {t.qualified}" for t in tables)
        pairs = con.execute(f"SELECT DISTINCT la_code, child_id FROM ({union})").fetchall() \
            if union else []
        key = tombstone_key(con)
        erased = [(int(la), str(c)) for la, c in pairs
                  if (int(la), _hmac(key, int(la), str(c))) in tombs]
        rows = 0
        for la, child in erased:
            for t in tables:
                rows += len(con.execute(f"DELETE FROM {t.qualified} WHERE la_code = ? AND "
                                        "child_id = ? RETURNING 1", [la, child]).fetchall())
            for package_id, _, rewritten in validation_lines(con, la, child):
                con.execute("UPDATE meta.packages SET validation_csv = ? WHERE package_id = ?",
                            [rewritten, package_id])
        flags = _flags_from_register(con)
        corrections = 0
        for o in overlay.active(con):
            corrections += overlay._apply_one(con, "raw", o.table, o.la_code, o.child_id, o.key,
                                              o.column, o.old, o.new, None)
        has_packages = con.execute("SELECT count(*) FROM meta.packages").fetchone()
        harmonised = rebuild_harmonised(con) if has_packages and has_packages[0] else {}
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"erased_children": len(erased), "erased_rows": rows, "flags": flags,
            "corrections": corrections, "harmonised_rows": harmonised,
            "package_ids": {str(r[0]) for r in con.execute(
                "SELECT package_id FROM meta.packages").fetchall()}}


def _flags_from_register(con: duckdb.DuckDBPyConnection) -> int:
    """Set `meta.rights_flags` as the register records them now: each executed restriction or
    objection of a child still held is active unless lifted or overridden since."""
    from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table

    ensure_flags_table(con)
    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'rights' "
                         "AND table_name = 'requests'").fetchone()
    if not exists or not exists[0]:
        return 0
    wanted = con.execute("""
        SELECT r.request_id, r.la_code, r.child_id, r.type,
               CASE WHEN bool_or(e.action = 'lift') THEN 'lifted'
                    WHEN bool_or(e.action = 'override') THEN 'overridden' ELSE 'active' END,
               min(e.happened_at) FILTER (WHERE e.action = 'execute'),
               any_value(e.by_user) FILTER (WHERE e.action = 'execute'),
               max(e.happened_at) FILTER (WHERE e.action IN ('lift', 'override'))
        FROM rights.requests r JOIN rights.events e USING (request_id)
        WHERE r.type IN ('restriction', 'objection') AND r.state = 'completed'
          AND r.child_id IS NOT NULL
        GROUP BY ALL ORDER BY r.request_id""").fetchall()
    con.execute(f"DELETE FROM {FLAGS_TABLE} WHERE request_id IS NOT NULL")
    for rid, la, child, kind, status, set_at, by, ended in wanted:
        con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                    "request_id, set_at, set_by, ended_at, ended_by, end_reason) VALUES "
                    "((SELECT coalesce(max(flag_id), 0) FROM " + FLAGS_TABLE + ") + 1, ?, ?, ?, "
                    "?, ?, ?, ?, ?, NULL, ?)",
                    [la, child, kind, status, rid, set_at, by or "restore", ended,
                     "as recorded in the register (restored)" if ended else None])
    return sum(1 for w in wanted if w[4] == "active")
