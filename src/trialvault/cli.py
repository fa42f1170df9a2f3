"""The `trialvault` command: a thin Typer layer. Each stage registers its own commands."""

from __future__ import annotations

import typer

from trialvault import __version__
from trialvault.cli_common import console

app = typer.Typer(
    name="trialvault",
    help="Privacy-first research data vault and evaluation pipeline for children's social care trials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        console.print(f"trialvault {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """trialvault: prepare → seal → ingest → vault → rights/retention → evaluate → disclose → release."""


def _register_stages() -> None:
    # One module per stage owns its commands; the order here is the order in `--help`.
    from trialvault import demo
    from trialvault.console import commands as console_commands
    from trialvault.disclose import commands as disclose_commands
    from trialvault.evaluate import commands as evaluate_commands
    from trialvault.prepare import commands as prepare_commands
    from trialvault.retention import commands as retention_commands
    from trialvault.rights import commands as rights_commands
    from trialvault.study import commands as study_commands
    from trialvault.synth import commands as synth_commands
    from trialvault.vault import commands as vault_commands
    from trialvault.vault import export_commands

    for module in (demo, study_commands, synth_commands, prepare_commands, vault_commands,
                   rights_commands, retention_commands, evaluate_commands, disclose_commands,
                   export_commands, console_commands):
        module.register(app)


_register_stages()
