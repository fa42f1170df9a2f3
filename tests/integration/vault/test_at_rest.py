"""Nothing readable at rest, and crashes leave the vault as it was.

The scans look for a child-code marker, a field-value marker and the names of tables and
columns in the raw bytes of every file in the vault folder, including a WAL left behind
un-checkpointed by a process that died right after COMMIT. Controls run the same scans on a
plaintext DuckDB file to show the scan would find them there.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trialvault.study import StudyFile
from trialvault.trust import Keyring
from trialvault.vault import ingest_packages, open_vault, vault_status, verify_audit
from trialvault.vault.store import connect_file

CHILD_MARKER = b"ZQXJ"
VALUE_MARKER = "QJXZVAL"
SCHEMA_WORDS = (b"cla_episodes", b"missing_start_date", b"harmonised")
SRC = Path(__file__).resolve().parents[3] / "src"


def _scan(folder: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            hits = [w.decode() for w in (CHILD_MARKER, VALUE_MARKER.encode(), *SCHEMA_WORDS)
                    if w in data]
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def _run(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], env=env,
                          capture_output=True, text=True, check=check, timeout=300)


def _marked_tables(factory: Callable[..., dict[str, pa.Table]], n: int) -> dict[str, pa.Table]:
    tables = factory(354, n, seed=7)
    ref = tables["referrals"]
    idx = ref.column_names.index("referral_source")
    values = pa.array([f"{VALUE_MARKER}{i % 97}" for i in range(ref.num_rows)])
    tables["referrals"] = ref.set_column(idx, "referral_source", values)
    return tables


# Ingest, then die right after COMMIT, before DuckDB's checkpoint on close: WAL left behind.
_INGEST_THEN_DIE = """
    import os, sys
    from pathlib import Path
    from trialvault.study import load_study
    from trialvault.vault import ingest_packages, session
    def die(*args, **kwargs):
        os._exit(0)
    session._commit_writers = die  # called right after the work's COMMIT
    ingest_packages(Path(sys.argv[1]), "dm", sys.argv[2], [Path(sys.argv[3])],
                    study=load_study(Path(sys.argv[4])))
"""


def test_vault_files_and_wal_hold_no_plaintext(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study_path: Path, tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    pkg = make_package(recipient, 354, dt.date(2025, 3, 31),
                       tables=_marked_tables(tables_factory, 300))
    _run(_INGEST_THEN_DIE, str(folder), password, str(pkg), str(nwd_study_path))
    wal = folder / "child.duckdb.wal"
    assert wal.exists() and wal.stat().st_size > 100_000, "the WAL should be left behind"
    assert _scan(folder) == {}
    assert CHILD_MARKER not in pkg.read_bytes()  # the package itself is ciphertext too
    # The committed ingest is there once the WAL is replayed; its begin entry was written
    # before the work and no end entry after: verify says so (a warning, not tampering).
    status = vault_status(folder, "dm", password)
    assert status.holdings[0].harmonised_rows["referrals"] == 900
    result = verify_audit(folder, "dm", password)
    assert result.ok and any("(ingest by dm) has no outcome entry" in w
                             for w in result.warnings)


_PLAIN_THEN_DIE = """
    import os, sys
    from pathlib import Path
    import pyarrow.parquet as pq
    from trialvault.vault.store import connect_file
    folder = Path(sys.argv[1])
    con = connect_file(folder / "plain.duckdb", None, temp_dir=folder / "tmp")
    con.execute("CREATE SCHEMA harmonised")
    con.execute("CREATE TABLE harmonised.cla_episodes (child_id VARCHAR, "
                "missing_start_date DATE, referral_source VARCHAR)")
    con.execute("CHECKPOINT")
    ref = pq.read_table(sys.argv[2])
    con.register("ref", ref)
    con.execute("INSERT INTO harmonised.cla_episodes SELECT child_id, referral_date, "
                "referral_source FROM ref")
    os._exit(0)
"""


def test_control_plaintext_file_is_found(tmp_path: Path,
                                         tables_factory: Callable[..., dict[str, pa.Table]]
                                         ) -> None:
    """The same scan on an unencrypted DuckDB file and WAL finds codes, values and names."""
    folder = tmp_path / "plain"
    folder.mkdir()
    source = tmp_path / "ref.parquet"
    pq.write_table(_marked_tables(tables_factory, 300)["referrals"], source)
    _run(_PLAIN_THEN_DIE, str(folder), str(source))
    found = _scan(folder)
    assert set(found["plain.duckdb.wal"]) >= {"ZQXJ", VALUE_MARKER}
    assert "cla_episodes" in found["plain.duckdb"]


@pytest.mark.parametrize("temp_encryption", [True, False])
def test_spilled_temp_files(tmp_path: Path, temp_encryption: bool) -> None:
    """DuckDB spills beyond memory_limit into the vault's tmp/, encrypted by the store's
    `temp_file_encryption`. The control turns that setting off (possible only outside a
    session, whose configuration is locked) and finds the codes in the spill."""
    temp = tmp_path / "tmp"
    con = connect_file(tmp_path / "v.duckdb", os.urandom(32), temp_dir=temp,
                       memory_limit="48MB", threads=1)
    try:
        if not temp_encryption:
            con.execute("SET temp_file_encryption = false")
        con.execute(f"CREATE TEMP TABLE big AS SELECT 'ZQXJ' || range::VARCHAR || "
                    f"repeat('-{VALUE_MARKER}', 3) AS code FROM range(1500000)")
        spilled = [p for p in temp.iterdir() if p.is_file()]
        assert spilled and sum(p.stat().st_size for p in spilled) > 1_000_000
        hits = [p.name for p in spilled if CHILD_MARKER in p.read_bytes()]
        assert (hits == []) if temp_encryption else hits
    finally:
        con.close()


_INGEST_THEN_HANG = """
    import sys, time
    from pathlib import Path
    from trialvault.study import load_study
    from trialvault.vault import ingest
    def hang(con):
        # raw rows are written, the transaction is open: signal the test and wait for kill -9
        Path(sys.argv[5]).write_text("loaded")
        time.sleep(120)
    ingest.rebuild_harmonised = hang
    ingest.ingest_packages(Path(sys.argv[1]), "dm", sys.argv[2], [Path(sys.argv[3])],
                           study=load_study(Path(sys.argv[4])))
"""


def test_kill_during_ingest_leaves_vault_as_before(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile, nwd_study_path: Path, tmp_path: Path,
        tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    first = make_package(recipient, 807, dt.date(2024, 3, 31), n_children=50)
    ingest_packages(folder, "dm", password, [first], study=nwd_study)
    before = vault_status(folder, "dm", password)
    # One table above DuckDB's row-group size (122,880 rows), so the open transaction has
    # written data blocks to the file when it is killed.
    tables = tables_factory(354, 1000, seed=3)
    tables.update(tables_factory(354, 1000, seed=4, rows_per_table=130, only=("referrals",)))
    big = make_package(recipient, 354, dt.date(2025, 3, 31), tables=tables)
    flag = tmp_path / "loaded.flag"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_INGEST_THEN_HANG),
                             str(folder), password, str(big), str(nwd_study_path), str(flag)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not flag.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"ingest never reached the rebuild: {proc.communicate()[1]!r}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    after = vault_status(folder, "dm", password)
    assert [(h.la_code, h.harmonised_rows, [p.package_id for p in h.packages])
            for h in after.holdings] == [
        (h.la_code, h.harmonised_rows, [p.package_id for p in h.packages])
        for h in before.holdings]
    with open_vault(folder, "dm", password, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT count(*) FROM raw.referrals WHERE la_code = 354"
                             ).fetchone() == (0,)
    result = verify_audit(folder, "dm", password)
    assert result.ok, result.problems
    report = ingest_packages(folder, "dm", password, [big], study=nwd_study)
    assert report.harmonised_rows["referrals"] == 150 + 130_000
    assert report.harmonised_rows["children"] == 50 + 1000
    assert verify_audit(folder, "dm", password).ok


_REKEY_CRASH = """
    import os, sys
    from pathlib import Path
    from trialvault.trust import Keyring
    from trialvault.vault import admin
    real_replace = os.replace
    if sys.argv[3] == "before-staging":
        Keyring.stage_keys = lambda self, keys, files: os._exit(9)
    elif sys.argv[3] == "mid-swap":
        def replace(src, dst):
            if str(dst).endswith(".duckdb"):
                os._exit(9)
            real_replace(src, dst)
        admin.os.replace = replace
    else:
        Keyring.commit_keys = lambda self: os._exit(9)
    admin.rekey(Path(sys.argv[1]), "dm", sys.argv[2])
"""


@pytest.mark.parametrize("crash", ["before-staging", "mid-swap", "after-swap"])
def test_kill_during_rekey_recovers(vault: tuple[Path, str], password: str, crash: str) -> None:
    """Before the new keys are staged the old files and keys stay; once staged (every new file
    complete on disk) the next open rolls the swap forward."""
    folder, _ = vault
    with open_vault(folder, "dm", password, command="t", args={}) as s:
        s.con.execute("CREATE TABLE main.kept AS SELECT range AS a FROM range(100)")
    old_key = Keyring.load(folder).unlock("dm", password).domain_keys["child"]
    done = _run(_REKEY_CRASH, str(folder), password, crash, check=False)
    assert done.returncode == 9, done.stderr
    assert (Keyring.load(folder).pending is None) == (crash == "before-staging")
    with open_vault(folder, "dm", password, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT count(*) FROM main.kept").fetchone() == (100,)
    key = Keyring.load(folder).unlock("dm", password).domain_keys["child"]
    assert (key == old_key) == (crash == "before-staging")
    assert Keyring.load(folder).pending is None
    assert not list(folder.glob("*.rekey*"))
    result = verify_audit(folder, "dm", password)
    assert result.ok, result.problems
