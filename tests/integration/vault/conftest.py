"""Fixtures for vault tests: small real vaults and real sealed packages (synthetic rows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from trialvault.seal import write_package
from trialvault.vault import FAST_TEST_KDF, init_vault
from trialvault.vault.schema import TABLES, package_columns

PASSWORD = "correct horse battery staple"
MARKER = "ZQXJ"  # child codes start with this; no DuckDB/Parquet/age bytes contain it by chance

_TYPES = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
          "BOOLEAN": pa.bool_()}


def make_tables(la_code: int, n_children: int, *, seed: int, rows_per_table: int = 3,
                prefix: str = MARKER, only: tuple[str, ...] = TABLES) -> dict[str, pa.Table]:
    """Harmonised tables (all, or `only` these) with `n_children` children of `la_code`."""
    rng = np.random.default_rng(seed)
    ids = np.char.add(f"{prefix}{la_code}-", np.char.zfill(
        np.arange(n_children).astype(str), 6))
    tables: dict[str, pa.Table] = {}
    for table in only:
        n = n_children if table == "children" else n_children * rows_per_table
        child = ids if table == "children" else ids[rng.integers(0, n_children, n)]
        columns: dict[str, pa.Array] = {}
        for name, kind in package_columns(table):
            if name == "la_code":
                columns[name] = pa.array(np.full(n, la_code, np.int32))
            elif name == "child_id":
                columns[name] = pa.array(child.tolist(), pa.string())
            elif name == "source_file":
                columns[name] = pa.array([f"{table}.csv"] * n, pa.string())
            elif name == "source_line":
                columns[name] = pa.array(np.arange(2, n + 2, dtype=np.int32))
            elif kind == "DATE":
                days = rng.integers(17897, 17897 + 2500, n).astype("datetime64[D]")
                columns[name] = pa.array(days, pa.date32())
            elif kind == "INTEGER":
                columns[name] = pa.array(rng.integers(0, 250, n).astype(np.int32))
            elif kind == "BOOLEAN":
                columns[name] = pa.array(rng.integers(0, 2, n).astype(bool))
            else:
                columns[name] = pa.array(np.char.add("V", rng.integers(0, 9, n).astype(str))
                                         .tolist(), pa.string())
        tables[table] = pa.table(columns)
    return tables


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def tables_factory() -> Callable[..., dict[str, pa.Table]]:
    return make_tables


@pytest.fixture
def vault(tmp_path: Path, la_keys: Any, nwd_study: Any) -> tuple[Path, str]:
    """A fresh vault (fast KDF), the LAs' signing keys registered, and the evaluator
    recipient."""
    folder = tmp_path / "vault"
    recipient = init_vault(folder, "dm", PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(folder, "dm", PASSWORD, nwd_study)
    return folder, recipient


PackageFactory = Callable[..., Path]


@pytest.fixture
def make_package(tmp_path: Path, la_keys: Any) -> PackageFactory:
    """Seal tables into tmp_path/packages/<name>.tvpkg for `recipient`, signed with the LA's
    key (`signed=False`: unsigned)."""
    out = tmp_path / "packages"
    out.mkdir(exist_ok=True)

    def factory(recipient: str, la_code: int, extract_date: dt.date, *, n_children: int = 20,
                seed: int = 1, tables: dict[str, pa.Table] | None = None,
                name: str | None = None, study_id: str = "nwd", signed: bool = True) -> Path:
        path = out / (name or f"{la_code}-{extract_date.isoformat()}-{seed}.tvpkg")
        manifest = {"study_id": study_id, "spec_version": "2025.1", "la_code": la_code,
                    "extract_date": extract_date,
                    "validation_summary": {"by_rule": {"E101": {"error": 1}}}}
        data = tables if tables is not None else make_tables(la_code, n_children, seed=seed)
        write_package(path, [recipient], manifest, data, b"rule,severity,file,line\n",
                      sign_key=la_keys.key(la_code) if signed else None)
        return path

    return factory
