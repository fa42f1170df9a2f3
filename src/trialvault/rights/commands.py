"""CLI of the rights desk: `trialvault rights …` (thin: parse, call `rights.service`, print).

Every command takes `--vault DIR` and acts as `--user` (default `$TRIALVAULT_USER`, else the
vault's only user); the password comes from `$TRIALVAULT_PASSWORD` or a hidden prompt. Only the
dpo and data-manager roles hold the register's key: other roles are refused (exit 4). Child
codes are shown only with `--reveal`; they are never written to a log or the audit chain.
`trialvault keygen` (top level) makes the age key a data subject's access response is sealed
to, and `rights open-response` opens one with it (neither needs a vault).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from trialvault.cli_common import (
    DryRunOption,
    StudyOption,
    UserOption,
    VaultOption,
    YesOption,
    acting_user,
    confirm,
    console,
    guarded,
    key_line,
    note,
    password_from_env_or_prompt,
    warning,
)
from trialvault.output import (
    Column,
    FormatOption,
    JsonOption,
    Listing,
    emit,
    emit_json,
    output_format,
    utc,
)
from trialvault.rights import service
from trialvault.rights.child_code import child_code
from trialvault.rights.deadlines import compute_deadline
from trialvault.rights.register import CHANNELS, REQUEST_TYPES
from trialvault.study import load_study

rights_app = typer.Typer(help="Data-subject requests: register, deadlines, actions, letters.",
                         no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(help="Request id (from `rights list`)")]
RevealOption = Annotated[bool, typer.Option("--reveal", help="Show child codes (dpo and "
                                            "data-manager only).")]
DateText = Annotated[str | None, typer.Option("--date", help="YYYY-MM-DD (default: today)")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why (a sentence; recorded).")]


def _login(vault: Path, user: str | None) -> service.Vault:
    name = acting_user(vault, user)
    return service.Vault(vault, name, password_from_env_or_prompt())


def _date(text: str | None, option: str) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{option}: expected a date YYYY-MM-DD") from None


def _choice(value: str, options: tuple[str, ...], option: str) -> str:
    if value not in options:
        raise typer.BadParameter(f"{option}: one of {', '.join(options)}")
    return value


def _left(view: service.RequestView) -> str:
    if view.days_left is None:
        return "clock stopped" if view.stopped_for else "—"
    if view.overdue:
        return f"{-view.days_left} overdue"
    return str(view.days_left)


def _notes(view: service.RequestView) -> str:
    notes = []
    if view.duplicate_of:
        notes.append(f"duplicate of request {view.duplicate_of}")
    if view.overdue_at_pause:
        notes.append(f"overdue at pause ({view.overdue_at_pause} day(s) late when "
                     "information was asked)")
    if view.state == "erasing":
        notes.append("erasure not finished: run `rights execute` again")
    if view.stopped_for:
        notes.append(f"awaiting {view.stopped_for}")
    if view.paused_days:
        notes.append(f"{view.paused_days} day(s) paused")
    if view.extended and view.tell_extension_by:
        notes.append(f"extended: tell the person by {view.tell_extension_by}")
    return "; ".join(notes)


@rights_app.command("new")
@guarded
def new(
    vault: VaultOption, study: StudyOption,
    type: Annotated[str, typer.Option("--type", help=" | ".join(REQUEST_TYPES))],
    la: Annotated[int, typer.Option("--la", help="DfE code of the LA the child belongs to")],
    received: Annotated[str, typer.Option("--received", help="Date received, YYYY-MM-DD")],
    channel: Annotated[str, typer.Option("--channel", help=" | ".join(CHANNELS))],
    child_file: Annotated[Path | None, typer.Option(
        "--child-file", help="A file holding the LA's child code (one line). Without this or "
        "--child, you are asked for the code (not echoed).")] = None,
    child: Annotated[str | None, typer.Option(
        "--child", help="The LA's child code, or - to read it from stdin. A code given here "
        "shows in process lists and shell history: prefer --child-file or the prompt.")]
    = None,
    note: Annotated[str | None, typer.Option("--note", help="Free text (kept in the vault)")]
    = None,
    user: UserOption = None,
    force: Annotated[bool, typer.Option("--force", help="Accept a received date before the "
                                        "study's data period")] = False,
) -> None:
    """Register a request received by email, post or phone (usually through the LA).

    The child's code is stored only inside the vault. Give it in a file, on stdin or at the
    prompt, so that it never shows in `ps` or your shell history.

    Example:

        trialvault rights new --type access --la 354 --child-file code.txt
          --received 2026-01-31 --channel email
    """
    s = load_study(study)
    code = child_code(child, child_file)
    rid, duplicate = service.file_request(
        _login(vault, user), s, type=_choice(type, REQUEST_TYPES, "--type"), la_code=la,
        child_id=code, received=_date(received, "--received"),
        channel=_choice(channel, CHANNELS, "--channel"), note=note, today=dt.date.today(),
        force=force)
    d = compute_deadline(_date(received, "--received"))
    console.print(f"[green]registered[/] request {rid} ({type}); due {d.due}")
    if duplicate:
        warning(f"request {rid} duplicates request {duplicate} (same type, LA and child within "
                "30 days): they are linked; answer them together")


REQUESTS = Listing("rights-list", "Data-subject requests with their due dates", (
    Column("id", "id", "integer"), Column("type", "type"), Column("la", "LA", "integer"),
    Column("child", "child", description="masked (•••) unless --reveal; '(erased)' once erased"),
    Column("received", "received", "date"), Column("channel", "channel"),
    Column("state", "state"), Column("due", "due", "date", nullable=True,
                                     description="null while the clock is stopped"),
    Column("days_left", "days left", "integer", nullable=True,
           description="negative when overdue; null when closed or the clock is stopped"),
    Column("overdue", "overdue", "boolean"),
    Column("closed_on", "closed", "date", nullable=True),
    Column("notes", "notes", wrap=True)))


def _request_row(v: service.RequestView) -> dict[str, Any]:
    return {"id": v.request_id, "type": v.type, "la": v.la_code, "child": v.child,
            "received": v.received, "channel": v.channel, "state": v.state, "due": v.due,
            "days_left": v.days_left, "overdue": v.overdue, "closed_on": v.closed_on,
            "notes": _notes(v)}


def _urgency(row: Any) -> str | None:
    if row["overdue"]:
        return "bold red"
    left = row["days_left"]
    return "yellow" if left is not None and left <= 7 else None


@rights_app.command("list")
@guarded
def list_(vault: VaultOption, user: UserOption = None, reveal: RevealOption = False,
          all_: Annotated[bool, typer.Option("--all", help="Include closed requests")] = False,
          fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """List requests with their due dates and days left (overdue in red, due within a week in
    yellow). Needs the register's key: the dpo and data-manager roles.

    Example: trialvault rights list --all --json
    """
    chosen = output_format(fmt, as_json)
    today = dt.date.today()
    views = service.list_requests(_login(vault, user), today=today, open_only=not all_,
                                  reveal=reveal)
    emit(REQUESTS, [_request_row(v) for v in views], chosen,
         title=f"Rights requests ({'all' if all_ else 'open'}), {today}", highlight=_urgency)
    if not views and chosen.value == "table":
        note("no requests" if all_ else "no open requests (--all lists closed ones too)")


HISTORY = Listing("rights-history", "Events of one request (rights show)", (
    Column("at", "when (UTC)", "datetime"), Column("by", "by"), Column("action", "action"),
    Column("from", "from", nullable=True), Column("to", "to"),
    Column("detail", "detail", nullable=True, wrap=True)))


@rights_app.command("show")
@guarded
def show(request_id: IdArg, vault: VaultOption, user: UserOption = None,
         reveal: RevealOption = False, fmt: FormatOption = None,
         as_json: JsonOption = False) -> None:
    """Show one request: facts, deadline, pauses, exemption, history, rows held, stored
    copies and corrections (old and new values only with --reveal).

    Example: trialvault rights show 3
    """
    chosen = output_format(fmt, as_json)
    d = service.show_request(_login(vault, user), request_id, today=dt.date.today(),
                             reveal=reveal)
    v = d.view
    history = [{"at": utc(at), "by": by, "action": action, "from": frm, "to": to,
                "detail": detail} for at, by, action, frm, to, detail in d.events]
    if chosen.value == "json":
        e = d.exemption
        emit_json({"request": REQUESTS.records([_request_row(v)])[0], "note": d.note,
                   "extension_reason": d.extension_reason,
                   "tell_extension_by": v.tell_extension_by, "outcome": v.outcome,
                   "exemption": None if e is None else {
                       "right": e.right, "basis": e.basis, "reason": e.reason,
                       "decided_by": e.decided_by, "decided_on": e.decided_on},
                   "pauses": [{"kind": k, "asked": a, "received": r} for k, a, r in d.pauses],
                   "rows_held": d.rows_held, "stored_copies": d.artefacts,
                   "corrections": [{k: c.get(k) for k in ("table", "column", "old", "new",
                                                          "record", "packages")}
                                   for c in d.corrections],
                   "history": HISTORY.records(history)})
        return
    if chosen.value == "csv":
        emit(HISTORY, history, chosen)
        return
    console.print(f"[bold]request {v.request_id}[/] {v.type} · LA {v.la_code} · child {v.child}")
    console.print(f"received {v.received} by {v.channel} · state {v.state.replace('_', ' ')}")
    console.print(f"due {v.due or '— (clock stopped)'} · days left {_left(v)} · {_notes(v)}",
                  markup=False, style="bold red" if v.overdue else None)
    if d.extension_reason:
        console.print(f"extension reason: {d.extension_reason}", markup=False)
    for kind, asked, answered in d.pauses:
        console.print(f"pause: {kind} asked {asked}, received {answered or '(waiting)'}")
    if d.exemption:
        e = d.exemption
        console.print(f"exemption: {e.basis}; decided by {e.decided_by} on {e.decided_on}: "
                      f"{e.reason}", markup=False)
    if v.duplicate_of:
        console.print(f"duplicate of request {v.duplicate_of} (answer them together)")
    if v.overdue_at_pause:
        console.print(f"[red]overdue at pause:[/] {v.overdue_at_pause} day(s) past the due date "
                      "when the information was asked for")
    if v.outcome:
        console.print(f"outcome ({v.closed_on}): {v.outcome}", markup=False)
    for c in d.corrections:
        states = ", ".join(f"{pkg[:8]}… {state}" for pkg, state in c["packages"].items())
        console.print(f"correction: {c['table']}.{c['column']} {c['old']} → {c['new']} "
                      f"(record {c['record']}); {states}", markup=False)
    for a in d.artefacts:
        console.print(f"stored copy holding the child: {a}", markup=False)
    if d.note:
        console.print(f"note: {d.note}", markup=False)
    held = ", ".join(f"{t} {n}" for t, n in d.rows_held.items()) or "none"
    console.print(f"rows held about the child: {held}", highlight=False)
    emit(HISTORY, history, chosen, title="history")


@rights_app.command("await-id")
@guarded
def await_id(request_id: IdArg, vault: VaultOption, user: UserOption = None,
             date: DateText = None) -> None:
    """Stop the clock: proof of identity was asked for (the month restarts on receipt).

    Example: trialvault rights await-id 3 --date 2026-02-02
    """
    v = service.await_information(_login(vault, user), request_id, "identity",
                                  asked=_date(date, "--date"), today=dt.date.today())
    console.print(f"request {v.request_id}: clock stopped, awaiting identity")


@rights_app.command("await-clarification")
@guarded
def await_clarification(request_id: IdArg, vault: VaultOption, user: UserOption = None,
                        date: DateText = None) -> None:
    """Stop the clock: clarification was asked for (those days do not count, Art. 12A).

    Example: trialvault rights await-clarification 3 --date 2026-02-02
    """
    v = service.await_information(_login(vault, user), request_id, "clarification",
                                  asked=_date(date, "--date"), today=dt.date.today())
    console.print(f"request {v.request_id}: clock stopped, awaiting clarification")


@rights_app.command("resume")
@guarded
def resume(request_id: IdArg, vault: VaultOption,
           date: Annotated[str, typer.Option("--date", help="Day the ID or clarification "
                                             "arrived, YYYY-MM-DD")],
           user: UserOption = None) -> None:
    """Restart the clock when the awaited ID or clarification arrives.

    Example: trialvault rights resume 3 --date 2026-02-09
    """
    v = service.resume(_login(vault, user), request_id, answered=_date(date, "--date"),
                       today=dt.date.today())
    console.print(f"request {v.request_id}: in progress, due {v.due} "
                  f"({v.paused_days} day(s) paused)")


@rights_app.command("start")
@guarded
def start(request_id: IdArg, vault: VaultOption, user: UserOption = None) -> None:
    """Mark a request in progress (no ID or clarification needed).

    Example: trialvault rights start 3
    """
    v = service.start(_login(vault, user), request_id, today=dt.date.today())
    console.print(f"request {v.request_id}: in progress, due {v.due}")


@rights_app.command("extend")
@guarded
def extend(request_id: IdArg, vault: VaultOption, reason: ReasonOption,
           user: UserOption = None) -> None:
    """Extend by two further months (complex or numerous requests).

    The person must be told within the first month, with the reason.

    Example: trialvault rights extend 3 --reason "Five years of returns in two formats to search"
    """
    v = service.extend(_login(vault, user), request_id, reason=reason, today=dt.date.today())
    console.print(f"request {v.request_id}: extended, due {v.due}; [bold yellow]tell the "
                  f"person by {v.tell_extension_by}[/] and why")


@rights_app.command("exempt")
@guarded
def exempt(request_id: IdArg, vault: VaultOption,
           right: Annotated[str, typer.Option("--right", help="The right assessed (the "
                                              "request's type)")],
           reason: Annotated[str, typer.Option("--reason", help="Why complying would prevent "
                                               "or seriously impair the research")],
           decided_by: Annotated[str, typer.Option("--decided-by", help="Who decided")],
           user: UserOption = None) -> None:
    """Record a case-by-case research-exemption decision; closes the request as refused.

    Basis: DPA 2018 Sch. 2 Part 6 para 27 (access, rectification, restriction, objection) or
    UK GDPR Art. 17(3)(d) (erasure), with Art. 89(1) safeguards. Never a default.

    Example: trialvault rights exempt 4 --right erasure --reason "..." --decided-by "DPO"
    """
    v = service.exempt(_login(vault, user), request_id, right=right, reason=reason,
                       decided_by=decided_by, today=dt.date.today())
    console.print(f"request {v.request_id}: exemption recorded; refused. Send the letter: "
                  f"trialvault rights letter {v.request_id}")


@rights_app.command("refuse")
@guarded
def refuse(request_id: IdArg, vault: VaultOption, reason: ReasonOption,
           user: UserOption = None) -> None:
    """Refuse a request, with the reason (the letter tells the person how to complain).

    Example: trialvault rights refuse 5 --reason "The LA confirmed the code is not a trial child"
    """
    v = service.refuse(_login(vault, user), request_id, reason=reason, today=dt.date.today())
    console.print(f"request {v.request_id}: refused")


@rights_app.command("execute")
@guarded
def execute(
    request_id: IdArg, vault: VaultOption, study: StudyOption, user: UserOption = None,
    recipient: Annotated[str | None, typer.Option("--recipient", help="access: the age public key "
                                                  "(age1…) to seal the response to, or the file "
                                                  "holding it (`trialvault keygen`)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="access: folder for the sealed "
                                             "response")] = None,
    table: Annotated[str | None, typer.Option("--table", help="rectification: table")] = None,
    column: Annotated[str | None, typer.Option("--column", help="rectification: column")]
    = None,
    value: Annotated[str | None, typer.Option("--value", help="rectification: corrected "
                                              "value")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="rectification: why")] = None,
    source_file: Annotated[str | None, typer.Option("--source-file", help="rectification: "
                                                    "only rows from this file")] = None,
    source_line: Annotated[int | None, typer.Option("--source-line", help="rectification: "
                                                    "only rows from this line")] = None,
    package: Annotated[str | None, typer.Option("--package", help="rectification: only rows "
                                                "of this package (id, or a unique prefix "
                                                "as `status` shows it)")] = None,
    collection_year: Annotated[int | None, typer.Option("--collection-year", help=(
        "rectification: only rows of this collection year"))] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Carry out a request, after showing what it will do, per place, and asking you to
    confirm (`--yes` in scripts; `--dry-run` shows the preview and changes nothing).

    access: the child's records (workbook) and a covering letter, sealed with age to the
    --recipient key (made with `trialvault keygen`), into --out; rectification: --table
    --column --value --reason (name the record with --package / --collection-year /
    --source-file --source-line when the child has several); restriction/objection: exclusion
    flag; erasure: typed confirmation, delete everywhere, tombstone, re-key — an interrupted
    erasure is finished by running this again.

    Example:

        trialvault rights execute 3 --dry-run

        trialvault rights execute 3 --recipient age1... --out responses/ --yes
    """
    rect = None
    if table or column or value is not None:
        if not (table and column and value is not None and reason):
            raise typer.BadParameter("rectification needs --table, --column, --value and "
                                     "--reason")
        rect = service.Rectification(table, column, value, reason, source_file, source_line,
                                     package, collection_year)
    from trialvault.progress import show_progress

    if recipient is not None:
        recipient = key_line(recipient, prefix="age1", option="--recipient")
    v = _login(vault, user)
    s = load_study(study)
    if dry_run or not yes:
        kind, plan = service.preview(v, request_id, recipient=recipient, out_dir=out,
                                     rectification=rect)
        _print_plan(kind, plan)
        if dry_run:
            return
        if kind == "erasure":
            confirm("This deletes the child's data for good.", yes=yes, what="erasure",
                    phrase=f"erase {request_id}")
        else:
            confirm(f"Carry out this {kind} request?", yes=yes, what=f"executing a {kind} "
                    "request")
    with show_progress("rights execute") as progress:
        rep = service.execute(v, s, request_id, today=dt.date.today(), recipient=recipient,
                              out_dir=out, rectification=rect, progress=progress)
    console.print(f"[green]request {rep.request_id} ({rep.type}) {rep.state}[/]")
    for name, n in rep.rows_touched.items():
        console.print(f"  {name:40} {n}")
    for path in rep.files:
        console.print(f"  sealed response: {path}")
    if rep.rekey:
        console.print("  vault re-keyed: " + ", ".join(rep.rekey.domains))
    for o in rep.affected_outputs:
        console.print(f"  [yellow]affected output[/]: {o['output']} {o.get('id') or ''}")


@rights_app.command("override")
@guarded
def override(request_id: IdArg, vault: VaultOption,
             grounds: Annotated[str, typer.Option("--grounds", help="Compelling legitimate "
                                                  "grounds that override the objection")],
             decided_by: Annotated[str, typer.Option("--decided-by", help="Who decided")],
             user: UserOption = None) -> None:
    """Override an executed objection on recorded compelling legitimate grounds (Art. 21(1)).

    Example: trialvault rights override 6 --grounds "..." --decided-by "DPO"
    """
    service.override_objection(_login(vault, user), request_id, grounds=grounds,
                               decided_by=decided_by, today=dt.date.today())
    console.print(f"request {request_id}: objection overridden; the child is no longer excluded")


@rights_app.command("lift")
@guarded
def lift(request_id: IdArg, vault: VaultOption, reason: ReasonOption,
         user: UserOption = None) -> None:
    """Lift an executed restriction (tell the person before it is lifted, Art. 18(3)).

    Example: trialvault rights lift 7 --reason "The person withdrew the restriction in writing"
    """
    service.lift_restriction(_login(vault, user), request_id, reason=reason,
                             today=dt.date.today())
    console.print(f"request {request_id}: restriction lifted")


@rights_app.command("letter")
@guarded
def letter(request_id: IdArg, vault: VaultOption, study: StudyOption, user: UserOption = None,
           out: Annotated[Path | None, typer.Option("--out", help="Write to this file")] = None
           ) -> None:
    """The outcome letter of a closed request (Markdown; no child code, no data values).

    Example: trialvault rights letter 4 --out letter-4.md
    """
    text = service.outcome_letter(_login(vault, user), load_study(study), request_id,
                                  today=dt.date.today())
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@rights_app.command("deadline")
@guarded
def deadline(received: Annotated[str, typer.Argument(help="Date received, YYYY-MM-DD")],
             extended: Annotated[bool, typer.Option("--extended", help="Three months")] = False,
             as_json: JsonOption = False) -> None:
    """Compute a response deadline by the ICO rules (no vault needed).

    Example: trialvault rights deadline 2026-01-31
    """
    d = compute_deadline(_date(received, "RECEIVED"), extended=extended)
    if as_json:
        emit_json({"received": d.received, "due": d.due, "weekday": f"{d.due:%A}",
                   "extended": extended, "tell_extension_by": d.tell_extension_by})
        return
    console.print(f"received {d.received}: due {d.due} ({d.due:%A})"
                  + (f"; tell the person of the extension by {d.tell_extension_by}"
                     if d.tell_extension_by else ""))


PLAN = Listing("rights-plan", "What executing a request will do, per place (no values)", (
    Column("place", "place"), Column("what", "what", wrap=True),
    Column("count", "count", "integer")))


def _print_plan(kind: str, plan: Any) -> None:
    emit(PLAN, [{"place": a.place, "what": a.action, "count": a.count} for a in plan.actions],
         output_format(None, False), title=f"{kind} request {plan.request_id}: what will be "
         "done")
    if kind == "erasure":
        console.print(f"{plan.records} record(s) as received from the LA; every step is "
                      "audited")


INVENTORY = Listing("rights-inventory", "Stored copies that hold children's data", (
    Column("id", "id", description="artefact id (a unique prefix will do for `rights destroy`)"),
    Column("kind", "kind", description="package, access_response, export or backup"),
    Column("location", "where", wrap=True), Column("children", "children", "integer"),
    Column("created_at", "made (UTC)", "datetime"), Column("state", "state",
                                                           description="held, to_destroy, "
                                                           "destroyed, destroyed_elsewhere"),
    Column("request", "request", "integer", nullable=True,
           description="the request that put it on the 'still to destroy' list"),
    Column("purpose", "purpose", nullable=True)))


@rights_app.command("inventory")
@guarded
def inventory_cmd(vault: VaultOption, user: UserOption = None,
                  to_destroy: Annotated[bool, typer.Option(
                      "--to-destroy", help="Only the 'still to destroy' list")] = False,
                  fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """Stored copies that hold children's data (packages, access responses, exports, backups).

    Example: trialvault rights inventory --to-destroy
    """
    chosen = output_format(fmt, as_json)
    arts = service.artefacts(_login(vault, user), to_destroy_only=to_destroy)
    emit(INVENTORY, [{"id": a.artefact_id, "kind": a.kind, "location": a.location,
                      "children": a.children, "created_at": utc(a.created_at),
                      "state": a.state, "request": a.state_request, "purpose": a.purpose}
                     for a in arts], chosen,
         title="still to destroy" if to_destroy else "stored copies holding children's data")
    if not arts and chosen.value == "table":
        note("nothing to destroy" if to_destroy else "no stored copies registered")


@rights_app.command("destroy")
@guarded
def destroy(artefact: Annotated[str, typer.Argument(help="Artefact id (from `rights "
                                                    "inventory`)")],
            vault: VaultOption, user: UserOption = None,
            elsewhere: Annotated[str | None, typer.Option(
                "--elsewhere", help="It was destroyed outside this machine: say where and "
                "how (recorded)")] = None,
            dry_run: DryRunOption = False, yes: YesOption = False) -> None:
    """Close an item of the 'still to destroy' list: delete it (files overwritten, then
    removed), or record that it was destroyed elsewhere. Asks first (`--yes` in scripts).

    Example: trialvault rights destroy export-1a2b --elsewhere "TRE copy deleted by its admin"
    """
    v = _login(vault, user)
    if dry_run or not yes:
        art = service.artefact(v, artefact)
        how = ("record it as destroyed elsewhere" if elsewhere is not None else
               "overwrite its files with random bytes, then delete them")
        console.print(f"{art.kind} {art.artefact_id} at {art.location} ({art.children} "
                      f"children, {art.state.replace('_', ' ')}): will {how}", highlight=False,
                      soft_wrap=True)
        if dry_run:
            return
        confirm(f"Destroy {art.name}?", yes=yes, what="destroying a stored copy")
        artefact = art.artefact_id
    art = service.destroy(v, artefact, elsewhere=elsewhere)
    console.print(f"{art.kind} {art.name}: {art.state.replace('_', ' ')}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    from trialvault.rights.key_commands import keygen, open_response

    rights_app.command("open-response")(open_response)
    app.add_typer(rights_app, name="rights")
    app.command("keygen")(keygen)
