"""Rectifications as a standing overlay, re-applied to every later extract. Sees row values.

A rectification (UK GDPR Art. 16) is recorded once, in the register domain (`rights.overlay`):
the LA and child, the package of the record the DPO pointed at, the table, the record's
*stable key*, the column, the old and the new value, who, why and when. The stable key names the
record in a way a later extract of the same LA repeats: the table's natural key columns
(`RECORD_KEYS`, from the DfE layouts: an episode by its start date, a referral by its date, …)
plus the collection year where the table has one — never the source line, which moves between
extracts, nor a bare file name, which every collection year shares.

The correction is applied to every stored copy of that record (`raw` rows of every package,
then the harmonised view is rebuilt), and again by `ingest` to every later package
(`apply_overlay`, called once after the packages are loaded, before harmonised is rebuilt):

- the LA still sends the old value → the new value is applied ("applied");
- the LA now sends the new value itself → nothing to do ("LA agrees");
- the LA sends a third value → the LA's value is kept and the conflict is reported to the DPO
  (`meta.rectification_conflicts`: overlay id and package, no value) — the person's correction
  and the LA's change must be reconciled by a person, not by the tool.

Lineage shows both values: `lineage(con, la, child)` lists each correction with old and new
value and its state per package (rights show, the access response's "corrections" sheet).

New values are checked against the column's type and, for coded columns, the study's DfE code
lists (`spec/codelists.yaml`, through the input layouts' column → code-list mapping and each
list's `harmonised_to`), for the record's collection year. Errors never repeat a value.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.sql import quote_ident
from trialvault.vault.schema import KEY_COLUMNS, PREPARE_LINEAGE, TABLE_COLUMNS, VAULT_LINEAGE

# The natural key of a record of each harmonised table besides (la_code, child_id); the layouts'
# `key` lists in DfE names (episodes: CHILD, DECOM; CINdetails: LAchildID, CINreferralDate; …).
# `collection_year` is added for tables that carry it (a record as returned in one year).
RECORD_KEYS: dict[str, tuple[str, ...]] = {
    "children": (),
    "referrals": ("referral_date",),
    "assessments": ("referral_date", "assessment_start_date"),
    "s47": ("referral_date", "s47_start_date"),
    "cin_plans": ("referral_date", "cin_plan_start_date"),
    "cp_plans": ("referral_date", "cp_plan_start_date"),
    "cla_episodes": ("episode_start_date",),
    "missing": ("missing_start_date",),
    "attendance": ("academic_year", "term"),
    "neet": ("activity_month",),
}
MULTI_CODE_COLUMNS = frozenset({"assessment_factors"})  # comma-joined codes
MAX_TEXT = 200

OVERLAY_DDL = """
CREATE TABLE IF NOT EXISTS rights.overlay (
    overlay_id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL,
    la_code INTEGER NOT NULL,
    child_id VARCHAR NOT NULL,
    package_id VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL,
    record_key VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    old_value VARCHAR,
    new_value VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    by_user VARCHAR NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
"""
CONFLICTS_DDL = """
CREATE TABLE IF NOT EXISTS meta.rectification_conflicts (
    overlay_id INTEGER NOT NULL,
    package_id VARCHAR NOT NULL,
    detected_at TIMESTAMP NOT NULL
);
"""


@dataclass(frozen=True)
class RecordPointer:
    """How the DPO names the record: any of these narrow the child's rows of the table."""

    package_id: str | None = None
    collection_year: int | None = None
    source_file: str | None = None
    source_line: int | None = None


@dataclass(frozen=True)
class Correction:
    overlay_id: int
    request_id: int
    table: str
    column: str
    record_key: dict[str, Any]
    old_value: str | None
    new_value: str
    rows: dict[str, int]  # raw.<t> / harmonised.<t> → rows changed now


@dataclass
class OverlayReport:
    """What `apply_overlay` did at an ingest (counts only)."""

    applied: int = 0
    agreed: int = 0
    conflicts: int = 0
    conflict_ids: list[int] = field(default_factory=list)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def ensure_overlay(reg: duckdb.DuckDBPyConnection) -> None:
    reg.execute(OVERLAY_DDL)


def _exists(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND "
                      "table_name = ?", [catalog, table]).fetchone()
    return bool(row and row[0])


# --- checking a new value -------------------------------------------------------------------

@functools.cache
def coded_columns() -> dict[tuple[str, str], tuple[str, ...]]:
    """(harmonised table, column) → the code lists that feed it (from the input layouts)."""
    from trialvault.spec import FORMATS, load_layout

    found: dict[tuple[str, str], list[str]] = {}
    for fmt in FORMATS:
        for table in load_layout(fmt).tables.values():
            if not table.harmonised:
                continue
            for col in table.columns:
                if col.field and col.code_list:
                    lists = found.setdefault((table.harmonised, col.field), [])
                    if col.code_list not in lists:
                        lists.append(col.code_list)
    return {k: tuple(v) for k, v in found.items()}


def allowed_codes(table: str, column: str, year: int | None) -> tuple[set[str], str] | None:
    """Harmonised codes a coded column may hold (in `year` when given) and the lists' titles;
    None for a column without a code list."""
    from trialvault.spec import load_code_lists

    names = coded_columns().get((table, column))
    if not names:
        return None
    lists = load_code_lists()
    codes: set[str] = set()
    for name in names:
        cl = lists[name]
        valid = cl.valid_in(year) if year is not None else set(cl.codes)
        codes.update(cl.harmonise(c) for c in valid)
    return codes, " / ".join(lists[n].title for n in names)


def code_meaning(table: str, column: str, value: str | None) -> str | None:
    """The plain meaning of a harmonised code (for letters), e.g. WIRI → 'White Irish'."""
    from trialvault.spec import load_code_lists

    if value is None:
        return None
    lists = load_code_lists()
    for name in coded_columns().get((table, column), ()):
        cl = lists[name]
        for code, label in cl.codes.items():
            if cl.harmonise(code) == value:
                return label
    return None


def column_type(table: str, column: str) -> str:
    for name, kind in TABLE_COLUMNS[table]:
        if name == column:
            return kind
    raise KeyError(column)


def check_target(table: str, column: str) -> str:
    """The column's type, after refusing tables and columns that are not rectifiable data."""
    if table not in TABLE_COLUMNS:
        raise InputFileError(f"no table {table[:40]!r} in the harmonised data model (one of "
                             f"{', '.join(TABLE_COLUMNS)})", rule="table")
    protected = {*KEY_COLUMNS, *PREPARE_LINEAGE, *VAULT_LINEAGE}
    names = [c for c, _ in TABLE_COLUMNS[table]]
    if column in protected or column not in names:
        raise InputFileError(f"column {column[:40]!r} of {table} cannot be rectified (not a "
                             f"data column of that table: {', '.join(names)})", rule="column")
    return column_type(table, column)


def check_value(table: str, column: str, value: str, *, year: int | None) -> str:
    """The value in its stored text form, or a clear error (which never repeats the value)."""
    kind = check_target(table, column)
    text = value.strip()
    where = f"{table}.{column}"
    if kind == "INTEGER":
        if not re.fullmatch(r"-?\d{1,9}", text):
            raise InputFileError(f"the new value for {where} must be a whole number",
                                 rule="value")
        return str(int(text))
    if kind == "DATE":
        try:
            return dt.date.fromisoformat(text).isoformat() if re.fullmatch(
                r"\d{4}-\d{2}-\d{2}", text) else _bad_date(where)
        except ValueError:
            return _bad_date(where)
    if kind == "BOOLEAN":
        if text.lower() not in ("true", "false"):
            raise InputFileError(f"the new value for {where} must be true or false",
                                 rule="value")
        return text.lower()
    if not text or len(text) > MAX_TEXT or not text.isprintable():
        raise InputFileError(f"the new value for {where} must be 1-{MAX_TEXT} printable "
                             "characters", rule="value")
    coded = allowed_codes(table, column, year)
    if coded is not None:
        codes, title = coded
        parts = [p.strip() for p in text.split(",")] if column in MULTI_CODE_COLUMNS else [text]
        bad = [p for p in parts if p not in codes]
        if bad:
            when = f" in collection year {year}" if year is not None else ""
            raise InputFileError(f"the new value for {where} is not a code of the DfE list "
                                 f"'{title}'{when} (codes: {', '.join(sorted(codes))})",
                                 rule="codelist")
        text = ",".join(parts)
    return text


def _bad_date(where: str) -> str:
    raise InputFileError(f"the new value for {where} must be a date YYYY-MM-DD", rule="value")


# --- recording and applying -----------------------------------------------------------------

def _key_columns(table: str) -> tuple[str, ...]:
    names = {c for c, _ in TABLE_COLUMNS[table]}
    year = ("collection_year",) if "collection_year" in names else ()
    return (*year, *RECORD_KEYS[table])


def _key_of(row: dict[str, Any], table: str) -> dict[str, Any]:
    return {k: (row[k].isoformat() if isinstance(row[k], dt.date) else row[k])
            for k in _key_columns(table)}


def _match(table: str, key: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQL condition (and parameters) for the rows of one record by its stable key."""
    parts, params = [], []
    for col in _key_columns(table):
        kind = column_type(table, col)
        parts.append(f"{quote_ident(col)} IS NOT DISTINCT FROM CAST(? AS {kind})")
        params.append(key.get(col))
    return (" AND ".join(parts) or "true"), params


def record(con: duckdb.DuckDBPyConnection, reg: duckdb.DuckDBPyConnection, *, request_id: int,
           la_code: int, child_id: str, table: str, column: str, value: str, reason: str,
           user: str, pointer: RecordPointer) -> Correction:
    """Record a correction of one record and apply it to every stored copy (child domain on
    `con`, the overlay row on `reg`). Refuses an ambiguous or empty pointer."""
    check_target(table, column)
    where = ["la_code = ?", "child_id = ?"]
    params: list[Any] = [la_code, child_id]
    for col, val in (("package_id", pointer.package_id), ("source_file", pointer.source_file),
                     ("source_line", pointer.source_line)):
        if val is not None:
            where.append(f"{col} = ?")
            params.append(val)
    if pointer.collection_year is not None:
        if "collection_year" not in _key_columns(table):
            raise InputFileError(f"{table} has no collection year", rule="collection-year")
        where.append("collection_year = ?")
        params.append(pointer.collection_year)
    rel = con.execute(f"SELECT * FROM raw.{table} WHERE {' AND '.join(where)} "
                      "ORDER BY ingest_batch DESC", params)
    cols = [d[0] for d in rel.description]
    rows = [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]
    if not rows:
        raise InputFileError(f"the child has no row in {table} matching the record given",
                             rule="rows")
    keys = {json.dumps(_key_of(r, table), sort_keys=True, default=str) for r in rows}
    if len(keys) > 1:
        years = sorted({str(r.get("collection_year")) for r in rows if "collection_year" in r})
        hint = f" (collection years {', '.join(years)})" if len(years) > 1 else ""
        raise InputFileError(f"the record given matches {len(keys)} different records of "
                             f"{table}{hint}: name one with --package, --collection-year or "
                             "--source-file and --source-line", rule="ambiguous")
    key = json.loads(keys.pop())
    year = key.get("collection_year")
    new = check_value(table, column, value, year=int(year) if year is not None else None)
    latest = rows[0]
    old = _text(latest[column])
    if old == new:
        raise PolicyRefusal(f"{table}.{column} of that record already holds the value given: "
                            "nothing to correct")
    ensure_overlay(reg)
    row = reg.execute("SELECT coalesce(max(overlay_id), 0) + 1 FROM rights.overlay").fetchone()
    overlay_id = int(row[0]) if row else 1
    reg.execute("INSERT INTO rights.overlay VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [overlay_id, request_id, la_code, child_id, latest["package_id"], table,
                 json.dumps(key, sort_keys=True), column, old, new, reason, user, _now()])
    changed = _apply_one(con, "raw", table, la_code, child_id, key, column, old, new, None)
    return Correction(overlay_id, request_id, table, column, key, old, new,
                      {f"raw.{table}": changed})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _apply_one(con: duckdb.DuckDBPyConnection, schema: str, table: str, la_code: int,
               child_id: str, key: dict[str, Any], column: str, old: str | None, new: str,
               package_ids: list[str] | None) -> int:
    kind = column_type(table, column)
    cond, params = _match(table, key)
    col = quote_ident(column)
    packages = " AND list_contains(?, package_id)" if package_ids is not None else ""
    extra = [package_ids] if package_ids is not None else []
    return len(con.execute(
        f"UPDATE {schema}.{table} SET {col} = CAST(? AS {kind}) WHERE la_code = ? AND "
        f"child_id = ? AND {cond} AND CAST({col} AS VARCHAR) IS NOT DISTINCT FROM ?"
        f"{packages} RETURNING 1",
        [new, la_code, child_id, *params, _stored(kind, old), *extra]).fetchall())


def _stored(kind: str, text: str | None) -> str | None:
    """The text DuckDB's CAST(x AS VARCHAR) gives for a stored value written as `text`."""
    return text


@dataclass(frozen=True)
class OverlayRow:
    overlay_id: int
    request_id: int
    la_code: int
    child_id: str
    table: str
    key: dict[str, Any]
    column: str
    old: str | None
    new: str


def active(con: duckdb.DuckDBPyConnection, *, la_codes: Iterable[int] | None = None
           ) -> list[OverlayRow]:
    if not _exists(con, "rights", "overlay"):
        return []
    where, params = "", []
    if la_codes is not None:
        where, params = "WHERE list_contains(?, la_code)", [sorted(set(la_codes))]
    return [OverlayRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])
            for r in con.execute(
                "SELECT overlay_id, request_id, la_code, child_id, table_name, record_key, "
                f"column_name, old_value, new_value FROM rights.overlay {where} "
                "ORDER BY overlay_id", params).fetchall()]


def apply_overlay(con: duckdb.DuckDBPyConnection, package_ids: list[str]) -> OverlayReport:
    """Re-apply every recorded correction to the rows of `package_ids` just loaded into raw
    (ingest calls this before rebuilding harmonised). A session without the register key
    (none can ingest) has nothing to apply."""
    report = OverlayReport()
    attached = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()"
                                          ).fetchall()}
    if not package_ids or "rights" not in attached:
        return report
    las = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT la_code FROM meta.packages WHERE list_contains(?, package_id)",
        [package_ids]).fetchall()]
    for o in active(con, la_codes=las):
        cond, params = _match(o.table, o.key)
        col = quote_ident(o.column)
        found = con.execute(
            f"SELECT DISTINCT package_id, CAST({col} AS VARCHAR) FROM raw.{o.table} WHERE "
            f"la_code = ? AND child_id = ? AND {cond} AND list_contains(?, package_id)",
            [o.la_code, o.child_id, *params, package_ids]).fetchall()
        for package_id, current in found:
            if current == o.old:
                report.applied += _apply_one(con, "raw", o.table, o.la_code, o.child_id, o.key,
                                             o.column, o.old, o.new, [package_id])
            elif current == o.new:
                report.agreed += 1
            else:
                con.execute(CONFLICTS_DDL)
                con.execute("INSERT INTO meta.rectification_conflicts VALUES (?, ?, ?)",
                            [o.overlay_id, package_id, _now()])
                report.conflicts += 1
                report.conflict_ids.append(o.overlay_id)
    return report


def lineage(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
            ) -> list[dict[str, Any]]:
    """Every correction of the child with both values and, per package holding the record,
    whether the stored row carries the new value, the LA's own (conflict) or the old one."""
    if not _exists(con, "rights", "overlay"):
        return []
    out = []
    for o in active(con):
        if (o.la_code, o.child_id) != (la_code, child_id):
            continue
        cond, params = _match(o.table, o.key)
        states = {}
        for package_id, current in con.execute(
                f"SELECT DISTINCT package_id, CAST({quote_ident(o.column)} AS VARCHAR) FROM "
                f"raw.{o.table} WHERE la_code = ? AND child_id = ? AND {cond} ORDER BY 1",
                [la_code, child_id, *params]).fetchall():
            states[str(package_id)] = ("corrected" if current == o.new else
                                       "old value" if current == o.old else
                                       "the LA changed it (conflict)")
        out.append({"overlay_id": o.overlay_id, "request_id": o.request_id, "table": o.table,
                    "column": o.column, "record": o.key, "old": o.old, "new": o.new,
                    "packages": states})
    return out


def conflicts(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str, dt.datetime]]:
    """(overlay id, package id, when) of every conflict an ingest reported."""
    if not _exists(con, "vault", "rectification_conflicts"):
        return []
    return [tuple(r) for r in con.execute(
        "SELECT overlay_id, package_id, detected_at FROM meta.rectification_conflicts "
        "ORDER BY detected_at").fetchall()]


def forget_child(reg: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> int:
    """Delete the child's corrections (erasure: the rows they corrected are gone)."""
    if not _exists(reg, "rights", "overlay"):
        return 0
    return len(reg.execute("DELETE FROM rights.overlay WHERE la_code = ? AND child_id = ? "
                           "RETURNING 1", [la_code, child_id]).fetchall())
