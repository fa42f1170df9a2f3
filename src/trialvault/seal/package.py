"""Write and read a sealed package: an age (X25519) encrypted ZIP of Parquet tables + manifest.

Layout inside the ZIP (see docs/architecture.md, "Package (seal)"):

    manifest.json            the manifest (below)
    tables/<name>.parquet    one Parquet file per minimised table
    validation/issues.csv    the LA-side validation issues (rule codes, files, lines; no values)

The plaintext ZIP only ever exists in memory: it is built in a buffer, encrypted, and only the
ciphertext is written (to a temporary file in the target folder, then renamed, so a crash leaves
either the old file or the complete new one). Reading decrypts into memory as well.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pyrage
from pyrage import x25519

from trialvault import __version__
from trialvault.errors import InputFileError, IntegrityError
from trialvault.files import write_atomic

PACKAGE_FORMAT = "trialvault-package/1"
PACKAGE_SUFFIX = ".tvpkg"
MANIFEST_NAME = "manifest.json"
VALIDATION_NAME = "validation/issues.csv"
TABLE_DIR = "tables/"
# Manifest keys the caller must give (the rest is filled in or optional).
REQUIRED_KEYS = ("study_id", "spec_version", "la_code", "extract_date")
# Guard against a hostile ZIP that claims huge members (a "zip bomb"): the whole package is
# decrypted and unpacked in memory, so the sum of member sizes is capped.
MAX_UNPACKED_BYTES = 16 * 1024**3
_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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
    return str(_parse_identity(identity).to_public())


def write_package(path: Path, recipients: list[str], manifest: dict[str, Any],
                  tables: dict[str, pa.Table], validation_csv: bytes) -> str:
    """Seal `tables` into an encrypted package at `path`; return its package_id.

    `manifest` must hold study_id, spec_version, la_code (int) and extract_date (ISO date or
    date); it may hold dropped_columns, linkage_rate, risk_summary and validation_summary.
    package_id (UUID4, unless given), created_at, trialvault_version, format and, per table,
    the row count and SHA-256 of the Parquet bytes are filled in here.
    """
    if not recipients:
        raise InputFileError("no recipient given: a package must be encrypted to someone",
                             file=path.name)
    parsed = [_parse_recipient(r) for r in recipients]
    full = _complete_manifest(manifest, path)
    members: dict[str, bytes] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(tables):
        if not _TABLE_NAME.match(name):
            raise InputFileError(f"table name {name!r} is not a lower-case identifier",
                                 file=path.name)
        data = _parquet_bytes(tables[name])
        members[f"{TABLE_DIR}{name}.parquet"] = data
        entries[name] = {"rows": tables[name].num_rows,
                         "sha256": hashlib.sha256(data).hexdigest()}
    full["tables"] = entries
    plain = _zip_bytes(full, members, validation_csv)
    ciphertext = pyrage.encrypt(plain, parsed)
    del plain
    _atomic_write(path, ciphertext)
    return str(full["package_id"])


def read_package(path: Path, identity: str, *, max_unpacked_bytes: int = MAX_UNPACKED_BYTES
                 ) -> PackageContents:
    """Decrypt a package in memory and verify its manifest hashes and row counts."""
    name = path.name
    key = _parse_identity(identity)
    try:
        ciphertext = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read package ({exc.strerror})", file=str(path)) from None
    plain = _decrypt(ciphertext, key, name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(plain))
    except zipfile.BadZipFile:
        raise InputFileError("decrypted package is not a ZIP archive", file=name) from None
    with archive:
        return _unpack(archive, name, max_unpacked_bytes)


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


def _zip_bytes(manifest: dict[str, Any], members: dict[str, bytes], validation_csv: bytes
               ) -> bytes:
    buffer = io.BytesIO()
    # A fixed timestamp keeps the archive free of the packing machine's clock.
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w") as archive:
        def put(name: str, data: bytes, method: int) -> None:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = method
            archive.writestr(info, data)

        # default=str: dates or paths inside summaries become text rather than an error.
        put(MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True, default=str).encode(),
            zipfile.ZIP_DEFLATED)
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


# --- reading ---------------------------------------------------------------------------------

def _parse_recipient(recipient: str) -> x25519.Recipient:
    try:
        return x25519.Recipient.from_str(recipient.strip())
    except pyrage.RecipientError:
        raise InputFileError("recipient is not an age X25519 public key (age1…)") from None


def _parse_identity(identity: str) -> x25519.Identity:
    try:
        return x25519.Identity.from_str(identity.strip())
    except pyrage.IdentityError:
        raise InputFileError("identity is not an age X25519 secret key") from None


def _decrypt(ciphertext: bytes, identity: x25519.Identity, name: str) -> bytes:
    if not ciphertext.startswith(b"age-encryption.org/v1\n"):
        raise InputFileError("not an age-encrypted package (header missing)", file=name)
    try:
        return bytes(pyrage.decrypt(ciphertext, [identity]))
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise InputFileError("package is not encrypted to this key (wrong identity or "
                                 "recipient)", file=name) from None
        raise IntegrityError(f"{name}: package is truncated or corrupted (decryption failed: "
                             f"{exc})") from None


def _unpack(archive: zipfile.ZipFile, name: str, limit: int) -> PackageContents:
    infos = archive.infolist()
    names = [i.filename for i in infos]
    if len(names) != len(set(names)):
        raise InputFileError("package holds a member twice", file=name)
    total = sum(i.file_size for i in infos)
    if total > limit:
        raise InputFileError(f"package unpacks to {total} bytes, above the limit of {limit}",
                             file=name)
    unexpected = [n for n in names if n not in (MANIFEST_NAME, VALIDATION_NAME)
                  and not (n.startswith(TABLE_DIR) and n.endswith(".parquet")
                           and _TABLE_NAME.match(n[len(TABLE_DIR):-len(".parquet")]))]
    if unexpected:
        raise InputFileError(f"package holds unexpected member(s) {unexpected}", file=name)
    for required in (MANIFEST_NAME, VALIDATION_NAME):
        if required not in names:
            raise InputFileError(f"package has no {required}", file=name)
    manifest = _read_manifest(_member(archive, MANIFEST_NAME, name), name)
    declared: dict[str, Any] = manifest["tables"]
    present = {n[len(TABLE_DIR):-len(".parquet")] for n in names if n.startswith(TABLE_DIR)}
    if present != set(declared):
        raise IntegrityError(f"{name}: tables in the package {sorted(present)} differ from the "
                             f"manifest {sorted(declared)}")
    tables: dict[str, pa.Table] = {}
    for table in sorted(declared):
        member = f"{TABLE_DIR}{table}.parquet"
        data = _member(archive, member, name)
        entry = declared[table]
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            raise IntegrityError(f"{name}: {member}: SHA-256 differs from the manifest")
        try:
            tables[table] = pq.read_table(io.BytesIO(data))
        except (pa.ArrowException, OSError) as exc:
            raise InputFileError(f"not a readable Parquet file ({type(exc).__name__})",
                                 file=f"{name}:{member}") from None
        if tables[table].num_rows != entry.get("rows"):
            raise IntegrityError(f"{name}: {member}: {tables[table].num_rows} rows, manifest "
                                 f"says {entry.get('rows')}")
    return PackageContents(manifest=manifest, tables=tables,
                           validation_csv=_member(archive, VALIDATION_NAME, name))


def _member(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        # zipfile raises BadZipFile on a CRC mismatch.
        raise IntegrityError(f"{name}: {member}: damaged ZIP member ({exc})") from None


def _read_manifest(data: bytes, name: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"manifest.json is not valid JSON ({exc})", file=name) from None
    if not isinstance(manifest, dict):
        raise InputFileError("manifest.json is not a JSON object", file=name)
    if manifest.get("format") != PACKAGE_FORMAT:
        raise InputFileError(f"manifest format is {manifest.get('format')!r}, expected "
                             f"{PACKAGE_FORMAT!r}", file=name)
    missing = [k for k in (*REQUIRED_KEYS, "package_id", "tables") if k not in manifest]
    if missing:
        raise InputFileError(f"manifest lacks key(s) {missing}", file=name)
    tables = manifest["tables"]
    if not isinstance(tables, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("rows"), int)
            and isinstance(v.get("sha256"), str) for v in tables.values()):
        raise InputFileError("manifest 'tables' must map each table to {rows, sha256}",
                             file=name)
    try:
        uuid.UUID(str(manifest["package_id"]))
        int(manifest["la_code"])
        dt.date.fromisoformat(str(manifest["extract_date"]))
    except ValueError:
        raise InputFileError("manifest package_id, la_code or extract_date is malformed",
                             file=name) from None
    return manifest
