"""Upgrading a 0.1.0 vault (one database, one data key) to trust domains (format 2).

`trialvault migrate` is run once by a data manager. Every user keeps their password (their
X25519 identity is kept and each gets a new signing key and the keys of their role's domains,
sealed to them). The old database is read once with the old data key and its tables are
copied into the new domain files:

| 0.1.0 (one file)                         | format 2                                     |
|------------------------------------------|----------------------------------------------|
| raw.*, harmonised.*, meta.packages, meta.ingest_batches | child domain (`vault` catalog), same names |
| rights.rights_flags                      | `meta.rights_flags` (child domain)           |
| releases.release_children                | `meta.release_children` (child domain)       |
| rights.* (register), meta.tombstones, tombstone key | register domain (`rights` catalog) |
| evaluator identity (meta.secrets)        | secrets domain                               |
| results.*, releases.*                    | outputs domain (`results`, `releases`)       |
| meta.audit_log, meta.vault_info          | audit domain; old entries kept as `legacy`   |

Crash-safe: the new files are built in a staging folder inside the vault; the new key ring
replaces the old one by one rename (the commit point); only then are the old database and the
staging folder deleted. A crash before the rename leaves the old vault as it was (re-run
`migrate`); after it, the leftover old file is deleted at the next `migrate` or open.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from trialvault.errors import AccessDenied, InputFileError
from trialvault.trust import DOMAINS, KEYRING_NAME, Keyring, LegacyVault, new_domain_key
from trialvault.trust.keyring import LEGACY_FORMAT
from trialvault.vault import audit, store
from trialvault.vault.admin import (
    EVALUATOR_IDENTITY,
    TOMBSTONE_KEY,
    VAULT_FORMAT,
    _register,
    create_catalogs,
)
from trialvault.vault.session import append_audit, connect, log_failure, new_session, vault_lock

STAGING = ".migrate"
# Old (schema, table) → new qualified name, for tables that move between domains.
_MOVED = {("rights", "rights_flags"): "vault.meta.rights_flags",
          ("releases", "release_children"): "vault.meta.release_children",
          ("meta", "tombstones"): "rights.main.tombstones"}
_OLD_SCHEMA_TARGET = {"raw": "vault.raw", "harmonised": "vault.harmonised",
                      "rights": "rights.main", "results": "results.main",
                      "releases": "releases.main"}
_META_TO_CHILD = ("packages", "ingest_batches")


@dataclass(frozen=True)
class MigrationReport:
    tables: int
    rows: int
    legacy_entries: int
    users: int


def is_legacy(vault_dir: Path) -> bool:
    try:
        doc = json.loads((vault_dir / KEYRING_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == LEGACY_FORMAT


def migrate_vault(vault_dir: Path, user: str, password: str) -> MigrationReport:
    """Upgrade a 0.1.0 vault in place (see the module docstring)."""
    with vault_lock(vault_dir):
        _finish_leftovers(vault_dir)
        if not is_legacy(vault_dir):
            Keyring.load(vault_dir)  # a format-2 ring loads; anything else says what it is
            raise InputFileError("this vault is already in the current format", file=str(vault_dir))
        legacy = json.loads((vault_dir / KEYRING_NAME).read_text(encoding="utf-8"))
        keys = {d: new_domain_key() for d in DOMAINS}
        try:
            ring, root, old_key = Keyring.from_legacy(vault_dir, legacy, user, password, keys)
        except AccessDenied as exc:
            log_failure(vault_dir, user, "migrate", str(exc),
                        known_user=any(s.get("user") == user for s in legacy.get("slots", [])))
            raise
        staging = vault_dir / STAGING
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        (staging / store.TEMP_DIR_NAME).mkdir(mode=0o700)
        try:
            report = _copy(vault_dir, staging, ring, root, keys, old_key, len(legacy["slots"]))
            ring.path = staging / KEYRING_NAME
            ring.save()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for catalog in (c for d in DOMAINS.values() for c in d.catalogs):
            name = store.catalog_file(catalog)
            os.replace(staging / name, vault_dir / name)
        os.replace(staging / KEYRING_NAME, vault_dir / KEYRING_NAME)  # the commit point
        _finish_leftovers(vault_dir)
        return report


def _finish_leftovers(vault_dir: Path) -> None:
    """After the commit point: the old database (its key is gone) and the staging folder."""
    if not is_legacy(vault_dir) and (vault_dir / KEYRING_NAME).exists():
        for name in (store.LEGACY_DB_NAME, store.LEGACY_DB_NAME + ".wal"):
            (vault_dir / name).unlink(missing_ok=True)
        shutil.rmtree(vault_dir / STAGING, ignore_errors=True)


def _copy(vault_dir: Path, staging: Path, ring: Keyring, root: Any, keys: dict[str, bytes],
          old_key: bytes, users: int) -> MigrationReport:
    old_path = vault_dir / store.LEGACY_DB_NAME
    if not old_path.exists():
        raise LegacyVault(f"{old_path}: the 0.1.0 database is missing; cannot migrate")
    con = connect(staging, keys, sandbox=False, create=True)
    try:
        store.attach(con, old_path, old_key, "old", read_only=True)
        create_catalogs(con)
        tables = rows = 0
        for schema, table, sql in con.execute(
                "SELECT schema_name, table_name, sql FROM duckdb_tables() WHERE database_name "
                "= 'old' ORDER BY 1, 2").fetchall():
            target = _target(schema, table)
            if target is None:
                continue
            rows += _copy_table(con, schema, table, sql, target)
            tables += 1
        secrets = dict(con.execute("SELECT name, value FROM old.meta.secrets").fetchall())
        con.execute("INSERT INTO secrets.secrets VALUES (?, ?)",
                    [EVALUATOR_IDENTITY, secrets[EVALUATOR_IDENTITY]])
        con.execute("INSERT INTO rights.secrets VALUES (?, ?)",
                    [TOMBSTONE_KEY, secrets[TOMBSTONE_KEY]])
        recipient = _recipient(secrets[EVALUATOR_IDENTITY])
        ring.set_evaluator(root, recipient)
        info = con.execute("SELECT vault_id, study_id, created_at, trialvault_version FROM "
                           "old.meta.vault_info").fetchone()
        assert info is not None
        con.execute("INSERT INTO audit.vault_info VALUES (?, ?, ?, ?, ?)", [*info, VAULT_FORMAT])
        legacy = audit.insert_legacy(con, con.execute(
            "SELECT seq, logged_at, user_name, slot_id, command, args, rows_touched, detail, "
            "result, error, prev_hash, hash FROM old.meta.audit_log ORDER BY seq").fetchall())
        session = new_session(con, ring, root, staging, "migrate", True)
        certs = [ring.slot_doc(s.user)["cert"] for s in ring.slots]
        head = audit.head(con)
        session.begin_entry = append_audit(session, "begin", {
            "from": LEGACY_FORMAT, "legacy_entries": legacy, "legacy_head": head[1],
            "certs": certs})
        _register(con, ring, ring.slots, by=root.slot.user, seq=session.begin_entry.seq)
        session.record(rows_touched={"tables": tables, "rows": rows},
                       detail={"key_fingerprints": ring.domain_fingerprints()})
        append_audit(session, "end", {})
        # The staging chain lines belong beside the vault's own audit.chain.
        _append_chain(vault_dir, staging)
        con.execute("DETACH old")
        for catalog in (c for d in DOMAINS.values() for c in d.catalogs):
            con.execute(f"CHECKPOINT {catalog}")
    finally:
        con.close()
    return MigrationReport(tables=tables, rows=rows, legacy_entries=legacy, users=users)


def _append_chain(vault_dir: Path, staging: Path) -> None:
    for line in audit.read_chain(staging):
        audit.append_chain(vault_dir, line)
    (staging / audit.CHAIN_NAME).unlink(missing_ok=True)


def _recipient(identity: str) -> str:
    from trialvault.seal import recipient_of

    return recipient_of(identity)


def _target(schema: str, table: str) -> str | None:
    if (schema, table) in _MOVED:
        return _MOVED[(schema, table)]
    if schema == "meta":
        return f"vault.meta.{table}" if table in _META_TO_CHILD else None
    base = _OLD_SCHEMA_TARGET.get(schema)
    return f"{base}.{table}" if base else None


def _copy_table(con: duckdb.DuckDBPyConnection, schema: str, table: str, sql: str,
                target: str) -> int:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name || '.' || schema_name || '.' "
        "|| table_name = ?", [target]).fetchone()
    if not exists or not exists[0]:
        # Re-create with the original constraints: the old CREATE statement, renamed.
        prefix = f"CREATE TABLE {schema}.{table}"
        if not sql.startswith(prefix):
            raise InputFileError(f"cannot migrate table {schema}.{table}: unexpected definition",
                                 file=store.LEGACY_DB_NAME)
        con.execute(f"CREATE TABLE {target}{sql[len(prefix):]}")
    con.execute(f"INSERT INTO {target} SELECT * FROM old.{schema}.{table}")
    count = con.execute(f"SELECT count(*) FROM {target}").fetchone()
    return int(count[0]) if count else 0
