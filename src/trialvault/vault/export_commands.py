"""CLI: `trialvault export` and `trialvault import` (encrypted Parquet; thin over vault.export)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import (
    UserOption,
    VaultOption,
    acting_user,
    console,
    guarded,
    password_from_env_or_prompt,
)
from trialvault.errors import InputFileError

FormatOption = Annotated[str, typer.Option("--format", help="Export format (only: parquet).")]


def _check_format(fmt: str) -> None:
    if fmt != "parquet":
        raise InputFileError(f"unknown export format {fmt!r} (known: parquet)", file="--format")


def register(app: typer.Typer) -> None:
    """Add `export` and `import` to the top-level app."""

    @app.command("export")
    @guarded
    def export_cmd(out: Annotated[Path, typer.Option("--out", help="New folder for the export.")],
                   vault: VaultOption, fmt: FormatOption = "parquet",
                   user: UserOption = None,
                   spark_keys: Annotated[Path | None, typer.Option(
                       "--spark-keys", help="Also write the export's Spark read settings, "
                       "including its master keys, to this file (mode 0600; keep it apart "
                       "from the data, e.g. in the TRE's secret store).")] = None,
                   purpose: Annotated[str, typer.Option(
                       "--purpose", help="analysis (leaves out restricted and objecting "
                       "children) or storage (a safekeeping copy with everyone and the "
                       "flags)")] = "analysis") -> None:
        """Export the harmonised tables and rights flags as encrypted Parquet.

        Parquet modular encryption (AES-GCM, footer and every column encrypted), keys derived
        from the vault; readable by pyarrow (`trialvault import`) and by Spark's own Parquet
        encryption (docs/spark.md). Needs the data-manager role.

        Example: trialvault export --format parquet --vault vault --out export-2026-11
        """
        from trialvault.vault import open_vault
        from trialvault.vault.export import export_parquet, spark_read_options, vault_master_keys

        _check_format(fmt)
        name = acting_user(vault, user)
        password = password_from_env_or_prompt()
        # write=True: the export is registered in the inventory (where children's data lives).
        with open_vault(vault, name, password, command="export",
                        args={"format": fmt, "out": out.name, "purpose": purpose}) as session:
            report = export_parquet(session, out, purpose=purpose)
            options = spark_read_options(vault_master_keys(session, report.export_id),
                                         report.export_id) if spark_keys else None
        if spark_keys and options:
            fd = os.open(spark_keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.writelines(f"{k}={v}\n" for k, v in options.items())
        console.print(f"exported {sum(v for k, v in report.rows.items() if k != 'rights_flags')}"
                      f" rows in {len(report.rows) - 1} tables, {report.flagged_children} "
                      f"flagged children → {out} (export {report.export_id})")

    @app.command("import")
    @guarded
    def import_cmd(source: Annotated[Path, typer.Option("--in", help="Export folder.")],
                   vault: VaultOption, fmt: FormatOption = "parquet",
                   user: UserOption = None) -> None:
        """Read an encrypted Parquet export of this vault back into schema `imported`.

        Checks the manifest's SHA-256 and row counts, decrypts with the vault's keys, drops
        children erased since the export (tombstones), and replaces `imported.<table>` —
        `harmonised` is only ever fed by ingest. Needs the data-manager role.

        Example: trialvault import --format parquet --in export-2026-11 --vault vault
        """
        from trialvault.vault import open_vault
        from trialvault.vault.export import import_into_vault

        _check_format(fmt)
        name = acting_user(vault, user)
        password = password_from_env_or_prompt()
        with open_vault(vault, name, password, command="import",
                        args={"format": fmt, "in": source.name}) as session:
            report = import_into_vault(session, source)
        console.print(f"imported {sum(report.rows.values())} rows into schema imported "
                      f"({report.dropped_erased} rows of erased children dropped)")
