"""A real encrypted vault with a few synthetic children, for the rights tests.

Rows are made up here (codes like `T-0001`) and written through a vault session into raw and
harmonised, the way ingest stores them (with package and prepare lineage).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from trialvault.rights.service import Vault
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault.admin import init_vault
from trialvault.vault.schema import stored_columns
from trialvault.vault.session import open_vault

USER, PASSWORD = "dm", "correct horse battery staple"
LA = 354
OTHER_LA = 807
CHILDREN = [f"T-{i:04d}" for i in range(1, 9)]


def _seed(vault: Path) -> None:
    pkgs = {la: str(uuid.uuid4()) for la in (LA, OTHER_LA)}
    with open_vault(vault, USER, PASSWORD, command="test seed", args={}) as s:
        s.con.execute("INSERT INTO meta.ingest_batches VALUES (1, '2025-04-03T00:00:00', ?, 2)",
                      [USER])
        for la, pkg in pkgs.items():
            s.con.execute("INSERT INTO meta.packages VALUES (?, ?, ?, 'nwd', '2025.1', ?, ?, "
                          "'ab', 1, ?, '{}', ''::BLOB, 0)",
                          [pkg, la, dt.date(2025, 4, 1), "2025-04-02T00:00:00",
                           f"pkg-{la}.tvpkg", "2025-04-03T00:00:00"])
        for schema in ("raw", "harmonised"):
            cols = [c for c, _ in stored_columns("children")]
            for i, child in enumerate(CHILDREN):
                for la in (LA, OTHER_LA):
                    row = {"la_code": la, "child_id": child, "sex": "1" if i % 2 else "2",
                           "ethnicity": "WBRI", "disability": False, "uasc": False,
                           "age_months_at_reference": 150 + i,
                           "reference_date": dt.date(2025, 3, 31), "source_file": "header.csv",
                           "source_line": i + 2, "package_id": pkgs[la], "ingest_batch": 1}
                    s.con.execute(f"INSERT INTO {schema}.children ({', '.join(cols)}) VALUES "
                                  f"({', '.join('?' * len(cols))})", [row[c] for c in cols])
            cols = [c for c, _ in stored_columns("referrals")]
            for i, child in enumerate(CHILDREN):
                for k in range(2):
                    row = {"la_code": LA, "child_id": child, "collection_year": 2024,
                           "referral_date": dt.date(2023, 5, 1 + k), "referral_source": "1A",
                           "primary_need_code": "N4", "cin_closure_date": None,
                           "reason_for_closure": None, "referral_nfa": False,
                           "age_months": 140 + i, "source_file": "cin.xml",
                           "source_line": 10 * i + k, "package_id": pkgs[LA], "ingest_batch": 1}
                    s.con.execute(f"INSERT INTO {schema}.referrals ({', '.join(cols)}) VALUES "
                                  f"({', '.join('?' * len(cols))})", [row[c] for c in cols])


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("template") / "vault"
    init_vault(folder, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    _seed(folder)
    return folder


@pytest.fixture()
def vault(seeded_template: Path, tmp_path: Path) -> Vault:
    """A fresh copy of the seeded vault for each test."""
    import shutil

    target = tmp_path / "vault"
    shutil.copytree(seeded_template, target, ignore=shutil.ignore_patterns(".lock"))
    return Vault(target, USER, PASSWORD)
