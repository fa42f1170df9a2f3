"""CLI: `trialvault backup` and `trialvault restore` (thin over `vault.backup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import (
    UserOption,
    VaultOption,
    acting_user,
    console,
    err_console,
    guarded,
    password_from_env_or_prompt,
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
        from trialvault.vault.backup import backup

        report = backup(vault, acting_user(vault, user), password_from_env_or_prompt(), out)
        total = sum(report.files.values())
        console.print(f"backup {report.backup_id}: {len(report.files)} files, {total:,} bytes, "
                      f"{report.children:,} children → {report.folder}", soft_wrap=True)

    @app.command("restore")
    @guarded
    def restore_cmd(source: Annotated[Path, typer.Option("--backup", help="Backup folder "
                                                         "(from `trialvault backup`).")],
                    vault: VaultOption, user: UserOption = None) -> None:
        """Put a backup's data back into this vault (data manager).

        Before the restored data can be opened, every erasure, restriction, objection and
        correction the register recorded is applied to it; then the files are swapped in
        under fresh keys.

        Example: trialvault restore --vault vault --backup /backups/vault-2026-11-30
        """
        from trialvault.vault.backup import restore

        report = restore(vault, acting_user(vault, user), password_from_env_or_prompt(),
                         source)
        console.print(f"restored backup {report.backup_id} (made {report.made_at}): "
                      f"{report.erased_children} erased children removed again "
                      f"({report.erased_rows} rows), {report.flags} active flags, "
                      f"{report.corrections} corrected rows", soft_wrap=True)
        if report.packages_since:
            err_console.print(f"warning: {len(report.packages_since)} package(s) ingested "
                              "after this backup are not in it; ask their LAs to send them "
                              "again (their receipts name them): "
                              + ", ".join(report.packages_since), soft_wrap=True)
