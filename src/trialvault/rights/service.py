"""The rights desk: each operation opens the vault once, checks the role, acts, and is audited.

This is the API the CLI and the demo call. Each function is one vault session (one transaction
plus one audit entry); erasure then re-keys the vault. Audit arguments and details carry
request ids, types, dates, table names and counts — never a child code.

Roles: the dpo and data-manager roles run the desk (register, transitions, execute). Any
role may list and show requests, but only dpo and data-manager see a child code, and only
when they ask for it (`reveal=True`); others see it masked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialvault.errors import AccessDenied, InputFileError, PolicyRefusal
from trialvault.progress import ProgressCallback, no_progress
from trialvault.rights import actions, erasure, export, letters
from trialvault.rights import register as reg
from trialvault.rights.deadlines import PauseKind
from trialvault.study.model import StudyFile
from trialvault.vault import child_hash, inventory, overlay, rebuild_harmonised
from trialvault.vault.admin import RekeyReport
from trialvault.vault.session import VaultSession, open_vault

DESK_ROLES = ("dpo", "data-manager")
MASK = "•••"


@dataclass(frozen=True)
class Vault:
    """Where the vault is and who opens it. `audit_reads=False`: reads write no audit entries
    (the console, whose signed-in session is audited at login and logout); changes always do."""

    path: Path
    user: str
    password: str
    audit_reads: bool = True


@dataclass(frozen=True)
class RequestView:
    """One request as the desk shows it (the child code only when revealed)."""

    request_id: int
    type: str
    la_code: int
    child: str
    received: dt.date
    channel: str
    state: str
    due: dt.date | None
    days_left: int | None
    overdue: bool
    extended: bool
    tell_extension_by: dt.date | None
    stopped_for: str | None
    paused_days: int
    outcome: str | None
    closed_on: dt.date | None
    duplicate_of: int | None = None
    overdue_at_pause: int | None = None  # days already overdue when the clock was stopped


@dataclass(frozen=True)
class RequestDetail:
    view: RequestView
    note: str | None
    extension_reason: str | None
    exemption: reg.Exemption | None
    pauses: list[tuple[str, dt.date, dt.date | None]]
    events: list[tuple[dt.datetime, str, str, str | None, str, str | None]]
    rows_held: dict[str, int]
    corrections: list[dict[str, Any]] = field(default_factory=list)
    """Lineage of the child's corrections: old and new value, state per package (values:
    shown only when revealed)."""
    artefacts: list[str] = field(default_factory=list)
    """Stored files and folders holding the child (names only)."""


@dataclass(frozen=True)
class Rectification:
    table: str
    column: str
    value: str
    reason: str
    source_file: str | None = None
    source_line: int | None = None
    package_id: str | None = None
    collection_year: int | None = None


@dataclass
class ExecutionReport:
    """What `execute` did: counts and names, the files written, the re-key."""

    request_id: int
    type: str
    state: str
    rows_touched: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    affected_outputs: list[dict[str, Any]] = field(default_factory=list)
    rekey: RekeyReport | None = None
    outcome: str = ""


def _session(v: Vault, command: str, args: dict[str, Any], *, write: bool = True
             ) -> Any:
    return open_vault(v.path, v.user, v.password, command=command, args=args, write=write,
                      audit_read=write or v.audit_reads)


def _desk(session: VaultSession) -> None:
    session.require_role(*DESK_ROLES)


def _view(req: reg.RightsRequest, today: dt.date, *, show_child: bool) -> RequestView:
    d = req.deadline(today)
    open_ = req.is_open
    child = (req.child_id or "(erased)") if show_child else (MASK if req.child_id else
                                                              "(erased)")
    return RequestView(
        request_id=req.request_id, type=req.type, la_code=req.la_code, child=child,
        received=req.received, channel=req.channel, state=req.state, due=d.due,
        days_left=d.days_left(today) if open_ else None, overdue=open_ and d.overdue(today),
        extended=req.extended, tell_extension_by=d.tell_extension_by,
        stopped_for=d.stopped_for if open_ else None, paused_days=d.paused_days,
        outcome=req.outcome, closed_on=req.closed_on, duplicate_of=req.duplicate_of,
        overdue_at_pause=req.overdue_at_pause() if open_ else None)


def _may_reveal(session: VaultSession, reveal: bool) -> bool:
    if reveal and session.role not in DESK_ROLES:
        raise AccessDenied(f"only {' or '.join(DESK_ROLES)} may see child codes; "
                           f"{session.user!r} is {session.role}")
    return reveal


# --- register -------------------------------------------------------------------------------

def new_request(v: Vault, study: StudyFile, *, type: str, la_code: int, child_id: str,
                received: dt.date, channel: str, note: str | None, today: dt.date,
                force: bool = False) -> int:
    """Register a request; returns its id (see `file_request` for the duplicate link)."""
    return file_request(v, study, type=type, la_code=la_code, child_id=child_id,
                        received=received, channel=channel, note=note, today=today,
                        force=force)[0]


def file_request(v: Vault, study: StudyFile, *, type: str, la_code: int, child_id: str,
                 received: dt.date, channel: str, note: str | None, today: dt.date,
                 force: bool = False) -> tuple[int, int | None]:
    """Register a request: (its id, the earlier request it duplicates or None). Refuses a
    received date in the future, or before the study's data period unless `force`."""
    args = {"type": type, "la": la_code, "received": received, "channel": channel,
            "note_given": bool(note), "force": force}
    with _session(v, "rights new", args) as s:
        _desk(s)
        code = reg.check_child_code(child_id)
        reg.ensure_register(s.con)
        rid = reg.new_request(s.con, type=type, la_code=la_code, child_id=code,
                              child_hash=child_hash(s.con, la_code, code),
                              received=received, channel=channel, note=note, user=s.user,
                              valid_las=study.la_codes, today=today,
                              not_before=study.data_period.start, force=force)
        duplicate = reg.get_request(s.con, rid).duplicate_of
        s.record(rows_touched={"rights.requests": 1},
                 detail={"request_id": rid, "duplicate_of": duplicate})
    return rid, duplicate


def list_requests(v: Vault, *, today: dt.date, open_only: bool = False, reveal: bool = False
                  ) -> list[RequestView]:
    with _session(v, "rights list", {"open_only": open_only, "reveal": reveal},
                  write=False) as s:
        s.require_domain("register")
        show = _may_reveal(s, reveal)
        views = [_view(r, today, show_child=show)
                 for r in reg.list_requests(s.con, open_only=open_only)]
        s.record(detail={"requests": len(views)})
    return views


def show_request(v: Vault, request_id: int, *, today: dt.date, reveal: bool = False
                 ) -> RequestDetail:
    with _session(v, "rights show", {"request_id": request_id, "reveal": reveal},
                  write=False) as s:
        s.require_domain("register")
        show = _may_reveal(s, reveal)
        req = reg.get_request(s.con, request_id)
        held = actions.rows_about(s.con, req.la_code, req.child_id) if req.child_id else {}
        corrections = overlay.lineage(s.con, req.la_code, req.child_id) if req.child_id \
            else []
        if not show:
            corrections = [{**c, "old": MASK, "new": MASK} for c in corrections]
        stored = [f"{a.kind} {a.name} ({a.state.replace('_', ' ')})" for a in
                  inventory.holding(s.con, req.la_code, req.child_id)] if req.child_id else []
        detail = RequestDetail(
            view=_view(req, today, show_child=show), note=req.note,
            extension_reason=req.extension_reason, exemption=req.exemption,
            pauses=[(p.kind, p.asked, p.received) for p in req.pauses],
            events=reg.events(s.con, request_id), rows_held=held, corrections=corrections,
            artefacts=stored)
    return detail


# --- transitions ----------------------------------------------------------------------------

def await_information(v: Vault, request_id: int, kind: PauseKind, *, asked: dt.date,
                      today: dt.date) -> RequestView:
    with _session(v, f"rights await-{'id' if kind == 'identity' else 'clarification'}",
                  {"request_id": request_id, "asked": asked}) as s:
        _desk(s)
        req = reg.await_information(s.con, request_id, kind, asked=asked, user=s.user,
                                    today=today)
        s.record(detail={"request_id": request_id, "state": req.state})
    return _view(req, today, show_child=False)


def resume(v: Vault, request_id: int, *, answered: dt.date, today: dt.date) -> RequestView:
    with _session(v, "rights resume", {"request_id": request_id, "date": answered}) as s:
        _desk(s)
        req = reg.resume(s.con, request_id, answered=answered, user=s.user, today=today)
        d = req.deadline(today)
        s.record(detail={"request_id": request_id, "due": d.due, "paused_days": d.paused_days})
    return _view(req, today, show_child=False)


def start(v: Vault, request_id: int, *, today: dt.date) -> RequestView:
    with _session(v, "rights start", {"request_id": request_id}) as s:
        _desk(s)
        req = reg.start(s.con, request_id, user=s.user)
        s.record(detail={"request_id": request_id})
    return _view(req, today, show_child=False)


def extend(v: Vault, request_id: int, *, reason: str, today: dt.date) -> RequestView:
    with _session(v, "rights extend", {"request_id": request_id}) as s:
        _desk(s)
        req = reg.extend(s.con, request_id, reason=reason, user=s.user, today=today)
        d = req.deadline(today)
        s.record(detail={"request_id": request_id, "due": d.due,
                         "tell_person_by": d.tell_extension_by})
    return _view(req, today, show_child=False)


def refuse(v: Vault, request_id: int, *, reason: str, today: dt.date) -> RequestView:
    with _session(v, "rights refuse", {"request_id": request_id}) as s:
        _desk(s)
        req = reg.refuse(s.con, request_id, reason=reason, user=s.user, today=today)
        s.record(detail={"request_id": request_id})
    return _view(req, today, show_child=False)


def exempt(v: Vault, request_id: int, *, right: str, reason: str, decided_by: str,
           today: dt.date) -> RequestView:
    with _session(v, "rights exempt", {"request_id": request_id, "right": right,
                                       "decided_by": decided_by}) as s:
        _desk(s)
        req = reg.record_exemption(s.con, request_id, right=right, reason=reason,
                                   decided_by=decided_by, user=s.user, today=today)
        s.record(rows_touched={"rights.exemptions": 1}, detail={"request_id": request_id})
    return _view(req, today, show_child=False)


def override_objection(v: Vault, request_id: int, *, grounds: str, decided_by: str,
                       today: dt.date) -> int:
    """End an objection's exclusion on recorded compelling legitimate grounds (Art. 21(1))."""
    with _session(v, "rights override", {"request_id": request_id,
                                         "decided_by": decided_by}) as s:
        _desk(s)
        req = reg.get_request(s.con, request_id)
        if req.type != "objection" or req.state != "completed":
            raise PolicyRefusal(f"request {request_id} is not an executed objection")
        why = reg.check_text(grounds, "the compelling legitimate grounds",
                              min_chars=reg.MIN_REASON_CHARS)
        who = reg.check_text(decided_by, "decided-by", min_chars=2, max_chars=200)
        result = actions.end_flag(s.con, req, status="overridden",
                                  reason=f"{why} (decided by {who})", user=s.user)
        if not result.rows_touched.get(actions.FLAGS_TABLE):
            raise PolicyRefusal(f"request {request_id} has no active objection to override")
        reg.add_event(s.writer("rights"), request_id, s.user, "override", req.state, req.state,
                   f"compelling legitimate grounds recorded; decided by {who}")
        s.record(rows_touched=result.rows_touched, detail={"request_id": request_id})
    return request_id


def lift_restriction(v: Vault, request_id: int, *, reason: str, today: dt.date) -> int:
    """End a restriction (the person must be told before it is lifted, Art. 18(3))."""
    with _session(v, "rights lift", {"request_id": request_id}) as s:
        _desk(s)
        req = reg.get_request(s.con, request_id)
        if req.type != "restriction" or req.state != "completed":
            raise PolicyRefusal(f"request {request_id} is not an executed restriction")
        why = reg.check_text(reason, "the reason for lifting", min_chars=reg.MIN_REASON_CHARS)
        result = actions.end_flag(s.con, req, status="lifted", reason=why, user=s.user)
        if not result.rows_touched.get(actions.FLAGS_TABLE):
            raise PolicyRefusal(f"request {request_id} has no active restriction to lift")
        reg.add_event(s.writer("rights"), request_id, s.user, "lift", req.state, req.state,
                   "restriction lifted; the person must have been told beforehand")
        s.record(rows_touched=result.rows_touched, detail={"request_id": request_id})
    return request_id


def outcome_letter(v: Vault, study: StudyFile, request_id: int, *, today: dt.date) -> str:
    with _session(v, "rights letter", {"request_id": request_id}, write=False) as s:
        _desk(s)
        req = reg.get_request(s.con, request_id)
        if req.is_open:
            raise PolicyRefusal(f"request {request_id} is still open: no outcome to write yet")
        return letters.outcome_letter(study, req, today=today)


# --- execute --------------------------------------------------------------------------------

def erasure_preview(v: Vault, request_id: int) -> erasure.Plan:
    """What executing an erasure would do, per place (nothing is changed)."""
    return erasure.preview(v.path, v.user, v.password, request_id)


def preview(v: Vault, request_id: int, *, recipient: str | None = None,
            out_dir: Path | None = None, rectification: Rectification | None = None
            ) -> tuple[str, erasure.Plan]:
    """What executing the request would do, per place, with nothing changed: (its type, the
    plan). Refuses what `execute` would refuse before it starts (state, missing options)."""
    with _session(v, "rights execute", {"request_id": request_id, "dry_run": True},
                  write=False) as s:
        _desk(s)
        req = reg.check_executable(s.con, request_id)
        if req.type == "erasure":
            kind = "erasure"
        else:
            kind = req.type
            plan = erasure.Plan(request_id, _plan(s, req, recipient, out_dir, rectification))
            s.record(detail={"type": kind, "places": len(plan.actions)})
    if kind == "erasure":
        return kind, erasure_preview(v, request_id)
    return kind, plan


def _plan(s: VaultSession, req: reg.RightsRequest, recipient: str | None,
          out_dir: Path | None, rectification: Rectification | None) -> list[erasure.Action]:
    A = erasure.Action
    child = actions.child_of(req)
    held = actions.rows_about(s.con, req.la_code, child)
    if req.type == "access":
        if recipient is None or out_dir is None:
            raise InputFileError("an access response needs --recipient (age public key) "
                                 "and --out (folder)", rule="recipient")
        export.check_recipient(recipient)
        records = sum(n for t, n in held.items() if t.startswith("raw."))
        out = [A("table", t, "copy into the workbook", n) for t, n in sorted(held.items())]
        out += [A("access_response", str(out_dir / f"access-request-{req.request_id}{export.SEALED_SUFFIX}"),
                  "write the workbook and letter, sealed to the recipient key", records),
                A("inventory", "rights.artefacts", "register the sealed copy", 1)]
    elif req.type == "rectification":
        if rectification is None:
            raise InputFileError("a rectification needs --table, --column, --value and "
                                 "--reason", rule="rectification")
        overlay.check_target(rectification.table, rectification.column)
        n = held.get(f"raw.{rectification.table}", 0)
        out = [A("table", f"raw.{rectification.table}",
                 f"correct {rectification.column} (the record named, of the child's {n} rows)",
                 n),
               A("corrections", "standing corrections", "re-apply to every later extract", 1),
               A("table", "harmonised (current view)", "rebuild", 1)]
    else:
        exports = [a for a in inventory.holding(s.con, req.la_code, child)
                   if a.kind == "export" and a.purpose != "storage"]
        out = [A("register", actions.FLAGS_TABLE, f"set an active {req.type} flag: the child "
                 "is left out of new evaluations and analysis exports", 1)]
        out += [A("export", a.name, "mark to destroy (made for analysis before the request)",
                  1, a.artefact_id) for a in exports]
    out.append(A("register", "rights.requests", "complete the request (letter ready)", 1))
    return out


def execute(v: Vault, study: StudyFile, request_id: int, *, today: dt.date,
            recipient: str | None = None, out_dir: Path | None = None,
            rectification: Rectification | None = None,
            progress: ProgressCallback | None = None) -> ExecutionReport:
    """Carry out the request in one audited transaction; an erasure runs (or resumes) its steps
    and completes only after the re-key (`rights.erasure`). `progress` hears each step."""
    args: dict[str, Any] = {"request_id": request_id}
    if rectification is not None:
        args.update(table=rectification.table, column=rectification.column,
                    source_file=rectification.source_file,
                    source_line=rectification.source_line,
                    package=rectification.package_id,
                    collection_year=rectification.collection_year)
    sealed: tuple[str, bytes] | None = None
    started: tuple[str, dict[str, str]] | None = None
    with _session(v, "rights execute", args) as s:
        _desk(s)
        if reg.check_executable(s.con, request_id).type == "erasure":
            # Step 1 of the erasure in this session (its s.con writes only the register).
            started = erasure.start(s, request_id)
            report = ExecutionReport(request_id=request_id, type="erasure", state="erasing")
        else:
            kind = reg.get_request(s.con, request_id).type
            tell = progress or no_progress
            tell(0, 2, f"{kind}: reading the child's records and acting"
                 + (" (workbook, letter, sealing)" if kind == "access" else ""))
            report, sealed = _act(s, study, request_id, today=today, recipient=recipient,
                                  out_dir=out_dir, rectification=rectification)
            tell(1, 2, "recording it in the register")
    if started is not None:
        return _erase(v, request_id, today, started, progress)
    if sealed is not None and out_dir is not None:
        report.files.append(export.write_atomic(out_dir, *sealed))
    if progress is not None:
        progress(2, 2, "done")
    return report


def _act(s: VaultSession, study: StudyFile, request_id: int, *, today: dt.date,
         recipient: str | None, out_dir: Path | None, rectification: Rectification | None
         ) -> tuple[ExecutionReport, tuple[str, bytes] | None]:
    """Access, rectification, restriction or objection in one session: child-domain work on
    s.con (committed first); the register on its own writer."""
    sealed: tuple[str, bytes] | None = None
    register = s.writer("rights")
    req = reg.check_executable(register, request_id)
    report = ExecutionReport(request_id=request_id, type=req.type, state=req.state)
    if req.type == "access":
        if recipient is None or out_dir is None:
            raise InputFileError("an access response needs --recipient (age public key) "
                                 "and --out (folder)", rule="recipient")
        result, sealed, report.outcome = _access(s, register, study, req, recipient,
                                                 out_dir, today)
    elif req.type == "rectification":
        if rectification is None:
            raise InputFileError("a rectification needs --table, --column, --value and "
                                 "--reason", rule="rectification")
        result, report.outcome = _rectify(s, register, req, rectification)
    else:
        result = actions.set_flag(s.con, req, req.type, user=s.user)  # type: ignore[arg-type]
        # Copies made for analysis before the request hold the child: only storage is allowed
        # now (Art. 18(2)), so they go on the "still to destroy" list (a new export leaves
        # the child out); storage copies and backups may stay.
        analysis = [a for a in inventory.holding(register, req.la_code, actions.child_of(req))
                    if a.kind == "export" and a.purpose != "storage"]
        for a in analysis:
            inventory.mark_to_destroy(register, a.artefact_id, req.request_id)
        result.detail["exports_to_destroy"] = len(analysis)
        report.outcome = "\n\n".join(c.text for c in letters.flag_claims(
            req.type, today, analysis_copies=len(analysis)))
    done = reg.complete(register, request_id, outcome=report.outcome, user=s.user,
                        today=today)
    report.state = done.state
    report.rows_touched = result.rows_touched
    report.affected_outputs = result.affected_outputs
    s.record(rows_touched=result.rows_touched,
             detail={"request_id": request_id, "type": req.type, **result.detail})
    return report, sealed


def _rectify(s: VaultSession, register: Any, req: reg.RightsRequest, r: Rectification
             ) -> tuple[actions.ActionResult, str]:
    why = reg.check_text(r.reason, "the reason for the correction", min_chars=10)
    fix = overlay.record(s.con, register, request_id=req.request_id, la_code=req.la_code,
                         child_id=actions.child_of(req), table=r.table, column=r.column,
                         value=r.value, reason=why, user=s.user,
                         pointer=overlay.RecordPointer(_package(s, r.package_id),
                                                       r.collection_year, r.source_file,
                                                       r.source_line))
    before = actions._count(s.con, f"harmonised.{r.table}", req.la_code, req.child_id or "")
    rebuild_harmonised(s.con)
    current = s.con.execute(
        f"SELECT count(*) FROM harmonised.{r.table} WHERE la_code = ? AND child_id = ? AND "
        f"CAST({r.column} AS VARCHAR) IS NOT DISTINCT FROM ?",
        [req.la_code, req.child_id, fix.new_value]).fetchone()
    rows = dict(fix.rows)
    if current and current[0]:
        rows[f"harmonised.{r.table}"] = min(int(current[0]), before)
    result = actions.ActionResult(rows_touched=rows, detail={
        "table": r.table, "column": r.column, "overlay_id": fix.overlay_id,
        "harmonised_rebuilt": True})
    records = rows.get(f"raw.{r.table}", 0)
    text = "\n\n".join(c.text for c in letters.rectification_claims(
        r.table, r.column, fix.old_value, fix.new_value, records))
    return result, text


def _erase(v: Vault, request_id: int, today: dt.date, started: tuple[str, dict[str, str]],
           progress: ProgressCallback | None = None) -> ExecutionReport:
    done = erasure.run(v.path, v.user, v.password, request_id, today=today, started=started,
                       progress=progress)
    rows: dict[str, int] = {}
    outputs: list[dict[str, Any]] = []
    for a in done.actions:
        if a.kind in ("table", "validation"):
            rows[a.place] = rows.get(a.place, 0) + a.count
        elif a.kind == "output" and a.ref:
            kind, _, ident = a.ref.partition(" ")
            outputs.append({"output": a.place, "kind": kind, "id": ident, "basis": a.detail})
    return ExecutionReport(request_id=request_id, type="erasure", state=done.request.state,
                           rows_touched=rows, affected_outputs=outputs, rekey=done.rekey,
                           outcome=done.request.outcome or "")


def _access(s: VaultSession, register: Any, study: StudyFile, req: reg.RightsRequest,
            recipient: str, out_dir: Path, today: dt.date
            ) -> tuple[actions.ActionResult, tuple[str, bytes], str]:
    child = actions.child_of(req)
    bundle = actions.collect_access(s.con, req.la_code, child)
    stem = f"access-request-{req.request_id}"
    letter = letters.access_letter(study, req, bundle.row_counts,
                                   overlay.lineage(s.con, req.la_code, child),
                                   workbook_name=f"{stem}.xlsx", outputs=len(bundle.outputs),
                                   today=today)
    sealed = export.seal_access_response(req, recipient, workbook=export.access_workbook(bundle),
                                         letter=letter)
    # The sealed response holds the child's rows: registered, so an erasure destroys it.
    inventory.register(register, artefact_id=f"access-{req.request_id}",
                       kind="access_response", location=out_dir / sealed[0], user=s.user,
                       children=[(req.la_code, child)],
                       sha256=hashlib.sha256(sealed[1]).hexdigest())
    total = sum(n for t, n in bundle.row_counts.items() if t.startswith("raw."))
    result = actions.ActionResult(detail={"records": total, "tables": len(bundle.tables),
                                          "outputs": len(bundle.outputs),
                                          "file": sealed[0]})
    outcome = (letters.access_claims(bundle.row_counts)[0].text + "\n\n"
               + letters.sealed_claim(sealed[0], recipient.strip()))
    return result, sealed, outcome


# --- the inventory and its "still to destroy" list -------------------------------------------

def artefacts(v: Vault, *, to_destroy_only: bool = False) -> list[inventory.Artefact]:
    with _session(v, "rights inventory", {"to_destroy_only": to_destroy_only},
                  write=False) as s:
        _desk(s)
        return inventory.list_artefacts(s.con, states=("to_destroy",) if to_destroy_only
                                        else None)


def destroy(v: Vault, artefact_id: str, *, elsewhere: str | None = None
            ) -> inventory.Artefact:
    """Close an artefact of the 'still to destroy' list (see `vault.inventory`)."""
    with _session(v, "rights destroy", {"artefact": artefact_id,
                                        "elsewhere": elsewhere is not None}) as s:
        _desk(s)
        artefact_id = resolve_artefact(s.con, artefact_id)
        art = inventory.close_to_destroy(s.con, artefact_id, user=s.user,
                                         elsewhere_note=elsewhere)
        s.record(detail={"artefact": artefact_id, "kind": art.kind, "state": art.state})
    return art


def _package(s: VaultSession, text: str | None) -> str | None:
    """The package id `text` names (the whole id or a unique prefix, as `status` shows it)."""
    if text is None:
        return None
    from trialvault.short_ids import resolve

    ids = [str(r[0]) for r in s.con.execute("SELECT package_id FROM meta.packages").fetchall()]
    return resolve(text, ids, what="package", listed_by="`trialvault status`")


def resolve_artefact(con: Any, text: str) -> str:
    """The artefact id `text` names (the whole id or a unique prefix, as the inventory shows)."""
    from trialvault.short_ids import resolve

    ids = [a.artefact_id for a in inventory.list_artefacts(con)]
    return resolve(text, ids, what="stored copy", listed_by="`trialvault rights inventory`")


def artefact(v: Vault, artefact_id: str) -> inventory.Artefact:
    """One inventory entry (for `rights destroy --dry-run`)."""
    with _session(v, "rights inventory", {"artefact": artefact_id}, write=False) as s:
        _desk(s)
        return inventory.get(s.con, resolve_artefact(s.con, artefact_id))
