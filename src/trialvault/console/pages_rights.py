"""Rights page: open requests by due date, and every step of a request, for the DPO desk.

The console never reveals a child code: requests show as number, type, LA and dates. A child
code is typed in once, when a request is filed, and is not echoed back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.errors import InputFileError, NotFound, PolicyRefusal
from trialvault.rights import export, service
from trialvault.rights.register import OPEN_STATES
from trialvault.rights.service import Rectification, Vault

RIGHTS_ROLES = {"dpo", "data-manager"}
TYPES = ("access", "rectification", "erasure", "restriction", "objection")
CHANNELS = ("email", "post", "phone")


def _text(form: FormData, name: str, *, required: bool = True) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise InputFileError(f"the form field '{name}' is required", rule="form")
    return text


def _date(form: FormData, name: str) -> dt.date:
    text = _text(form, name)
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputFileError(f"'{name}' must be a date (YYYY-MM-DD)", rule="form") from None


def add_rights_pages(console: Console) -> None:
    settings = console.settings

    def vault(session: ConsoleSession) -> Vault:
        # Page views read without an audit entry each (the session is audited at login and
        # logout); every change the desk makes is audited as in the CLI.
        return Vault(settings.vault_dir, session.user, session.password, audit_reads=False)

    def index(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        today = dt.date.today()
        views = service.list_requests(vault(session), today=today)
        open_views = sorted((v for v in views if v.closed_on is None),
                            key=lambda v: (v.due or dt.date.max, v.request_id))
        closed = sorted((v for v in views if v.closed_on is not None),
                        key=lambda v: v.closed_on or dt.date.min, reverse=True)
        return console.render(request, session, "rights.html.j2", title="Rights requests",
                              open_views=open_views, closed=closed, types=TYPES,
                              channels=CHANNELS, las=settings.study.local_authorities,
                              today=today)

    def create(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        form = form or FormData()
        kind = _text(form, "type")
        channel = _text(form, "channel")
        try:
            la_code = int(_text(form, "la"))
        except ValueError:
            raise InputFileError("'la' must be a DfE LA code", rule="form") from None
        rid = service.new_request(vault(session), settings.study, type=kind, la_code=la_code,
                                  child_id=_text(form, "child"), received=_date(form, "received"),
                                  channel=channel, note=_text(form, "note", required=False) or None,
                                  today=dt.date.today())
        return RedirectResponse(f"/rights/{rid}", status_code=303)

    def show(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        rid = int(request.path_params["rid"])
        v = vault(session)
        detail = service.show_request(v, rid, today=dt.date.today())
        sealed = _held_response(v, rid) if detail.view.type == "access" else None
        return console.render(request, session, "rights_show.html.j2",
                              title=f"Request {rid}: {detail.view.type}", d=detail,
                              actions=allowed_actions(detail.view),
                              sealed=sealed.name if sealed else None,
                              message=request.query_params.get("done"))

    def act(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        rid = int(request.path_params["rid"])
        action = request.path_params["action"]
        form = form or FormData()
        today = dt.date.today()
        v = vault(session)
        if action == "await-id":
            service.await_information(v, rid, "identity", asked=_date(form, "date"), today=today)
        elif action == "await-clarification":
            service.await_information(v, rid, "clarification", asked=_date(form, "date"),
                                      today=today)
        elif action == "resume":
            service.resume(v, rid, answered=_date(form, "date"), today=today)
        elif action == "start":
            service.start(v, rid, today=today)
        elif action == "extend":
            service.extend(v, rid, reason=_text(form, "reason"), today=today)
        elif action == "exempt":
            service.exempt(v, rid, right=_text(form, "right"), reason=_text(form, "reason"),
                           decided_by=_text(form, "decided_by"), today=today)
        elif action == "refuse":
            service.refuse(v, rid, reason=_text(form, "reason"), today=today)
        elif action == "execute":
            return _execute(request, session, v, rid, form, today)
        else:
            raise InputFileError(f"unknown action '{action}'", rule="form")
        return RedirectResponse(f"/rights/{rid}?done={action}", status_code=303)

    def _execute(request: Request, session: ConsoleSession, v: Vault, rid: int,
                 form: FormData, today: dt.date) -> Response:
        """First a preview of what will be done (nothing changed), then, from the preview's
        own form, the execution; an erasure needs `erase N` typed, as on the command line."""
        rectification = None
        if _text(form, "table", required=False):
            rectification = Rectification(table=_text(form, "table"),
                                          column=_text(form, "column"),
                                          value=_text(form, "value"),
                                          reason=_text(form, "reason"))
        recipient = _text(form, "recipient", required=False) or None
        if recipient is not None:
            export.check_recipient(recipient)
        out_dir = settings.responses_dir.absolute()
        if _text(form, "confirmed", required=False) != "yes":
            kind, plan = service.preview(v, rid, recipient=recipient, out_dir=out_dir,
                                         rectification=rectification)
            fields = {k: str(form.get(k)) for k in ("recipient", "table", "column", "value",
                                                     "reason") if form.get(k)}
            return console.render(request, session, "rights_confirm.html.j2",
                                  title=f"Request {rid}: check before executing", rid=rid,
                                  kind=kind, plan=plan, fields=fields,
                                  phrase=f"erase {rid}" if kind == "erasure" else None)
        view = service.show_request(v, rid, today=today).view
        if view.type == "erasure" and _text(form, "phrase", required=False) != f"erase {rid}":
            raise PolicyRefusal(f"type 'erase {rid}' to confirm the erasure: nothing was "
                                "changed")
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        service.execute(v, settings.study, rid, today=today, recipient=recipient,
                        out_dir=out_dir, rectification=rectification)
        return RedirectResponse(f"/rights/{rid}?done=execute", status_code=303)

    def response_file(request: Request, session: ConsoleSession, form: FormData | None
                      ) -> Response:
        """The sealed access response, again, while the inventory still holds it."""
        rid = int(request.path_params["rid"])
        held = _held_response(vault(session), rid)
        if held is None:
            raise NotFound(f"request {rid} has no sealed access response held (destroyed, or "
                           "never made)")
        return Response(held.read_bytes(), media_type="application/octet-stream",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{held.name}"'})

    def _held_response(v: Vault, rid: int) -> Path | None:
        name = f"access-request-{rid}{export.SEALED_SUFFIX}"
        for a in service.artefacts(v):
            if a.kind == "access_response" and a.name == name and a.state == "held":
                path = Path(a.location)
                return path if path.is_file() else None
        return None

    def letter(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        rid = int(request.path_params["rid"])
        text = service.outcome_letter(vault(session), settings.study, rid,
                                      today=dt.date.today())
        return console.render(request, session, "rights_letter.html.j2",
                              title=f"Request {rid}: outcome letter", rid=rid, letter=text)

    console.page("/rights", "Rights", RIGHTS_ROLES, index)
    console.page("/rights/new", "New request", RIGHTS_ROLES, create, methods=("POST",), nav=False)
    console.page("/rights/{rid:int}", "Request", RIGHTS_ROLES, show, nav=False)
    console.page("/rights/{rid:int}/response", "Response", RIGHTS_ROLES, response_file,
                 nav=False)
    console.page("/rights/{rid:int}/letter", "Letter", RIGHTS_ROLES, letter, nav=False)
    console.page("/rights/{rid:int}/{action}", "Act", RIGHTS_ROLES, act, methods=("POST",),
                 nav=False)


def allowed_actions(v: service.RequestView) -> set[str]:
    """The actions the request's state allows (the register refuses the others): the page
    shows only these buttons."""
    if v.closed_on is not None or v.state not in OPEN_STATES:
        return set()
    out = {"extend", "exempt", "refuse"} - ({"extend"} if v.extended else set())
    if v.state in ("received", "in_progress"):
        out |= {"await-id", "await-clarification", "execute"}
    if v.state in ("awaiting_identity", "awaiting_clarification"):
        out.add("resume")
    if v.state == "received":
        out.add("start")
    if v.state == "erasing":
        out = {"execute"}  # only finishing the erasure remains
    return out


