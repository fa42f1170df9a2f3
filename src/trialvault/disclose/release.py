"""The release workflow: request → review by a different person → approve / return / reject →
write out. Everything is kept in the vault's `releases` schema and every step is audited.

- `request` (role analyst): reads one evaluation run, runs every disclosure rule, stores the
  checked outputs with their checking report, and records which children the release counted
  (`meta.release_children`: la_code, child_id — in the child domain, which output checkers
  hold no key to; never released).
- `review` (role output-checker): a different user, unlocking their *own* key slot, decides.
  The requester can never review their own release (`PolicyRefusal`). A release is approved
  when `disclosure.reviewers_required` people have signed it: the requester plus
  `reviewers_required - 1` approving reviewers. One return or reject ends the request.
- `write` (analyst, output-checker or data-manager): only an approved release, only its
  checked outputs (never anything recomputed), into a new folder with a manifest of SHA-256
  file hashes. Outputs that failed their checks are withheld.

The vault-level functions (`request_release`, `review_release`, `write_release`, ...) open a
session each; the rest take an open session's connection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import pandas as pd

from trialvault import __version__
from trialvault.disclose.check import check_results
from trialvault.disclose.checking import render_html, render_markdown
from trialvault.disclose.from_vault import read_results
from trialvault.disclose.outputs import CheckedRelease
from trialvault.errors import IntegrityError, PolicyRefusal, TrialvaultError
from trialvault.study.load import load_study
from trialvault.study.model import StudyFile

SCHEMA = "releases"
REQUEST_ROLES = ("analyst",)
REVIEW_ROLES = ("output-checker",)
WRITE_ROLES = ("analyst", "output-checker", "data-manager")
Decision = Literal["approve", "return", "reject"]
DECISIONS: dict[str, str] = {"approve": "approved", "return": "returned", "reject": "rejected"}

CHILDREN_TABLE = "meta.release_children"  # child domain: analysts, DPOs and data managers
CHILDREN_DDL = f"""CREATE TABLE IF NOT EXISTS {CHILDREN_TABLE} (
    release_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, la_code INTEGER NOT NULL,
    child_id VARCHAR NOT NULL)"""
_DDL = [
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.requests (
        release_id VARCHAR PRIMARY KEY, run_id VARCHAR NOT NULL, study_id VARCHAR NOT NULL,
        requested_by VARCHAR NOT NULL, requested_at TIMESTAMP NOT NULL,
        status VARCHAR NOT NULL, check_status VARCHAR NOT NULL, note VARCHAR NOT NULL,
        study_json VARCHAR NOT NULL, checked_json VARCHAR NOT NULL,
        checked_sha256 VARCHAR NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.reviews (
        release_id VARCHAR NOT NULL, reviewer VARCHAR NOT NULL, role VARCHAR NOT NULL,
        decision VARCHAR NOT NULL, comment VARCHAR NOT NULL, reviewed_at TIMESTAMP NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.writes (
        release_id VARCHAR NOT NULL, written_by VARCHAR NOT NULL, written_at TIMESTAMP NOT NULL,
        folder VARCHAR NOT NULL, manifest_sha256 VARCHAR NOT NULL)""",
]


@dataclass
class ReleaseRecord:
    """One release request as stored (no row values: aggregates and names of people)."""

    release_id: str
    run_id: str
    study_id: str
    requested_by: str
    requested_at: str
    status: str
    check_status: str
    note: str
    reviews: list[dict[str, str]] = field(default_factory=list)

    @property
    def approvals(self) -> list[str]:
        return sorted({r["reviewer"] for r in self.reviews if r["decision"] == "approve"})

    def meta(self) -> dict[str, Any]:
        """What the checking report prints about the request."""
        return {"release_id": self.release_id, "run_id": self.run_id,
                "requested_by": self.requested_by, "requested_at": self.requested_at,
                "status": self.status, "note": self.note, "reviews": self.reviews}


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    # In a vault `releases` is a catalog (outputs domain); a plain connection gets a schema.
    row = con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?",
                      [SCHEMA]).fetchone()
    if not row or not row[0]:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for statement in _DDL:
        con.execute(statement)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _has_schema(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE (database_name = ? OR "
                      "schema_name = ?) AND table_name = 'requests'", [SCHEMA, SCHEMA]).fetchone()
    return bool(row and row[0])


def request(con: duckdb.DuckDBPyConnection, children: duckdb.DuckDBPyConnection, user: str,
            study: StudyFile, *, run_id: str | None = None, note: str = ""
            ) -> tuple[ReleaseRecord, CheckedRelease]:
    """Check one evaluation run's outputs and store the request (see module doc). `con`
    writes the outputs domain; `children` (another transaction: DuckDB writes one file per
    transaction) records in the child domain which children the release counted."""
    read = read_results(con, study, run_id)
    checked = check_results(read.results, study)
    if all(o.withheld for o in checked.outputs):
        raise PolicyRefusal("every output failed its disclosure checks: nothing to release")
    ensure_schema(con)
    release_id = f"REL-{_now():%Y%m%d}-{uuid.uuid4().hex[:8]}"
    payload = json.dumps(checked.to_json(), sort_keys=True)
    at = _now()
    con.execute(f"INSERT INTO {SCHEMA}.requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        release_id, read.run_id, study.study.id, user, at, "pending", checked.status, note,
        study.model_dump_json(), payload, _sha256(payload.encode("utf-8"))])
    kids = pd.DataFrame(read.children, columns=["la_code", "child_id"]).assign(
        release_id=release_id, run_id=read.run_id)
    children.execute(CHILDREN_DDL)
    children.register("tv_release_kids", kids)
    try:
        children.execute(f"INSERT INTO {CHILDREN_TABLE} SELECT release_id, run_id, la_code, "
                         "child_id FROM tv_release_kids")
    finally:
        children.unregister("tv_release_kids")
    record = ReleaseRecord(release_id, read.run_id, study.study.id, user, str(at), "pending",
                           checked.status, note)
    return record, checked


def load(con: duckdb.DuckDBPyConnection, release_id: str) -> tuple[ReleaseRecord, CheckedRelease,
                                                                    StudyFile]:
    """One stored request, its checked outputs (integrity-checked) and the study it used."""
    if not _has_schema(con):
        raise TrialvaultError(f"no release {release_id}: the vault has no releases yet")
    row = con.execute(f"SELECT release_id, run_id, study_id, requested_by, CAST(requested_at AS "
                      f"VARCHAR), status, check_status, note, study_json, checked_json, "
                      f"checked_sha256 FROM {SCHEMA}.requests WHERE release_id = ?",
                      [release_id]).fetchone()
    if row is None:
        raise TrialvaultError(f"no release {release_id} in the vault")
    if _sha256(str(row[9]).encode("utf-8")) != row[10]:
        raise IntegrityError(f"release {release_id}: stored outputs do not match their hash")
    reviews = [{"reviewer": str(r[0]), "role": str(r[1]), "decision": str(r[2]),
                "comment": str(r[3]), "reviewed_at": str(r[4])} for r in con.execute(
        f"SELECT reviewer, role, decision, comment, CAST(reviewed_at AS VARCHAR) FROM "
        f"{SCHEMA}.reviews WHERE release_id = ? ORDER BY reviewed_at", [release_id]).fetchall()]
    record = ReleaseRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]),
                           str(row[5]), str(row[6]), str(row[7]), reviews=reviews)
    return (record, CheckedRelease.from_json(json.loads(row[9])),
            StudyFile.model_validate_json(str(row[8])))


def list_releases(con: duckdb.DuckDBPyConnection) -> list[ReleaseRecord]:
    if not _has_schema(con):
        return []
    ids = [r[0] for r in con.execute(f"SELECT release_id FROM {SCHEMA}.requests ORDER BY "
                                     "requested_at, release_id").fetchall()]
    return [load(con, str(i))[0] for i in ids]


def _refuse_self_review(record: ReleaseRecord, user: str) -> None:
    if user == record.requested_by:
        raise PolicyRefusal(f"{user!r} requested release {record.release_id} and may not review "
                            "it: a different person must (two-person rule)")


def review(con: duckdb.DuckDBPyConnection, user: str, role: str, release_id: str,
           decision: Decision, comment: str) -> ReleaseRecord:
    """Record one reviewer's decision; a two-person rule, enforced here."""
    if decision not in DECISIONS:
        raise PolicyRefusal(f"unknown decision {decision!r}: approve, return or reject")
    if not comment.strip():
        raise PolicyRefusal("a review needs a comment saying why")
    record, checked, _ = load(con, release_id)
    _refuse_self_review(record, user)
    if record.status != "pending":
        raise PolicyRefusal(f"release {release_id} is {record.status}: only a pending release "
                            "can be reviewed")
    if any(r["reviewer"] == user for r in record.reviews):
        raise PolicyRefusal(f"{user!r} has already reviewed release {release_id}")
    at = _now()
    con.execute(f"INSERT INTO {SCHEMA}.reviews VALUES (?, ?, ?, ?, ?, ?)",
                [release_id, user, role, decision, comment, at])
    record.reviews.append({"reviewer": user, "role": role, "decision": decision,
                           "comment": comment, "reviewed_at": str(at)})
    needed = int(checked.rules.get("reviewers_required", 2)) - 1
    if decision != "approve":
        record.status = DECISIONS[decision]
    elif len(record.approvals) >= needed:
        record.status = "approved"
    con.execute(f"UPDATE {SCHEMA}.requests SET status = ? WHERE release_id = ?",
                [record.status, release_id])
    return record


def children_in_release(con: duckdb.DuckDBPyConnection, release_id: str) -> list[tuple[int, str]]:
    """(la_code, child_id) of every child the release counted (for erasure requests)."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND "
                      "table_name = 'release_children'").fetchone()
    if not row or not row[0]:
        return []
    return [(int(la), str(c)) for la, c in con.execute(
        f"SELECT la_code, child_id FROM {CHILDREN_TABLE} WHERE release_id = ? "
        "ORDER BY la_code, child_id", [release_id]).fetchall()]


def release_files(record: ReleaseRecord, checked: CheckedRelease, study: StudyFile
                  ) -> dict[str, bytes]:
    """Every file of the release folder except the manifest, by relative path."""
    from trialvault.report import render_report
    from trialvault.study.documents import render

    files: dict[str, bytes] = {}
    meta = record.meta()
    files["report.html"] = render_report(checked, study, meta, notice_href="privacy-notice.html"
                                         ).encode("utf-8")
    files["privacy-notice.html"] = render(study, "notice", "html").encode("utf-8")
    for out in checked.outputs:
        if out.withheld:
            continue
        files[f"tables/{out.name}.csv"] = out.table.to_csv(lineterminator="\n").encode("utf-8")
    files["checking-report.json"] = json.dumps(
        {"release": meta, **checked.to_json()}, indent=2, sort_keys=True).encode("utf-8")
    files["checking-report.md"] = render_markdown(checked, meta).encode("utf-8")
    files["checking-report.html"] = render_html(checked, meta).encode("utf-8")
    return files


def write_folder(out_dir: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> bytes:
    """Write `files` and `manifest.json` into a new folder, all or nothing. Returns the
    manifest's bytes."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise PolicyRefusal(f"{out_dir} exists and is not empty: a release goes to a new folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        entries = []
        for rel, data in sorted(files.items()):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            entries.append({"path": rel, "bytes": len(data), "sha256": _sha256(data)})
        body = json.dumps({**manifest, "files": entries}, indent=2, sort_keys=True).encode()
        (staging / "manifest.json").write_bytes(body)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return body


# --- vault-level entry points (each opens and audits one session) --------------------------

def _study(study: StudyFile | Path) -> StudyFile:
    return study if isinstance(study, StudyFile) else load_study(study)


def request_release(vault_dir: Path, user: str, password: str, study: StudyFile | Path, *,
                    run_id: str | None = None, note: str = "") -> str:
    """Request a release of the latest (or the given) evaluation run; return its id."""
    from trialvault.vault import open_vault

    model = _study(study)
    with open_vault(vault_dir, user, password, command="release request",
                    args={"study": model.study.id, "run_id": run_id}) as s:
        s.require_role(*REQUEST_ROLES)
        kids = s.writer("vault")
        record, checked = request(s.con, kids, s.user, model, run_id=run_id, note=note)
        n_kids = len(children_in_release(kids, record.release_id))
        s.record(rows_touched={f"{SCHEMA}.requests": 1, CHILDREN_TABLE: n_kids},
                 detail={"release_id": record.release_id, "run_id": record.run_id,
                         "check_status": checked.status, "outputs": len(checked.outputs)})
    return record.release_id


def review_release(vault_dir: Path, user: str, password: str, release_id: str,
                   decision: Decision, comment: str) -> ReleaseRecord:
    """A reviewer (their own key slot and password) approves, returns or rejects."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release review",
                    args={"release_id": release_id, "decision": decision}) as s:
        # The two-person rule first: a requester is refused as such, whatever their role.
        _refuse_self_review(load(s.con, release_id)[0], s.user)
        s.require_role(*REVIEW_ROLES)
        record = review(s.con, s.user, s.role, release_id, decision, comment)
        s.record(rows_touched={f"{SCHEMA}.reviews": 1},
                 detail={"release_id": release_id, "decision": decision,
                         "status": record.status})
    return record


def show_release(vault_dir: Path, user: str, password: str, release_id: str
                 ) -> tuple[ReleaseRecord, CheckedRelease]:
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release show",
                    args={"release_id": release_id}, write=False) as s:
        record, checked, _ = load(s.con, release_id)
    return record, checked


def release_list(vault_dir: Path, user: str, password: str) -> list[ReleaseRecord]:
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release list", args={},
                    write=False) as s:
        return list_releases(s.con)


def write_release(vault_dir: Path, user: str, password: str, release_id: str,
                  out_dir: Path) -> Path:
    """Write an approved release to `out_dir` (new or empty); return the report's path."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release write",
                    args={"release_id": release_id, "folder": out_dir.name}) as s:
        s.require_role(*WRITE_ROLES)
        record, checked, study = load(s.con, release_id)
        if record.status != "approved":
            raise PolicyRefusal(f"release {release_id} is {record.status}: only an approved "
                                "release is written out")
        files = release_files(record, checked, study)
        at = _now()
        manifest = {
            "release_id": release_id, "study_id": record.study_id, "run_id": record.run_id,
            "requested_by": record.requested_by, "requested_at": record.requested_at,
            "approved_by": record.approvals, "written_by": s.user, "written_at": str(at),
            "disclosure_status": checked.status, "trialvault_version": __version__,
            "withheld_outputs": [o.name for o in checked.outputs if o.withheld],
        }
        body = write_folder(out_dir, files, manifest)
        s.con.execute(f"INSERT INTO {SCHEMA}.writes VALUES (?, ?, ?, ?, ?)",
                      [release_id, s.user, at, out_dir.name, _sha256(body)])
        s.record(rows_touched={f"{SCHEMA}.writes": 1},
                 detail={"release_id": release_id, "files": len(files) + 1,
                         "manifest_sha256": _sha256(body)})
    return out_dir / "report.html"
