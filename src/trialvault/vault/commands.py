"""CLI commands of the vault stage (thin: parse, call the library, print).

Every command takes `--vault DIR` (default `$TRIALVAULT_VAULT`, else `./vault`) and acts as
`--user` (default `$TRIALVAULT_USER`, else the vault's only user, else its first
data-manager). Passwords come from `$TRIALVAULT_PASSWORD` or a hidden prompt; a new password
(`users add`, `passwd`) from `$TRIALVAULT_NEW_PASSWORD` or a prompt with confirmation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trialvault.cli_common import (
    StudyOption,
    UserOption,
    VaultOption,
    acting_user,
    console,
    err_console,
    guarded,
    password_from_env_or_prompt,
)
from trialvault.errors import IntegrityError, TrialvaultError
from trialvault.study import load_study
from trialvault.vault import admin
from trialvault.vault.ingest import ingest_packages
from trialvault.vault.keyslots import ROLES
from trialvault.vault.status import vault_status

NEW_PASSWORD_ENV = "TRIALVAULT_NEW_PASSWORD"





def _password() -> str:
    return password_from_env_or_prompt()


def _new_password(prompt: str) -> str:
    return password_from_env_or_prompt(prompt, confirm=True, env=NEW_PASSWORD_ENV)


@guarded
def init(vault: VaultOption, study: StudyOption, user: UserOption = None) -> None:
    """Create a new vault: encrypted database, your data-manager key slot, the evaluator's age
    key. Prints the public recipient LAs seal packages to.

    Example: TRIALVAULT_PASSWORD=... trialvault init --vault vault --user alice
    """
    name = user or os.environ.get("TRIALVAULT_USER")
    if not name:
        raise TrialvaultError("name the first user: --user NAME (or set TRIALVAULT_USER)")
    study_id = load_study(study).study.id
    password = password_from_env_or_prompt("New vault password", confirm=True)
    recipient = admin.init_vault(vault, name, password, study_id=study_id)
    console.print(f"[green]created[/] vault {vault} for study '{study_id}'; data-manager {name}")
    console.print(f"evaluator recipient: {recipient}", soft_wrap=True)


@guarded
def pubkey(vault: VaultOption, user: UserOption = None) -> None:
    """Print the evaluator's public age recipient (give it to LAs for `prepare --recipient`).

    Example: trialvault pubkey --vault vault
    """
    typer.echo(admin.evaluator_recipient(vault, acting_user(vault, user), _password()))


@guarded
def ingest(
    packages: Annotated[list[Path], typer.Argument(help="Sealed package files (*.tvpkg)")],
    vault: VaultOption, study: StudyOption, user: UserOption = None,
) -> None:
    """Decrypt, verify and load packages in one transaction (raw + harmonised current view).
    A package already in the vault is skipped; a newer extract supersedes an LA's older one.

    Example: trialvault ingest out/354.tvpkg out/807.tvpkg --vault vault
    """
    report = ingest_packages(vault, acting_user(vault, user), _password(), packages,
                             study=load_study(study))
    for p in report.packages:
        if p.status == "ingested":
            extra = f", {p.tombstoned_rows} rows of {p.tombstoned_children} erased children " \
                    "skipped" if p.tombstoned_rows else ""
            console.print(f"[green]ingested[/] {p.file}: LA {p.la_code}, extract "
                          f"{p.extract_date}, {sum(p.rows.values())} rows{extra}")
            for table, cols in p.missing_columns.items():
                console.print(f"  [yellow]note:[/] {table} lacks {', '.join(cols)} (left empty)")
        else:
            console.print(f"[yellow]skipped[/] {p.file}: {p.status} ({p.package_id})")
    for la, pid in report.superseded.items():
        console.print(f"LA {la}: package {pid} superseded by {report.current[la]}",
                      soft_wrap=True)
    if report.ingest_batch is not None:
        console.print(f"batch {report.ingest_batch}: harmonised rows "
                      f"{sum(report.harmonised_rows.values())}")


@guarded
def status(vault: VaultOption, user: UserOption = None) -> None:
    """Holdings per LA (packages, extract dates, rows, validation), users, size, audit head.

    Example: trialvault status --vault vault
    """
    s = vault_status(vault, acting_user(vault, user), _password())
    console.print(f"vault {s.vault_dir} (id {s.vault_id}, study {s.study_id}), data key "
                  f"{s.data_key_fingerprint}", soft_wrap=True)
    table = Table("LA", "package", "extract", "current", "rows (manifest)", "validation")
    for la in s.holdings:
        for p in la.packages:
            table.add_row(str(la.la_code), p.package_id[:8], str(p.extract_date),
                          "yes" if p.current else "superseded", str(sum(p.rows.values())),
                          _summary(p.validation_summary))
    console.print(table)
    names = sorted({t for la in s.holdings for t in la.harmonised_rows})
    rows = Table("LA", "children", *names, title="harmonised (current) rows")
    for la in s.holdings:
        rows.add_row(str(la.la_code), str(la.children),
                     *[str(la.harmonised_rows.get(t, 0)) for t in names])
    console.print(rows)
    console.print("users: " + ", ".join(f"{u.user} ({u.role})" for u in s.users))
    console.print(f"erased children (tombstones): {s.tombstones}")
    console.print("on disk: " + ", ".join(f"{n} {b:,} B" for n, b in s.bytes_on_disk.items()))
    console.print(f"audit: {s.audit_entries} entries, head {s.audit_head}", soft_wrap=True)


def _summary(summary: dict[str, object]) -> str:
    text = ", ".join(f"{k}: {v}" for k, v in sorted(summary.items()))
    return text if len(text) <= 60 else text[:57] + "..."


@guarded
def rekey(vault: VaultOption, user: UserOption = None) -> None:
    """Copy the database under a fresh data key, re-wrap every key slot, retire the old key.

    Example: trialvault rekey --vault vault
    """
    r = admin.rekey(vault, acting_user(vault, user), _password())
    console.print(f"[green]re-keyed[/] {r.old_fingerprint} → {r.new_fingerprint}; {r.slots} "
                  f"slots re-wrapped; {r.bytes_before:,} → {r.bytes_after:,} bytes")


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


@users_app.command("list")
@guarded
def users_list(vault: VaultOption) -> None:
    """List users and roles (reads keyslots.json; no password needed).

    Example: trialvault users list --vault vault
    """
    table = Table("user", "role", "created", "slot")
    for s in admin.list_users(vault):
        table.add_row(s.user, s.role, s.created_at, s.slot_id[:8])
    console.print(table)


@users_app.command("add")
@guarded
def users_add(
    name: Annotated[str, typer.Argument(help="The new user's name")],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}")],
    vault: VaultOption, user: UserOption = None,
) -> None:
    """Give a new user a key slot (needs a data-manager; new password from
    $TRIALVAULT_NEW_PASSWORD or a prompt).

    Example: trialvault users add bob --role analyst --vault vault
    """
    acting = acting_user(vault, user)
    password = _password()
    slot = admin.add_user(vault, acting, password, name, _new_password(f"Password for {name}"),
                          role)
    console.print(f"[green]added[/] {slot.user} ({slot.role})")


@users_app.command("remove")
@guarded
def users_remove(
    name: Annotated[str, typer.Argument(help="The user to remove")],
    vault: VaultOption, user: UserOption = None,
    do_rekey: Annotated[bool, typer.Option("--rekey/--no-rekey",
                                           help="Re-key afterwards (default)")] = True,
) -> None:
    """Delete a user's key slot; by default then re-key, so a data key they saw is useless.

    Example: trialvault users remove bob --vault vault
    """
    admin.remove_user(vault, acting_user(vault, user), _password(), name, rekey_after=do_rekey)
    console.print(f"[green]removed[/] {name}" + (" and re-keyed" if do_rekey else ""))


audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("show")
@guarded
def audit_show(vault: VaultOption, user: UserOption = None,
               last: Annotated[int | None, typer.Option("--last", help="Only the last N")] = None
               ) -> None:
    """Show audit entries (time, user, command, arguments, rows touched, result).

    Example: trialvault audit show --last 20 --vault vault
    """
    table = Table("#", "time (UTC)", "user", "command", "args", "rows", "result")
    for e in admin.audit_entries(vault, acting_user(vault, user), _password(), last=last):
        table.add_row(str(e.seq), e.at[:19], e.user, e.command, _short(e.args),
                      str(sum(e.rows_touched.values())),
                      e.result if not e.error else f"{e.result}: {e.error}")
    console.print(table)


def _short(args: dict[str, object]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in args.items())
    return text if len(text) <= 50 else text[:47] + "..."


@audit_app.command("verify")
@guarded
def audit_verify(vault: VaultOption, user: UserOption = None) -> None:
    """Recompute the hash chain and compare it with audit.chain; exit 5 on any break.

    Example: trialvault audit verify --vault vault
    """
    result = admin.verify_audit(vault, acting_user(vault, user), _password())
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"  - {problem}", markup=False)
        raise IntegrityError(f"audit chain does not verify: {len(result.problems)} problem(s) "
                             f"in {result.entries} entries")
    console.print(f"[green]ok[/] {result.entries} entries, head {result.head}; audit.chain "
                  f"agrees ({result.chain_lines} lines)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("init")(init)
    app.command("pubkey")(pubkey)
    app.command("ingest")(ingest)
    app.command("status")(status)
    app.command("rekey")(rekey)
    app.command("passwd")(passwd)
    app.add_typer(users_app, name="users")
    app.add_typer(audit_app, name="audit")
