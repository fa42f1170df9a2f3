"""Errors every stage raises. The CLI maps them to exit codes; messages never carry row values."""

from __future__ import annotations


class TrialvaultError(Exception):
    """Base class: a refusal with a message a user can act on."""

    exit_code = 1


class StudyFileError(TrialvaultError):
    """The study file is missing, unreadable or breaks the study model."""

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
