"""The release workflow: request → reviews by other people → approved → written out.

Everything is kept in the vault's `releases` catalog (outputs domain) and every step is audited
and signed (`approvals`):

- `request` (role analyst): reads one evaluation run *with the study file stored with it*
  (any other study file is refused), checks every output jointly with the study's earlier
  releases, stores the public outputs and the reviewers' checking report (which never leaves
  the vault), records which children the release counted (`meta.release_children`, child
  domain) and signs the hash of all of it.
- `review` (role output-checker): a different registered person, whose key slot existed before
  the request, verifies the request and signs approve / return / reject over the same hash.
  A release is approved when `disclosure.reviewers_required` distinct people approved it.
- `resubmit`: a returned release is answered by a new request (`resubmits` names the returned
  one, whose reviewers' comments the requester sees); the same run with nothing changed since
  keeps the checks already made, anything else is checked again.
- `write` (analyst, output-checker or data-manager): verifies the audit log, the request and
  every approval against the certificates the audit log introduced, recomputes the content
  hash from what is stored now, and only then writes the public outputs (never the checking
  report, never anything recomputed) into a new folder with a manifest of SHA-256 hashes.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pandas as pd

from trialvault.disclose import approvals as ap
from trialvault.disclose.across import Earlier
from trialvault.disclose.check import check_results
from trialvault.disclose.from_vault import read_results
from trialvault.disclose.outputs import CheckedRelease
from trialvault.errors import IntegrityError, NotFound, PolicyRefusal, StudyFileError
from trialvault.progress import ProgressCallback, no_progress
from trialvault.short_ids import resolve
from trialvault.study.load import load_study, study_from_json, study_hash, study_json
from trialvault.study.model import StudyFile

if TYPE_CHECKING:
    from trialvault.vault import VaultSession

SCHEMA = "releases"
REQUEST_ROLES = ("analyst",)
REVIEW_ROLES = ("output-checker",)
WRITE_ROLES = ("analyst", "output-checker", "data-manager")
Decision = Literal["approve", "return", "reject"]
DECISIONS: dict[str, str] = {"approve": "approved", "return": "returned", "reject": "rejected"}
CLOSED = ("returned", "rejected")

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
    # Signed releases (issue 16): the reviewers' report, the signed request and reviews.
    f"ALTER TABLE {SCHEMA}.requests ADD COLUMN IF NOT EXISTS internal_json VARCHAR",
    f"ALTER TABLE {SCHEMA}.requests ADD COLUMN IF NOT EXISTS request_body VARCHAR",
    f"ALTER TABLE {SCHEMA}.requests ADD COLUMN IF NOT EXISTS request_signature VARCHAR",
    f"ALTER TABLE {SCHEMA}.reviews ADD COLUMN IF NOT EXISTS body VARCHAR",
    f"ALTER TABLE {SCHEMA}.reviews ADD COLUMN IF NOT EXISTS signature VARCHAR",
    # Issue 20: a request answering a returned one names it.
    f"ALTER TABLE {SCHEMA}.requests ADD COLUMN IF NOT EXISTS resubmits VARCHAR",
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
    reviews: list[dict[str, Any]] = field(default_factory=list)
    request_body: dict[str, Any] = field(default_factory=dict)
    request_signature: str = ""
    required: int = 2
    resubmits: str | None = None
    """The returned release this request answers (None for a first request)."""
    resubmitted_as: str | None = None
    """The request that answered this one, once it was returned and resubmitted."""

    @property
    def last_comment(self) -> dict[str, Any] | None:
        """The latest review that returned or rejected the release (what the requester must
        answer), else None."""
        closing = [r for r in self.reviews if r["decision"] in ("return", "reject")]
        return closing[-1] if closing else None

    @property
    def approvals(self) -> list[str]:
        """Users who approved (as recorded; `write` trusts only verified signatures)."""
        return sorted({r["reviewer"] for r in self.reviews if r["decision"] == "approve"})

    def meta(self) -> dict[str, Any]:
        """What reports print about the request."""
        return {"release_id": self.release_id, "run_id": self.run_id,
                "requested_by": self.requested_by, "requested_at": self.requested_at,
                "status": self.status, "note": self.note, "required": self.required,
                "resubmits": self.resubmits, "resubmitted_as": self.resubmitted_as,
                "reviews": [{k: r[k] for k in ("reviewer", "role", "decision", "comment",
                                               "reviewed_at")} for r in self.reviews]}


@dataclass
class StoredRelease:
    record: ReleaseRecord
    checked: CheckedRelease
    study: StudyFile
    public: dict[str, Any]
    internal: dict[str, Any]
    study_json: str

    @property
    def content_sha256(self) -> str:
        return ap.content_hash(self.public, self.internal, self.study_json)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    # In a vault `releases` is a catalog (outputs domain); a plain connection gets a schema.
    row = con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = ?",
                      [SCHEMA]).fetchone()
    if not row or not row[0]:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for statement in _DDL:
        con.execute(statement)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _has_schema(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE (database_name = ? OR "
                      "schema_name = ?) AND table_name = 'requests'", [SCHEMA, SCHEMA]).fetchone()
    return bool(row and row[0])


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_columns() WHERE (database_name = ? OR "
                      "schema_name = ?) AND table_name = ? AND column_name = ?",
                      [SCHEMA, SCHEMA, table, column]).fetchone()
    return bool(row and row[0])


def earlier_releases(con: duckdb.DuckDBPyConnection, study_id: str) -> list[Earlier]:
    """Releases of the study that were not returned or rejected, with their structure."""
    if not _has_schema(con) or not _has_column(con, "requests", "internal_json"):
        return []
    rows = con.execute(f"SELECT release_id, internal_json FROM {SCHEMA}.requests WHERE "
                       "study_id = ? AND status NOT IN ('returned', 'rejected') AND "
                       "internal_json IS NOT NULL ORDER BY requested_at, release_id",
                       [study_id]).fetchall()
    out = []
    for release_id, internal in rows:
        e = Earlier.from_internal(str(release_id), json.loads(internal))
        if e is not None:
            out.append(e)
    return out


def _study_given(study: StudyFile | Path | None) -> tuple[StudyFile | None, str | None]:
    if study is None or isinstance(study, StudyFile):
        return study, None
    return load_study(study), study_hash(study)


def request(s: VaultSession, *, study: StudyFile | Path | None = None,
            run_id: str | None = None, note: str = "", resubmits: str | None = None,
            progress: ProgressCallback | None = None
            ) -> tuple[ReleaseRecord, CheckedRelease, str]:
    """Check one evaluation run's outputs and store the signed request (module doc). Returns
    the record, the checked release and its content hash. `resubmits`: the returned release
    this request answers."""
    from trialvault.disclose.runs import resolve_run

    step = progress or no_progress
    given, given_sha = _study_given(study)
    con, kids = s.con, s.writer("vault")
    previous = _returned(con, resubmits) if resubmits else None
    step(0, 3, "reading the evaluation run")
    read = read_results(con, run_id=resolve_run(con, run_id) if run_id else None, study=given,
                        study_sha256=given_sha)
    model = read.study.study
    earlier = earlier_releases(con, model.study.id)
    step(1, 3, "disclosure checks")
    checked = _reused_checks(kids, previous, read.run_id, read.children, earlier)
    if checked is None:
        checked = check_results(read.results, model, earlier=earlier)
    step(2, 3, "signing and storing the request")
    if all(o.withheld for o in checked.outputs):
        raise PolicyRefusal("every output failed its disclosure checks: nothing to release")
    ensure_schema(con)
    release_id = f"REL-{dt.datetime.now(dt.UTC):%Y%m%d}-{uuid.uuid4().hex[:8]}"
    public, internal = checked.public_json(), checked.internal_json()
    model_json = study_json(model)
    content = ap.content_hash(public, internal, model_json)
    at = _now()
    begin = s.begin_entry.seq if s.begin_entry is not None else 0
    body = ap.request_body(vault_id=s.vault_id, release_id=release_id, run_id=read.run_id,
                           study_id=model.study.id, study_sha256=read.study.sha256,
                           content_sha256=content, user=s.user, slot_id=s.slot_id,
                           person=s.person, requested_at=at, audit_begin_seq=begin,
                           data_origin=checked.data_origin)
    signature = s.signer.sign(ap.REQUEST_PURPOSE, body)
    public_text = json.dumps(public, sort_keys=True)
    con.execute(
        f"INSERT INTO {SCHEMA}.requests (release_id, run_id, study_id, requested_by, "
        "requested_at, status, check_status, note, study_json, checked_json, checked_sha256, "
        "internal_json, request_body, request_signature, resubmits) VALUES (?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            release_id, read.run_id, model.study.id, s.user,
            dt.datetime.fromisoformat(at).replace(tzinfo=None), "pending", checked.status, note,
            model_json, public_text, content, json.dumps(internal, sort_keys=True),
            json.dumps(body, sort_keys=True), signature,
            previous.record.release_id if previous else None])
    frame = pd.DataFrame(read.children, columns=["la_code", "child_id"]).assign(
        release_id=release_id, run_id=read.run_id)
    kids.execute(CHILDREN_DDL)
    kids.register("tv_release_kids", frame)
    try:
        kids.execute(f"INSERT INTO {CHILDREN_TABLE} SELECT release_id, run_id, la_code, "
                     "child_id FROM tv_release_kids")
    finally:
        kids.unregister("tv_release_kids")
    record = ReleaseRecord(release_id, read.run_id, model.study.id, s.user, at, "pending",
                           checked.status, note, [], body, signature,
                           model.disclosure.reviewers_required,
                           resubmits=previous.record.release_id if previous else None)
    step(3, 3, "stored")
    return record, checked, content


def _returned(con: duckdb.DuckDBPyConnection, release_id: str) -> StoredRelease:
    """The returned release a resubmission answers (refused unless returned and not
    answered yet)."""
    stored = load(con, release_id)
    record = stored.record
    if record.status != "returned":
        raise PolicyRefusal(f"release {record.release_id} is {record.status}: only a returned "
                            "release can be resubmitted (a rejected one is closed)")
    if record.resubmitted_as:
        raise PolicyRefusal(f"release {record.release_id} was already resubmitted as "
                            f"{record.resubmitted_as}")
    return stored


def _reused_checks(kids: duckdb.DuckDBPyConnection, previous: StoredRelease | None,
                   run_id: str, children: list[tuple[int, str]], earlier: list[Earlier]
                   ) -> CheckedRelease | None:
    """The returned release's checks, when they would come out the same: the same run (so
    the same study and estimates), the same children counted (so the same count tables) and
    the same earlier releases to check jointly with. Anything else: None (check again)."""
    if previous is None or previous.record.run_id != run_id:
        return None
    before = {str(a.get("release_id")) for a in previous.checked.across}
    if before != {e.release_id for e in earlier}:
        return None
    counted = children_in_release(kids, previous.record.release_id)
    if sorted(counted) != sorted((int(la), str(c)) for la, c in children):
        return None
    return CheckedRelease.from_json(previous.public, previous.internal)


def release_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    if not _has_schema(con):
        return []
    return [str(r[0]) for r in con.execute(f"SELECT release_id FROM {SCHEMA}.requests"
                                           ).fetchall()]


def resolve_release(con: duckdb.DuckDBPyConnection, text: str) -> str:
    """The release id `text` names: the whole id, a unique prefix, or a unique prefix of its
    random part (`1a2b` for REL-20261201-1a2b3c4d)."""
    if not _has_schema(con):
        raise NotFound(f"no release {text!r}: the vault has no releases yet")
    return resolve(text, release_ids(con), what="release", parts=lambda c: (c.split("-")[-1],),
                   listed_by="`trialvault release list`")


def load(con: duckdb.DuckDBPyConnection, release_id: str) -> StoredRelease:
    """One stored request with its reviews, outputs, checking report and study."""
    release_id = resolve_release(con, release_id)
    ensure_columns = _has_column(con, "requests", "internal_json")
    extra = ("internal_json, request_body, request_signature" if ensure_columns
             else "NULL, NULL, NULL")
    row = con.execute(f"SELECT release_id, run_id, study_id, requested_by, CAST(requested_at AS "
                      f"VARCHAR), status, check_status, note, study_json, checked_json, {extra} "
                      f"FROM {SCHEMA}.requests WHERE release_id = ?", [release_id]).fetchone()
    if row is None:  # pragma: no cover - resolve_release found it
        raise NotFound(f"no release {release_id} in the vault")
    signed = _has_column(con, "reviews", "body")
    reviews = [{"reviewer": str(r[0]), "role": str(r[1]), "decision": str(r[2]),
                "comment": str(r[3]), "reviewed_at": str(r[4]),
                "body": json.loads(r[5]) if r[5] else None, "signature": r[6]}
               for r in con.execute(
                   f"SELECT reviewer, role, decision, comment, CAST(reviewed_at AS VARCHAR), "
                   f"{'body, signature' if signed else 'NULL, NULL'} FROM {SCHEMA}.reviews "
                   "WHERE release_id = ? ORDER BY reviewed_at, reviewer", [release_id]
               ).fetchall()]
    try:
        public = json.loads(row[9])
        internal = json.loads(row[10]) if row[10] else {}
        study = study_from_json(str(row[8]))
        checked = CheckedRelease.from_json(public, internal)
    except (ValueError, KeyError, TypeError, StudyFileError) as exc:
        raise IntegrityError(f"release {release_id}: stored release is unreadable "
                             f"({type(exc).__name__})") from None
    body = json.loads(row[11]) if row[11] else {}
    resubmits = answered_by = None
    if _has_column(con, "requests", "resubmits"):
        resubmits = con.execute(f"SELECT resubmits FROM {SCHEMA}.requests WHERE release_id = ?",
                                [release_id]).fetchone()
        answered = con.execute(f"SELECT release_id FROM {SCHEMA}.requests WHERE resubmits = ? "
                               "ORDER BY requested_at LIMIT 1", [release_id]).fetchone()
        answered_by = str(answered[0]) if answered else None
    record = ReleaseRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]),
                           str(row[5]), str(row[6]), str(row[7]), reviews, body,
                           str(row[12] or ""), study.disclosure.reviewers_required,
                           resubmits=str(resubmits[0]) if resubmits and resubmits[0] else None,
                           resubmitted_as=answered_by)
    return StoredRelease(record, checked, study, public, internal, str(row[8]))


def list_releases(con: duckdb.DuckDBPyConnection) -> list[ReleaseRecord]:
    if not _has_schema(con):
        return []
    ids = [r[0] for r in con.execute(f"SELECT release_id FROM {SCHEMA}.requests ORDER BY "
                                     "requested_at, release_id").fetchall()]
    return [load(con, str(i)).record for i in ids]


def verify_stored(s: VaultSession, stored: StoredRelease, *, check_log: bool = True
                  ) -> ap.Verification:
    """Every signature and hash of a stored release (see `approvals`)."""
    from trialvault.vault import audit as audit_log

    out = ap.Verification(required=stored.study.disclosure.reviewers_required,
                          release_id=stored.record.release_id)
    if check_log:
        log = audit_log.verify(s.con, s.vault_dir, vault_id=s.vault_id,
                               running=s.begin_entry.seq if s.begin_entry else None)
        if not log.ok:
            out.problems.append("the audit log does not verify (`trialvault audit verify` "
                                "names the entries): approvals cannot be trusted")
            return out
    certs = ap.audited_certificates(s.con)
    record = stored.record
    anchors = ap.request_anchors(s.con, record.release_id)
    content = stored.content_sha256
    out.problems += ap.check_request(record.request_body, record.request_signature,
                                     certs=certs, content_sha256=content, anchors=anchors,
                                     requester_roles=REQUEST_ROLES)
    if record.request_body.get("release_id") not in (None, record.release_id):
        out.problems.append("the signed request is for another release")
    if out.problems:
        return out
    reviews = ap.check_reviews(record.request_body, record.reviews, certs=certs,
                               request_seq=anchors.get(content), reviewer_roles=REVIEW_ROLES,
                               required=out.required)
    reviews.problems = out.problems + reviews.problems
    reviews.release_id = record.release_id
    return reviews


def review(s: VaultSession, release_id: str, decision: Decision, comment: str
           ) -> ReleaseRecord:
    """Verify the request, then record one reviewer's signed decision (two-person rule)."""
    if decision not in DECISIONS:
        raise PolicyRefusal(f"unknown decision {decision!r}: approve, return or reject")
    if not comment.strip():
        raise PolicyRefusal("a review needs a comment saying why")
    release_id = resolve_release(s.con, release_id)
    stored = load(s.con, release_id)
    record = stored.record
    _refuse_self_review(record, s.user, s.person)
    s.require_role(*REVIEW_ROLES)
    if record.status != "pending":
        raise PolicyRefusal(f"release {release_id} is {record.status}: only a pending release "
                            "can be reviewed")
    if any(r["reviewer"] == s.user or (r.get("body") or {}).get("person") == s.person
           for r in record.reviews):
        raise PolicyRefusal(f"{s.user!r} has already reviewed release {release_id}")
    found = verify_stored(s, stored)
    if found.problems:
        raise IntegrityError(f"release {release_id} does not verify, so it cannot be reviewed: "
                             + "; ".join(found.problems))
    certs = ap.audited_certificates(s.con)
    mine = certs.get(s.slot_id)
    anchor = ap.request_anchors(s.con, release_id).get(stored.content_sha256)
    if mine is None or anchor is None or mine.introduced_seq >= anchor:
        raise PolicyRefusal(f"{s.user!r}'s key slot was made after release {release_id} was "
                            "requested: a slot added after the request cannot review it")
    at = _now()
    body = ap.review_body(request=record.request_body, decision=decision, comment=comment,
                          user=s.user, slot_id=s.slot_id, person=s.person, reviewed_at=at,
                          audit_begin_seq=s.begin_entry.seq if s.begin_entry else 0)
    signature = s.signer.sign(ap.APPROVAL_PURPOSE, body)
    s.con.execute(f"INSERT INTO {SCHEMA}.reviews (release_id, reviewer, role, decision, comment, "
                  "reviewed_at, body, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                  [release_id, s.user, s.role, decision, comment,
                   dt.datetime.fromisoformat(at).replace(tzinfo=None),
                   json.dumps(body, sort_keys=True), signature])
    record.reviews.append({"reviewer": s.user, "role": s.role, "decision": decision,
                           "comment": comment, "reviewed_at": at, "body": body,
                           "signature": signature})
    if decision != "approve":
        record.status = DECISIONS[decision]
    else:
        check = ap.check_reviews(record.request_body, record.reviews, certs=certs,
                                 request_seq=anchor, reviewer_roles=REVIEW_ROLES,
                                 required=record.required)
        record.status = "approved" if check.ok else "pending"
    s.con.execute(f"UPDATE {SCHEMA}.requests SET status = ? WHERE release_id = ?",
                  [record.status, release_id])
    s.record(detail={"review_sha256": ap.digest_of(body)})
    return record


def _refuse_self_review(record: ReleaseRecord, user: str, person: str | None = None) -> None:
    if user == record.requested_by or (
            person is not None and person == record.request_body.get("person")):
        raise PolicyRefusal(f"{user!r} requested release {record.release_id} and may not review "
                            "it: a different person must (two-person rule)")


def children_in_release(con: duckdb.DuckDBPyConnection, release_id: str) -> list[tuple[int, str]]:
    """(la_code, child_id) of every child the release counted (for erasure requests)."""
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'meta' AND "
                      "table_name = 'release_children'").fetchone()
    if not row or not row[0]:
        return []
    return [(int(la), str(c)) for la, c in con.execute(
        f"SELECT la_code, child_id FROM {CHILDREN_TABLE} WHERE release_id = ? "
        "ORDER BY la_code, child_id", [release_id]).fetchall()]


# --- vault-level entry points (each opens and audits one session) --------------------------

def request_release(vault_dir: Path, user: str, password: str,
                    study: StudyFile | Path | None = None, *, run_id: str | None = None,
                    note: str = "", resubmits: str | None = None,
                    progress: ProgressCallback | None = None) -> str:
    """Request a release of the latest (or the given) evaluation run; return its id. `study`
    is optional: the rules are the run's; a different study file is refused. `resubmits`: the
    returned release this request answers."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release request",
                    args={"run_id": run_id, "resubmits": resubmits,
                          "study": None if study is None else (
                              study.study.id if isinstance(study, StudyFile) else study.name)}
                    ) as s:
        s.require_role(*REQUEST_ROLES)
        record, checked, content = request(s, study=study, run_id=run_id, note=note,
                                           resubmits=resubmits, progress=progress)
        n_kids = len(children_in_release(s.writer("vault"), record.release_id))
        s.record(rows_touched={f"{SCHEMA}.requests": 1, CHILDREN_TABLE: n_kids},
                 detail={"release_id": record.release_id, "run_id": record.run_id,
                         "content_sha256": content, "check_status": checked.status,
                         "outputs": len(checked.outputs), "resubmits": record.resubmits,
                         "study_sha256": record.request_body["study_sha256"]})
    return record.release_id


def review_release(vault_dir: Path, user: str, password: str, release_id: str,
                   decision: Decision, comment: str) -> ReleaseRecord:
    """A reviewer (their own key slot and password) approves, returns or rejects."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release review",
                    args={"release_id": release_id, "decision": decision}) as s:
        record = review(s, release_id, decision, comment)
        s.record(rows_touched={f"{SCHEMA}.reviews": 1},
                 detail={"release_id": release_id, "decision": decision,
                         "status": record.status})
    return record


def show_release(vault_dir: Path, user: str, password: str, release_id: str, *,
                 audit_read: bool = True) -> tuple[ReleaseRecord, CheckedRelease]:
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release show",
                    args={"release_id": release_id}, write=False,
                    audit_read=audit_read) as s:
        stored = load(s.con, release_id)
    return stored.record, stored.checked


def verify_release(vault_dir: Path, user: str, password: str, release_id: str
                   ) -> ap.Verification:
    """Every signature, anchor and hash of a release, as `write` checks them."""
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release verify",
                    args={"release_id": release_id}, write=False) as s:
        return verify_stored(s, load(s.con, release_id))


def release_list(vault_dir: Path, user: str, password: str, *, audit_read: bool = True
                 ) -> list[ReleaseRecord]:
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release list", args={},
                    write=False, audit_read=audit_read) as s:
        return list_releases(s.con)


def write_release(vault_dir: Path, user: str, password: str, release_id: str,
                  out_dir: Path) -> Path:
    """Write a verified, approved release to `out_dir` (new or empty); return the report."""
    from trialvault import __version__
    from trialvault.disclose.folder import release_files, write_folder
    from trialvault.vault import open_vault

    with open_vault(vault_dir, user, password, command="release write",
                    args={"release_id": release_id, "folder": out_dir.name}) as s:
        s.require_role(*WRITE_ROLES)
        release_id = resolve_release(s.con, release_id)
        stored = load(s.con, release_id)
        found = verify_stored(s, stored)
        if found.problems:
            raise IntegrityError(f"release {release_id} does not verify: "
                                 + "; ".join(found.problems))
        if not found.ok:
            raise PolicyRefusal(f"release {release_id} is not approved: "
                                + "; ".join(found.reasons()) + "; only an approved release "
                                "is written out")
        record, checked = stored.record, stored.checked
        files = release_files(record, checked, stored.study, found.approvals)
        at = _now()
        manifest = {
            "release_id": release_id, "study_id": record.study_id, "run_id": record.run_id,
            "study_sha256": record.request_body.get("study_sha256"),
            "content_sha256": stored.content_sha256, "data_origin": checked.data_origin,
            "requested_by": record.requested_by, "requested_at": record.requested_at,
            "request_signature": record.request_signature,
            "approvals": found.approvals, "approved_by": [a["reviewer"] for a in
                                                          found.approvals],
            "written_by": s.user, "written_at": at, "trialvault_version": __version__,
            "withheld_outputs": [o.name for o in checked.outputs if o.withheld],
        }
        body = write_folder(out_dir, files, manifest)
        s.con.execute(f"INSERT INTO {SCHEMA}.writes VALUES (?, ?, ?, ?, ?)",
                      [release_id, s.user, dt.datetime.fromisoformat(at).replace(tzinfo=None),
                       out_dir.name, ap.sha256_hex(body)])
        s.record(rows_touched={f"{SCHEMA}.writes": 1},
                 detail={"release_id": release_id, "files": len(files) + 1,
                         "manifest_sha256": ap.sha256_hex(body),
                         "approvals": len(found.approvals)})
    return out_dir / "report.html"

