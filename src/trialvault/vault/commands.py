"""CLI commands of the vault stage (thin: parse, call the library, print).

Every command takes `--vault DIR` (default `$TRIALVAULT_VAULT`, else `./vault`) and acts as
`--user` (default `$TRIALVAULT_USER`, else the vault's only user; a vault with several users
needs one of the two). Passwords come from `$TRIALVAULT_PASSWORD` or a hidden prompt; a new password
(`users add`, `passwd`) from `$TRIALVAULT_NEW_PASSWORD` or a prompt with confirmation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialvault.cli_common import (
    AUDIT_READERS,
    DryRunOption,
    FirstUserOption,
    StudyOption,
    UserOption,
    VaultOption,
    YesOption,
    acting_user,
    check_user_name,
    confirm,
    console,
    err_console,
    first_user,
    guarded,
    note,
    password_from_env_or_prompt,
    warning,
)
from trialvault.errors import IntegrityError
from trialvault.output import (
    Column,
    FormatOption,
    JsonOption,
    Listing,
    emit,
    emit_json,
    output_format,
)
from trialvault.study import load_study
from trialvault.trust import REKEY_ROLES, ROLES
from trialvault.vault import admin
from trialvault.vault.ingest import ingest_packages
from trialvault.vault.status import vault_status

NEW_PASSWORD_ENV = "TRIALVAULT_NEW_PASSWORD"



def _password() -> str:
    return password_from_env_or_prompt()


def _new_password(prompt: str) -> str:
    return password_from_env_or_prompt(prompt, confirm=True, env=NEW_PASSWORD_ENV)


@guarded
def init(vault: VaultOption, study: StudyOption, user: FirstUserOption = None) -> None:
    """Create a new vault: encrypted database, your data-manager key slot, the evaluator's age
    key. Prints the public recipient LAs seal packages to.

    Example: TRIALVAULT_PASSWORD=... trialvault init --vault vault --user alice
    """
    name = first_user(user)
    study_id = load_study(study).study.id
    password = password_from_env_or_prompt("New vault password", confirm=True)
    recipient = admin.init_vault(vault, name, password, study_id=study_id)
    console.print(f"[green]created[/] vault {vault} for study '{study_id}'; data-manager {name}")
    console.print(f"evaluator recipient: {recipient}", soft_wrap=True)


@guarded
def pubkey(vault: VaultOption) -> None:
    """Print the evaluator's public age recipient (give it to LAs for `prepare --recipient`).
    Needs no password: it is public, and checked against a data manager's signature.

    Example: trialvault pubkey --vault vault
    """
    typer.echo(admin.evaluator_recipient(vault))


@guarded
def ingest(
    packages: Annotated[list[Path], typer.Argument(help="Sealed package files (*.tvpkg)")],
    vault: VaultOption, study: StudyOption, user: UserOption = None,
    receipts: Annotated[Path | None, typer.Option(
        "--receipts", help="Folder for the signed receipts to send back to each LA "
        "(default: beside each package, <package>.receipt.json)")] = None,
    keep_packages: Annotated[bool, typer.Option(
        "--keep-packages", help="Keep the package files after a verified ingest (they stay "
        "registered in the inventory; an erasure destroys them)")] = False,
    accept_drop: Annotated[bool, typer.Option(
        "--accept-drop", help="Accept a new extract with markedly fewer rows or children than "
        "the one it replaces (checked with the LA)")] = False,
) -> None:
    """Decrypt, verify and load packages in one transaction (raw + harmonised current view).
    Each package must be signed by a key registered for its LA (`la trust`); a package seen
    before, an extract older than the LA's latest, or a new extract with markedly fewer rows
    (the study's intake rule) is refused and nothing is loaded. A newer extract supersedes an
    LA's older one.
    Each LA gets a signed receipt (package id, audit entry, hash): it anchors the audit log
    outside the vault (`audit verify --witness RECEIPT`). Package files are then deleted once
    the vault verifiably holds them (a signed `<package>.deleted.json` certificate is left in
    their place), unless --keep-packages.

    Example: trialvault ingest out/354.tvpkg out/807.tvpkg --vault vault
    """
    from trialvault.files import write_atomic
    from trialvault.progress import show_progress
    from trialvault.trust import canonical

    name, password = acting_user(vault, user), _password()
    with show_progress("ingest") as progress:
        report = ingest_packages(vault, name, password, packages, study=load_study(study),
                                 accept_drop=accept_drop, progress=progress)
    by_id = {p.package_id: p for p in report.packages}
    for package_id, receipt in report.receipts.items():
        source = next(pk for pk in packages if pk.name == by_id[package_id].file)
        folder = receipts or source.parent
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{source.name}.receipt.json"
        write_atomic(target, canonical(receipt) + b"\n")
        console.print(f"receipt for LA {receipt['la_code']}: {target}", soft_wrap=True)
    for p in report.packages:
        if p.status == "ingested":
            extra = f", {p.tombstoned_rows} rows of {p.tombstoned_children} erased children " \
                    "skipped" if p.tombstoned_rows else ""
            console.print(f"[green]ingested[/] {p.file}: LA {p.la_code}, extract "
                          f"{p.extract_date}, {sum(p.rows.values())} rows{extra}")
            for table, cols in p.missing_columns.items():
                note(f"{p.file}: {table} lacks {', '.join(cols)} (left empty)")
        else:
            console.print(f"[yellow]skipped[/] {p.file}: {p.status} ({p.package_id})")
    for la, pid in report.superseded.items():
        console.print(f"LA {la}: package {pid} superseded by {report.current[la]}",
                      soft_wrap=True)
    if report.ingest_batch is not None:
        console.print(f"batch {report.ingest_batch}: harmonised rows "
                      f"{sum(report.harmonised_rows.values())}")
    fixes = report.rectifications
    if fixes.applied or fixes.agreed or fixes.conflicts:
        console.print(f"rectifications: {fixes.applied} row(s) corrected again, {fixes.agreed} "
                      f"already corrected by the LA, {fixes.conflicts} conflict(s)")
    if fixes.conflicts:
        warning(f"{fixes.conflicts} correction(s) conflict with a value the LA changed itself: "
                "the LA's value was kept; review them with `trialvault rights show ID` and "
                "re-execute or close")
    if report.ingested and not keep_packages:
        from trialvault.vault.inventory import dispose_packages

        for cert in dispose_packages(vault, name, password,
                                     [p.package_id for p in report.ingested],
                                     certificate_dir=receipts):
            console.print(f"package deleted after a verified ingest; certificate: {cert}",
                          soft_wrap=True)


PACKAGES = Listing("status-packages", "Packages the vault holds, per LA (counts only)", (
    Column("la", "LA", "integer"), Column("package", "package"),
    Column("extract", "extract", "date"), Column("current", "current", "boolean"),
    Column("rows", "rows (manifest)", "integer"),
    Column("validation", "validation", wrap=True)))
HOLDINGS = Listing("status-holdings", "Current (harmonised) rows per LA", (
    Column("la", "LA", "integer"), Column("children", "children", "integer"),
    Column("table", "table"), Column("rows", "rows", "integer")))


@guarded
def status(vault: VaultOption, user: UserOption = None, fmt: FormatOption = None,
           as_json: JsonOption = False) -> None:
    """Holdings per LA (packages, extract dates, rows, validation), users, size, audit head.
    `--json` prints one object (docs/json-schemas/status.schema.json); `--format csv` the
    package listing.

    Example: trialvault status --vault vault
    """
    chosen = output_format(fmt, as_json)
    s = vault_status(vault, acting_user(vault, user), _password())
    packages = [{"la": la.la_code, "package": p.package_id, "extract": p.extract_date,
                 "current": p.current, "rows": sum(p.rows.values()),
                 "validation": _summary(p.validation_summary)}
                for la in s.holdings for p in la.packages]
    holdings = [{"la": la.la_code, "children": la.children, "table": t, "rows": n}
                for la in s.holdings for t, n in sorted(la.harmonised_rows.items())]
    for message in s.notes:
        note(message)
    if chosen.value == "json":
        emit_json({"vault": str(s.vault_dir), "vault_id": s.vault_id, "study_id": s.study_id,
                   "domains": s.domains, "key_fingerprints": s.key_fingerprints,
                   "packages": PACKAGES.records(packages),
                   "holdings": HOLDINGS.records(holdings),
                   "users": [{"user": u.user, "role": u.role} for u in s.users],
                   "tombstones": s.tombstones, "bytes_on_disk": s.bytes_on_disk,
                   "audit": {"entries": s.audit_entries, "head": s.audit_head}})
        return
    if chosen.value == "csv":
        emit(PACKAGES, packages, chosen)
        return
    console.print(f"vault {s.vault_dir} (id {s.vault_id}, study {s.study_id})", soft_wrap=True)
    console.print("domain keys you hold: " + ", ".join(f"{d} {fp}" for d, fp in
                                                       s.key_fingerprints.items()),
                  soft_wrap=True)
    emit(PACKAGES, packages, chosen, title="packages")
    emit(HOLDINGS, holdings, chosen, title="harmonised (current) rows")
    console.print("users: " + ", ".join(f"{u.user} ({u.role})" for u in s.users))
    if s.tombstones is not None:
        console.print(f"erased children (tombstones): {s.tombstones}")
    console.print("on disk: " + ", ".join(f"{n} {b:,} B" for n, b in s.bytes_on_disk.items()),
                  soft_wrap=True)
    console.print(f"audit: {s.audit_entries} entries, head {s.audit_head}", soft_wrap=True)


def _summary(summary: dict[str, object]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(summary.items()))


def _may(vault: Path, user: str, roles: tuple[str, ...] | frozenset[str], command: str
         ) -> Any:
    """The acting user's slot if its role may run `command` (an early answer before a preview
    and a question; the vault checks again when the command runs)."""
    from trialvault.errors import AccessDenied

    slot = next((s for s in admin.list_users(vault) if s.user == user), None)
    if slot is None or slot.role not in roles:
        raise AccessDenied(f"`{command}` needs role {' or '.join(sorted(roles))}; {user!r} is "
                           f"{slot.role if slot else 'not a user of this vault'}")
    return slot


@guarded
def rekey(vault: VaultOption, user: UserOption = None, dry_run: DryRunOption = False,
          yes: YesOption = False) -> None:
    """Copy every domain you hold under fresh keys, seal them to every (verified) key slot,
    retire the old keys. Refused if any slot was not made by an audited `users add`. Shows
    what it will do and asks first (`--yes` in scripts).

    Example: trialvault rekey --vault vault --yes
    """
    name = acting_user(vault, user)
    if dry_run or not yes:
        slots = admin.list_users(vault)
        mine = _may(vault, name, REKEY_ROLES, "rekey")
        held = ", ".join(mine.domains)
        console.print(f"would re-key the domains {name} holds ({held}): each copied under a "
                      f"fresh key, sealed to the {len(slots)} key slot(s) that may hold it; the "
                      "old keys are destroyed, so a copy of an old key opens nothing new",
                      highlight=False, soft_wrap=True)
        if dry_run:
            return
        confirm("Re-key now?", yes=yes, what="re-keying")
    from trialvault.progress import show_progress

    password = _password()
    with show_progress("rekey") as progress:
        progress(0, None, "copying every domain under fresh keys")
        r = admin.rekey(vault, name, password)
    changes = ", ".join(f"{d} {r.old_fingerprints[d]} → {r.new_fingerprints[d]}"
                        for d in r.domains)
    console.print(f"[green]re-keyed[/] {changes}; {r.slots} slots; {r.bytes_before:,} → "
                  f"{r.bytes_after:,} bytes", soft_wrap=True)


@guarded
def passwd(vault: VaultOption, user: UserOption = None) -> None:
    """Change your password (re-wraps your key slot only).

    Example: TRIALVAULT_PASSWORD=old TRIALVAULT_NEW_PASSWORD=new trialvault passwd --user bob
    """
    name = acting_user(vault, user)
    old = _password()
    admin.change_password(vault, name, old, _new_password("New password"))
    console.print(f"[green]password changed[/] for {name}")


users_app = typer.Typer(help="Key slots: list, add, remove users.", no_args_is_help=True)


USERS = Listing("users-list", "Key slots as their certificates state them", (
    Column("user", "user"), Column("person", "person"), Column("role", "role"),
    Column("domains", "domains"), Column("created", "created"), Column("slot", "slot"),
    Column("certificate", "certificate", wrap=True,
           description="ok, or why the slot's certificate does not verify")))


@users_app.command("list")
@guarded
def users_list(vault: VaultOption, fmt: FormatOption = None, as_json: JsonOption = False
               ) -> None:
    """List users, people, roles and the domains their keys open, with each slot's
    certificate check (reads keyslots.json; no password needed). Exit 5 if any slot does not
    verify.

    Example: trialvault users list --vault vault
    """
    problems = admin.check_slots(vault)
    rows = []
    for s in admin.list_users(vault):
        bad = next((why for who, why in problems.items() if who.startswith(f"{s.user} (")), None)
        rows.append({"user": s.user, "person": s.person, "role": s.role,
                     "domains": " ".join(s.domains), "created": s.created_at,
                     "slot": s.slot_id, "certificate": "INVALID: " + "; ".join(bad) if bad
                     else "ok"})
    emit(USERS, rows, output_format(fmt, as_json))
    if problems:
        raise IntegrityError(f"{len(problems)} key slot(s) do not verify; remove them with "
                             "`trialvault users remove NAME`")


@users_app.command("add")
@guarded
def users_add(
    name: Annotated[str, typer.Argument(help="The new user's name")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    vault: VaultOption, user: UserOption = None,
    person: Annotated[str | None, typer.Option(
        "--person", help="Who holds the slot (e.g. a staff e-mail); one person, one slot. "
        "Default: the user name")] = None,
) -> None:
    """Give a new user a key slot (needs a data-manager; new password from
    $TRIALVAULT_NEW_PASSWORD or a prompt).

    Example: trialvault users add bob --role analyst --vault vault
    """
    acting = acting_user(vault, user)
    check_user_name(name, source="the new user's name")
    password = _password()
    slot = admin.add_user(vault, acting, password, name, _new_password(f"Password for {name}"),
                          role, person=person)
    console.print(f"[green]added[/] {slot.user} ({slot.role})")


@users_app.command("remove")
@guarded
def users_remove(
    name: Annotated[str, typer.Argument(help="The user to remove")],
    vault: VaultOption, user: UserOption = None,
    do_rekey: Annotated[bool, typer.Option("--rekey/--no-rekey",
                                           help="Re-key afterwards (default)")] = True,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Delete a user's key slot; by default then re-key, so a data key they saw is useless.
    Shows the slot and asks first (`--yes` in scripts).

    Example: trialvault users remove bob --vault vault --yes
    """
    from trialvault.errors import NotFound

    acting = acting_user(vault, user)
    if dry_run or not yes:
        _may(vault, acting, ("data-manager",), "users remove")
        slot = next((s for s in admin.list_users(vault) if s.user == name), None)
        if slot is None:
            raise NotFound(f"no user {name!r} in {vault} (`trialvault users list`)")
        console.print(f"would remove {slot.user} ({slot.role}, {slot.person}, slot "
                      f"{slot.slot_id}, keys of: {', '.join(slot.domains)})"
                      + (f"; then re-key {', '.join(slot.domains)}" if do_rekey else
                         "; no re-key (--no-rekey): keys they saw stay valid"),
                      highlight=False, soft_wrap=True)
        if dry_run:
            return
        confirm(f"Remove {name}'s key slot?", yes=yes, what="removing a user")
    from trialvault.progress import show_progress

    password = _password()
    with show_progress("users remove") as progress:
        progress(0, None, "removing the slot" + (", then re-keying" if do_rekey else ""))
        admin.remove_user(vault, acting, password, name, rekey_after=do_rekey)
    console.print(f"[green]removed[/] {name}" + (" and re-keyed" if do_rekey else ""))


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


AUDIT = Listing("audit-show", "Audit log entries (signed; no row values)", (
    Column("seq", "#", "integer"), Column("at", "time (UTC)", "datetime"),
    Column("user", "user"), Column("command", "command"), Column("phase", "phase"),
    Column("args", "args", wrap=True), Column("rows", "rows", "integer"),
    Column("result", "result"), Column("error", "error", nullable=True, wrap=True)))


@audit_app.command("show")
@guarded
def audit_show(vault: VaultOption, user: UserOption = None,
               last: Annotated[int | None, typer.Option("--last", help="Only the last N")] = None,
               fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """Show audit entries (time, user, command, begin/end, arguments, rows touched, result).
    For the dpo and data-manager roles (as in the console).

    Example: trialvault audit show --last 20 --vault vault
    """
    chosen = output_format(fmt, as_json)
    name = acting_user(vault, user)
    _may(vault, name, AUDIT_READERS, "audit show")
    entries = admin.audit_entries(vault, name, _password(), last=last)
    emit(AUDIT, [{"seq": e.seq, "at": e.at, "user": e.user, "command": e.command,
                  "phase": e.phase, "args": _args(e.args), "rows": sum(e.rows_touched.values()),
                  "result": e.result, "error": e.error} for e in entries], chosen)


def _args(args: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items() if k != "certs")


@audit_app.command("verify")
@guarded
def audit_verify(
    vault: VaultOption, user: UserOption = None,
    witness: Annotated[list[Path] | None, typer.Option(
        "--witness", help="A witness file (`audit witness`) or LA ingest receipt; repeatable")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute the hash chain and every signature, compare with audit.chain and with
    witnesses kept elsewhere; exit 5 on any break, naming the entry and what is wrong.
    `--json` prints the report (docs/json-schemas/audit-verify.schema.json), then exits the
    same way.

    Example: trialvault audit verify --witness ~/dpo/witness-2026-11.json --vault vault
    """
    result = admin.verify_audit(vault, acting_user(vault, user), _password(),
                                witnesses=witness or [])
    if as_json:
        emit_json({"ok": result.ok, "entries": result.entries, "head": result.head,
                   "chain_lines": result.chain_lines, "witnesses": result.witnesses,
                   "problems": result.problems, "warnings": result.warnings})
        if not result.ok:
            raise IntegrityError(f"audit chain does not verify: {len(result.problems)} "
                                 f"problem(s) in {result.entries} entries")
        return
    for message in result.warnings:
        warning(message)
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"  - {problem}")
        raise IntegrityError(f"audit chain does not verify: {len(result.problems)} problem(s) "
                             f"in {result.entries} entries")
    console.print(f"[green]ok[/] {result.entries} entries, signatures and links verify, head "
                  f"{result.head}; audit.chain agrees ({result.chain_lines} lines); "
                  f"{result.witnesses} witness(es) agree", soft_wrap=True)


@audit_app.command("witness")
@guarded
def audit_witness(
    out: Annotated[Path, typer.Option("--out", help="Where to write the signed chain head")],
    vault: VaultOption, user: UserOption = None,
) -> None:
    """Write a signed chain head to keep OUTSIDE the vault (the DPO's or an LA's copy);
    `audit verify --witness FILE` later detects any cut or rewrite before it.

    Example: trialvault audit witness --out ~/dpo/witness.json --vault vault
    """
    w = admin.write_witness(vault, acting_user(vault, user), _password(), out)
    console.print(f"[green]witness[/] entry {w['seq']} {w['hash']} signed by {w['user']} → {out}",
                  soft_wrap=True)


@guarded
def migrate(vault: VaultOption, user: FirstUserOption = None) -> None:
    """Upgrade a vault made by trialvault 0.1.0 to trust domains (run once, by a data
    manager; every user keeps their password).

    Example: trialvault migrate --vault vault --user alice
    """
    from trialvault.vault.migrate import migrate_vault

    name = first_user(user)
    r = migrate_vault(vault, name, _password())
    console.print(f"[green]migrated[/] {r.tables} tables ({r.rows:,} rows), {r.legacy_entries} "
                  f"audit entries kept, {r.users} users")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("init")(init)
    app.command("pubkey")(pubkey)
    app.command("ingest")(ingest)
    app.command("status")(status)
    app.command("rekey")(rekey)
    app.command("passwd")(passwd)
    app.command("migrate")(migrate)
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
