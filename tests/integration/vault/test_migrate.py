"""Migration of a vault made by trialvault 0.1.0, built by the 0.1.0 code itself.

The 0.1.0 source is taken from this repository's history (commit LEGACY_COMMIT) with
`git archive`; the test skips, saying why, when the history is not available (a shallow or
exported copy). The 0.1.0 code runs in this environment, so the dev extras keep what it imported
and trialvault no longer does (pydantic).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
from io import BytesIO
from pathlib import Path

import pytest

from trialvault.errors import TrialvaultError
from trialvault.vault import audit_entries, open_vault, verify_audit
from trialvault.vault.migrate import migrate_vault

REPO = Path(__file__).resolve().parents[3]
LEGACY_COMMIT = "4bb8ee0"  # the 0.1.0 release
PW = {"dm": "dm keeps the vault keys safe", "ana": "ana reads the trial data",
      "oc": "oc checks every output", "dpo": "dpo protects the data"}

_MAKE = """
    import datetime as dt, sys
    from pathlib import Path
    import numpy as np, pyarrow as pa
    from trialvault.seal import write_package
    from trialvault.vault import init_vault, add_user, ingest_packages, FAST_TEST_KDF
    from trialvault.vault.schema import package_columns
    from trialvault.study import load_study
    from trialvault.rights import service as desk
    out, pw = Path(sys.argv[1]), dict(a.split("=", 1) for a in sys.argv[2:])
    vault = out / "vault"
    study = load_study(out / "src-0.1.0" / "studies" / "no-wrong-door.toml")
    rec = init_vault(vault, "dm", pw["dm"], kdf_params=FAST_TEST_KDF, study_id=study.study.id)
    for user, role in (("ana", "analyst"), ("oc", "output-checker"), ("dpo", "dpo")):
        add_user(vault, "dm", pw["dm"], user, pw[user], role, kdf_params=FAST_TEST_KDF)
    ids = [f"MIGR354-{i:04d}" for i in range(12)]
    cols = {}
    for name, kind in package_columns("children"):
        cols[name] = {"la_code": [354] * 12, "child_id": ids, "source_file": ["c.csv"] * 12,
                      "source_line": list(range(2, 14)), "sex": ["1"] * 12}.get(name)
    types = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
             "BOOLEAN": pa.bool_()}
    table = pa.table({n: pa.array(v if v is not None else [None] * 12, types[k])
                      for (n, k), v in zip(package_columns("children"), cols.values())})
    pkg = out / "p.tvpkg"
    write_package(pkg, [rec], {"study_id": study.study.id, "spec_version": "2025.1",
                               "la_code": 354, "extract_date": dt.date(2025, 3, 31)},
                  {"children": table}, b"rule,severity,file,line\\n")
    ingest_packages(vault, "dm", pw["dm"], [pkg], study=study)
    v = desk.Vault(vault, "dpo", pw["dpo"])
    day = dt.date(2026, 11, 1)
    for kind, child in (("restriction", ids[0]), ("erasure", ids[1])):
        rid = desk.new_request(v, study, type=kind, la_code=354, child_id=child, received=day,
                               channel="email", note=None, today=day)
        desk.execute(v, study, rid, today=day)
"""


@pytest.fixture(scope="module")
def legacy_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("legacy")
    try:
        blob = subprocess.run(["git", "-C", str(REPO), "archive", LEGACY_COMMIT, "src",
                               "studies"], capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        pytest.skip(f"the 0.1.0 source (commit {LEGACY_COMMIT}) is not in this checkout's "
                    "git history, so no 0.1.0 vault can be made to migrate")
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(out / "src-0.1.0", filter="data")
    env = {**os.environ, "PYTHONPATH": str(out / "src-0.1.0" / "src")}
    subprocess.run([sys.executable, "-c", textwrap.dedent(_MAKE), str(out),
                    *(f"{u}={p}" for u, p in PW.items())], env=env, check=True, timeout=300,
                   capture_output=True)
    return out / "vault"


def test_migrates_every_domain_and_keeps_passwords(legacy_vault: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(legacy_vault, vault)
    with pytest.raises(TrialvaultError, match="trialvault migrate"), \
            open_vault(vault, "dm", PW["dm"], command="status", args={}):
        pass
    report = migrate_vault(vault, "dm", PW["dm"])
    assert report.users == 4 and report.legacy_entries >= 8
    assert not (vault / "vault.duckdb").exists() and not (vault / ".migrate").exists()
    with open_vault(vault, "dpo", PW["dpo"], command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT count(*) FROM harmonised.children").fetchone() == (11,)
        assert s.con.execute("SELECT count(*) FROM rights.requests").fetchone() == (2,)
        assert s.con.execute("SELECT count(*) FROM rights.tombstones").fetchone() == (1,)
        assert s.con.execute("SELECT count(*) FROM meta.rights_flags WHERE status = 'active'"
                             ).fetchone() == (1,)
    with open_vault(vault, "oc", PW["oc"], command="t", args={}, write=False) as s:
        assert s.domains == {"outputs", "audit"}
    with open_vault(vault, "ana", PW["ana"], command="t", args={}, write=False) as s:
        assert "rights" not in {r[0] for r in s.con.execute(
            "SELECT database_name FROM duckdb_databases()").fetchall()}
    result = verify_audit(vault, "ana", PW["ana"])
    assert result.ok, result.problems
    phases = [(e.command, e.phase) for e in audit_entries(vault, "dm", PW["dm"])]
    assert phases[0] == ("init", "legacy") and ("migrate", "begin") in phases
    with pytest.raises(TrialvaultError, match="already in the current format"):
        migrate_vault(vault, "dm", PW["dm"])


def test_only_a_data_manager_migrates_and_a_wrong_password_changes_nothing(
        legacy_vault: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(legacy_vault, vault)
    def files() -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in vault.iterdir()
                if p.is_file() and p.name not in (".lock", "access-failures.log")}

    before = files()
    with pytest.raises(TrialvaultError, match="only a data-manager"):
        migrate_vault(vault, "ana", PW["ana"])
    with pytest.raises(TrialvaultError, match="wrong password"):
        migrate_vault(vault, "dm", "not the right passphrase")
    assert files() == before
    assert "migrate" in (vault / "access-failures.log").read_text()


def test_interrupted_migration_leaves_the_old_vault(legacy_vault: Path, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    shutil.copytree(legacy_vault, vault)
    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from trialvault.trust import Keyring
        from trialvault.vault import migrate
        Keyring.save = lambda self: os._exit(9)   # die before the new key ring exists
        migrate.migrate_vault(Path(sys.argv[1]), "dm", sys.argv[2])
    """)
    done = subprocess.run([sys.executable, "-c", script, str(vault), PW["dm"]],
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, timeout=300)
    assert done.returncode == 9, done.stderr
    assert (vault / "vault.duckdb").exists()
    report = migrate_vault(vault, "dm", PW["dm"])  # re-run: cleans the half-made copy
    assert report.users == 4
