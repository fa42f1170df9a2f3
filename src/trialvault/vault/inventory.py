"""The inventory: every stored artefact outside the vault's tables that holds children's data.

A child's data lives in the vault's tables (found by their `la_code`/`child_id` columns, see
`rights.actions.child_tables`), in the validation lines kept with each package
(`meta.packages.validation_csv`), and in artefacts made from the vault. Each artefact is
registered here, in the register domain, at the moment it is made, with the children it holds:

| kind            | made by                   | on erasure of a child it holds                   |
|-----------------|---------------------------|--------------------------------------------------|
| package         | `ingest` (the sealed file) | destroyed (shredded) if still there, unchanged  |
| access_response | `rights execute` (access) | destroyed likewise                               |
| export          | `export` (a folder)       | marked *to destroy*                              |
| backup          | `backup` (a folder)       | marked *to destroy*                              |

Exports and backups hold every child: destroying one is the DPO's decision (a TRE may be using
the export; a backup is overwritten on its own schedule), so an erasure lists them as *to
destroy* and the DPO closes each (`rights destroy`: the tool deletes it when it can reach it, or
the DPO records where and how it was destroyed elsewhere). A backup marked to destroy is still
"beyond use": it opens only through `trialvault restore`, which erases the child again first.

Tables (catalog `rights`, register domain — DPOs and data managers hold its key):
`artefacts` (one row per artefact; location, SHA-256, state) and `artefact_children` (which
children each holds; the rows of an erased child are deleted by the erasure). No value of a
child's record is ever stored here, only the key (LA, child code).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from trialvault.errors import InputFileError, NotFound, PolicyRefusal

Kind = Literal["package", "access_response", "export", "backup"]
KINDS: tuple[Kind, ...] = ("package", "access_response", "export", "backup")
ArtefactState = Literal["held", "to_destroy", "destroyed", "destroyed_elsewhere"]
# Kinds an erasure destroys itself (one file, redundant once verified or sent); the others are
# marked to destroy and closed by the DPO.
SELF_DESTROYED: frozenset[str] = frozenset({"package", "access_response"})
MIN_NOTE_CHARS = 20

INVENTORY_DDL = """
CREATE TABLE IF NOT EXISTS rights.artefacts (
    artefact_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    location VARCHAR NOT NULL,
    sha256 VARCHAR,
    purpose VARCHAR,
    children INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    state_request INTEGER,
    closed_at TIMESTAMP,
    closed_by VARCHAR,
    closed_note VARCHAR
);
CREATE TABLE IF NOT EXISTS rights.artefact_children (
    artefact_id VARCHAR NOT NULL,
    la_code INTEGER NOT NULL,
    child_id VARCHAR NOT NULL
);
"""


@dataclass(frozen=True)
class Artefact:
    artefact_id: str
    kind: str
    location: str
    sha256: str | None
    purpose: str | None
    children: int
    created_at: dt.datetime
    created_by: str
    state: str
    state_request: int | None
    closed_at: dt.datetime | None
    closed_by: str | None
    closed_note: str | None

    @property
    def name(self) -> str:
        """The file or folder name (what a letter or a certificate may show)."""
        return Path(self.location).name


_COLUMNS = ("artefact_id, kind, location, sha256, purpose, children, created_at, created_by, "
            "state, state_request, closed_at, closed_by, closed_note")


def ensure_inventory(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INVENTORY_DDL)


def inventory_exists(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'rights' AND "
                      "table_name = 'artefacts'").fetchone()
    return bool(row and row[0])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def register(reg: duckdb.DuckDBPyConnection, *, artefact_id: str, kind: Kind, location: Path,
             user: str, children: pa.Table | Iterable[tuple[int, str]],
             sha256: str | None = None, purpose: str | None = None) -> int:
    """Record an artefact and the children it holds (`children`: (la_code, child_id) pairs or an
    Arrow table with those columns) on the register connection. Returns how many children."""
    ensure_inventory(reg)
    if not isinstance(children, pa.Table):
        pairs = sorted(set(children))
        children = pa.table({"la_code": pa.array([p[0] for p in pairs], pa.int32()),
                             "child_id": pa.array([p[1] for p in pairs], pa.string())})
    view = "_tv_artefact_children"
    reg.register(view, children)
    try:
        reg.execute("INSERT INTO rights.artefact_children SELECT DISTINCT ?, "
                    f"CAST(la_code AS INTEGER), CAST(child_id AS VARCHAR) FROM {view}",
                    [artefact_id])
    finally:
        reg.unregister(view)
    row = reg.execute("SELECT count(*) FROM rights.artefact_children WHERE artefact_id = ?",
                      [artefact_id]).fetchone()
    n = int(row[0]) if row else 0
    reg.execute(f"INSERT INTO rights.artefacts ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 'held', NULL, NULL, NULL, NULL)",
                [artefact_id, kind, str(location.absolute()), sha256, purpose, n, _now(), user])
    return n


def children_of_tables(tables: Iterable[pa.Table]) -> pa.Table:
    """The distinct (la_code, child_id) of Arrow tables that have those columns."""
    parts = [t.select(["la_code", "child_id"]).cast(pa.schema([("la_code", pa.int32()),
                                                               ("child_id", pa.string())]))
             for t in tables if t.num_rows and {"la_code", "child_id"} <= set(t.column_names)]
    if not parts:
        return pa.table({"la_code": pa.array([], pa.int32()),
                         "child_id": pa.array([], pa.string())})
    return pa.concat_tables(parts).group_by(["la_code", "child_id"]).aggregate([])


def get(con: duckdb.DuckDBPyConnection, artefact_id: str) -> Artefact:
    if not inventory_exists(con):
        raise NotFound(f"no artefact {artefact_id[:40]!r}: the inventory is empty")
    row = con.execute(f"SELECT {_COLUMNS} FROM rights.artefacts WHERE artefact_id = ?",
                      [artefact_id]).fetchone()
    if row is None:
        raise NotFound(f"no artefact {artefact_id[:40]!r} in the inventory "
                       "(`trialvault rights inventory` lists them)")
    return Artefact(*row)


def list_artefacts(con: duckdb.DuckDBPyConnection, *, states: Iterable[str] | None = None
                   ) -> list[Artefact]:
    if not inventory_exists(con):
        return []
    where, params = "", []
    if states is not None:
        wanted = sorted(states)
        where, params = "WHERE list_contains(?, state)", [wanted]
    return [Artefact(*r) for r in con.execute(
        f"SELECT {_COLUMNS} FROM rights.artefacts {where} ORDER BY created_at, artefact_id",
        params).fetchall()]


def holding(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> list[Artefact]:
    """Artefacts not yet destroyed that hold this child."""
    if not inventory_exists(con):
        return []
    return [Artefact(*r) for r in con.execute(
        f"SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))} "
        "FROM rights.artefacts a WHERE a.state IN ('held', 'to_destroy') AND EXISTS ("
        "SELECT 1 FROM rights.artefact_children c WHERE c.artefact_id = a.artefact_id AND "
        "c.la_code = ? AND c.child_id = ?) ORDER BY a.created_at, a.artefact_id",
        [la_code, child_id]).fetchall()]


def forget_child(reg: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> int:
    """Delete the child's membership rows (its code) from the inventory; returns how many."""
    if not inventory_exists(reg):
        return 0
    return len(reg.execute("DELETE FROM rights.artefact_children WHERE la_code = ? AND "
                           "child_id = ? RETURNING 1", [la_code, child_id]).fetchall())


def mark_to_destroy(reg: duckdb.DuckDBPyConnection, artefact_id: str, request_id: int | None
                    ) -> None:
    reg.execute("UPDATE rights.artefacts SET state = 'to_destroy', state_request = "
                "coalesce(state_request, ?) WHERE artefact_id = ? AND state = 'held'",
                [request_id, artefact_id])


DestroyOutcome = Literal["destroyed", "already gone", "changed: not touched"]


def destroy_path(artefact: Artefact) -> DestroyOutcome:
    """Delete the artefact's file or folder when it is still there and unchanged (same
    SHA-256): small files are overwritten with random bytes and flushed first. A file that
    changed since it was registered is left alone (it may no longer be ours to delete)."""
    path = Path(artefact.location)
    if not path.exists():
        return "already gone"
    if artefact.sha256 and sha256_of(path) != artefact.sha256:
        return "changed: not touched"
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        shred(file)
    if path.is_dir():
        shutil.rmtree(path)
    return "destroyed"


def shred(path: Path) -> None:
    """Overwrite a file with random bytes, flush it to disk, then delete it. (On copy-on-write
    or flash storage the old blocks may survive: what protects them is their encryption.)"""
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        remaining = max(size, 1)
        while remaining > 0:
            chunk = min(remaining, 1 << 20)
            handle.write(secrets.token_bytes(chunk))
            remaining -= chunk
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def close(reg: duckdb.DuckDBPyConnection, artefact_id: str, state: ArtefactState, *,
          user: str, note: str | None) -> None:
    reg.execute("UPDATE rights.artefacts SET state = ?, closed_at = ?, closed_by = ?, "
                "closed_note = ? WHERE artefact_id = ?",
                [state, _now(), user, note, artefact_id])


def close_to_destroy(reg: duckdb.DuckDBPyConnection, artefact_id: str, *, user: str,
                     elsewhere_note: str | None) -> Artefact:
    """The DPO closes an artefact of the 'still to destroy' list: the tool destroys it (when it
    can reach it unchanged), or, with a note, records that it was destroyed elsewhere."""
    art = get(reg, artefact_id)
    if art.state not in ("to_destroy", "held"):
        raise PolicyRefusal(f"artefact {art.name} is already {art.state.replace('_', ' ')}")
    if elsewhere_note is not None:
        note = elsewhere_note.strip()
        if len(note) < MIN_NOTE_CHARS:
            raise PolicyRefusal(f"say where and how it was destroyed (at least {MIN_NOTE_CHARS} "
                                "characters)")
        close(reg, artefact_id, "destroyed_elsewhere", user=user, note=note)
    else:
        outcome = destroy_path(art)
        if outcome == "changed: not touched":
            raise PolicyRefusal(f"{art.name} changed since it was made (SHA-256 differs): "
                                "nothing deleted; destroy it yourself and record it with "
                                "--elsewhere \"where and how\"")
        if outcome == "already gone":
            raise InputFileError(f"{art.location} is not there: if it was destroyed, record "
                                 "where and how with --elsewhere \"...\"", rule="artefact")
        close(reg, artefact_id, "destroyed", user=user,
              note="deleted by trialvault (files overwritten, then removed)")
    return get(reg, artefact_id)


def certificate_entry(art: Artefact) -> dict[str, Any]:
    """What a destruction certificate says about an artefact (no child code, no value)."""
    return {"artefact": art.artefact_id, "kind": art.kind, "name": art.name,
            "location": art.location, "sha256": art.sha256, "children": art.children,
            "created_at": str(art.created_at), "state": art.state,
            "closed_at": str(art.closed_at) if art.closed_at else None,
            "closed_by": art.closed_by, "how": art.closed_note}


def write_certificate(path: Path, body: dict[str, Any]) -> Path:
    """A JSON certificate (canonical, 0600) beside whatever it certifies."""
    from trialvault.files import write_atomic

    data = json.dumps(body, indent=2, sort_keys=True, default=str).encode() + b"\n"
    return write_atomic(path, data)


# --- kept packages: registered at ingest, deleted once the ingest is verified ----------------

PACKAGE_CERTIFICATE = "trialvault-package-deletion/1"


def register_packages(session: Any, paths: list[Path], outcomes: list[Any]) -> int:
    """Register each package file just ingested (with the children it holds) in the inventory.
    `outcomes` are the ingest's PackageOutcomes, one per path in the same order. Runs inside
    the ingest session: children are read on `session.con` (which sees the new rows); the
    register is written on `session.writer("rights")`."""
    from trialvault.vault.schema import TABLES

    if not session.holds("register"):
        return 0
    reg = session.writer("rights")
    n = 0
    for path, outcome in zip(paths, outcomes, strict=True):
        if outcome.status != "ingested":
            continue
        union = " UNION ".join(f"SELECT la_code, child_id FROM raw.{t} WHERE package_id = $p"
                               for t in TABLES)
        children = session.con.execute(f"SELECT DISTINCT la_code, child_id FROM ({union})",
                                       {"p": outcome.package_id}).fetch_arrow_table()
        row = session.con.execute("SELECT file_sha256 FROM meta.packages WHERE package_id = ?",
                                  [outcome.package_id]).fetchone()
        register(reg, artefact_id=outcome.package_id, kind="package", location=path,
                 user=session.user, children=children, sha256=str(row[0]) if row else None)
        n += 1
    return n


def dispose_packages(vault_dir: Path, user: str, password: str, package_ids: list[str], *,
                     certificate_dir: Path | None = None) -> list[Path]:
    """Delete ingested package files once the vault verifiably holds them: the file is the one
    ingested (same SHA-256) and every table's rows in `raw` equal the manifest's count less the
    rows of erased children dropped at the door. Writes a signed deletion certificate per
    package (beside the file, or in `certificate_dir`) and marks it destroyed in the inventory.
    A package that does not verify is kept and named in the error."""
    from trialvault.trust import canonical
    from trialvault.vault.session import open_vault

    written: list[Path] = []
    with open_vault(vault_dir, user, password, command="ingest dispose",
                    args={"packages": package_ids}) as s:
        s.require_role("data-manager")
        reg = s.con  # writes the register only
        for package_id in package_ids:
            art = get(reg, package_id)
            if art.state != "held":
                continue
            path = Path(art.location)
            manifest, dropped = _package_facts(s.con, package_id)
            held = {t: _raw_rows(s.con, t, package_id) for t in manifest}
            short = sum(held.values()) + dropped != sum(manifest.values())
            if not path.exists() or sha256_of(path) != art.sha256 or short:
                raise PolicyRefusal(f"{path.name}: not deleted, the vault's copy does not "
                                    "verify against it (file changed or rows missing); it is "
                                    "kept and listed in the inventory")
            size = path.stat().st_size
            shred(path)
            close(reg, package_id, "destroyed", user=s.user,
                  note="deleted after a verified ingest (overwritten, then removed)")
            body = {"format": PACKAGE_CERTIFICATE, "package_id": package_id,
                    "file": path.name, "bytes": size, "sha256": art.sha256,
                    "rows_in_vault": held, "rows_in_manifest": manifest,
                    "deleted_at": _now().isoformat(timespec="seconds") + "Z",
                    "deleted_by": {"user": s.user, "slot_id": s.slot_id},
                    "vault_id": s.vault_id,
                    "method": "file overwritten with random bytes, flushed, then removed"}
            signature = s.signer.sign(PACKAGE_CERTIFICATE, body)
            folder = certificate_dir or path.parent
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{path.name}.deleted.json"
            from trialvault.files import write_atomic

            write_atomic(target, canonical({**body, "signature": signature,
                                            "signer": s.signer.public}) + b"\n")
            written.append(target)
        s.record(detail={"disposed": len(written)})
    return written


def _package_facts(con: duckdb.DuckDBPyConnection, package_id: str
                   ) -> tuple[dict[str, int], int]:
    """Rows per table the manifest declares, and the rows of erased children dropped."""
    row = con.execute("SELECT manifest, tombstoned_rows FROM meta.packages WHERE "
                      "package_id = ?", [package_id]).fetchone()
    if row is None:
        raise PolicyRefusal(f"package {package_id} is not in the vault: not deleted")
    manifest = json.loads(str(row[0]))
    tables = manifest.get("tables") or {}
    counts = {str(t): int(v.get("rows", 0)) for t, v in tables.items() if isinstance(v, dict)}
    return counts, int(row[1] or 0)


def _raw_rows(con: duckdb.DuckDBPyConnection, table: str, package_id: str) -> int:
    from trialvault.sql import quote_ident

    exists = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'vault' "
                         "AND schema_name = 'raw' AND table_name = ?", [table]).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute(f"SELECT count(*) FROM raw.{quote_ident(table)} WHERE package_id = ?",
                      [package_id]).fetchone()
    return int(row[0]) if row else 0
