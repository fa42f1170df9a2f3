"""Reading a child's code for `rights new` without it showing in `ps` or shell history: from a
file, from stdin (`--child -`) or a hidden prompt; `--child CODE` works but warns. Refusals never
echo what was given.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from trialvault.cli_common import warning

MAX_CHILD_CODE = 100  # characters; LA child codes are short identifiers


def child_code(option: str | None, path: Path | None) -> str:
    """The child code from --child-file, `--child -` (stdin), --child (with a warning) or a
    hidden prompt. Refusals never echo what was given."""
    if option is not None and path is not None:
        raise typer.BadParameter("give the child code once: --child or --child-file")
    if path is not None:
        try:
            with path.open("rb") as handle:
                text = handle.read(4096).decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(f"--child-file: cannot read {path} "
                                     f"({type(exc).__name__})") from None
        return _one_code(text, f"--child-file {path}")
    if option == "-":
        return _one_code(sys.stdin.read(4096), "--child - (stdin)")
    if option is not None:
        warning("--child puts the child's code in the process list (ps) and your shell "
                "history; use --child-file FILE, --child - (stdin) or the prompt instead")
        return _one_code(option, "--child")
    if not sys.stdin.isatty():
        raise typer.BadParameter("no terminal to ask for the child code: give --child-file "
                                 "FILE or --child - (read from stdin)")
    return _one_code(str(typer.prompt("LA child code (not shown)", hide_input=True,
                                      confirmation_prompt=True)), "the prompt")


def _one_code(text: str, source: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        raise typer.BadParameter(f"{source}: expected one child code on one line "
                                 f"(found {len(lines)} non-empty lines)")
    if len(lines[0]) > MAX_CHILD_CODE:
        raise typer.BadParameter(f"{source}: a child code has at most {MAX_CHILD_CODE} "
                                 "characters")
    return lines[0]
