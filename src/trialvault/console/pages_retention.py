"""Retention page: the rule from the study file, the countdown, and purge with typed confirmation."""

from __future__ import annotations

import datetime as dt

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.errors import PolicyRefusal
from trialvault.retention.purge import PURGE_ROLES, purge
from trialvault.retention.schedule import retention_status

RETENTION_ROLES = set(PURGE_ROLES)


def add_retention_pages(console: Console) -> None:
    settings = console.settings
    phrase = f"destroy {settings.study.study.id}"

    def show(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        status = retention_status(settings.study, settings.vault_dir, today=dt.date.today())
        return console.render(request, session, "retention.html.j2", title="Retention",
                              st=status, phrase=phrase)

    def do_purge(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        form = form or FormData()
        typed = str(form.get("confirm", "")).strip()
        if typed != phrase:
            raise PolicyRefusal(f"confirmation did not match '{phrase}': nothing was destroyed")
        early = str(form.get("early_reason", "")).strip() or None
        result = purge(settings.vault_dir, session.user, session.password, settings.study,
                       today=dt.date.today(), certificate_dir=settings.certificate_dir,
                       early_reason=early)
        console.sessions.expire_all()  # the vault is gone: nobody can stay signed in to it
        return console.render(request, None, "purged.html.j2", title="Vault destroyed",
                              result=result)

    console.page("/retention", "Retention", RETENTION_ROLES, show)
    console.page("/retention/purge", "Purge", RETENTION_ROLES, do_purge, methods=("POST",),
                 nav=False)
