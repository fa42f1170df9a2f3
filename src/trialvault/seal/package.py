"""Write and read a sealed package: an age (X25519) encrypted ZIP of Parquet tables + manifest.

Layout inside the ZIP (see docs/architecture.md, "Package (seal)"):

    manifest.json            the manifest: every table's rows and SHA-256, the CSV's SHA-256
    signature.json           the LA's Ed25519 signature of manifest.json (see seal.verify)
    tables/<name>.parquet    one Parquet file per minimised table
    validation/issues.csv    the LA-side validation issues (rule codes, files, lines; no values)

The plaintext ZIP only ever exists in memory: it is built in a buffer, encrypted, and only the
ciphertext is written (to a temporary file in the target folder, then renamed, so a crash leaves
either the old file or the complete new one). Reading decrypts into memory as well, within the
caps of `seal.limits` (see `seal.reader`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyrage
from pyrage import x25519

from trialvault import __version__
from trialvault.errors import InputFileError
from trialvault.files import write_atomic
from trialvault.seal.limits import DEFAULT_PACKAGE_LIMITS, PackageLimits
from trialvault.seal.reader import (
    MANIFEST_NAME,
    PACKAGE_FORMAT,
    REQUIRED_KEYS,
    SIGNATURE_NAME,
    TABLE_DIR,
    TABLE_NAME,
    VALIDATION_NAME,
    open_package,
    parse_identity,
    read_tables,
    read_validation,
)

if TYPE_CHECKING:
    from trialvault.seal.keys import LaSigningKey

PACKAGE_SUFFIX = ".tvpkg"
__all__ = ["MANIFEST_NAME", "PACKAGE_FORMAT", "PACKAGE_SUFFIX", "SIGNATURE_NAME", "TABLE_DIR",
           "VALIDATION_NAME", "PackageContents", "generate_identity", "read_package",
           "recipient_of", "source_name", "write_package"]


@dataclass(frozen=True)
class PackageContents:
    """A decrypted, verified package held in memory."""

    manifest: dict[str, Any]
    tables: dict[str, pa.Table]
    validation_csv: bytes

    @property
    def package_id(self) -> str:
        return str(self.manifest["package_id"])

    @property
    def la_code(self) -> int:
        return int(self.manifest["la_code"])

    @property
    def extract_date(self) -> dt.date:
        return dt.date.fromisoformat(str(self.manifest["extract_date"]))


def generate_identity() -> tuple[str, str]:
    """A new age X25519 key pair: (secret `AGE-SECRET-KEY-1…`, public recipient `age1…`)."""
    identity = x25519.Identity.generate()
    return str(identity), str(identity.to_public())


def recipient_of(identity: str) -> str:
    """The public recipient of a secret identity string."""
    return str(parse_identity(identity).to_public())


def source_name(source: Path | bytes) -> str:
    """How errors name a package: its file name, or "package" for bytes."""
    return source.name if isinstance(source, Path) else "package"


def write_package(path: Path, recipients: list[str], manifest: dict[str, Any],
                  tables: dict[str, pa.Table], validation_csv: bytes, *,
                  sign_key: LaSigningKey | None = None) -> str:
    """Seal `tables` into an encrypted package at `path`; return its package_id.

    `manifest` must hold study_id, spec_version, la_code (int) and extract_date (ISO date or
    date); it may hold dropped_columns, linkage_rate, risk_summary and validation_summary.
    package_id (UUID4, unless given), created_at, trialvault_version, format, the validation
    CSV's SHA-256 and, per table, the row count and SHA-256 of the Parquet bytes are filled in
    here. With `sign_key` (the LA's key, for the manifest's LA only) the manifest is signed.
    """
    from trialvault.seal.verify import signature_document

    if not recipients:
        raise InputFileError("no recipient given: a package must be encrypted to someone",
                             file=path.name)
    parsed = [_parse_recipient(r) for r in recipients]
    full = _complete_manifest(manifest, path)
    if sign_key is not None and sign_key.la_code != full["la_code"]:
        raise InputFileError(f"the signing key is LA {sign_key.la_code}'s, not LA "
                             f"{full['la_code']}'s: an LA signs only its own packages",
                             file=path.name, rule="sign-key")
    members: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(tables):
        if not TABLE_NAME.match(name):
            raise InputFileError(f"table name {name!r} is not a lower-case identifier",
                                 file=path.name)
        data = _parquet_bytes(tables[name])
        members[f"{TABLE_DIR}{name}.parquet"] = data
        entries[name] = {"rows": tables[name].num_rows,
                         "sha256": hashlib.sha256(data).hexdigest()}
    full["tables"] = entries
    full["validation_sha256"] = hashlib.sha256(validation_csv).hexdigest()
    # default=str: dates or paths inside summaries become text rather than an error.
    manifest_bytes = json.dumps(full, indent=2, sort_keys=True, default=str).encode()
    signature = (signature_document(sign_key, full, manifest_bytes) if sign_key is not None
                 else None)
    plain = _zip_bytes(manifest_bytes, members, validation_csv, signature)
    ciphertext = pyrage.encrypt(plain, parsed)
    del plain
    _atomic_write(path, ciphertext)
    return str(full["package_id"])


def read_package(source: Path | bytes, identity: str, *,
                 limits: PackageLimits = DEFAULT_PACKAGE_LIMITS,
                 name: str | None = None) -> PackageContents:
    """Decrypt a package in memory and verify its manifest hashes and row counts, within
    `limits`. A signature, if present, must verify against its own key; whether that key is
    trusted is `seal.verify_package`'s question (ingest asks it)."""
    from trialvault.seal.verify import check_signature

    label = name or source_name(source)
    opened = open_package(source, parse_identity(identity), limits, name=label)
    with opened.archive:
        check_signature(opened)
        tables = read_tables(opened, limits)
        validation = read_validation(opened, limits)
    return PackageContents(manifest=opened.manifest, tables=tables, validation_csv=validation)


# --- writing ---------------------------------------------------------------------------------

def _complete_manifest(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    missing = [k for k in REQUIRED_KEYS if manifest.get(k) in (None, "")]
    if missing:
        raise InputFileError(f"manifest lacks required key(s) {missing}", file=path.name)
    full = dict(manifest)
    full["format"] = PACKAGE_FORMAT
    full["package_id"] = str(uuid.UUID(str(full.get("package_id") or uuid.uuid4())))
    full["la_code"] = int(full["la_code"])
    extract = full["extract_date"]
    if isinstance(extract, dt.datetime):
        extract = extract.date()
    try:
        full["extract_date"] = (extract.isoformat() if isinstance(extract, dt.date)
                                else dt.date.fromisoformat(str(extract)).isoformat())
    except ValueError:
        raise InputFileError("manifest extract_date is not an ISO date (YYYY-MM-DD)",
                             file=path.name) from None
    full.setdefault("created_at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    full["trialvault_version"] = __version__
    full.setdefault("dropped_columns", [])
    full.setdefault("linkage_rate", None)
    full.setdefault("risk_summary", {})
    full.setdefault("validation_summary", {})
    return full


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _zip_bytes(manifest: dict[str, Any] | bytes, members: dict[str, bytes],
               validation_csv: bytes, signature: bytes | None = None) -> bytes:
    buffer = io.BytesIO()
    # A fixed timestamp keeps the archive free of the packing machine's clock.
    stamp = (1980, 1, 1, 0, 0, 0)
    manifest_bytes = (manifest if isinstance(manifest, bytes) else
                      json.dumps(manifest, indent=2, sort_keys=True, default=str).encode())
    with zipfile.ZipFile(buffer, "w") as archive:
        def put(name: str, data: bytes, method: int) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            archive.writestr(info, data)

        put(MANIFEST_NAME, manifest_bytes, zipfile.ZIP_DEFLATED)
        if signature is not None:
            put(SIGNATURE_NAME, signature, zipfile.ZIP_DEFLATED)
        # Parquet is already compressed: store it as is.
        for name, data in members.items():
            put(name, data, zipfile.ZIP_STORED)
        put(VALIDATION_NAME, validation_csv, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputFileError("output folder does not exist", file=str(folder))
    write_atomic(path, data)


def _parse_recipient(recipient: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(recipient.strip())
    except pyrage.RecipientError:
        raise InputFileError("recipient is not an age X25519 public key (age1…)") from None
