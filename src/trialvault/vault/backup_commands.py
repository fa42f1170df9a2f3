"""CLI: `trialvault backup` and `trialvault restore` (thin over `vault.backup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import (
    DryRunOption,
    UserOption,
    VaultOption,
    YesOption,
    acting_user,
    confirm,
    console,
    guarded,
    password_from_env_or_prompt,
    warning,
)


def register(app: typer.Typer) -> None:
    """Add `backup` and `restore` to the top-level app."""

    @app.command("backup")
    @guarded
    def backup_cmd(out: Annotated[Path, typer.Option("--out", help="New folder for the "
                                                     "backup (outside the vault).")],
                   vault: VaultOption, user: UserOption = None) -> None:
        """Write an encrypted backup of the vault's data (data manager).

        The copy is encrypted under keys made for it and sealed to the vault's backup identity
        (kept in the register): no password opens it, only `trialvault restore` on this vault,
        which erases again every child erased since. Registered in the inventory, so an
        erasure lists it to destroy.

        Example: trialvault backup --vault vault --out /backups/vault-2026-11-30
        """
        from trialvault.progress import show_progress
        from trialvault.vault.backup import backup

        name, password = acting_user(vault, user), password_from_env_or_prompt()
        with show_progress("backup") as progress:
            progress(0, None, "copying the vault's data under fresh keys")
            report = backup(vault, name, password, out)
        total = sum(report.files.values())
        console.print(f"backup {report.backup_id}: {len(report.files)} files, {total:,} bytes, "
                      f"{report.children:,} children → {report.folder}", soft_wrap=True)

    @app.command("restore")
    @guarded
    def restore_cmd(source: Annotated[Path, typer.Option("--backup", help="Backup folder "
                                                         "(from `trialvault backup`).")],
                    vault: VaultOption, user: UserOption = None,
                    dry_run: DryRunOption = False, yes: YesOption = False) -> None:
        """Put a backup's data back into this vault (data manager), replacing the data it
        holds now: shows the backup and asks first (`--yes` in scripts).

        Before the restored data can be opened, every erasure, restriction, objection and
        correction the register recorded is applied to it; then the files are swapped in
        under fresh keys. Packages ingested after the backup are named (their LAs resend them).

        Example: trialvault restore --vault vault --backup /backups/vault-2026-11-30 --yes
        """
        from trialvault.progress import show_progress
        from trialvault.trust import Keyring
        from trialvault.vault.backup import read_manifest, restore

        name = acting_user(vault, user)
        if dry_run or not yes:
            manifest = read_manifest(source, Keyring.load(vault))
            made_by = manifest.get("made_by", {}).get("user", "?")
            console.print(f"would restore backup {manifest['backup_id']} (made "
                          f"{manifest['made_at']} by {made_by}; {len(manifest['files'])} data "
                          "files; signature and hashes verify) over this vault's current data, "
                          "then re-apply every erasure, restriction, objection and correction "
                          "recorded since, and re-key", highlight=False, soft_wrap=True)
            if dry_run:
                return
            confirm("Replace the vault's data with this backup?", yes=yes,
                    what="restoring a backup")
        password = password_from_env_or_prompt()
        with show_progress("restore") as progress:
            progress(0, None, "restoring, then re-applying the register's decisions")
            report = restore(vault, name, password, source)
        console.print(f"restored backup {report.backup_id} (made {report.made_at}): "
                      f"{report.erased_children} erased children removed again "
                      f"({report.erased_rows} rows), {report.flags} active flags, "
                      f"{report.corrections} corrected rows", soft_wrap=True)
        if report.packages_since:
            warning(f"{len(report.packages_since)} package(s) ingested after this backup are "
                    "not in it; ask their LAs to send them again (their receipts name them): "
                    + ", ".join(report.packages_since))
