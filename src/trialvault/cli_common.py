"""What every command shares: option types, defaults from the environment, error mapping.

Only the CLI layer reads environment variables; the library takes settings as arguments.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from trialvault.errors import TrialvaultError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

REPO_STUDIES = Path(__file__).resolve().parents[2] / "studies"
DEFAULT_STUDY = REPO_STUDIES / "no-wrong-door.toml"


def default_study() -> Path:
    return Path(os.environ.get("TRIALVAULT_STUDY", str(DEFAULT_STUDY)))


def default_vault() -> Path:
    return Path(os.environ.get("TRIALVAULT_VAULT", "vault"))


StudyOption = Annotated[
    Path,
    typer.Option("--study", help="Study file (TOML). Default: $TRIALVAULT_STUDY or the NWD study.",
                 default_factory=default_study, show_default=False),
]
VaultOption = Annotated[
    Path,
    typer.Option("--vault", help="Vault folder. Default: $TRIALVAULT_VAULT, else ./vault.",
                 default_factory=default_vault, show_default=False),
]

UserOption = Annotated[
    str | None,
    typer.Option("--user", help="Act as this user. Default: $TRIALVAULT_USER, else the vault's "
                 "only user or first data-manager.", show_default=False),
]


def acting_user(vault: Path, user: str | None) -> str:
    """`--user`, else $TRIALVAULT_USER, else the vault's only user or first data-manager."""
    from trialvault.vault.admin import default_user

    return user or os.environ.get("TRIALVAULT_USER") or default_user(vault)


def password_from_env_or_prompt(prompt: str = "Vault password", *, confirm: bool = False,
                                 env: str = "TRIALVAULT_PASSWORD") -> str:
    """The password from `env` (scripts, tests) or an interactive hidden prompt."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise typer.BadParameter(f"no terminal to ask for a password: set {env}")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Map library refusals to a red one-line message on stderr and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TrialvaultError as exc:
            err_console.print("[bold red]error:[/]", end=" ")
            err_console.print(str(exc), markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper
