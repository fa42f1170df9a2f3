"""Read a study file and turn pydantic's errors into messages that name the key."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from pydantic import ValidationError

from trialvault.errors import StudyFileError
from trialvault.study.model import StudyFile


def load_study(path: Path) -> StudyFile:
    """Load and validate a study file; raise StudyFileError naming the file and each bad key."""
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
    try:
        return StudyFile.model_validate(data)
    except ValidationError as exc:
        raise StudyFileError(f"{path}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        kind = err["type"]
        if kind == "missing":
            lines.append(f"key '{key}' is missing")
        elif kind == "extra_forbidden":
            lines.append(f"key '{key}' is not a known study-file key")
        else:
            lines.append(f"key '{key}': {err['msg']}")
    return f"{len(lines)} problem(s) in study file:\n  - " + "\n  - ".join(lines)


def study_hash(path: Path) -> str:
    """SHA-256 of the study file's bytes: provenance for packages and results."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
