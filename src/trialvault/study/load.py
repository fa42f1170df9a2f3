"""Read a study file and turn the model's refusals into messages that name the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from trialvault.errors import StudyFileError, describe_struct_error
from trialvault.study.model import StudyFile


def load_study(path: Path) -> StudyFile:
    """Load and validate a study file; raise StudyFileError naming the file and the bad key."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StudyFileError(f"{path}: cannot read study file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise StudyFileError(f"{path}: study file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise StudyFileError(f"{path}: not valid TOML: {exc}") from None
    return parse_study(data, source=str(path))


def parse_study(data: Any, *, source: str = "study file") -> StudyFile:
    """A study from its parsed TOML (dates as dates), checked as `load_study` checks a file."""
    try:
        return msgspec.convert(data, StudyFile)
    except msgspec.ValidationError as exc:
        raise StudyFileError(f"{source}: {_problem(exc)}") from None


def study_from_json(text: str | bytes, *, source: str = "stored study") -> StudyFile:
    """A study from the JSON `study_json` wrote (kept in vault and release records), checked
    again as a file is."""
    try:
        return msgspec.json.decode(text, type=StudyFile)
    except msgspec.ValidationError as exc:
        raise StudyFileError(f"{source}: {_problem(exc)}") from None
    except msgspec.DecodeError as exc:
        raise StudyFileError(f"{source}: not valid JSON ({exc})") from None


def study_json(study: StudyFile) -> str:
    """The study as compact JSON, fields in the model's order: what vault and release records
    keep and hash. Byte for byte what pydantic's `model_dump_json` wrote before msgspec, so the
    hashes stored by earlier versions still match (a test pins one)."""
    return msgspec.json.encode(study).decode("utf-8")


def study_json_sha256(study: StudyFile) -> str:
    """SHA-256 of `study_json`: how an evaluation run names the study when no file is at hand,
    and how a release checks it is given the same study."""
    import hashlib  # see study_hash

    return hashlib.sha256(study_json(study).encode("utf-8")).hexdigest()


def _problem(exc: msgspec.ValidationError) -> str:
    return f"problem in study file: {describe_struct_error(str(exc), file_kind='study-file')}"


def study_hash(path: Path) -> str:
    """SHA-256 of the study file's bytes: provenance for packages and results."""
    # hashlib loads OpenSSL's libcrypto (3.6 MB resident); the LA's check-only command hashes
    # nothing and is held to the public validator's peak memory (issue 19).
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
