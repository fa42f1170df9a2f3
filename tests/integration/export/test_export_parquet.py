"""Encrypted Parquet export of a real vault: no plaintext in the files, read back by pyarrow and
by Spark's own Parquet decryption (in-memory KMS), rights flags carried, the evaluation on the
export equal to the evaluation in the vault, and import back with checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from trialvault.engines.evaluation import build_analysis_on_engine, excluded_table
from trialvault.errors import AccessDenied, IntegrityError
from trialvault.evaluate.cohort import build_analysis_table
from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table
from trialvault.seal import write_package
from trialvault.study.model import StudyFile
from trialvault.vault import FAST_TEST_KDF, ingest_packages, init_vault, open_vault
from trialvault.vault import export as ex
from trialvault.vault.schema import TABLES, package_columns

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

PASSWORD = "export test password"
MARKER = "ZQXJ"  # every child code starts with it; no Parquet/crypto bytes hold it by chance
_TYPES = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
          "BOOLEAN": pa.bool_()}


def tables_for(la: int, n: int, seed: int) -> dict[str, pa.Table]:
    """Harmonised tables whose dates and ages put most children in the NWD cohort."""
    rng = np.random.default_rng(seed)
    ids = [f"{MARKER}{la}-{i:04d}" for i in range(n)]
    out = {}
    for table in TABLES:
        rows = n if table == "children" else 2 * n
        child = ids if table == "children" else [ids[i % n] for i in range(rows)]
        cols: dict[str, list[Any]] = {}
        for name, kind in package_columns(table):
            if name == "la_code":
                cols[name] = [la] * rows
            elif name == "child_id":
                cols[name] = child
            elif name == "source_file":
                cols[name] = [f"{table}.csv"] * rows
            elif name == "source_line":
                cols[name] = list(range(2, rows + 2))
            elif name in ("age_months", "age_months_at_reference"):
                cols[name] = [int(v) for v in rng.integers(150, 210, rows)]
            elif name == "academic_year":
                cols[name] = [f"{y}/{(y + 1) % 100:02d}" for y in rng.integers(2019, 2024, rows)]
            elif name == "term":
                cols[name] = [["autumn", "spring", "summer"][int(v)]
                              for v in rng.integers(0, 3, rows)]
            elif name == "placement_type":
                cols[name] = [["K2", "U1", "R1"][int(v)] for v in rng.integers(0, 3, rows)]
            elif name == "reason_new_episode":
                cols[name] = [["S", "P", "B"][int(v)] for v in rng.integers(0, 3, rows)]
            elif kind == "DATE":
                cols[name] = [dt.date(2019, 6, 1) + dt.timedelta(days=int(d))
                              for d in rng.integers(0, 1800, rows)]
            elif kind == "INTEGER":
                cols[name] = [int(v) for v in rng.integers(0, 200, rows)]
            elif kind == "BOOLEAN":
                cols[name] = [bool(v) for v in rng.integers(0, 2, rows)]
            else:
                cols[name] = [f"V{v}" for v in rng.integers(0, 9, rows)]
        out[table] = pa.table({k: pa.array(v, _TYPES[dict(package_columns(table))[k]])
                               for k, v in cols.items()})
    return out


@pytest.fixture(scope="module")
def filled_vault(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile,
                 la_keys: Any) -> Path:
    base = tmp_path_factory.mktemp("export-vault")
    folder = base / "vault"
    recipient = init_vault(folder, "dm", PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(folder, "dm", PASSWORD, nwd_study, [354, 807])
    packages = []
    for la, seed in ((354, 1), (807, 2)):
        path = base / f"{la}.tvpkg"
        manifest = {"study_id": "nwd", "spec_version": "2025.1", "la_code": la,
                    "extract_date": dt.date(2025, 6, 30), "validation_summary": {}}
        write_package(path, [recipient], manifest, tables_for(la, 40, seed), b"rule\n",
                      sign_key=la_keys.key(la))
        packages.append(path)
    ingest_packages(folder, "dm", PASSWORD, packages, study=nwd_study)
    with open_vault(folder, "dm", PASSWORD, command="test flags", args={}) as s:
        ensure_flags_table(s.con)
        now = dt.datetime(2026, 1, 1)
        for fid, (la, child, kind) in enumerate([(354, f"{MARKER}354-0001", "restriction"),
                                                 (807, f"{MARKER}807-0002", "objection")]):
            s.con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                          "set_at, set_by) VALUES (?, ?, ?, ?, 'active', ?, 'dpo')",
                          [fid + 1, la, child, kind, now])
    return folder


@pytest.fixture(scope="module")
def exported(filled_vault: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, dict[str, bytes], str]:
    out = tmp_path_factory.mktemp("exports") / "export-1"
    with open_vault(filled_vault, "dm", PASSWORD, command="export", args={}, write=False) as s:
        report = ex.export_parquet(s, out, purpose="storage")  # keeps the flagged
        keys = ex.vault_master_keys(s, report.export_id)
    assert report.rows["referrals"] == 160 and report.flagged_children == 2
    return out, keys, report.export_id


def vault_table(folder: Path, sql: str) -> pa.Table:
    with open_vault(folder, "dm", PASSWORD, command="test read", args={}, write=False) as s:
        return s.con.execute(sql).fetch_arrow_table()


def test_files_hold_no_plaintext_child_code_or_column_name(exported: Any) -> None:
    out, _, _ = exported
    files = sorted(out.glob("*.parquet"))
    assert len(files) == len(TABLES) + 1
    for path in files:
        data = path.read_bytes()
        assert data[:4] == b"PARE" and data[-4:] == b"PARE"  # encrypted footer magic
        assert MARKER.encode() not in data
        assert b"child_id" not in data and b"referral_date" not in data
    assert MARKER not in (out / ex.MANIFEST).read_text()


def test_pyarrow_reads_back_every_row_and_the_flags(exported: Any, filled_vault: Path) -> None:
    out, keys, _ = exported
    back = ex.read_export(out, keys)
    for table in TABLES:
        want = vault_table(
            filled_vault, f"SELECT * FROM harmonised.{table} ORDER BY la_code, child_id")
        assert back[table].sort_by([("la_code", "ascending"), ("child_id", "ascending"),
                                    ("source_line", "ascending")]).to_pylist() == \
            want.sort_by([("la_code", "ascending"), ("child_id", "ascending"),
                          ("source_line", "ascending")]).to_pylist()
    assert back[ex.FLAGS].to_pylist() == [
        {"la_code": 354, "child_id": f"{MARKER}354-0001", "restricted": True, "objected": False},
        {"la_code": 807, "child_id": f"{MARKER}807-0002", "restricted": False, "objected": True}]


def test_wrong_keys_and_tampering_are_refused(exported: Any, tmp_path: Path) -> None:
    out, keys, _ = exported
    wrong = ex.derive_master_keys(b"\x01" * 32, "other")
    with pytest.raises(IntegrityError):
        ex.read_export(out, wrong, ["referrals"])
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in out.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    blob = bytearray((copy / "referrals.parquet").read_bytes())
    blob[100] ^= 1
    (copy / "referrals.parquet").write_bytes(bytes(blob))
    with pytest.raises(IntegrityError, match="changed since export"):
        ex.read_export(copy, keys, ["referrals"])


def test_spark_decrypts_the_export_and_evaluates_like_the_vault(
        exported: Any, filled_vault: Path, spark: Any, nwd_study: StudyFile) -> None:
    from trialvault.engines.spark_engine import SparkEngine, read_encrypted_parquet

    if spark.conf.get("spark.trialvault.kms_missing", None):
        pytest.skip(f"KMS client not built: {spark.conf.get('spark.trialvault.kms_missing')}")
    out, keys, export_id = exported
    options = ex.spark_read_options(keys, export_id)
    engine = SparkEngine(spark)
    try:
        for table in [*TABLES, ex.FLAGS]:
            prefix = "" if table == ex.FLAGS else "harmonised."
            read_encrypted_parquet(engine, f"{prefix}{table}", out / f"{table}.parquet", options)
        flags = engine.query("SELECT * FROM rights_flags ORDER BY la_code").to_pylist()
        assert [(f["child_id"], f["restricted"], f["objected"]) for f in flags] == [
            (f"{MARKER}354-0001", True, False), (f"{MARKER}807-0002", False, True)]
        counts = engine.query("SELECT la_code, count(*) AS n FROM harmonised.referrals "
                              "GROUP BY la_code ORDER BY la_code").to_pylist()
        assert counts == [{"la_code": 354, "n": 80}, {"la_code": 807, "n": 80}]
        excluded = excluded_table((f["la_code"], f["child_id"]) for f in flags)
        on_spark = build_analysis_on_engine(engine, nwd_study, excluded=excluded).analysis
    finally:
        engine.close()
    with open_vault(filled_vault, "dm", PASSWORD, command="test evaluate", args={},
                    write=False) as s:
        in_vault = build_analysis_table(s.con, nwd_study)
    assert in_vault.excluded_children == 2 and len(on_spark) > 20
    cols = ["la_code", "child_id", "index_date", "period", "exposed", "entered_care_12m",
            "residential_placement_12m", "placement_moves_12m", "missing_episodes_12m",
            "cp_plan_12m", "rereferral_12m", "unauthorised_absence_rate"]
    left = in_vault.analysis[cols].sort_values(["la_code", "child_id"]).astype(str)
    right = on_spark[cols].sort_values(["la_code", "child_id"]).astype(str)
    assert left.to_numpy().tolist() == right.to_numpy().tolist()
    assert f"{MARKER}354-0001" not in set(on_spark["child_id"])


def test_import_into_the_vault_and_refusals(exported: Any, filled_vault: Path,
                                            tmp_path: Path) -> None:
    out, _, _ = exported
    with open_vault(filled_vault, "dm", PASSWORD, command="import", args={}) as s:
        report = ex.import_into_vault(s, out)
    assert report.rows["referrals"] == 160 and report.rows[ex.FLAGS] == 2
    assert vault_table(filled_vault, "SELECT count(*) AS n FROM imported.cla_episodes"
                       ).to_pylist() == [{"n": 160}]
    other = tmp_path / "other"
    init_vault(other, "dm", PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    with pytest.raises(IntegrityError, match="not made under"), \
            open_vault(other, "dm", PASSWORD, command="import", args={}) as s:
        ex.import_into_vault(s, out)
    init_vault(tmp_path / "v3", "dm", PASSWORD, kdf_params=FAST_TEST_KDF)
    from trialvault.vault import add_user

    add_user(tmp_path / "v3", "dm", PASSWORD, "ana", PASSWORD, role="analyst")
    with pytest.raises(AccessDenied), \
            open_vault(tmp_path / "v3", "ana", PASSWORD, command="export", args={}) as s:
        ex.export_parquet(s, tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_cli_export_writes_a_private_spark_settings_file(filled_vault: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from trialvault.vault import export_commands

    app = typer.Typer()
    export_commands.register(app)
    monkeypatch.setenv("TRIALVAULT_PASSWORD", PASSWORD)
    result = CliRunner().invoke(app, ["export", "--format", "parquet", "--vault",
                                      str(filled_vault), "--out", str(tmp_path / "e"),
                                      "--spark-keys", str(tmp_path / "spark.conf")])
    assert result.exit_code == 0, result.output
    assert "flagged children" in result.output and MARKER not in result.output
    settings = (tmp_path / "spark.conf").read_text()
    assert "parquet.encryption.key.list=tv_data:" in settings
    assert (tmp_path / "spark.conf").stat().st_mode & 0o077 == 0
    bad = CliRunner().invoke(app, ["export", "--format", "csv", "--vault", str(filled_vault),
                                   "--out", str(tmp_path / "f")])
    assert bad.exit_code == 3 and not (tmp_path / "f").exists()
