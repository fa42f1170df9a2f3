"""CLI of the retention stage: `trialvault retention status|purge` (thin)."""

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
    password_from_env_or_prompt,
)
from trialvault.errors import PolicyRefusal
from trialvault.output import (
    Column,
    FormatOption,
    JsonOption,
    Listing,
    OutputFormat,
    emit,
    emit_json,
    output_format,
    utc,
)
from trialvault.retention.purge import purge as purge_vault
from trialvault.retention.schedule import RetentionStatus, retention_status, stored_copies
from trialvault.study import load_study

retention_app = typer.Typer(help="Retention: when the data must be destroyed, and the purge.",
                            no_args_is_help=True)

PackagesOption = Annotated[list[Path] | None, typer.Option(
    "--packages", help="Package files or folders to destroy as well (repeatable)")]
KeysOption = Annotated[list[Path] | None, typer.Option(
    "--keys", help="Key files (e.g. age identities) to shred as well (repeatable)")]

FILES = Listing("retention-files", "Files a purge deletes (names and sizes only)", (
    Column("kind", "kind", description="vault, package or key"), Column("path", "file"),
    Column("bytes", "bytes", "integer")))
COPIES = Listing("retention-copies", "Stored copies holding children's data that a purge "
                 "destroys too", (
                     Column("id", "id"), Column("kind", "kind"),
                     Column("location", "where", wrap=True),
                     Column("children", "children", "integer"),
                     Column("created_at", "made (UTC)", "datetime"),
                     Column("state", "state")))


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _status(vault: Path, study: Path, user: str | None, packages: list[Path] | None,
            keys: list[Path] | None) -> RetentionStatus:
    copies = stored_copies(vault, acting_user(vault, user), password_from_env_or_prompt())
    return retention_status(load_study(study), vault, today=dt.date.today(),
                            packages=packages, keys=keys, copies=copies)


def _rows(st: RetentionStatus) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    files = [{"kind": f.kind, "path": str(f.path), "bytes": f.bytes} for f in st.files]
    copies = [{"id": a.artefact_id, "kind": a.kind, "location": a.location,
               "children": a.children, "created_at": utc(a.created_at), "state": a.state}
              for a in st.copies]
    return files, copies


def _print(st: RetentionStatus) -> None:
    console.print(f"[bold]rule[/] ({st.study_id}): {st.rule}", markup=True)
    console.print(f"deletion due [bold]{st.due}[/] ({st.deletion_label}, window "
                  f"{st.window[0]} – {st.window[1]})")
    if st.state == "overdue":
        console.print(f"[bold red]OVERDUE: the deletion window ended on {st.window[1]}, "
                      f"{st.days_overdue} day(s) ago — purge now[/]")
    else:
        console.print("[bold red]purge is due now[/]" if st.is_due else
                      f"days left: [green]{st.days_left}[/]")
    console.print(f"method: {st.method}", markup=False)
    console.print(f"key slots to destroy: {len(st.key_slots)} "
                  f"({', '.join(f'{u} ({r})' for u, r in st.key_slots)})", highlight=False)
    files, copies = _rows(st)
    emit(FILES, files, OutputFormat.table,
         title=f"files to destroy: {len(st.files)}, {_size(st.total_bytes)}")
    emit(COPIES, copies, OutputFormat.table,
         title=f"stored copies holding children's data: {len(st.copies)}")


@retention_app.command("status")
@guarded
def status(vault: VaultOption, study: StudyOption, packages: PackagesOption = None,
           keys: KeysOption = None, user: UserOption = None, fmt: FormatOption = None,
           as_json: JsonOption = False) -> None:
    """The retention rule, the deletion date, days left (or overdue) and what a purge would
    destroy: vault files, key slots and every stored copy of children's data (listing the
    copies needs the register's key: dpo or data-manager).

    `--json` prints one object (docs/json-schemas/retention-status.schema.json); `--format
    csv` the files a purge deletes.

    Example: trialvault retention status --packages packages/
    """
    chosen = output_format(fmt, as_json)
    st = _status(vault, study, user, packages, keys)
    files, copies = _rows(st)
    if chosen is OutputFormat.json:
        emit_json({"study_id": st.study_id, "rule": st.rule, "deletion_label": st.deletion_label,
                   "window": {"start": st.window[0], "end": st.window[1]}, "due": st.due,
                   "today": st.today, "state": st.state, "days_left": st.days_left,
                   "days_overdue": st.days_overdue, "method": st.method,
                   "key_slots": [{"user": u, "role": r} for u, r in st.key_slots],
                   "files": FILES.records(files), "total_bytes": st.total_bytes,
                   "copies": COPIES.records(copies)})
    elif chosen is OutputFormat.csv:
        emit(FILES, files, chosen)
    else:
        _print(st)


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
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    user: Annotated[str | None, typer.Option("--user", help="Act as this user (data-manager "
                                             "or dpo)")] = None,
) -> None:
    """Destroy the vault for good: shred key slots, delete files and every stored copy, write
    a certificate. `--dry-run` lists all of it and destroys nothing.

    Refuses before the study's deletion date unless --early --reason is given. Asks you to
    type `destroy <study id>` unless --yes.

    Example: trialvault retention purge --packages packages/ --certificate-dir certificates/
    """
    s = load_study(study)
    if early and not reason:
        raise typer.BadParameter("--early needs --reason")
    if reason and not early:
        raise typer.BadParameter("--reason is for an --early purge")
    if dry_run:
        _print(_status(vault, study, user, packages, keys))
        console.print("dry run: nothing was destroyed")
        return
    if not yes:
        console.print(f"This destroys the vault {vault} and every stored copy it lists "
                      "(`--dry-run` shows them).", highlight=False)
    confirm(f"Destroy the vault {vault} permanently?", yes=yes, what="purge",
            phrase=f"destroy {s.study.id}")
    name = acting_user(vault, user)
    from trialvault.progress import show_progress

    password = password_from_env_or_prompt()
    with show_progress("purge") as progress:
        progress(0, None, "shredding key slots, deleting files and stored copies")
        result = purge_vault(vault, name, password, s, today=dt.date.today(),
                             certificate_dir=certificate_dir,
                             early_reason=reason if early else None, packages=packages,
                             keys=keys)
    cert = result.certificate
    console.print(f"[bold green]destroyed[/] {len(cert['files'])} file(s); audit head "
                  f"{cert['audit']['head']}")
    console.print(f"certificate: {result.certificate_json} and {result.certificate_md}")
    if result.failures:
        raise PolicyRefusal(f"purge incomplete: {'; '.join(result.failures)}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(retention_app, name="retention")
