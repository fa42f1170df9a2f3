"""Retention on a real vault: status, refusal before the date, purge and its certificate."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from trialvault.errors import AccessDenied, IntegrityError, PolicyRefusal
from trialvault.retention import purge, retention_status
from trialvault.seal import generate_identity, write_package
from trialvault.study.model import StudyFile
from trialvault.trust import FAST_TEST_KDF, Keyring
from trialvault.vault import store
from trialvault.vault.admin import add_user, init_vault
from trialvault.vault.session import open_vault

USER, PASSWORD = "dm", "retention test password"
CHILD = "RET-CHILD-0042"


@pytest.fixture()
def setup(tmp_path: Path) -> dict[str, Path]:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    with open_vault(vault, USER, PASSWORD, command="seed", args={}) as s:
        s.con.execute("INSERT INTO raw.children (la_code, child_id, sex, source_file, "
                      "source_line, package_id, ingest_batch) VALUES (354, ?, '1', "
                      "'header.csv', 2, 'p1', 1)", [CHILD])
    identity, recipient = generate_identity()
    packages = tmp_path / "packages"
    packages.mkdir()
    write_package(packages / "la354.tvpkg", [recipient],
                  {"study_id": "nwd", "spec_version": "2025.1", "la_code": 354,
                   "extract_date": "2025-04-01"},
                  {"children": pa.table({"la_code": [354], "child_id": [CHILD]})}, b"rule\n")
    key = tmp_path / "keys" / "la354.key"
    key.parent.mkdir()
    key.write_text(identity + "\n", encoding="ascii")
    return {"vault": vault, "packages": packages, "key": key, "root": tmp_path}


def test_status_lists_rule_due_date_and_files(setup: dict[str, Path],
                                              nwd_study: StudyFile) -> None:
    st = retention_status(nwd_study, setup["vault"], today=dt.date(2033, 8, 1),
                          packages=[setup["packages"]], keys=[setup["key"]])
    assert st.due == dt.date(2033, 9, 1) == nwd_study.retention.deletion_due
    assert st.days_left == 31 and not st.is_due
    assert st.deletion_label == "Autumn 2033"
    names = {f.path.name for f in st.files}
    assert {"child.duckdb", "keyslots.json", "audit.chain", "la354.tvpkg", "la354.key"} <= names
    assert {f.kind for f in st.files} == {"vault", "package", "key"}
    assert st.key_slots == [(USER, "data-manager")]


def test_purge_refused_before_due_date(setup: dict[str, Path], nwd_study: StudyFile) -> None:
    certs = setup["root"] / "certs"
    with pytest.raises(PolicyRefusal, match="due on 2033-09-01"):
        purge(setup["vault"], USER, PASSWORD, nwd_study, today=dt.date(2033, 8, 31),
              certificate_dir=certs)
    with pytest.raises(PolicyRefusal, match="reason of at least"):
        purge(setup["vault"], USER, PASSWORD, nwd_study, today=dt.date(2030, 1, 1),
              certificate_dir=certs, early_reason="asked")
    with pytest.raises(PolicyRefusal, match="outside the vault"):
        purge(setup["vault"], USER, PASSWORD, nwd_study, today=dt.date(2033, 9, 1),
              certificate_dir=setup["vault"] / "c")
    add_user(setup["vault"], USER, PASSWORD, "ana", "analyst password", "analyst",
             kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied):
        purge(setup["vault"], "ana", "analyst password", nwd_study,
              today=dt.date(2033, 9, 1), certificate_dir=certs)
    assert (setup["vault"] / "keyslots.json").exists() and not certs.exists()


def test_purge_shreds_deletes_and_certifies(setup: dict[str, Path],
                                            nwd_study: StudyFile) -> None:
    vault, root = setup["vault"], setup["root"]
    copy = root / "backup.duckdb"
    shutil.copy(vault / "child.duckdb", copy)
    key_before = Keyring.load(vault).unlock(USER, PASSWORD).domain_keys["child"]
    pkg_hash = hashlib.sha256((setup["packages"] / "la354.tvpkg").read_bytes()).hexdigest()
    key_hash = hashlib.sha256(setup["key"].read_bytes()).hexdigest()

    result = purge(vault, USER, PASSWORD, nwd_study, today=dt.date(2030, 1, 1),
                   certificate_dir=root / "certs", packages=[setup["packages"]],
                   keys=[setup["key"]],
                   early_reason="The trial was stopped and the controller's board decided.")
    assert not vault.exists() and not setup["packages"].exists() and not setup["key"].exists()
    assert result.failures == []
    cert = json.loads(result.certificate_json.read_text())
    assert cert["complete"] and cert["retention_rule"]["early"]
    assert cert["destroyed_by"]["user"] == USER
    assert cert["row_counts_destroyed"]["raw.children"] == 1
    files = {f["name"]: f for f in cert["files"]}
    assert "vault/keyslots.json" in files and "la354.tvpkg" in files and "la354.key" in files
    # Hashes are of the files as they were just before destruction.
    assert files["la354.tvpkg"]["sha256"] == pkg_hash
    assert files["la354.key"]["sha256"] == key_hash
    assert files["vault/child.duckdb"]["bytes"] > 0
    assert cert["audit"]["entries"] >= 3 and len(cert["audit"]["head"]) == 64
    # No personal data in the certificate.
    for path in (result.certificate_json, result.certificate_md):
        assert CHILD not in path.read_text()
    # A backup of the database is useless: the key slots are gone, and only the old child key
    # (never stored outside keyslots.json) would open it.
    with pytest.raises(IntegrityError):
        store.connect_file(copy, b"\x00" * 32, temp_dir=root / "t").close()
    con = store.connect_file(copy, key_before, temp_dir=root / "t2")  # what shredding destroyed
    con.close()
