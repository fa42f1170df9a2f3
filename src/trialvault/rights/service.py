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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialvault.errors import AccessDenied, InputFileError, PolicyRefusal
from trialvault.rights import actions, export
from trialvault.rights import register as reg
from trialvault.rights.deadlines import PauseKind
from trialvault.study.model import StudyFile
from trialvault.vault.admin import RekeyReport, rekey
from trialvault.vault.session import VaultSession, open_vault

DESK_ROLES = ("dpo", "data-manager")
MASK = "•••"


@dataclass(frozen=True)
class Vault:
    """Where the vault is and who opens it."""

    path: Path
    user: str
    password: str


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


@dataclass(frozen=True)
class RequestDetail:
    view: RequestView
    note: str | None
    extension_reason: str | None
    exemption: reg.Exemption | None
    pauses: list[tuple[str, dt.date, dt.date | None]]
    events: list[tuple[dt.datetime, str, str, str | None, str, str | None]]
    rows_held: dict[str, int]


@dataclass(frozen=True)
class Rectification:
    table: str
    column: str
    value: str
    reason: str
    source_file: str | None = None
    source_line: int | None = None


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
    return open_vault(v.path, v.user, v.password, command=command, args=args, write=write)


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
        outcome=req.outcome, closed_on=req.closed_on)


def _may_reveal(session: VaultSession, reveal: bool) -> bool:
    if reveal and session.role not in DESK_ROLES:
        raise AccessDenied(f"only {' or '.join(DESK_ROLES)} may see child codes; "
                           f"{session.user!r} is {session.role}")
    return reveal


# --- register -------------------------------------------------------------------------------

def new_request(v: Vault, study: StudyFile, *, type: str, la_code: int, child_id: str,
                received: dt.date, channel: str, note: str | None, today: dt.date) -> int:
    args = {"type": type, "la": la_code, "received": received, "channel": channel,
            "note_given": bool(note)}
    with _session(v, "rights new", args) as s:
        _desk(s)
        code = reg.check_child_code(child_id)
        reg.ensure_register(s.con)
        rid = reg.new_request(s.con, type=type, la_code=la_code, child_id=code,
                              child_hash=actions.child_hash(s.con, la_code, code),
                              received=received, channel=channel, note=note, user=s.user,
                              valid_las=study.la_codes, today=today)
        s.record(rows_touched={"rights.requests": 1}, detail={"request_id": rid})
    return rid


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
        detail = RequestDetail(
            view=_view(req, today, show_child=show), note=req.note,
            extension_reason=req.extension_reason, exemption=req.exemption,
            pauses=[(p.kind, p.asked, p.received) for p in req.pauses],
            events=reg.events(s.con, request_id), rows_held=held)
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
        return export.outcome_letter(study, req, today=today)


# --- execute --------------------------------------------------------------------------------

def execute(v: Vault, study: StudyFile, request_id: int, *, today: dt.date,
            recipient: str | None = None, out_dir: Path | None = None,
            rectification: Rectification | None = None) -> ExecutionReport:
    """Carry out the request in one audited transaction (erasure: then re-key the vault)."""
    args: dict[str, Any] = {"request_id": request_id}
    if rectification is not None:
        args.update(table=rectification.table, column=rectification.column,
                    source_file=rectification.source_file,
                    source_line=rectification.source_line)
    sealed: tuple[str, bytes] | None = None
    with _session(v, "rights execute", args) as s:
        _desk(s)
        # Child-domain work on s.con (committed first); the register on its own writer.
        register = s.writer("rights")
        req = reg.check_executable(register, request_id)
        args["type"] = req.type
        report = ExecutionReport(request_id=request_id, type=req.type, state=req.state)
        if req.type == "access":
            if recipient is None or out_dir is None:
                raise InputFileError("an access response needs --recipient (age public key) "
                                     "and --out (folder)", rule="recipient")
            result, sealed, report.outcome = _access(s, study, req, recipient, today)
        elif req.type == "rectification":
            if rectification is None:
                raise InputFileError("a rectification needs --table, --column, --value and "
                                     "--reason", rule="rectification")
            result = actions.rectify(s.con, register, req, table=rectification.table,
                                     column=rectification.column, value=rectification.value,
                                     reason=rectification.reason, user=s.user,
                                     source_file=rectification.source_file,
                                     source_line=rectification.source_line)
            n = sum(c for t, c in result.rows_touched.items() if t.startswith("raw."))
            report.outcome = (f"We corrected {rectification.column} in your "
                              f"{rectification.table} records ({n} record(s) as received, "
                              "and the current research version). The earlier value is kept "
                              "only in the correction history.")
        elif req.type in ("restriction", "objection"):
            result = actions.set_flag(s.con, req, req.type, user=s.user)
            report.outcome = (
                f"From {today.isoformat()} your information is excluded from every analysis "
                "and output of the research. It stays stored" +
                (" until you ask us to lift the restriction; we will tell you before any "
                 "restriction is lifted." if req.type == "restriction" else
                 ". We will not use it again unless we can show compelling legitimate "
                 "grounds that override your interests, which we would record and tell you."))
        else:
            result = actions.erase(s.con, register, req, user=s.user)
            report.outcome = _erasure_text(result)
        done = reg.complete(register, request_id, outcome=report.outcome, user=s.user,
                            today=today)
        report.state = done.state
        report.rows_touched = result.rows_touched
        report.affected_outputs = result.affected_outputs
        s.record(rows_touched=result.rows_touched,
                 detail={"request_id": request_id, "type": req.type, **result.detail})
    if sealed is not None and out_dir is not None:
        report.files.append(export.write_atomic(out_dir, *sealed))
    if report.type == "erasure":
        report.rekey = rekey(v.path, v.user, v.password)
    return report


def _access(s: VaultSession, study: StudyFile, req: reg.RightsRequest, recipient: str,
            today: dt.date) -> tuple[actions.ActionResult, tuple[str, bytes], str]:
    bundle = actions.collect_access(s.con, req.la_code, actions.child_of(req))
    stem = f"access-request-{req.request_id}"
    letter = export.access_letter(study, req, bundle, workbook_name=f"{stem}.xlsx",
                                  today=today)
    sealed = export.seal_access_response(req, recipient, workbook=export.access_workbook(bundle),
                                         letter=letter)
    total = sum(bundle.row_counts.values())
    result = actions.ActionResult(detail={"records": total, "tables": len(bundle.tables),
                                          "outputs": len(bundle.outputs),
                                          "file": sealed[0]})
    outcome = (f"We sent a copy of the {total} record(s) we hold, from "
               f"{len(bundle.tables)} table(s), with a covering letter, encrypted to the key "
               "agreed with the local authority.")
    return result, sealed, outcome


def _erasure_text(result: actions.ActionResult) -> str:
    data = {t: n for t, n in result.rows_touched.items()
            if t.split(".")[0] in ("raw", "harmonised")}
    text = (f"We erased all {sum(data.values())} record(s) about you from every table "
            f"({len(data)} table(s)), re-encrypted the research database under a new key so "
            "that no earlier copy of it can be read, and recorded a one-way code so that a "
            "later transfer from the local authority cannot add your records again.")
    if result.affected_outputs:
        names = ", ".join(sorted({f"{o.get('kind') or o['output']} {o.get('id') or ''}".strip()
                                  for o in result.affected_outputs}))
        text += (f" Outputs made before your request counted your records: {names}. They "
                 "are statistics about groups, published only after disclosure control.")
    return text
