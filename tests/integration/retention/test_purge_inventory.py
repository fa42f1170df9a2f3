"""Purge acts on the inventory: every stored copy holding children's data is destroyed, or
the purge refuses (destroying nothing) until the DPO records it destroyed elsewhere; the
certificate lists every copy. Kept packages are deleted after a verified ingest."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from trialvault.errors import PolicyRefusal
from trialvault.retention import purge
from trialvault.retention.schedule import retention_status, stored_copies
from trialvault.rights import service as desk
from trialvault.seal import write_package
from trialvault.study.model import StudyFile
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import evaluator_recipient, ingest_packages, init_vault, open_vault
from trialvault.vault.backup import backup
from trialvault.vault.export import export_parquet
from trialvault.vault.inventory import dispose_packages

USER, PASSWORD = "dm", "retention inventory passphrase"
CHILD = "RET-INV-CHILD-9"


def _package(path: Path, recipient: str, sign_key: Any) -> Path:
    write_package(path, [recipient], {"study_id": "nwd", "spec_version": "2025.1",
                                      "la_code": 354, "extract_date": "2025-04-01"},
                  {"children": pa.table({"la_code": pa.array([354, 354], pa.int32()),
                                         "child_id": [CHILD, "OTHER-1"],
                                         "source_file": ["header.csv"] * 2,
                                         "source_line": pa.array([2, 3], pa.int32())})},
                  b"file,line,child,rule\n", sign_key=sign_key)
    return path


def test_purge_destroys_every_copy_or_refuses(tmp_path: Path, nwd_study: StudyFile,
                                              la_keys: Any) -> None:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(vault, USER, PASSWORD, nwd_study, [354])
    recipient = evaluator_recipient(vault)
    kept = _package(tmp_path / "kept.tvpkg", recipient, la_keys.key(354))
    ingest_packages(vault, USER, PASSWORD, [kept], study=nwd_study)
    with open_vault(vault, USER, PASSWORD, command="export", args={}) as s:
        exported = export_parquet(s, tmp_path / "export")
    made = backup(vault, USER, PASSWORD, tmp_path / "backup")
    copies = stored_copies(vault, USER, PASSWORD)
    assert sorted(a.kind for a in copies) == ["backup", "export", "package"]
    st = retention_status(nwd_study, vault, today=dt.date(2034, 1, 10), copies=copies)
    assert st.state == "overdue" and st.days_overdue == 41

    # A copy that moved cannot be destroyed by the tool: refused, nothing destroyed.
    shutil.move(tmp_path / "export", tmp_path / "moved-export")
    certs = tmp_path / "certs"
    with pytest.raises(PolicyRefusal, match="cannot be reached unchanged"):
        purge(vault, USER, PASSWORD, nwd_study, today=dt.date(2034, 1, 10),
              certificate_dir=certs)
    assert vault.exists() and kept.exists() and (tmp_path / "backup").exists()
    desk.destroy(desk.Vault(vault, USER, PASSWORD), exported.export_id,
                 elsewhere="Moved folder deleted by the data manager on 9 January 2034.")
    result = purge(vault, USER, PASSWORD, nwd_study, today=dt.date(2034, 1, 10),
                   certificate_dir=certs)
    assert result.failures == [] and not vault.exists()
    assert not kept.exists() and not (tmp_path / "backup").exists()
    cert = json.loads(result.certificate_json.read_text())
    states = {c["kind"]: c["state"] for c in cert["stored_copies"]}
    assert states == {"package": "destroyed by this purge", "backup": "destroyed by this purge",
                      "export": "destroyed_elsewhere"}
    assert {c["artefact"] for c in cert["stored_copies"]} >= {made.backup_id,
                                                              exported.export_id}
    text = result.certificate_md.read_text()
    assert "Moved folder deleted by the data manager" in text
    assert CHILD not in text and CHILD not in result.certificate_json.read_text()


def test_packages_are_deleted_after_a_verified_ingest(tmp_path: Path, nwd_study: StudyFile,
                                                      la_keys: Any) -> None:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(vault, USER, PASSWORD, nwd_study, [354])
    (tmp_path / "in").mkdir()
    pkg = _package(tmp_path / "in" / "la354.tvpkg", evaluator_recipient(vault),
                   la_keys.key(354))
    report = ingest_packages(vault, USER, PASSWORD, [pkg], study=nwd_study)
    certs = dispose_packages(vault, USER, PASSWORD, [report.ingested[0].package_id])
    assert not pkg.exists() and [c.name for c in certs] == ["la354.tvpkg.deleted.json"]
    body = json.loads(certs[0].read_text())
    assert body["rows_in_vault"] == {"children": 2} == body["rows_in_manifest"]
    assert body["signature"] and CHILD not in certs[0].read_text()
    (state,) = [a.state for a in desk.artefacts(desk.Vault(vault, USER, PASSWORD))]
    assert state == "destroyed"
    # A changed file is not deleted.
    other = _package(tmp_path / "in" / "b.tvpkg", evaluator_recipient(vault), la_keys.key(354))
    second = ingest_packages(vault, USER, PASSWORD, [other], study=nwd_study)
    other.write_bytes(other.read_bytes() + b"x")
    with pytest.raises(PolicyRefusal, match="does not verify"):
        dispose_packages(vault, USER, PASSWORD, [second.ingested[0].package_id])
    assert other.exists()
