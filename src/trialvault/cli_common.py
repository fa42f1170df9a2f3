"""What every command shares: option types, defaults from the environment, messages, errors.

Only the CLI layer reads environment variables; the library takes settings as arguments.

Messages: results go to stdout; `error:`, `warning:` and `note:` lines go to stderr, one prefix
style everywhere (use `error()`, `warning()`, `note()`), so `--format json` output on stdout
stays parseable. Exit codes come from the error's class (`trialvault.errors.EXIT_CODES`).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Annotated, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console

from trialvault.errors import (
    EXIT_INTERRUPTED,
    AccessDenied,
    PolicyRefusal,
    TrialvaultError,
    UsageError,
)

P = ParamSpec("P")
R = TypeVar("R")

def _console(stream: IO[str], *, stderr: bool = False) -> Console:
    # Piped or redirected output is not drawn for a screen: no 80-column wrapping, so a table or
    # a long line reaches a file or `grep` whole (rich would otherwise cut cells with "…").
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return Console(stderr=stderr, width=None if terminal else PIPED_WIDTH, soft_wrap=not terminal)


PIPED_WIDTH = 4096
console = _console(sys.stdout)
err_console = _console(sys.stderr, stderr=True)

REPO_STUDIES = Path(__file__).resolve().parents[2] / "studies"
DEFAULT_STUDY = REPO_STUDIES / "no-wrong-door.toml"
USER_ENV = "TRIALVAULT_USER"


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
                 "only user; required when the vault has several users.", show_default=False),
]
# For `init`: the vault has no users yet, so there is nothing to default to.
FirstUserOption = Annotated[
    str | None,
    typer.Option("--user", help="Name of the new vault's first user (its data manager). "
                 "Default: $TRIALVAULT_USER; one of the two is required.", show_default=False),
]
YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (scripts). Without it the "
                 "command asks at a terminal and refuses elsewhere.", show_default=False),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Show what would be done and change nothing.",
                 show_default=False),
]
WaitOption = Annotated[
    float,
    typer.Option("--wait", metavar="SECONDS", min=0,
                 help="If another process has the vault open, keep trying this long before "
                 "giving up (exit code 7).", show_default=False),
]


# --- messages (stderr, one prefix style) ---------------------------------------------------

def error(message: str) -> None:
    """`error: …` on stderr (the message is printed as is: no markup, no highlighting)."""
    _prefixed("[bold red]error:[/]", message)


def warning(message: str) -> None:
    """`warning: …` on stderr: something the user should act on, the command still succeeded."""
    _prefixed("[bold yellow]warning:[/]", message)


def note(message: str) -> None:
    """`note: …` on stderr: context worth knowing, nothing to act on."""
    _prefixed("[cyan]note:[/]", message)


def _prefixed(prefix: str, message: str) -> None:
    err_console.print(prefix, end=" ")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)


def print_version(version: str) -> None:
    typer.echo(f"trialvault {version}")


# --- destructive actions: preview, then confirmation ----------------------------------------

def confirm(question: str, *, yes: bool, what: str, phrase: str | None = None) -> None:
    """Go on only when confirmed: `--yes`, or at a terminal a "y" (or the typed `phrase`, for
    what cannot be undone at all). Not at a terminal and no `--yes`: refused (exit 6), so a
    script never destroys anything by accident. The question goes to stderr."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise PolicyRefusal(f"{what} needs typed confirmation at a terminal, or --yes "
                            "(preview it with --dry-run)")
    if phrase is not None:
        typed = str(typer.prompt(f"{question} Type '{phrase}' to go on", err=True))
        if typed.strip() != phrase:
            raise PolicyRefusal("confirmation did not match: nothing was changed")
    elif not typer.confirm(question, default=False, err=True):
        raise PolicyRefusal("not confirmed: nothing was changed")


# --- public keys given on the command line ---------------------------------------------------

def key_line(value: str, *, prefix: str, option: str) -> str:
    """A public key given directly (it starts with `prefix`) or as a file holding it (the first
    line that is not a `#` comment), so a key can be passed on as the file it was saved to
    (`trialvault keygen --out k > k.pub`). A file whose key line is anything else (a secret
    key, a wrong file) is refused without showing its content."""
    from trialvault.errors import InputFileError

    if value.strip().startswith(prefix):
        return value.strip()
    path = Path(value)
    if not path.is_file():
        raise InputFileError(f"{option} is neither a public key ({prefix}…) nor a file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{option}: cannot read the file ({type(exc).__name__})",
                             file=str(path)) from None
    found = next((line.strip() for line in lines
                  if line.strip() and not line.lstrip().startswith("#")), "")
    if not found.startswith(prefix):
        raise InputFileError(f"{option}: the file holds no public key ({prefix}…) on its "
                             "first line", file=str(path))
    return found


# --- what each role may read (the CLI and the console show the same) ----------------------

# The audit log is read by those who oversee the vault. Every role holds the audit domain's key
# (each command appends its own signed entries), so this is the tool's policy, not a key
# boundary; both front ends apply it.
AUDIT_READERS: tuple[str, ...] = ("dpo", "data-manager")


# --- users ---------------------------------------------------------------------------------

# Conservative on purpose: a user name appears in the audit log, file names of letters and
# exports, and in shell commands; no spaces, no upper case, nothing a shell would expand.
USER_NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")
USER_NAME_RULE = ("a user name is 1-32 characters: a lower-case letter, then lower-case "
                  "letters, digits, '.', '_' or '-'")


def check_user_name(name: str, *, source: str = "--user") -> str:
    """`name` if it is a valid user name; else a usage error naming where it came from.

    The refused value is not echoed: a password typed into the wrong box must not reach a
    terminal log.
    """
    if not USER_NAME.fullmatch(name):
        raise UsageError(f"{source}: not a valid user name ({USER_NAME_RULE})")
    return name


# Who the current command acts as and how that was chosen: named in the hint printed when the
# vault refuses access, so a wrong default never silently blames someone else.
_acting: dict[str, str] = {}


def acting_user(vault: Path, user: str | None) -> str:
    """The user a vault command acts as: `--user`, else $TRIALVAULT_USER, else the vault's
    only user. A vault with several users and none named is refused (exit 2), listing them."""
    if user:
        name, source = check_user_name(user, source="--user"), "--user"
    elif os.environ.get(USER_ENV):
        name, source = check_user_name(os.environ[USER_ENV], source=USER_ENV), USER_ENV
    else:
        from trialvault.vault.admin import list_users

        names = [slot.user for slot in list_users(vault)]
        if len(names) != 1:
            raise UsageError(
                f"{vault} has {len(names)} users ({', '.join(names)}): say which one you are "
                f"with --user NAME or by setting {USER_ENV}")
        name, source = names[0], "the vault's only user"
    _acting.update(user=name, source=source)
    return name


def first_user(user: str | None) -> str:
    """The first user of a new vault (`init`): `--user`, else $TRIALVAULT_USER; required."""
    if user:
        return check_user_name(user, source="--user")
    if os.environ.get(USER_ENV):
        return check_user_name(os.environ[USER_ENV], source=USER_ENV)
    raise UsageError(f"name the vault's first user: --user NAME (or set {USER_ENV})")


def password_from_env_or_prompt(prompt: str = "Vault password", *, confirm: bool = False,
                                 env: str = "TRIALVAULT_PASSWORD") -> str:
    """The password from `env` (scripts, tests) or an interactive hidden prompt."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise typer.BadParameter(f"no terminal to ask for a password: set {env}")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


# --- errors and interrupts -----------------------------------------------------------------

def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C, however it surfaced: KeyboardInterrupt, DuckDB's interrupted query, or a prompt
    aborted by Ctrl-C; also when a library wrapped one of these in its own error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt):
            return True
        if type(current).__name__ == "InterruptException":  # duckdb.InterruptException
            return True
        if isinstance(current, RuntimeError) and str(current) == "Query interrupted":
            return True
        # Follow what Python would show: an explicit cause, else the context unless a
        # `raise ... from None` hid it (a handled interrupt re-raised as typer.Exit is done).
        current = current.__cause__ or (None if current.__suppress_context__
                                        else current.__context__)
    return False


def exit_if_interrupted(exc: BaseException) -> None:
    """After Ctrl-C: one line on stderr and exit code 130, never a traceback."""
    if is_interrupt(exc):
        if err_console.is_terminal:
            err_console.print()  # end the line the terminal echoed ^C on
        error("interrupted (Ctrl-C); the command stopped and kept no partial result")
        raise typer.Exit(EXIT_INTERRUPTED) from None


def exit_if_usage_error(exc: BaseException) -> None:
    """Typer's usage errors (unknown option, missing or bad value) as one `error:` line naming
    the command's help, like every other refusal, instead of Typer's boxed "Error" panel."""
    from typer import _click

    if not isinstance(exc, _click.exceptions.ClickException) or \
            type(exc).__name__ == "NoArgsIsHelpError":  # that one prints the help: keep it
        return
    ctx = getattr(exc, "ctx", None)
    hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
    error(exc.format_message() + hint)
    raise typer.Exit(exc.exit_code) from None


def fail(exc: TrialvaultError) -> NoReturn:
    """Print a refusal as one `error:` line (plus a hint) and exit with its code."""
    error(str(exc))
    if isinstance(exc, AccessDenied) and _acting:
        note(f"acted as user '{_acting['user']}' (from {_acting['source']}); "
             "to act as someone else, give --user NAME")
    raise typer.Exit(exc.exit_code) from None


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Map library refusals to one `error:` line on stderr and the error's exit code; Ctrl-C to
    one line and exit code 130."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _acting.clear()
        try:
            return func(*args, **kwargs)
        except TrialvaultError as exc:
            exit_if_interrupted(exc)
            fail(exc)
        except (KeyboardInterrupt, RuntimeError) as exc:  # typer.Abort is a RuntimeError
            exit_if_interrupted(exc)
            raise

    return wrapper
