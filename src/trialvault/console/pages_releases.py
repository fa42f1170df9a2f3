"""Releases page: requests, the checking report beside the checked outputs, and review.

A reviewer signs in with their own key slot; the library refuses a requester who tries to
review their own release (two-person rule), and the console shows that refusal.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.disclose.checking import render_markdown
from trialvault.disclose.release import (
    REVIEW_ROLES,
    release_list,
    request_release,
    review_release,
    show_release,
)
from trialvault.errors import InputFileError, PolicyRefusal

RELEASE_ROLES = {"analyst", "output-checker", "data-manager", "dpo"}
DECISIONS = ("approve", "return", "reject")


def add_release_pages(console: Console) -> None:
    settings = console.settings

    def index(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        releases = release_list(settings.vault_dir, session.user, session.password,
                                audit_read=False)
        return console.render(request, session, "releases.html.j2", title="Releases",
                              releases=list(reversed(releases)))

    def new(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        note = str(form.get("note", "") if form else "").strip()
        resubmits = str(form.get("resubmits", "") if form else "").strip() or None
        release_id = request_release(settings.vault_dir, session.user, session.password,
                                     settings.study, note=note, resubmits=resubmits)
        return RedirectResponse(f"/releases/{release_id}", status_code=303)

    def show(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        release_id = request.path_params["release_id"]
        record, checked = show_release(settings.vault_dir, session.user, session.password,
                                       release_id, audit_read=False)
        report = MarkdownIt("commonmark", {"html": False}).enable("table").render(
            render_markdown(checked, record.meta()))
        may_review = (record.status == "pending" and session.role in REVIEW_ROLES
                      and session.user != record.requested_by)
        may_resubmit = (record.status == "returned" and not record.resubmitted_as
                        and session.user == record.requested_by)
        return console.render(request, session, "release_show.html.j2",
                              title=f"Release {record.release_id}", record=record,
                              checked=checked, report=Markup(report), decisions=DECISIONS,
                              may_review=may_review, may_resubmit=may_resubmit,
                              message=request.query_params.get("done"))

    def review(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        release_id = request.path_params["release_id"]
        form = form or FormData()
        decision = str(form.get("decision", ""))
        if decision not in DECISIONS:
            raise InputFileError("choose approve, return or reject", rule="form")
        if decision == "reject" and form.get("final") != "yes":
            raise PolicyRefusal("a rejection is final (the requester cannot resubmit): tick "
                                "'I understand' to reject, or return it instead; nothing was "
                                "recorded")
        review_release(settings.vault_dir, session.user, session.password, release_id,
                       decision, str(form.get("comment", "")))  # type: ignore[arg-type]
        return RedirectResponse(f"/releases/{release_id}?done={decision}", status_code=303)

    console.page("/releases", "Releases", RELEASE_ROLES, index)
    # Who may request or review is the library's rule (REQUEST_ROLES, REVIEW_ROLES and the
    # two-person check); the console lets it refuse, so the refusal reads the same as the CLI's.
    console.page("/releases/new", "Request", RELEASE_ROLES, new, methods=("POST",), nav=False)
    console.page("/releases/{release_id}", "Release", RELEASE_ROLES, show, nav=False)
    console.page("/releases/{release_id}/review", "Review", RELEASE_ROLES, review,
                 methods=("POST",), nav=False)
