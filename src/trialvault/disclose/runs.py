"""Evaluation runs as a release sees them: list them, and find one from a short id.

`trialvault evaluate` stores each run in `results.runs` (outputs domain: every role holds its
key); a release request names the run it releases (`--run`, default the latest). Nothing here
reads a child's row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from trialvault.short_ids import resolve

RUNS = "results.runs"


@dataclass(frozen=True)
class RunRow:
    """One evaluation run: when, for which study, how many children, which releases."""

    run_id: str
    created_at: str
    study_id: str
    seed: int
    cohort_size: int
    excluded_children: int
    study_sha256: str | None
    releases: tuple[str, ...]


def _has(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND "
                      "(database_name = ? OR schema_name = ?)", [table, catalog, catalog]
                      ).fetchone()
    return bool(row and row[0])


def run_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not _has(con, "results", "runs"):
        return []
    return [str(r[0]) for r in con.execute(f"SELECT run_id FROM {RUNS}").fetchall()]


def resolve_run(con: duckdb.DuckDBPyConnection, text: str) -> str:
    """The run id `text` names (the whole id or a unique prefix, as `runs list` shows)."""
    return resolve(text, run_ids(con), what="evaluation run", listed_by="`trialvault runs list`")


def list_runs(con: duckdb.DuckDBPyConnection) -> list[RunRow]:
    """Every run, oldest first, with the releases requested from it."""
    if not _has(con, "results", "runs"):
        return []
    releases: dict[str, list[str]] = {}
    if _has(con, "releases", "requests"):
        for run_id, release_id in con.execute(
                "SELECT run_id, release_id FROM releases.requests ORDER BY requested_at, "
                "release_id").fetchall():
            releases.setdefault(str(run_id), []).append(str(release_id))
    out = []
    for run_id, at, study_id, seed, size, excluded, provenance in con.execute(
            f"SELECT run_id, CAST(created_at AS VARCHAR), study_id, seed, cohort_size, "
            f"excluded_children, provenance FROM {RUNS} ORDER BY created_at, run_id"
    ).fetchall():
        try:
            sha = json.loads(provenance).get("study_sha256")
        except (ValueError, AttributeError):
            sha = None
        out.append(RunRow(str(run_id), str(at)[:19], str(study_id), int(seed), int(size),
                          int(excluded), str(sha) if sha else None,
                          tuple(releases.get(str(run_id), ()))))
    return out


def runs_list(vault_dir: Path, user: str, password: str) -> list[RunRow]:
    """`trialvault runs list`: one audited, read-only session."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="runs list", args={},
                    write=False) as s:
        s.require_domain("outputs")
        rows = list_runs(s.con)
        s.record(detail={"runs": len(rows)})
    return rows
