"""The storage engine: DuckDB files encrypted with DuckDB's own AES-256-GCM, one or more per
trust domain (see `trialvault.trust.domains`), attached together in one in-memory session.

DuckDB ≥ 1.4.1 writes encrypted files only with the OpenSSL crypto of its `httpfs` extension.
It would download that at run time; instead the `duckdb-ext-httpfs` wheel ships the build for
this DuckDB version and we load it by path in every connection, before `ATTACH … ENCRYPTION_KEY`.
Auto-loading and auto-installing extensions are off, and `force_mbedtls_unsafe` is never set.

Every connection:
- keeps DuckDB's temp files (spills of large sorts, joins, temp tables) in the vault's own
  `tmp/` folder, encrypted (`temp_file_encryption`), so nothing leaves the vault folder in the clear;
- attaches each held domain's files under their catalog names (`vault` = child domain, the
  default; `rights`, `secrets`, `results`, `releases`, `audit`), each under its domain's key;
- in a session (`sandbox=True`) then forbids file access from SQL (`enable_external_access`) and
  locks the configuration, so no query can COPY rows to a plaintext file or re-enable that.

`key=None` opens a plaintext file: only benchmarks and tests use it to measure the cost of
encryption. No command offers it.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping
from pathlib import Path

import duckdb

from trialvault.errors import IntegrityError, TrialvaultError, VaultLocked
from trialvault.trust import catalog_file, catalogs_for

CATALOG = "vault"  # the child domain's catalog, the default one in a session
LEGACY_DB_NAME = "vault.duckdb"  # 0.1.0's single database (read once by `migrate`)
TEMP_DIR_NAME = "tmp"
# A ceiling, not a reservation: ingest and evaluation need far less; DuckDB spills beyond it.
DEFAULT_MEMORY_LIMIT = "4GB"
STORAGE_VERSION = "v1.4.0"
_EXTENSION_DIST = "duckdb-ext-httpfs"


class VaultBusy(VaultLocked):
    """Another process has the vault open (exit code 7)."""


def extension_path() -> Path:
    """The httpfs extension file shipped for this DuckDB version (never downloaded)."""
    wanted = f"v{duckdb.__version__}"
    try:
        files = importlib.metadata.files(_EXTENSION_DIST) or []
    except importlib.metadata.PackageNotFoundError:
        raise TrialvaultError(f"the {_EXTENSION_DIST} package is not installed: DuckDB cannot "
                              "write encrypted files without it") from None
    for entry in files:
        if entry.name == "httpfs.duckdb_extension" and wanted in entry.parts:
            return Path(str(entry.locate()))
    raise TrialvaultError(f"{_EXTENSION_DIST} has no httpfs build for DuckDB {wanted}")


def connect(vault_dir: Path, keys: Mapping[str, bytes | None], *, sandbox: bool = True,
            read_only: bool = False, memory_limit: str = DEFAULT_MEMORY_LIMIT,
            threads: int | None = None, create: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the catalogs of the domains in `keys` attached.

    `keys` maps domain → key (None: a plaintext file, benchmarks only). The child domain's
    catalog `vault` is the default when held (else the first attached). A missing file is an
    integrity error unless `create` (init, re-key, migration build new files).
    """
    temp_dir = vault_dir / TEMP_DIR_NAME
    con = duckdb.connect(":memory:", config={
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "temp_directory": str(temp_dir),
        "temp_file_encryption": True,
        "memory_limit": memory_limit,
        "threads": threads or os.cpu_count() or 1,
    })
    try:
        con.load_extension(str(extension_path()))
        attached = []
        for catalog, domain in catalogs_for(set(keys)):
            path = vault_dir / catalog_file(catalog)
            if not create and not path.exists():
                raise IntegrityError(f"{path}: a file of the {domain} domain is missing")
            attach(con, path, keys[domain], catalog, read_only=read_only)
            attached.append(catalog)
        if attached:
            con.execute(f"USE {CATALOG if CATALOG in attached else attached[0]}")
        if sandbox:
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def connect_file(db_path: Path, key: bytes | None, *, temp_dir: Path, alias: str = CATALOG,
                 memory_limit: str = DEFAULT_MEMORY_LIMIT, threads: int | None = None
                 ) -> duckdb.DuckDBPyConnection:
    """One database file alone (benchmarks, migration): attached as `alias`, made default."""
    con = duckdb.connect(":memory:", config={
        "autoload_known_extensions": False, "autoinstall_known_extensions": False,
        "allow_community_extensions": False, "temp_directory": str(temp_dir),
        "temp_file_encryption": True, "memory_limit": memory_limit,
        "threads": threads or os.cpu_count() or 1})
    try:
        con.load_extension(str(extension_path()))
        attach(con, db_path, key, alias)
        con.execute(f"USE {alias}")
    except BaseException:
        con.close()
        raise
    return con


def attach(con: duckdb.DuckDBPyConnection, db_path: Path, key: bytes | None, alias: str, *,
           read_only: bool = False) -> None:
    """ATTACH a vault file under `alias`, mapping DuckDB's errors to ours (no key in them)."""
    # Pinned so an encrypted and a plaintext file (benchmarks) use the same storage format;
    # encrypted files need at least this version anyway.
    options = [f"STORAGE_VERSION '{STORAGE_VERSION}'"]
    if key is not None:
        # The key goes in as hex text; DuckDB derives its AES-256 key from it. The statement is
        # never logged: DuckDB's query log is off and errors are re-raised without it.
        options.append(f"ENCRYPTION_KEY '{key.hex()}'")
    if read_only:
        options.append("READ_ONLY")
    clause = f" ({', '.join(options)})"
    path = str(db_path).replace("'", "''")
    try:
        con.execute(f"ATTACH '{path}' AS {alias}{clause}")
    except duckdb.Error as exc:
        text = str(exc)
        if "lock" in text.lower():
            raise VaultBusy(f"{db_path}: the vault is open in another process") from None
        if "encryption key" in text.lower() or "not a valid duckdb" in text.lower():
            raise IntegrityError(f"{db_path}: the database does not open with the vault's data "
                                 "key (file replaced or damaged)") from None
        raise IntegrityError(f"{db_path}: cannot open the vault database "
                             f"({type(exc).__name__})") from None
