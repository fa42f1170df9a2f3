"""What executing a request does to the data. One of the few modules that handle row values.

Every function here runs on an open vault session's connections: `con` for the child domain
(the session's main transaction, committed first) and `reg` for the rights register (the
session's `writer("rights")`, committed right after). DuckDB lets one transaction write one
database file, and the register is in another domain (its own key). Nothing here prints or
logs; errors and the summaries returned name tables, columns and counts only, never a child code or a value.

- access:        every stored row about the child (raw and harmonised, with lineage), the
                 packages it came from, the purposes, and the outputs that used it.
- rectification: see `vault.overlay` (a standing correction, re-applied at every ingest).
- restriction / objection: an active flag in `meta.rights_flags` (child domain; see `flags`).
- erasure:       see `rights.erasure` (resumable steps, completed after the re-key); it uses
                 `child_tables` and `outputs_using` from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from trialvault.errors import TrialvaultError
from trialvault.rights.flags import FLAGS_TABLE, FlagKind, ensure_flags_table
from trialvault.rights.register import RightsRequest

KEY_COLUMNS = ("la_code", "child_id")
LINEAGE_COLUMNS = ("source_file", "source_line", "package_id", "ingest_batch")
DATA_SCHEMAS = ("raw", "harmonised")
# Child-domain tables that list which children an output used (`release_id`/`run_id` columns).
OUTPUT_SCHEMAS = ("meta",)



@dataclass(frozen=True)
class ChildTable:
    """A table of the vault catalog that holds rows keyed by (la_code, child_id)."""

    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class AccessBundle:
    """Everything an access response contains (values included: keep it in memory)."""

    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]
    packages: list[dict[str, Any]]
    outputs: list[dict[str, Any]]

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: len(rows) for name, (_cols, rows) in self.tables.items()}


@dataclass
class ActionResult:
    """What an action did, in counts and names only (safe for the audit log and the terminal)."""

    rows_touched: dict[str, int] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    affected_outputs: list[dict[str, Any]] = field(default_factory=list)


# --- finding the child's rows ---------------------------------------------------------------

def child_tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] | None = None
                 ) -> list[ChildTable]:
    """Every base table of the vault catalog with la_code and child_id columns."""
    rows = con.execute(
        "SELECT schema_name, table_name, list(column_name ORDER BY column_index) "
        "FROM duckdb_columns() WHERE database_name = 'vault' "
        "GROUP BY schema_name, table_name ORDER BY schema_name, table_name").fetchall()
    base = {(s, t) for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = 'vault'").fetchall()}
    found = []
    for schema, table, cols in rows:
        if (schema, table) not in base or not set(KEY_COLUMNS) <= set(cols):
            continue
        if schemas is not None and schema not in schemas:
            continue
        found.append(ChildTable(schema, table, tuple(cols)))
    return found


def rows_about(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
               ) -> dict[str, int]:
    """Row count per table for one child (every table with the key columns, except the
    rights desk's own bookkeeping)."""
    counts = {}
    for t in child_tables(con):
        n = _count(con, t.qualified, la_code, child_id)
        if n:
            counts[t.qualified] = n
    return counts


def _count(con: duckdb.DuckDBPyConnection, qualified: str, la_code: int, child_id: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {qualified} WHERE la_code = ? AND child_id = ?",
                      [la_code, child_id]).fetchone()
    return int(row[0]) if row else 0


# --- access ---------------------------------------------------------------------------------

def collect_access(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
                   ) -> AccessBundle:
    """Every stored row about the child in raw and harmonised, its packages, and outputs."""
    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    package_ids: set[str] = set()
    for t in child_tables(con, DATA_SCHEMAS):
        order = ", ".join(c for c in ("package_id", "source_file", "source_line")
                          if c in t.columns) or "1"
        rel = con.execute(f"SELECT * FROM {t.qualified} WHERE la_code = ? AND child_id = ? "
                          f"ORDER BY {order}", [la_code, child_id])
        rows = rel.fetchall()
        if not rows:
            continue
        cols = [d[0] for d in rel.description]
        tables[t.qualified] = (cols, rows)
        if "package_id" in cols:
            i = cols.index("package_id")
            package_ids.update(str(r[i]) for r in rows if r[i] is not None)
    return AccessBundle(tables=tables, packages=_packages(con, sorted(package_ids)),
                        outputs=outputs_using(con, la_code, child_id))


def _packages(con: duckdb.DuckDBPyConnection, package_ids: list[str]) -> list[dict[str, Any]]:
    if not package_ids or not _table_exists(con, "meta", "packages"):
        return []
    rel = con.execute("SELECT package_id, la_code, extract_date, file_name, ingested_at "
                      "FROM meta.packages WHERE list_contains(?, package_id) "
                      "ORDER BY ingested_at", [package_ids])
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def outputs_using(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
                  ) -> list[dict[str, Any]]:
    """Outputs (evaluation runs, releases) whose inputs included this child.

    - A table of an output schema that lists children (la_code, child_id) names its run or
      release in a `run_id` / `release_id` column: those are certain (`basis: listed`).
    - Evaluation runs (`results.runs`) store aggregates only, so a run is listed when it was
      made while the child's rows were held and the child was not excluded by a flag
      (`basis: data held at run time`): it may have counted the child.
    - Releases that publish such a run (any table with `release_id` and `run_id`) follow.
    """
    found: list[dict[str, Any]] = []
    for t in child_tables(con, OUTPUT_SCHEMAS):
        id_cols = [c for c in ("release_id", "run_id") if c in t.columns]
        if not id_cols:
            continue
        col = id_cols[0]
        for (ident,) in con.execute(f"SELECT DISTINCT {col} FROM {t.qualified} WHERE "
                                    f"la_code = ? AND child_id = ? ORDER BY 1",
                                    [la_code, child_id]).fetchall():
            found.append({"output": t.qualified, "kind": col.removesuffix("_id"),
                          "id": str(ident), "basis": "listed"})
    runs = _runs_while_held(con, la_code, child_id)
    listed = {(o["kind"], o["id"]) for o in found}
    found.extend({"output": "results.runs", "kind": "run", "id": r,
                  "basis": "data held at run time"} for r in runs if ("run", r) not in listed)
    found.extend(_releases_of(con, runs, listed))
    return found


def _runs_while_held(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
                     ) -> list[str]:
    if not (_table_exists(con, "results", "runs", catalog="results")
            and _table_exists(con, "meta", "packages")):
        return []
    package_ids: set[str] = set()
    for t in child_tables(con, ("raw",)):
        if "package_id" in t.columns:
            package_ids.update(str(p) for (p,) in con.execute(
                f"SELECT DISTINCT package_id FROM {t.qualified} WHERE la_code = ? AND "
                "child_id = ?", [la_code, child_id]).fetchall())
    if not package_ids:
        return []
    first = con.execute("SELECT min(CAST(substr(ingested_at, 1, 19) AS TIMESTAMP)) FROM "
                        "meta.packages WHERE list_contains(?, package_id)",
                        [sorted(package_ids)]).fetchone()
    if first is None or first[0] is None:
        return []
    flagged = ""
    params: list[Any] = [first[0]]
    if _table_exists(con, "meta", "rights_flags"):
        flagged = (f" AND NOT EXISTS (SELECT 1 FROM {FLAGS_TABLE} f WHERE f.la_code = ? AND "
                   "f.child_id = ? AND f.set_at <= r.created_at AND (f.ended_at IS NULL OR "
                   "f.ended_at > r.created_at))")
        params += [la_code, child_id]
    return [str(r) for (r,) in con.execute(
        f"SELECT run_id FROM results.runs r WHERE r.created_at >= ?{flagged} "
        "ORDER BY r.created_at", params).fetchall()]


def _releases_of(con: duckdb.DuckDBPyConnection, runs: list[str],
                 listed: set[tuple[str, str | None]]) -> list[dict[str, Any]]:
    if not runs:
        return []
    tables = con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_columns() WHERE "
        "database_name IN ('releases', 'results') GROUP BY 1, 2, 3 HAVING "
        "list_contains(list(column_name), 'release_id') AND "
        "list_contains(list(column_name), 'run_id')").fetchall()
    out = []
    for catalog, schema, table in tables:
        qualified = f"{catalog}.{schema}.{table}"
        for (rel,) in con.execute(f"SELECT DISTINCT release_id FROM {qualified} WHERE "
                                  "list_contains(?, CAST(run_id AS VARCHAR)) ORDER BY 1",
                                  [runs]).fetchall():
            if ("release", str(rel)) not in listed:
                listed.add(("release", str(rel)))
                out.append({"output": f"{catalog}.{table}", "kind": "release", "id": str(rel),
                            "basis": "publishes a run that may have counted the child"})
    return out


# --- restriction and objection --------------------------------------------------------------

def set_flag(con: duckdb.DuckDBPyConnection, req: RightsRequest, kind: FlagKind, *, user: str
             ) -> ActionResult:
    """An active restriction or objection flag: the child leaves every evaluation from now."""
    child = child_of(req)
    ensure_flags_table(con)
    row = con.execute(f"SELECT coalesce(max(flag_id), 0) + 1 FROM {FLAGS_TABLE}").fetchone()
    flag_id = int(row[0]) if row else 1
    con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                "request_id, set_at, set_by) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                [flag_id, req.la_code, child, kind, req.request_id, _now(), user])
    return ActionResult(rows_touched={FLAGS_TABLE: 1}, detail={"flag": kind,
                                                              "flag_id": flag_id})


def end_flag(con: duckdb.DuckDBPyConnection, req: RightsRequest, *, status: str, reason: str,
             user: str) -> ActionResult:
    """Lift a restriction or override an objection (with the grounds); returns counts."""
    ensure_flags_table(con)
    changed = con.execute(f"UPDATE {FLAGS_TABLE} SET status = ?, ended_at = ?, ended_by = ?, "
                          "end_reason = ? WHERE request_id = ? AND status = 'active' "
                          "RETURNING flag_id", [status, _now(), user, reason, req.request_id]
                          ).fetchall()
    return ActionResult(rows_touched={FLAGS_TABLE: len(changed)}, detail={"flag": status})


# --- helpers --------------------------------------------------------------------------------

def child_of(req: RightsRequest) -> str:
    if req.child_id is None:
        raise TrialvaultError(f"request {req.request_id}: the child was erased; its code is no "
                              "longer held")
    return req.child_id


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str, *,
                  catalog: str = "vault") -> bool:
    schema = "main" if catalog != "vault" else schema
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND "
                      "schema_name = ? AND table_name = ?", [catalog, schema, table]).fetchone()
    return bool(row and row[0])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
