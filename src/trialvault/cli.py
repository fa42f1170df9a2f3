"""The `trialvault` command: a thin Typer layer. Each stage registers its own commands.

Start-up stays fast because a stage's module is imported only when one of its commands runs
(or its help is asked for): `trialvault --help` lists the commands from `COMMANDS` below and
imports no stage, so none of DuckDB, pandas, SciPy or statsmodels. `COMMANDS` must name every
top-level command a stage's `register(app)` adds (a test keeps them equal); a name missing from
it still runs (all stages are loaded to find it) but is not listed in `--help`.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup

from trialvault import __version__
from trialvault.cli_common import exit_if_interrupted, exit_if_usage_error, print_version
from trialvault.cli_help import HELP_OPTION_NAMES, tidy, tidy_param


class Entry(NamedTuple):
    """A top-level command: the module whose `register(app)` adds it, and its help panel."""

    name: str
    module: str
    panel: str
    summary: str


_STUDY = "Study and documents"
_LA = "LA side (LA data analyst)"
_VAULT = "Vault (data manager)"
_DPO = "Rights and retention (DPO)"
_EVAL = "Evaluation and release (analyst, output checker)"

# The order here is the order in `--help`.
COMMANDS: tuple[Entry, ...] = (
    Entry("demo", "trialvault.demo", _STUDY,
          "Run every stage on synthetic data into a fresh folder."),
    Entry("check", "trialvault.study.commands", _STUDY,
          "Validate a study file and summarise it."),
    Entry("docs", "trialvault.study.commands", _STUDY,
          "Render the privacy notice, Article 30 record or LIA."),
    Entry("design", "trialvault.design.commands", _STUDY,
          "Power, MDES and the verifiable randomisation of the rollout."),
    Entry("synth", "trialvault.synth.commands", _LA,
          "Generate synthetic LA files with known effects."),
    Entry("prepare", "trialvault.prepare.commands", _LA,
          "Validate, link, minimise and seal one LA's returns."),
    Entry("la", "trialvault.seal.commands", _LA,
          "LA signing keys: make one, print its public key."),
    Entry("init", "trialvault.vault.commands", _VAULT,
          "Create a new encrypted vault."),
    Entry("pubkey", "trialvault.vault.commands", _VAULT,
          "Print the public key LAs seal packages to."),
    Entry("ingest", "trialvault.vault.commands", _VAULT,
          "Decrypt, verify and load packages."),
    Entry("status", "trialvault.vault.commands", _VAULT,
          "Holdings per LA, users, size, audit head."),
    Entry("users", "trialvault.vault.commands", _VAULT,
          "List, add and remove users (key slots)."),
    Entry("passwd", "trialvault.vault.commands", _VAULT,
          "Change your password."),
    Entry("rekey", "trialvault.vault.commands", _VAULT,
          "Copy the data under fresh keys."),
    Entry("migrate", "trialvault.vault.commands", _VAULT,
          "Upgrade a vault made by trialvault 0.1.0."),
    Entry("audit", "trialvault.vault.commands", _VAULT,
          "Show and verify the tamper-evident audit log."),
    Entry("export", "trialvault.vault.export_commands", _VAULT,
          "Export harmonised tables as encrypted Parquet."),
    Entry("import", "trialvault.vault.export_commands", _VAULT,
          "Read an encrypted Parquet export back in."),
    Entry("backup", "trialvault.vault.backup_commands", _VAULT,
          "Write an encrypted backup of the vault's data."),
    Entry("restore", "trialvault.vault.backup_commands", _VAULT,
          "Restore a backup, erasures re-applied first."),
    Entry("console", "trialvault.console.commands", _VAULT,
          "Serve the local web console on 127.0.0.1."),
    Entry("rights", "trialvault.rights.commands", _DPO,
          "Data-subject requests: register, deadlines, actions, letters."),
    Entry("keygen", "trialvault.rights.commands", _DPO,
          "Make the age key a data subject's access response is sealed to."),
    Entry("retention", "trialvault.retention.commands", _DPO,
          "When the data must be destroyed, and the purge."),
    Entry("evaluate", "trialvault.evaluate.commands", _EVAL,
          "Evaluate the study inside the vault."),
    Entry("runs", "trialvault.disclose.commands", _EVAL,
          "List the evaluation runs stored in the vault."),
    Entry("release", "trialvault.disclose.commands", _EVAL,
          "Request, review and write disclosure-checked releases."),
)
STAGE_MODULES: tuple[str, ...] = tuple(dict.fromkeys(e.module for e in COMMANDS))
_BY_NAME = {e.name: e for e in COMMANDS}

# Commands built so far, shared by every StageGroup instance (Typer builds a new group object
# per call of `app`); each stage module is imported and registered at most once per process.
_LOADED: dict[str, _click.Command] = {}
_LOADED_MODULES: set[str] = set()


def load_stage(module_name: str) -> dict[str, _click.Command]:
    """Import one stage's command module, build its commands and remember them."""
    if module_name not in _LOADED_MODULES:
        module = importlib.import_module(module_name)
        staging = typer.Typer(rich_markup_mode="rich", pretty_exceptions_enable=False)
        module.register(staging)
        built = typer.main.get_group(staging).commands
        for name, command in built.items():
            tidy(command)
            entry = _BY_NAME.get(name)
            if entry is not None:
                command.rich_help_panel = entry.panel  # type: ignore[attr-defined]
            _LOADED[name] = command
        _LOADED_MODULES.add(module_name)
    return {n: c for n, c in _LOADED.items()}


def load_all() -> dict[str, _click.Command]:
    """Every command of every stage (tests and documentation walk the whole tree)."""
    for module_name in STAGE_MODULES:
        load_stage(module_name)
    return dict(_LOADED)


class StageGroup(TyperGroup):
    """The top-level group: lists commands from `COMMANDS`, imports a stage only to run it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = _LOADED
        tidy(self)

    def get_params(self, ctx: _click.Context) -> list[_click.Parameter]:
        # Typer appends the completion options after __init__, so tidy them here.
        params = super().get_params(ctx)
        for param in params:
            tidy_param(param)
        return params

    def list_commands(self, ctx: _click.Context) -> list[str]:
        extra = [n for n in _LOADED if n not in _BY_NAME]
        return [e.name for e in COMMANDS] + extra

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        loaded = _LOADED.get(cmd_name)
        if loaded is not None:
            return loaded
        entry = _BY_NAME.get(cmd_name)
        if entry is None:
            return None
        # A placeholder for the command list in `--help`: name, summary and panel only.
        return TyperCommand(entry.name, help=entry.summary, short_help=entry.summary,
                            rich_help_panel=entry.panel, rich_markup_mode="rich")

    def resolve_command(self, ctx: _click.Context, args: list[str]
                        ) -> tuple[str | None, _click.Command | None, list[str]]:
        if args and not args[0].startswith("-"):
            entry = _BY_NAME.get(args[0])
            if entry is not None:
                load_stage(entry.module)
            elif args[0] not in _LOADED:
                load_all()  # not listed: look in every stage before calling it a typo
        return super().resolve_command(ctx, args)

    def make_context(self, info_name: str | None, args: list[str],
                     parent: _click.Context | None = None, **extra: Any) -> _click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:  # a bad top-level option
            exit_if_usage_error(exc)
            raise

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Exception) as exc:  # typer.Abort is an Exception
            exit_if_interrupted(exc)
            exit_if_usage_error(exc)
            raise


app = typer.Typer(
    name="trialvault",
    cls=StageGroup,
    help="Privacy-first research data vault and evaluation pipeline for children's social "
         "care trials.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_OPTION_NAMES},
)


def _version(value: bool) -> None:
    if value:
        print_version(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                 help="Show the version and exit."),
    wait: float = typer.Option(0.0, "--wait", metavar="SECONDS", min=0,
                               help="If another process has the vault open, keep trying this "
                               "long before giving up (exit 7)."),
) -> None:
    """trialvault: prepare → seal → ingest → vault → rights/retention → evaluate → disclose →
    release. Exit codes and output formats: docs/cli.md."""
    if wait:
        # Imported only when asked for: `--help` must stay free of the vault's libraries.
        from trialvault.vault.session import set_default_wait

        set_default_wait(wait)


def command_tree() -> _click.Command:
    """The whole command tree with every stage loaded (for tests and documentation)."""
    load_all()
    return typer.main.get_command(app)

