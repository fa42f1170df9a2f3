"""Rights page: open requests by due date, and every step of a request, for the DPO desk.

The console never reveals a child code: requests show as number, type, LA and dates. A child
code is typed in once, when a request is filed, and is not echoed back.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.errors import InputFileError
from trialvault.rights import service
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
        return Vault(settings.vault_dir, session.user, session.password)

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
        detail = service.show_request(vault(session), rid, today=dt.date.today())
        return console.render(request, session, "rights_show.html.j2",
                              title=f"Request {rid}: {detail.view.type}", d=detail,
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
            return _execute(v, rid, form, today)
        else:
            raise InputFileError(f"unknown action '{action}'", rule="form")
        return RedirectResponse(f"/rights/{rid}?done={action}", status_code=303)

    def _execute(v: Vault, rid: int, form: FormData, today: dt.date) -> Response:
        rectification = None
        if _text(form, "table", required=False):
            rectification = Rectification(table=_text(form, "table"),
                                          column=_text(form, "column"),
                                          value=_text(form, "value"),
                                          reason=_text(form, "reason"))
        recipient = _text(form, "recipient", required=False) or None
        with tempfile.TemporaryDirectory(prefix="tv-console-") as tmp:
            report = service.execute(v, settings.study, rid, today=today, recipient=recipient,
                                     out_dir=Path(tmp), rectification=rectification)
            if report.files:
                # The access export is age-encrypted to the requester's recipient key: the
                # only file the console ever hands out, and it is sealed.
                sealed = report.files[0]
                return Response(sealed.read_bytes(), media_type="application/octet-stream",
                                headers={"Content-Disposition":
                                         f'attachment; filename="{sealed.name}"'})
        return RedirectResponse(f"/rights/{rid}?done=execute", status_code=303)

    console.page("/rights", "Rights", RIGHTS_ROLES, index)
    console.page("/rights/new", "New request", RIGHTS_ROLES, create, methods=("POST",), nav=False)
    console.page("/rights/{rid:int}", "Request", RIGHTS_ROLES, show, nav=False)
    console.page("/rights/{rid:int}/{action}", "Act", RIGHTS_ROLES, act, methods=("POST",),
                 nav=False)


