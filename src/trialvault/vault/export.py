"""Encrypted Parquet export and import of the harmonised tables (Parquet modular encryption).

An export is a folder: one `<table>.parquet` per harmonised table, `rights_flags.parquet` (the
children with an active restriction or objection: la_code, child_id, restricted, objected),
and a plaintext `manifest.json` (export id, time, per-file row count and SHA-256, the key ids
and how to read it — never a value). Erased children are absent already (the harmonised view
leaves them out); the flags travel with the data so a reader can leave the flagged children out
exactly as the vault's evaluation does.

Every Parquet file is written by pyarrow with modular encryption (`AES_GCM_V1`, 256-bit data
keys): the footer (schema, statistics) and every column are encrypted, the footer under master
key `tv_footer`, the key columns (la_code, child_id) under `tv_keys`, the rest under `tv_data`.
Data keys are wrapped under those master keys in the footer's key material (double wrapping,
the parquet-java/Arrow key-tools format), so the files are self-describing for any reader with
the master keys.

The master keys are derived from the vault: HKDF-SHA256 over the child domain's key, salted with
the export id, one per key id. So only the vault (or someone given the keys for that one
export) can read an export, and a vault re-key (after an erasure) makes earlier exports
unreadable from the vault — crypto-shredding them too.

Spark reads an export with its own Parquet encryption: `spark_read_options(keys, export_id)`
gives the documented settings (`parquet.crypto.factory.class =
org.apache.parquet.crypto.keytools.PropertiesDrivenCryptoFactory`, a KMS client class and, for
the in-memory KMS, `parquet.encryption.key.list`). The KMS client pyarrow uses here wraps keys
exactly like parquet-java's InMemoryKMS (AES-GCM, master-key id as AAD), which is what makes
the files readable there. See docs/spark.md.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyarrow.parquet.encryption as pe
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from trialvault import __version__
from trialvault.errors import InputFileError, IntegrityError, TrialvaultError
from trialvault.sql import quote_ident
from trialvault.trust import canonical
from trialvault.vault.schema import KEY_COLUMNS, TABLES, stored_columns
from trialvault.vault.session import VaultSession

FORMAT = "trialvault-parquet-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FLAGS = "rights_flags"
FOOTER_KEY, KEYS_KEY, DATA_KEY = "tv_footer", "tv_keys", "tv_data"
KEY_IDS = (FOOTER_KEY, KEYS_KEY, DATA_KEY)
EXPORT_ROLES = ("data-manager",)
ALGORITHM = "AES_GCM_V1"
CRYPTO_FACTORY = "org.apache.parquet.crypto.keytools.PropertiesDrivenCryptoFactory"
# The in-memory KMS client compiled from engines/java/InMemoryKms.java (same wrapping as
# parquet-java's test InMemoryKMS, which Spark does not ship).
SPARK_KMS_CLASS = "uk.trialvault.parquet.InMemoryKms"
_HKDF_INFO = b"trialvault parquet export v1 master key "
_MAC_INFO = b"trialvault parquet export v1 manifest mac"
ALLOWED_TABLES = (*TABLES, FLAGS)
# Why an export is made: "analysis" leaves out restricted and objecting children (only storage
# of their data is allowed, Art. 18(2)); "storage" keeps everyone, with the flags.
PURPOSES = ("analysis", "storage")
_NONCE = 12
FLAG_SCHEMA = pa.schema([("la_code", pa.int32()), ("child_id", pa.string()),
                         ("restricted", pa.bool_()), ("objected", pa.bool_())])


# --- keys ----------------------------------------------------------------------------------
def derive_master_keys(data_key: bytes, export_id: str) -> dict[str, bytes]:
    """The export's three 256-bit master keys (HKDF-SHA256, salt = export id)."""
    return {key_id: HKDF(algorithm=hashes.SHA256(), length=32, salt=export_id.encode(),
                         info=_HKDF_INFO + key_id.encode()).derive(data_key)
            for key_id in KEY_IDS}


def vault_master_keys(session: VaultSession, export_id: str) -> dict[str, bytes]:
    """Master keys of `export_id` for the open vault (derived from the child domain's key:
    the same HKDF as `derive_master_keys`, computed inside the session)."""
    return {key_id: session.derive_key("child", _HKDF_INFO + key_id.encode(),
                                       export_id.encode()) for key_id in KEY_IDS}


def _manifest_mac(session: VaultSession, manifest: Mapping[str, Any]) -> str:
    """HMAC-SHA256 over the manifest (without its MAC) under a key derived for this export:
    a manifest not written by this vault — names, counts, hashes — is refused before use."""
    key = session.derive_key("child", _MAC_INFO, str(manifest.get("export_id")).encode())
    body = {k: v for k, v in manifest.items() if k != "mac"}
    return hmac.new(key, canonical(body), hashlib.sha256).hexdigest()


def key_list(keys: Mapping[str, bytes]) -> str:
    """`parquet.encryption.key.list` text: `id:base64key, ...` (a secret: handle as one)."""
    return ", ".join(f"{k}:{base64.b64encode(v).decode()}" for k, v in sorted(keys.items()))


class LocalWrapKms(pe.KmsClient):
    """Wraps data keys under in-process master keys the way parquet-java's InMemoryKMS does:
    base64(nonce ‖ AES-GCM(master key, key bytes, AAD = master key id))."""

    def __init__(self, master_keys: Mapping[str, bytes]) -> None:
        super().__init__()
        self._keys = dict(master_keys)

    def _master(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise IntegrityError(f"no master key {key_id!r} for this export") from None

    def wrap_key(self, key_bytes: bytes, master_key_identifier: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._master(master_key_identifier)).encrypt(
            nonce, key_bytes, master_key_identifier.encode())
        return base64.b64encode(nonce + sealed).decode()

    def unwrap_key(self, wrapped_key: str, master_key_identifier: str) -> bytes:
        blob = base64.b64decode(wrapped_key)
        try:
            return AESGCM(self._master(master_key_identifier)).decrypt(
                blob[:_NONCE], blob[_NONCE:], master_key_identifier.encode())
        except InvalidTag:
            raise IntegrityError("the export's keys do not unwrap with this vault's keys "
                                 "(another vault's export, or the vault was re-keyed)") from None


def _factory(keys: Mapping[str, bytes]) -> pe.CryptoFactory:
    return pe.CryptoFactory(lambda _config: LocalWrapKms(keys))


def _encryption(keys: Mapping[str, bytes], columns: list[str]) -> pe.FileEncryptionProperties:
    config = pe.EncryptionConfiguration(
        footer_key=FOOTER_KEY,
        column_keys={KEYS_KEY: [c for c in columns if c in KEY_COLUMNS],
                     DATA_KEY: [c for c in columns if c not in KEY_COLUMNS]},
        encryption_algorithm=ALGORITHM, plaintext_footer=False, double_wrapping=True,
        data_key_length_bits=256, internal_key_material=True)
    return _factory(keys).file_encryption_properties(pe.KmsConnectionConfig(), config)


def _decryption(keys: Mapping[str, bytes]) -> pe.FileDecryptionProperties:
    return _factory(keys).file_decryption_properties(pe.KmsConnectionConfig(),
                                                     pe.DecryptionConfiguration())


# --- export --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExportReport:
    export_id: str
    folder: Path
    rows: dict[str, int]
    flagged_children: int


def export_parquet(session: VaultSession, out_dir: Path, *, purpose: str = "analysis"
                   ) -> ExportReport:
    """Write the harmonised tables and rights flags of the open vault to `out_dir` (which must
    not exist or be empty), encrypted. Built in a sibling temp folder and renamed into place,
    so a failure leaves nothing. Records counts in the session's audit entry.

    `purpose` "analysis" (the default) leaves out restricted and objecting children (UK GDPR
    Art. 18(2): only storage is allowed for them) and ships no flag list; "storage" (a copy kept
    for safekeeping) keeps them with their flags. Erased children are never in the harmonised
    view. The export is registered in the inventory (`vault.inventory`) with the children it
    holds, so an erasure marks it to destroy (the session must write: `write=True`)."""
    session.require_role(*EXPORT_ROLES)
    if purpose not in PURPOSES:
        raise InputFileError(f"unknown export purpose {purpose[:40]!r} (one of "
                             f"{', '.join(PURPOSES)})", file="--purpose")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise TrialvaultError(f"{out_dir}: folder exists and is not empty")
    export_id = str(uuid.uuid4())
    keys = vault_master_keys(session, export_id)
    storage = purpose == "storage"
    tables = {t: harmonised_arrow(session.con, t, include_flagged=storage) for t in TABLES}
    tables[FLAGS] = flags_arrow(session.con) if storage else FLAG_SCHEMA.empty_table()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        files = {}
        for name, table in tables.items():
            path = work / f"{name}.parquet"
            pq.write_table(table, path, encryption_properties=_encryption(
                keys, table.column_names))
            files[name] = {"file": path.name, "rows": table.num_rows,
                           "sha256": _sha256(path)}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "export_id": export_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "trialvault_version": __version__, "purpose": purpose, "key_fingerprint":
                session.key_fingerprints["child"],
            "encryption": {"algorithm": ALGORITHM, "footer": "encrypted", "footer_key": FOOTER_KEY,
                           "column_keys": {KEYS_KEY: list(KEY_COLUMNS), DATA_KEY: "all others"},
                           "key_derivation": "HKDF-SHA256(child domain key, salt=export_id, "
                                             "info='trialvault parquet export v1 master key "
                                             "<key id>')",
                           "kms_wrapping": "parquet-java InMemoryKMS compatible"},
            "tables": files,
        }
        manifest["mac"] = _manifest_mac(session, manifest)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    from trialvault.vault import inventory

    inventory.register(session.writer("rights"), artefact_id=export_id, kind="export",
                       location=out_dir, user=session.user, purpose=purpose,
                       children=inventory.children_of_tables(tables.values()),
                       sha256=inventory.sha256_of(out_dir))
    rows = {n: t.num_rows for n, t in tables.items()}
    session.record(rows_touched={f"harmonised.{t}": rows[t] for t in TABLES},
                   detail={"export_id": export_id, "format": "parquet", "folder": out_dir.name,
                           "flagged_children": rows[FLAGS], "purpose": purpose})
    return ExportReport(export_id, out_dir, rows, rows[FLAGS])


def harmonised_arrow(con: duckdb.DuckDBPyConnection, table: str, *,
                     include_flagged: bool = True) -> pa.Table:
    """A harmonised table; without `include_flagged`, minus restricted and objecting children."""
    from trialvault.rights.flags import FLAGS_TABLE, flags_table_exists

    cols = ", ".join(c for c, _ in stored_columns(table))
    where = ""
    if not include_flagged and flags_table_exists(con):
        where = (f" WHERE NOT EXISTS (SELECT 1 FROM {FLAGS_TABLE} f WHERE f.status = 'active' "
                 "AND f.la_code = h.la_code AND f.child_id = h.child_id)")
    return con.execute(f"SELECT {cols} FROM harmonised.{table} h{where} "
                       "ORDER BY la_code, child_id").fetch_arrow_table()


def flags_arrow(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Children with an active restriction or objection, one row each."""
    from trialvault.rights.flags import FLAGS_TABLE, flags_table_exists

    if not flags_table_exists(con):
        return FLAG_SCHEMA.empty_table()
    table = con.execute(
        f"SELECT CAST(la_code AS INTEGER) AS la_code, child_id, "
        "bool_or(kind = 'restriction') AS restricted, bool_or(kind = 'objection') AS objected "
        f"FROM {FLAGS_TABLE} WHERE status = 'active' GROUP BY la_code, child_id "
        "ORDER BY la_code, child_id").fetch_arrow_table()
    return table.cast(FLAG_SCHEMA)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- reading back --------------------------------------------------------------------------
def read_manifest(export_dir: Path) -> dict[str, Any]:
    """The export's manifest, checked: format, and every listed file's SHA-256."""
    path = Path(export_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(f"not a readable export manifest ({type(exc).__name__})",
                             file=str(path)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputFileError(f"not a {FORMAT} manifest", file=str(path))
    tables = manifest.get("tables")
    if not isinstance(tables, dict):
        raise InputFileError("manifest has no table list", file=str(path))
    for name, entry in tables.items():
        # Names come from outside: only the harmonised model's tables, each in its own file.
        if name not in ALLOWED_TABLES or not isinstance(entry, dict) \
                or entry.get("file") != f"{name}.parquet" \
                or not isinstance(entry.get("rows"), int) or not isinstance(entry.get("sha256"), str):
            raise InputFileError(f"manifest lists table {str(name)[:40]!r}, which is not a table "
                                 "of the harmonised model (or its entry is malformed)",
                                 file=str(path), rule="table")
        file = Path(export_dir) / str(entry["file"])
        if not file.is_file() or _sha256(file) != entry["sha256"]:
            raise IntegrityError(f"{file.name}: missing or changed since export (table {name})")
    return manifest


def read_export(export_dir: Path, keys: Mapping[str, bytes],
                tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
    """Decrypt the export's tables (all, or `tables`) into memory, checking row counts."""
    manifest = read_manifest(export_dir)
    wanted = list(tables) if tables is not None else list(manifest["tables"])
    out = {}
    for name in wanted:
        entry = manifest["tables"].get(name)
        if entry is None:
            raise InputFileError(f"export has no table {name!r}", file=MANIFEST)
        path = Path(export_dir) / entry["file"]
        try:
            table = pq.read_table(path, decryption_properties=_decryption(keys))
        except OSError as exc:
            raise IntegrityError(f"{path.name}: cannot decrypt ({type(exc).__name__}); "
                                 "wrong keys for this export?") from None
        if table.num_rows != int(entry["rows"]):
            raise IntegrityError(f"{path.name}: {table.num_rows} rows, manifest says "
                                 f"{entry['rows']}")
        out[name] = table
    return out


def export_keys_from_vault(session: VaultSession, export_dir: Path) -> dict[str, bytes]:
    """The master keys of an export made by this vault (checked against its manifest)."""
    manifest = read_manifest(export_dir)
    if manifest.get("key_fingerprint") != session.key_fingerprints.get("child"):
        raise IntegrityError("this export was not made under the vault's current child-data "
                             "key (another vault, or the vault was re-keyed since)")
    if not hmac.compare_digest(str(manifest.get("mac", "")), _manifest_mac(session, manifest)):
        raise IntegrityError(f"{MANIFEST}: its MAC does not verify (edited, or not made by "
                             "this vault)")
    return vault_master_keys(session, str(manifest["export_id"]))


def spark_read_options(keys: Mapping[str, bytes], export_id: str) -> dict[str, str]:
    """Options for `spark.read.options(**o).parquet(path)` to decrypt an export in Spark with
    the in-memory KMS (`SPARK_KMS_CLASS` on the classpath). The access token names the export
    so Spark's KMS-client cache never mixes two exports' key lists. Holds secrets."""
    return {"parquet.crypto.factory.class": CRYPTO_FACTORY,
            "parquet.encryption.kms.client.class": SPARK_KMS_CLASS,
            "parquet.encryption.key.list": key_list(keys),
            "parquet.encryption.key.access.token": export_id}


@dataclass(frozen=True)
class ImportReport:
    export_id: str
    rows: dict[str, int]
    dropped_erased: int


IMPORT_SCHEMA = "imported"


def import_into_vault(session: VaultSession, export_dir: Path) -> ImportReport:
    """Load an export of this vault into schema `imported` (replacing it), leaving out children
    erased since (their tombstones). Never touches `harmonised` (fed by ingest only)."""
    from trialvault.vault.ingest import child_hash

    session.require_role(*EXPORT_ROLES)
    keys = export_keys_from_vault(session, export_dir)
    tables = read_export(export_dir, keys)
    con = session.con
    tombs = {(int(la), str(h)) for la, h in con.execute(
        "SELECT la_code, child_hash FROM rights.tombstones").fetchall()}
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {IMPORT_SCHEMA}")
    rows: dict[str, int] = {}
    dropped = 0
    for name, table in tables.items():
        if tombs and table.num_rows:
            pairs = {(int(la), str(c)) for la, c in zip(table["la_code"].to_pylist(),
                                                         table["child_id"].to_pylist(),
                                                         strict=True)}
            erased = {p for p in pairs if (p[0], child_hash(con, *p)) in tombs}
            if erased:
                keep = [(int(la), str(c)) not in erased for la, c in
                        zip(table["la_code"].to_pylist(), table["child_id"].to_pylist(),
                            strict=True)]
                dropped += keep.count(False)
                table = table.filter(pa.array(keep))
        view = f"_tv_import_{name}"
        con.register(view, table)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {IMPORT_SCHEMA}.{quote_ident(name)} AS "
                        f"SELECT * FROM {quote_ident(view)}")
        finally:
            con.unregister(view)
        rows[name] = table.num_rows
    manifest = read_manifest(export_dir)
    session.record(rows_touched={f"{IMPORT_SCHEMA}.{n}": r for n, r in rows.items()},
                   detail={"export_id": manifest["export_id"], "dropped_erased": dropped})
    return ImportReport(str(manifest["export_id"]), rows, dropped)
