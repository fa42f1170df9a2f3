"""Errors every stage raises. The CLI maps them to exit codes; messages never carry row values.

`EXIT_CODES` is the one table of exit codes: README.md and docs/cli.md show it, and a test
keeps them equal.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class ExitCode(NamedTuple):
    code: int
    name: str
    meaning: str


# Click (Typer) itself exits 2 on a bad option or argument; a broken study file shares the code
# because both mean "fix how the command was called".
EXIT_OK = 0
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C
EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(0, "ok", "the command did what it was asked"),
    ExitCode(1, "error", "a refusal that fits no narrower code (e.g. the vault already exists)"),
    ExitCode(2, "usage", "a bad option or argument, or a missing or invalid study file"),
    ExitCode(3, "input", "an input file (return, package, key, recipient) is malformed, "
                         "hostile or of the wrong kind; the message names file, line and rule"),
    ExitCode(4, "access", "wrong password, no key slot, or a role not allowed to do this"),
    ExitCode(5, "integrity", "a hash, signature or the audit chain does not verify"),
    ExitCode(6, "policy", "the action breaks a rule of the study (retention not due, "
                          "self-approval, disclosure check failed)"),
    ExitCode(7, "locked", "the vault is open in another process (the message names it)"),
    ExitCode(8, "not-found", "a named thing does not exist: vault, request, release, run, user, "
                             "file"),
    ExitCode(9, "return-errors", "prepare --fail-on error|query: the return has DfE errors "
                                 "(the report is written; no package)"),
    ExitCode(10, "return-queries", "prepare --fail-on query: the return has DfE queries and no "
                                   "errors (the report is written; no package)"),
    ExitCode(EXIT_INTERRUPTED, "interrupted", "stopped by Ctrl-C (SIGINT); nothing half-written "
                                              "is kept"),
)


class TrialvaultError(Exception):
    """Base class: a refusal with a message a user can act on."""

    exit_code = 1


class StudyFileError(TrialvaultError):
    """The study file is missing, unreadable or breaks the study model."""

    exit_code = 2


class UsageError(TrialvaultError):
    """The command line is incomplete in a way the option parser cannot see (e.g. no --user
    for a vault with several users)."""

    exit_code = 2


class InputFileError(TrialvaultError):
    """An input file (return, package, key) is malformed, hostile or of the wrong kind.

    `location` names file, line and rule so an analyst can find the fault.
    """

    exit_code = 3

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 rule: str | None = None) -> None:
        parts = [p for p in (file, f"line {line}" if line is not None else None,
                             f"rule {rule}" if rule else None) if p]
        self.file, self.line, self.rule = file, line, rule
        super().__init__(f"{': '.join([', '.join(parts), message]) if parts else message}")


class AccessDenied(TrialvaultError):
    """Wrong password, missing key slot or a role not allowed to run the command."""

    exit_code = 4


class IntegrityError(TrialvaultError):
    """A hash, signature or audit chain does not verify."""

    exit_code = 5


class PolicyRefusal(TrialvaultError):
    """The action breaks a rule of the study (retention not due, self-approval, disclosure fail)."""

    exit_code = 6


class VaultLocked(TrialvaultError):
    """Another process holds the vault's lock; the message names the process and how long."""

    exit_code = 7


class NotFound(TrialvaultError):
    """A thing named on the command line does not exist (vault, request, release, run, user)."""

    exit_code = 8


class ReturnHasErrors(TrialvaultError):
    """`prepare --fail-on error|query`: the validation found DfE errors in the return."""

    exit_code = 9


class ReturnHasQueries(TrialvaultError):
    """`prepare --fail-on query`: the validation found DfE queries (and no errors)."""

    exit_code = 10


# msgspec's words for a refused value, and where it was: "<what> - at `$.a[1].b`".
_STRUCT_ERROR = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<at>[^`]*)`)?$", re.S)
_FIELD = re.compile(r"^Object (?P<kind>missing required|contains unknown) field `(?P<name>[^`]+)`$")
# A check across fields (`__post_init__`) starts its message with the field it is about.
_NAMED = re.compile(r"^(?P<name>[A-Za-z_][\w.]*): (?P<what>.+)$", re.S)


def describe_struct_error(message: str, *, file_kind: str, within: str = "") -> str:
    """One refusal of a spec or study file (a msgspec ValidationError's text) as the key it is
    about, dotted as in the file (`local_authorities.1.dfe_code`), and what is wrong with it.

    msgspec writes a mapping's key as `[...]`: a caller that converts a mapping's entries one by
    one passes the entry's own key as `within`."""
    found = _STRUCT_ERROR.match(message)
    what, at = (found["what"], found["at"] or "") if found else (message, "")
    path = [p for p in [*within.split("."), *re.split(r"[.\[\]]+", at)] if p]
    field = _FIELD.match(what)
    if field:
        key = ".".join([*path, field["name"]])
        if field["kind"] == "missing required":
            return f"key '{key}' is missing"
        return f"key '{key}' is not a known {file_kind} key"
    named = _NAMED.match(what)
    if named:
        path, what = [*path, named["name"]], named["what"]
    return f"key '{'.'.join(path) or '(top level)'}': {what}"
