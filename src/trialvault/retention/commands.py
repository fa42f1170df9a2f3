"""CLI of the retention stage: `trialvault retention status|purge` (thin)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trialvault.cli_common import (
    StudyOption,
    VaultOption,
    acting_user,
    console,
    guarded,
    password_from_env_or_prompt,
)
from trialvault.errors import PolicyRefusal
from trialvault.retention.purge import purge as purge_vault
from trialvault.retention.schedule import retention_status, stored_copies
from trialvault.study import load_study

retention_app = typer.Typer(help="Retention: when the data must be destroyed, and the purge.",
                            no_args_is_help=True)

PackagesOption = Annotated[list[Path] | None, typer.Option(
    "--packages", help="Package files or folders to destroy as well (repeatable)")]
KeysOption = Annotated[list[Path] | None, typer.Option(
    "--keys", help="Key files (e.g. age identities) to shred as well (repeatable)")]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@retention_app.command("status")
@guarded
def status(vault: VaultOption, study: StudyOption, packages: PackagesOption = None,
           keys: KeysOption = None,
           user: Annotated[str | None, typer.Option("--user", help="Unlock as this user "
                                                    "(dpo or data-manager) to list stored "
                                                    "copies")] = None) -> None:
    """The retention rule, the deletion date, days left (or overdue) and what a purge would
    destroy: vault files, key slots and every stored copy of children's data.

    Example: trialvault retention status --packages packages/
    """
    copies = stored_copies(vault, acting_user(vault, user), password_from_env_or_prompt())
    st = retention_status(load_study(study), vault, today=dt.date.today(),
                          packages=packages, keys=keys, copies=copies)
    console.print(f"[bold]rule[/] ({st.study_id}): {st.rule}", markup=True)
    console.print(f"deletion due [bold]{st.due}[/] ({st.deletion_label}, window "
                  f"{st.window[0]} – {st.window[1]})")
    left = st.days_left
    if st.state == "overdue":
        console.print(f"[bold red]OVERDUE: the deletion window ended on {st.window[1]}, "
                      f"{st.days_overdue} day(s) ago — purge now[/]")
    else:
        console.print("[bold red]purge is due now[/]" if st.is_due else
                      f"days left: [green]{left}[/]")
    console.print(f"method: {st.method}", markup=False)
    console.print(f"key slots to destroy: {len(st.key_slots)} "
                  f"({', '.join(f'{u} ({r})' for u, r in st.key_slots)})")
    table = Table(title=f"files to destroy: {len(st.files)}, {_size(st.total_bytes)}")
    for col in ("kind", "file", "size"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for f in st.files:
        table.add_row(f.kind, str(f.path), _size(f.bytes))
    console.print(table)
    copies_table = Table(title=f"stored copies holding children's data: {len(st.copies)}")
    for col in ("kind", "where", "children", "state"):
        copies_table.add_column(col)
    for a in st.copies:
        copies_table.add_row(a.kind, a.location, str(a.children), a.state.replace("_", " "))
    console.print(copies_table)


@retention_app.command("purge")
@guarded
def purge(
    vault: VaultOption, study: StudyOption, packages: PackagesOption = None,
    keys: KeysOption = None,
    certificate_dir: Annotated[Path, typer.Option("--certificate-dir", help="Where to write "
                                                  "the destruction certificate")] = Path("."),
    early: Annotated[bool, typer.Option("--early", help="Purge before the due date "
                                        "(needs --reason)")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why purge early")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for typed confirmation "
                                      "(scripts)")] = False,
    user: Annotated[str | None, typer.Option("--user", help="Act as this user (data-manager "
                                             "or dpo)")] = None,
) -> None:
    """Destroy the vault for good: shred key slots, delete files, write a certificate.

    Refuses before the study's deletion date unless --early --reason is given. Asks you to
    type `destroy <study id>` unless --yes.

    Example: trialvault retention purge --packages packages/ --certificate-dir certificates/
    """
    s = load_study(study)
    if early and not reason:
        raise typer.BadParameter("--early needs --reason")
    if reason and not early:
        raise typer.BadParameter("--reason is for an --early purge")
    if not yes:
        if not sys.stdin.isatty():
            raise PolicyRefusal("purge needs typed confirmation at a terminal, or --yes")
        phrase = f"destroy {s.study.id}"
        typed = typer.prompt(f"This destroys the vault {vault} permanently. Type '{phrase}'")
        if typed.strip() != phrase:
            raise PolicyRefusal("confirmation did not match: nothing was destroyed")
    name = acting_user(vault, user)
    result = purge_vault(vault, name, password_from_env_or_prompt(), s,
                         today=dt.date.today(), certificate_dir=certificate_dir,
                         early_reason=reason if early else None, packages=packages, keys=keys)
    cert = result.certificate
    console.print(f"[bold green]destroyed[/] {len(cert['files'])} file(s); audit head "
                  f"{cert['audit']['head']}")
    console.print(f"certificate: {result.certificate_json} and {result.certificate_md}")
    if result.failures:
        raise PolicyRefusal(f"purge incomplete: {'; '.join(result.failures)}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(retention_app, name="retention")
