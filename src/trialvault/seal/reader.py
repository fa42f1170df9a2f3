"""Reading a package with bounded memory: decrypt, check the ZIP, the manifest, then the tables.

Everything here treats the package as hostile (see `seal.limits`): sizes are checked before the
bytes are decoded, JSON is parsed with size and depth caps, and Parquet is read with strings kept
dictionary-encoded until their decoded size is known to fit. Every failure is an
`InputFileError` (malformed or too large) or an `IntegrityError` (a hash or count differs),
naming the package and the member.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyrage
from pyrage import x25519

from trialvault.errors import InputFileError, IntegrityError
from trialvault.seal.limits import PackageLimits

PACKAGE_FORMAT = "trialvault-package/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "signature.json"
VALIDATION_NAME = "validation/issues.csv"
TABLE_DIR = "tables/"
TABLE_SUFFIX = ".parquet"
AGE_HEADER = b"age-encryption.org/v1\n"
# Manifest keys the writer must be given (the rest is filled in or optional).
REQUIRED_KEYS = ("study_id", "spec_version", "la_code", "extract_date")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024
_BATCH_ROWS = 65_536


class PackageLimitExceeded(InputFileError):
    """A package (or one of its members) is larger than a `PackageLimits` cap."""


@dataclass
class OpenedPackage:
    """A decrypted package whose ZIP directory, manifest and signature document were checked;
    tables and the validation CSV are still unread."""

    name: str
    archive: zipfile.ZipFile
    manifest: dict[str, Any]
    manifest_bytes: bytes
    signature: dict[str, Any] | None
    members: dict[str, zipfile.ZipInfo] = field(default_factory=dict)


def parse_identity(identity: str) -> x25519.Identity:
    try:
        return x25519.Identity.from_str(identity.strip())
    except pyrage.IdentityError:
        raise InputFileError("identity is not an age X25519 secret key") from None


def _too_large(name: str, what: str, size: int | str, limit: int, rule: str) -> NoReturn:
    raise PackageLimitExceeded(f"{what} is {size} bytes, above the limit of {limit}",
                               file=name, rule=f"limit:{rule}")


def read_ciphertext(source: Path | bytes, name: str, limits: PackageLimits) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            size = source.stat().st_size
            if size > limits.max_package_bytes:
                _too_large(name, "the package file", size, limits.max_package_bytes,
                           "max_package_bytes")
            with source.open("rb") as handle:
                data = handle.read(limits.max_package_bytes + 1)
        except OSError as exc:
            raise InputFileError(f"cannot read package ({exc.strerror})",
                                 file=str(source)) from None
    if len(data) > limits.max_package_bytes:
        _too_large(name, "the package file", len(data), limits.max_package_bytes,
                   "max_package_bytes")
    return data


def decrypt(ciphertext: bytes, identity: x25519.Identity, name: str) -> bytes:
    if not ciphertext.startswith(AGE_HEADER):
        raise InputFileError("not an age-encrypted package (header missing)", file=name)
    try:
        return bytes(pyrage.decrypt(ciphertext, [identity]))
    except pyrage.DecryptError as exc:
        if "no matching keys" in str(exc).lower():
            raise InputFileError("package is not encrypted to this key (wrong identity or "
                                 "recipient)", file=name) from None
        raise IntegrityError(f"{name}: package is truncated or corrupted (decryption failed: "
                             f"{exc})") from None
    except (ValueError, TypeError) as exc:  # a malformed age header
        raise InputFileError(f"not a readable age package ({type(exc).__name__})",
                             file=name) from None


def open_package(source: Path | bytes, identity: x25519.Identity, limits: PackageLimits, *,
                 name: str) -> OpenedPackage:
    """Decrypt `source` and check its ZIP directory, manifest and signature document."""
    plain = decrypt(read_ciphertext(source, name, limits), identity, name)
    try:
        archive = zipfile.ZipFile(io.BytesIO(plain))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise InputFileError("decrypted package is not a ZIP archive", file=name) from None
    try:
        members = _check_directory(infos, name, limits)
        manifest_bytes = read_member(archive, members[MANIFEST_NAME], name,
                                     limits.max_manifest_bytes, "max_manifest_bytes")
        manifest = check_manifest(parse_json(manifest_bytes, name, MANIFEST_NAME, limits), name,
                                  limits)
        signature = None
        if SIGNATURE_NAME in members:
            signature = parse_json(read_member(archive, members[SIGNATURE_NAME], name,
                                               limits.max_signature_bytes,
                                               "max_signature_bytes"),
                                   name, SIGNATURE_NAME, limits)
    except BaseException:
        archive.close()
        raise
    return OpenedPackage(name, archive, manifest, manifest_bytes, signature, members)


def _member_cap(member: str, limits: PackageLimits) -> tuple[int, str]:
    if member == MANIFEST_NAME:
        return limits.max_manifest_bytes, "max_manifest_bytes"
    if member == SIGNATURE_NAME:
        return limits.max_signature_bytes, "max_signature_bytes"
    if member == VALIDATION_NAME:
        return limits.max_validation_csv_bytes, "max_validation_csv_bytes"
    return limits.max_table_file_bytes, "max_table_file_bytes"


def is_table_member(member: str) -> bool:
    return (member.startswith(TABLE_DIR) and member.endswith(TABLE_SUFFIX)
            and TABLE_NAME.match(member[len(TABLE_DIR):-len(TABLE_SUFFIX)]) is not None)


def table_of(member: str) -> str:
    return member[len(TABLE_DIR):-len(TABLE_SUFFIX)]


def _check_directory(infos: list[zipfile.ZipInfo], name: str, limits: PackageLimits
                     ) -> dict[str, zipfile.ZipInfo]:
    if len(infos) > limits.max_members:
        raise PackageLimitExceeded(f"package holds {len(infos)} members, above the limit of "
                                   f"{limits.max_members}", file=name,
                                   rule="limit:max_members")
    names = [i.filename for i in infos]
    if len(names) != len(set(names)):
        raise InputFileError("package holds a member twice", file=name)
    unexpected = [n for n in names if n not in (MANIFEST_NAME, SIGNATURE_NAME, VALIDATION_NAME)
                  and not is_table_member(n)]
    if unexpected:
        raise InputFileError(f"package holds unexpected member(s) {unexpected[:5]}", file=name)
    for required in (MANIFEST_NAME, VALIDATION_NAME):
        if required not in names:
            raise InputFileError(f"package has no {required}", file=name)
    total = 0
    for info in infos:
        cap, rule = _member_cap(info.filename, limits)
        if info.file_size > cap:
            _too_large(name, info.filename, info.file_size, cap, rule)
        total += info.file_size
    if total > limits.max_unpacked_bytes:
        _too_large(name, "the unpacked package", total, limits.max_unpacked_bytes,
                   "max_unpacked_bytes")
    return {i.filename: i for i in infos}


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, cap: int,
                rule: str) -> bytes:
    """A member's bytes, read in chunks and refused as soon as they pass `cap` (whatever the
    ZIP directory claims)."""
    buffer = bytearray()
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                buffer += chunk
                if len(buffer) > cap:
                    _too_large(name, info.filename, f"more than {cap}", cap, rule)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
            RuntimeError) as exc:
        # zipfile raises BadZipFile on a CRC mismatch, NotImplementedError for an unknown
        # compression method and RuntimeError for an encrypted member.
        raise IntegrityError(f"{name}: {info.filename}: damaged ZIP member "
                             f"({type(exc).__name__})") from None
    return bytes(buffer)


def parse_json(data: bytes, name: str, member: str, limits: PackageLimits) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and an integer of more than 4300 digits.
        raise InputFileError(f"{member} is not valid JSON ({type(exc).__name__})",
                             file=name) from None
    if not isinstance(document, dict):
        raise InputFileError(f"{member} is not a JSON object", file=name)
    if _depth(document) > limits.max_manifest_depth:
        raise PackageLimitExceeded(f"{member} nests deeper than {limits.max_manifest_depth} "
                                   "levels", file=name,
                                   rule="limit:max_manifest_depth")
    return document


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(manifest: dict[str, Any], name: str, limits: PackageLimits
                   ) -> dict[str, Any]:
    """Refuse a manifest whose keys have the wrong type or form (the message names the key)."""
    fmt = manifest.get("format")
    if fmt != PACKAGE_FORMAT:
        shown = fmt[:60] if isinstance(fmt, str) else type(fmt).__name__
        raise InputFileError(f"manifest format is {shown!r}, expected {PACKAGE_FORMAT!r}",
                             file=name)
    missing = [k for k in (*REQUIRED_KEYS, "package_id", "tables") if k not in manifest]
    if missing:
        raise InputFileError(f"manifest lacks key(s) {missing}", file=name)
    problems = []
    if not isinstance(manifest["study_id"], str) or not manifest["study_id"]:
        problems.append("study_id is not a text")
    if not _is_int(manifest["la_code"]) or not 0 < manifest["la_code"] < 10_000:
        problems.append("la_code is not a DfE LA code")
    try:
        uuid.UUID(str(manifest["package_id"]))
        if not isinstance(manifest["package_id"], str):
            raise ValueError
    except ValueError:
        problems.append("package_id is not a UUID")
    try:
        if not isinstance(manifest["extract_date"], str):
            raise ValueError
        dt.date.fromisoformat(manifest["extract_date"])
    except ValueError:
        problems.append("extract_date is not an ISO date")
    if manifest.get("origin", "unknown") not in ("synthetic", "real", "unknown"):
        problems.append("origin is not synthetic, real or unknown")
    checksum = manifest.get("validation_sha256")
    if checksum is not None and not (isinstance(checksum, str) and _SHA256.match(checksum)):
        problems.append("validation_sha256 is not a SHA-256")
    if problems:
        raise InputFileError("manifest: " + "; ".join(problems), file=name, rule="manifest")
    tables = manifest["tables"]
    if not isinstance(tables, dict) or len(tables) > limits.max_members or not all(
            isinstance(t, str) and TABLE_NAME.match(t) and isinstance(v, dict)
            and _is_int(v.get("rows")) and v["rows"] >= 0
            and isinstance(v.get("sha256"), str) and _SHA256.match(v["sha256"])
            for t, v in tables.items()):
        raise InputFileError("manifest 'tables' must map each table name to {rows, sha256}",
                             file=name, rule="manifest")
    rows = sum(v["rows"] for v in tables.values())
    if rows > limits.max_total_rows:
        raise PackageLimitExceeded(f"manifest declares {rows} rows, above the limit of "
                                   f"{limits.max_total_rows}", file=name,
                                   rule="limit:max_total_rows")
    return manifest


# --- tables and the validation CSV ----------------------------------------------------------

@dataclass
class _Budget:
    decoded: int = 0


def read_tables(opened: OpenedPackage, limits: PackageLimits) -> dict[str, pa.Table]:
    """Every table, each hash- and row-checked against the manifest, within the limits."""
    name = opened.name
    declared: dict[str, Any] = opened.manifest["tables"]
    present = {table_of(n) for n in opened.members if is_table_member(n)}
    if present != set(declared):
        raise IntegrityError(f"{name}: tables in the package {sorted(present)} differ from the "
                             f"manifest {sorted(declared)}")
    budget = _Budget()
    tables: dict[str, pa.Table] = {}
    for table in sorted(declared):
        member = f"{TABLE_DIR}{table}{TABLE_SUFFIX}"
        data = read_member(opened.archive, opened.members[member], name,
                           limits.max_table_file_bytes, "max_table_file_bytes")
        entry = declared[table]
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise IntegrityError(f"{name}: {member}: SHA-256 differs from the manifest")
        tables[table] = read_parquet(data, name, member, entry["rows"], limits, budget)
    return tables


def read_validation(opened: OpenedPackage, limits: PackageLimits) -> bytes:
    data = read_member(opened.archive, opened.members[VALIDATION_NAME], opened.name,
                       limits.max_validation_csv_bytes, "max_validation_csv_bytes")
    expected = opened.manifest.get("validation_sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise IntegrityError(f"{opened.name}: {VALIDATION_NAME}: SHA-256 differs from the "
                             "manifest")
    return data


def _is_var_width(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t))


def _fixed_width_bytes(t: pa.DataType) -> int:
    try:
        return max(1, t.bit_width // 8)
    except ValueError:  # a type without a fixed width that is not a string (refused later)
        return 16


def read_parquet(data: bytes, name: str, member: str, rows: int, limits: PackageLimits,
                 budget: _Budget) -> pa.Table:
    """One table from Parquet bytes: footer checks first, then batches with strings counted
    while still dictionary-encoded, then decoded (see module doc)."""
    where = f"{name}:{member}"
    try:
        footer = pq.ParquetFile(pa.BufferReader(data))
        meta, schema = footer.metadata, footer.schema_arrow
        # Row-group totals, not `row_group(g).column(c)`: pyarrow 26 aborts the whole process
        # (C++ terminate) building a column chunk's metadata from some damaged footers
        # ("Definition level histogram size mismatch"), where reading raises an OSError.
        encoded = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    except Exception as exc:  # any failure of the parser on hostile bytes
        raise InputFileError(f"not a readable Parquet file ({type(exc).__name__})",
                             file=where) from None
    if meta.num_rows != rows:
        raise IntegrityError(f"{name}: {member}: {meta.num_rows} rows, manifest says {rows}")
    if rows > limits.max_table_rows:
        raise PackageLimitExceeded(f"{rows} rows, above the limit of {limits.max_table_rows}",
                                   file=where, rule="limit:max_table_rows")
    if meta.num_columns > limits.max_columns or len(schema) > limits.max_columns:
        raise PackageLimitExceeded(f"{meta.num_columns} columns, above the limit of "
                                   f"{limits.max_columns}", file=where,
                                   rule="limit:max_columns")
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if nested:
        raise InputFileError(f"column(s) {nested[:5]} are nested; package tables are flat",
                             file=where, rule="column")
    if encoded < 0 or encoded > limits.max_table_decoded_bytes:
        _too_large(where, "the encoded table", encoded, limits.max_table_decoded_bytes,
                   "max_table_decoded_bytes")
    strings = [f.name for f in schema if _is_var_width(f.type)]
    decoded = sum(rows * _fixed_width_bytes(f.type) for f in schema if f.name not in strings)
    _charge(where, decoded, budget, limits)
    target = pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type)
                                 else f.type, f.nullable, f.metadata) for f in schema])
    batches = []
    try:
        reader = pq.ParquetFile(pa.BufferReader(data), read_dictionary=strings)
        for batch in reader.iter_batches(batch_size=_BATCH_ROWS, use_threads=False):
            size = sum(_string_bytes(batch.column(s)) for s in strings)
            decoded += size
            _charge(where, decoded, budget, limits, adding=size)
            batches.append(batch)
        read_schema = reader.schema_arrow
    except (InputFileError, IntegrityError):
        raise
    except Exception as exc:  # any failure of the parser on hostile bytes
        raise InputFileError(f"not a readable Parquet file ({type(exc).__name__})",
                             file=where) from None
    try:
        table = pa.Table.from_batches(batches, schema=read_schema).cast(target)
    except Exception as exc:  # the same, for a cast of what it read
        raise InputFileError(f"not a readable Parquet file ({type(exc).__name__})",
                             file=where) from None
    if table.num_rows != rows:
        raise IntegrityError(f"{name}: {member}: {table.num_rows} rows, manifest says {rows}")
    return table


def _charge(where: str, decoded: int, budget: _Budget, limits: PackageLimits, *,
            adding: int | None = None) -> None:
    """Count a table's decoded bytes against the per-table and the package-wide caps."""
    budget.decoded += decoded if adding is None else adding
    if decoded > limits.max_table_decoded_bytes:
        _too_large(where, "the decoded table", f"more than {decoded}",
                   limits.max_table_decoded_bytes, "max_table_decoded_bytes")
    if budget.decoded > limits.max_total_decoded_bytes:
        _too_large(where, "the decoded package", f"more than {budget.decoded}",
                   limits.max_total_decoded_bytes, "max_total_decoded_bytes")


def _string_bytes(column: pa.Array) -> int:
    """Bytes a string/binary column takes once decoded: value bytes plus 4-byte offsets,
    computed from the dictionary's value lengths without decoding it."""
    if isinstance(column, pa.DictionaryArray):
        lengths = pc.binary_length(column.dictionary)
        total = pc.sum(pc.take(lengths, column.indices)).as_py()
    else:
        total = pc.sum(pc.binary_length(column)).as_py()
    return int(total or 0) + 4 * (len(column) + 1)
