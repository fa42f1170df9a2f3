"""Ingest sealed packages into the vault: decrypt in memory, verify, re-validate, load atomically.

One `ingest` command is one transaction: every package's tables go into `raw` as received
(plus package_id and ingest_batch), then the harmonised current view is rebuilt. Any failure
rolls all of it back. Per LA the current view comes from the package with the latest extract
date (ties: the later ingest), so a newer extract supersedes an older one while `raw` keeps
both.

A package must prove its LA: it is refused — naming it, nothing loaded — unless signed by a key
registered for its LA (`trialvault la trust`; `trialvault.seal.verify_package`), when its
package id was seen before (a replay), when its extract is older than the LA's latest, and when
it would replace the LA's current extract with markedly fewer rows or children (the study's
`intake.max_drop_fraction`) unless the data manager accepts the drop.

Erased children stay erased: `rights.tombstones` (register domain) holds
HMAC-SHA256(tombstone key, "la:child") for each erased child, never the code itself. The
tombstone key is a random secret in the register domain (not derived from a domain key, which a
re-key replaces); an analyst's slot holds neither. Ingest drops a
tombstoned child's rows before they reach `raw`; `rebuild_harmonised` excludes them as well.

Errors name the package file, table, column and source line, never a value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.progress import ProgressCallback, no_progress
from trialvault.seal import PackageContents
from trialvault.seal.verify import verify_package
from trialvault.study import StudyFile
from trialvault.vault import audit
from trialvault.vault.admin import evaluator_identity, tombstone_key
from trialvault.vault.inventory import register_packages
from trialvault.vault.la_keys import trusted_keys
from trialvault.vault.overlay import OverlayReport, apply_overlay
from trialvault.vault.schema import (
    KEY_COLUMNS,
    PREPARE_LINEAGE,
    TABLES,
    package_columns,
    stored_columns,
)
from trialvault.vault.session import open_vault

INGEST_ROLES = ("data-manager",)
# Arrow types that need no cast (and so no type check) for each stored type.
_ARROW_TYPES = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
                "BOOLEAN": pa.bool_()}
_REQUIRED = (*KEY_COLUMNS, *PREPARE_LINEAGE)


@dataclass(frozen=True)
class PackageOutcome:
    """What happened to one package file."""

    file: str
    package_id: str
    la_code: int
    extract_date: dt.date
    status: str  # "ingested" | "already in vault" | "repeated in this command"
    rows: dict[str, int] = field(default_factory=dict)
    tombstoned_children: int = 0
    tombstoned_rows: int = 0
    missing_columns: dict[str, list[str]] = field(default_factory=dict)
    spec_version: str | None = None


@dataclass(frozen=True)
class IngestReport:
    ingest_batch: int | None
    packages: list[PackageOutcome]
    current: dict[int, str]          # la_code → package_id of the current extract
    superseded: dict[int, str]       # la_code → package_id no longer current after this ingest
    harmonised_rows: dict[str, int]
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """package_id → the signed receipt for its LA (an anchor of the audit log it keeps)."""
    rectifications: OverlayReport = field(default_factory=OverlayReport)
    """Standing corrections re-applied to the new rows (`vault.overlay`), with conflicts."""

    @property
    def ingested(self) -> list[PackageOutcome]:
        return [p for p in self.packages if p.status == "ingested"]

    @property
    def skipped(self) -> list[PackageOutcome]:
        return [p for p in self.packages if p.status != "ingested"]


def ingest_packages(vault_dir: Path, user: str, password: str, packages: list[Path], *,
                    study: StudyFile, accept_drop: bool = False,
                    progress: ProgressCallback | None = None) -> IngestReport:
    """Ingest `packages` in one transaction; see the module docstring. `progress` hears each
    step (package files by name, counts; never a row)."""
    with open_vault(vault_dir, user, password, command="ingest",
                    args={"packages": [p.name for p in packages], "study": study.study.id,
                          "accept_drop": accept_drop}) as session:
        session.require_role(*INGEST_ROLES)
        report = ingest_into(session.con, packages, study=study, user=session.user,
                             accept_drop=accept_drop, progress=progress)
        # Every package file is registered where a child's data lives (vault.inventory).
        register_packages(session, packages, report.packages)
        for outcome in report.ingested:
            session.record(rows_touched={f"raw.{t}": n for t, n in outcome.rows.items()})
        session.record(
            detail={"ingest_batch": report.ingest_batch,
                    "ingested": [p.package_id for p in report.ingested],
                    "skipped": [p.package_id for p in report.skipped],
                    "tombstoned_rows": sum(p.tombstoned_rows for p in report.packages),
                    "superseded": {str(k): v for k, v in report.superseded.items()}})
    end = session.end_entry
    if end is None or not report.ingested:
        return report
    # Each LA gets a receipt naming this ingest's (signed) end entry: an anchor of the log
    # outside the vault, which `audit verify --witness RECEIPT` checks.
    receipts = {o.package_id: audit.make_witness(
        session.signer, vault_id=session.vault_id, user=session.user, slot_id=session.slot_id,
        seq=end.seq, digest_=end.hash, fmt=audit.RECEIPT_FORMAT,
        extra={"package_id": o.package_id, "la_code": o.la_code, "file": o.file,
               "extract_date": o.extract_date.isoformat()}) for o in report.ingested}
    return dataclasses.replace(report, receipts=receipts)


def ingest_into(con: duckdb.DuckDBPyConnection, packages: list[Path], *, study: StudyFile,
                user: str, accept_drop: bool = False,
                progress: ProgressCallback | None = None) -> IngestReport:
    """The work of `ingest_packages` on an open connection, inside the caller's transaction."""
    tell = progress or no_progress
    steps = 2 * len(packages) + 1
    identity = evaluator_identity(con)
    vault_study = con.execute("SELECT study_id FROM audit.vault_info").fetchone()
    if vault_study and vault_study[0] and vault_study[0] != study.study.id:
        raise InputFileError(f"this vault holds study {vault_study[0]!r}, not "
                             f"{study.study.id!r}", file="--study")
    known = {r[0] for r in con.execute("SELECT package_id FROM meta.packages").fetchall()}
    before = current_packages(con)
    batch = int(con.execute("SELECT coalesce(max(ingest_batch), 0) + 1 FROM "
                            "meta.ingest_batches").fetchone()[0])  # type: ignore[index]
    tomb_key = tombstone_key(con)
    trusted = trusted_keys(con)
    latest = _latest(con)
    outcomes: list[PackageOutcome] = []
    seen: set[str] = set()
    verified = []
    for i, path in enumerate(packages):
        tell(i, steps, f"decrypting and verifying {path.name}")
        contents = verify_package(path, identity, trusted)
        pid, la = contents.package_id, contents.la_code
        if pid in known or pid in seen:
            how = "ingested before" if pid in known else "given twice"
            raise InputFileError(f"package {pid} was {how}: a package is accepted once (a "
                                 "replay cannot restore an older extract)", file=path.name,
                                 rule="replay")
        if la in latest and contents.extract_date < latest[la][0]:
            raise InputFileError(f"its extract date {contents.extract_date} is older than LA "
                                 f"{la}'s latest, {latest[la][0]}: an older extract cannot "
                                 "supersede a newer one", file=path.name, rule="extract-order")
        seen.add(pid)
        if la not in latest or contents.extract_date >= latest[la][0]:
            latest[la] = (contents.extract_date, contents.manifest)
        verified.append((path, contents))
    _check_drops(con, verified, study.intake.max_drop_fraction, accept_drop)
    for i, (path, contents) in enumerate(verified):
        tell(len(packages) + i, steps, f"loading {path.name}")
        outcomes.append(_load_package(con, path, contents, study, batch, tomb_key))
    tell(steps - 1, steps, "rebuilding the current (harmonised) view")
    ingested = [o for o in outcomes if o.status == "ingested"]
    if not ingested:
        return IngestReport(None, outcomes, before, {}, {})
    con.execute("INSERT INTO meta.ingest_batches VALUES (?, ?, ?, ?)",
                [batch, _now(), user, len(ingested)])
    corrected = apply_overlay(con, [o.package_id for o in ingested])  # rectifications stand
    harmonised = rebuild_harmonised(con)
    after = current_packages(con)
    superseded = {la: pid for la, pid in before.items() if after.get(la) != pid}
    tell(steps, steps, "loaded")
    return IngestReport(batch, outcomes, after, superseded, harmonised,
                        rectifications=corrected)


def _latest(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[dt.date, dict[str, Any]]]:
    """LA → (extract date, manifest) of its current package."""
    current = current_packages(con)
    out: dict[int, tuple[dt.date, dict[str, Any]]] = {}
    for la, pid in current.items():
        row = con.execute("SELECT extract_date, manifest FROM meta.packages WHERE package_id = ?",
                          [pid]).fetchone()
        if row is not None:
            out[la] = (row[0], json.loads(row[1]))
    return out


def _counts(manifest: dict[str, Any]) -> dict[str, int]:
    return {str(t): int(v.get("rows", 0)) for t, v in (manifest.get("tables") or {}).items()
            if isinstance(v, dict)}


def _check_drops(con: duckdb.DuckDBPyConnection, verified: Sequence[tuple[Path, PackageContents]],
                 max_drop: float, accept_drop: bool) -> None:
    """Refuse a package that would replace its LA's current extract with markedly fewer rows
    (any table the old one had) or children, unless the drop is accepted."""
    before = _latest(con)
    for path, contents in verified:
        old = before.get(contents.la_code)
        if old is None or contents.extract_date < old[0]:
            continue
        was, now = _counts(old[1]), _counts(contents.manifest)
        drops = [f"{t} {n:,} → {now.get(t, 0):,}" for t, n in sorted(was.items())
                 if n and now.get(t, 0) < (1 - max_drop) * n]
        if drops and not accept_drop:
            raise PolicyRefusal(
                f"{path.name}: it would replace LA {contents.la_code}'s current extract with "
                f"markedly fewer rows ({'; '.join(drops)}; the study allows a drop of "
                f"{max_drop:.0%}). Check with the LA; if the drop is real, ingest again with "
                "--accept-drop")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _load_package(con: duckdb.DuckDBPyConnection, path: Path, contents: PackageContents,
                  study: StudyFile, batch: int, tomb_key: bytes) -> PackageOutcome:
    name, manifest = path.name, contents.manifest
    if manifest["study_id"] != study.study.id:
        raise InputFileError(f"package is for study {manifest['study_id']!r}, not "
                             f"{study.study.id!r}", file=name, rule="study")
    if contents.la_code not in study.la_codes:
        raise InputFileError(f"LA code {contents.la_code} is not an LA of the study",
                             file=name, rule="la_code")
    unknown = sorted(set(contents.tables) - set(TABLES))
    if unknown:
        raise InputFileError(f"unknown table(s) {unknown}; known: {list(TABLES)}",
                             file=name, rule="table")
    tables = {t: contents.tables[t] for t in TABLES if t in contents.tables}
    missing = {t: _check_columns(name, t, tables[t], study) for t in tables}
    erased = _tombstoned_children(con, contents.la_code, tables, tomb_key)
    rows: dict[str, int] = {}
    dropped_rows = 0
    for table, data in tables.items():
        if erased:
            keep = pc.invert(pc.is_in(data["child_id"], value_set=pa.array(sorted(erased))))
            kept = data.filter(keep)
            dropped_rows += data.num_rows - kept.num_rows
            data = kept
        rows[table] = _insert_raw(con, name, table, data, contents, batch)
    con.execute(
        "INSERT INTO meta.packages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [contents.package_id, contents.la_code, contents.extract_date, manifest["study_id"],
         manifest.get("spec_version"), manifest.get("created_at"), name,
         hashlib.sha256(path.read_bytes()).hexdigest(), batch, _now(),
         json.dumps(manifest, sort_keys=True), contents.validation_csv, dropped_rows])
    return PackageOutcome(name, contents.package_id, contents.la_code, contents.extract_date,
                          "ingested", rows, len(erased), dropped_rows,
                          {t: m for t, m in missing.items() if m},
                          manifest.get("spec_version"))


def _check_columns(name: str, table: str, data: pa.Table, study: StudyFile) -> list[str]:
    """Refuse any column the contract or the study does not allow; return absent optional ones."""
    contract = [c for c, _ in package_columns(table)]
    allowed = study.allowed_fields | set(PREPARE_LINEAGE)
    present = data.column_names
    if len(present) != len(set(present)):
        raise InputFileError(f"table {table} repeats a column", file=name, rule="column")
    extra = sorted(set(present) - set(contract))
    if extra:
        raise InputFileError(f"table {table}: column(s) {extra} are not in the harmonised "
                             "data model", file=name, rule="column")
    not_allowed = sorted(set(present) - allowed)
    if not_allowed:
        raise InputFileError(f"table {table}: column(s) {not_allowed} are not allowed by any "
                             "category of the study", file=name, rule="minimisation")
    absent_required = [c for c in _REQUIRED if c not in present]
    if absent_required:
        raise InputFileError(f"table {table}: required column(s) {absent_required} missing",
                             file=name, rule="column")
    return [c for c in contract if c not in present]


def _tombstoned_children(con: duckdb.DuckDBPyConnection, la_code: int,
                         tables: dict[str, pa.Table], key: bytes) -> set[str]:
    tombs = {r[0] for r in con.execute("SELECT child_hash FROM rights.tombstones WHERE la_code = ?",
                                       [la_code]).fetchall()}
    if not tombs:
        return set()
    ids: set[str] = set()
    for data in tables.values():
        ids.update(v for v in pc.unique(data["child_id"].cast(pa.string())).to_pylist() if v)
    return {cid for cid in ids if _hmac(key, la_code, cid) in tombs}


def _insert_raw(con: duckdb.DuckDBPyConnection, name: str, table: str, data: pa.Table,
                contents: PackageContents, batch: int) -> int:
    view = f"_pkg_{table}"
    con.register(view, data)
    try:
        present = set(data.column_names)
        target = package_columns(table)
        exact = {c for c, k in target
                 if c in present and data.schema.field(c).type == _ARROW_TYPES[k]}
        _check_values(con, name, table, view, target, present - exact, contents.la_code)
        select = ", ".join(f"CAST({c} AS {k})" if c in present else f"CAST(NULL AS {k})"
                           for c, k in target)
        cols = ", ".join(c for c, _ in stored_columns(table))
        con.execute(f"INSERT INTO raw.{table} ({cols}) SELECT {select}, ?, ? FROM {view}",
                    [contents.package_id, batch])
    finally:
        con.unregister(view)
    return data.num_rows


def _check_values(con: duckdb.DuckDBPyConnection, name: str, table: str, view: str,
                  target: list[tuple[str, str]], present: set[str], la_code: int) -> None:
    """Types (of the columns in `present` not already of the right Arrow type), non-null
    keys and the package's own LA, in one pass over the table.

    Reports a count and the first source line; DuckDB's own cast errors would quote the value.
    """
    line = "TRY_CAST(source_line AS INTEGER)"
    probes: list[tuple[str, str, str]] = []
    for col, kind in target:
        if col not in present:
            continue
        probes.append((col, f"value(s) not of type {kind}",
                       f"{col} IS NOT NULL AND TRY_CAST({col} AS {kind}) IS NULL"))
    for col in _REQUIRED:
        probes.append((col, "empty value(s) in a required column", f"{col} IS NULL"))
    probes.append(("la_code", f"row(s) of another LA than the manifest's {la_code}",
                   f"TRY_CAST(la_code AS INTEGER) IS DISTINCT FROM {int(la_code)}"))
    select = ", ".join(f"count_if({cond}), min({line}) FILTER (WHERE {cond}), "
                       f"arg_min(source_file, {line}) FILTER (WHERE {cond})"
                       for _, _, cond in probes)
    counts = con.execute(f"SELECT {select} FROM {view}").fetchone()
    assert counts is not None  # an aggregate always returns one row
    for i, (col, rule, _) in enumerate(probes):
        n, first_line, first_file = counts[3 * i: 3 * i + 3]
        if n:
            raise InputFileError(f"table {table}, column {col}: {n} {rule} (first at "
                                 f"{first_file or '?'} line {first_line})", file=name,
                                 rule="type" if "type" in rule else "value")


# --- the current view ---------------------------------------------------------------------

def current_packages(con: duckdb.DuckDBPyConnection) -> dict[int, str]:
    """la_code → package_id of its current extract (latest extract date, then latest ingest)."""
    rows = con.execute("""
        SELECT la_code, arg_max(package_id, (extract_date, ingest_batch, ingested_at))
        FROM meta.packages GROUP BY la_code ORDER BY la_code""").fetchall()
    return {int(la): str(pid) for la, pid in rows}


def rebuild_harmonised(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Refill every `harmonised` table from `raw`: each LA's current package, minus
    tombstoned children. Call inside a session after changing raw rows or tombstones.
    Returns rows per harmonised table."""
    current = list(current_packages(con).values())
    erased = _erased_in_raw(con, current)
    con.execute("CREATE OR REPLACE TEMP TABLE _current (package_id VARCHAR)")
    con.executemany("INSERT INTO _current VALUES (?)", [[p] for p in current])
    con.execute("CREATE OR REPLACE TEMP TABLE _erased (la_code INTEGER, child_id VARCHAR)")
    if erased:
        con.executemany("INSERT INTO _erased VALUES (?, ?)", [list(e) for e in erased])
    counts: dict[str, int] = {}
    for table in TABLES:
        cols = ", ".join(c for c, _ in stored_columns(table))
        con.execute(f"DELETE FROM harmonised.{table}")
        con.execute(f"""
            INSERT INTO harmonised.{table} ({cols})
            SELECT {cols} FROM raw.{table} r
            WHERE r.package_id IN (SELECT package_id FROM _current)
              AND NOT EXISTS (SELECT 1 FROM _erased e
                              WHERE e.la_code = r.la_code AND e.child_id = r.child_id)""")
        counts[table] = int(con.execute(  # type: ignore[index]
            f"SELECT count(*) FROM harmonised.{table}").fetchone()[0])
    con.execute("DROP TABLE _current")
    con.execute("DROP TABLE _erased")
    return counts


def _erased_in_raw(con: duckdb.DuckDBPyConnection, current: list[str]) -> set[tuple[int, str]]:
    tombs = {(int(la), h) for la, h in con.execute(
        "SELECT la_code, child_hash FROM rights.tombstones").fetchall()}
    if not tombs or not current:
        return set()
    key = tombstone_key(con)
    pairs: set[tuple[int, str]] = set()
    for table in TABLES:
        pairs.update((int(la), str(c)) for la, c in con.execute(
            f"SELECT DISTINCT la_code, child_id FROM raw.{table} WHERE package_id IN "
            f"(SELECT unnest(?::VARCHAR[]))", [current]).fetchall())
    return {p for p in pairs if (p[0], _hmac(key, *p)) in tombs}


# --- tombstones (used by the rights stage) -------------------------------------------------

def _hmac(key: bytes, la_code: int, child_id: str) -> str:
    return hmac.new(key, f"{int(la_code)}:{child_id}".encode(), hashlib.sha256).hexdigest()


def child_hash(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> str:
    """The keyed hash that stands for a child in `rights.tombstones` (no code stored)."""
    return _hmac(tombstone_key(con), la_code, child_id)


def add_tombstones(con: duckdb.DuckDBPyConnection,
                   children: Iterable[tuple[int, str]]) -> int:
    """Mark (la_code, child_id) pairs erased, so no later ingest loads them; returns how many
    were new. The caller deletes their rows and calls `rebuild_harmonised`."""
    key = tombstone_key(con)
    existing = {(int(la), h) for la, h in con.execute(
        "SELECT la_code, child_hash FROM rights.tombstones").fetchall()}
    new = {(int(la), _hmac(key, la, cid)) for la, cid in children} - existing
    if new:
        con.executemany("INSERT INTO rights.tombstones VALUES (?, ?, ?)",
                        [[la, h, _now()] for la, h in sorted(new)])
    return len(new)


def is_tombstoned(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> bool:
    row = con.execute("SELECT 1 FROM rights.tombstones WHERE la_code = ? AND child_hash = ?",
                      [la_code, child_hash(con, la_code, child_id)]).fetchone()
    return row is not None


def describe_current(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per package: LA, extract date, whether it is current (for status and reports)."""
    current = set(current_packages(con).values())
    rows = con.execute("""SELECT package_id, la_code, extract_date, file_name, ingest_batch,
                                 ingested_at, manifest, tombstoned_rows
                          FROM meta.packages ORDER BY la_code, extract_date, ingest_batch"""
                       ).fetchall()
    return [{"package_id": r[0], "la_code": r[1], "extract_date": r[2], "file_name": r[3],
             "ingest_batch": r[4], "ingested_at": r[5], "manifest": json.loads(r[6]),
             "tombstoned_rows": r[7], "current": r[0] in current} for r in rows]
