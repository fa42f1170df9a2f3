"""Rights with real sealed packages and the vault's ingest: re-ingest after erasure, the demo
function, and outputs (runs, releases) listed as affected."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from trialvault.errors import InputFileError
from trialvault.evaluate.cohort import build_analysis_table
from trialvault.rights import demo_requests, excluded_children
from trialvault.rights import service as desk
from trialvault.rights.export import open_access_response
from trialvault.seal import generate_identity, write_package
from trialvault.study.model import StudyFile
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import evaluator_recipient, ingest_packages, init_vault
from trialvault.vault.schema import package_columns
from trialvault.vault.session import open_vault

USER, PASSWORD = "dm", "ingest test password"
LA = 877
KIDS = [f"K{i:03d}" for i in range(12)]
TODAY = dt.date(2026, 3, 2)

_VALUES = {"INTEGER": 0, "VARCHAR": "x", "DATE": dt.date(2024, 5, 1), "BOOLEAN": False}


def _table(name: str, children: list[str], per_child: int) -> pa.Table:
    cols = package_columns(name)
    rows: dict[str, list[object]] = {c: [] for c, _ in cols}
    line = 2
    for child in children:
        for k in range(per_child):
            for c, kind in cols:
                rows[c].append({"la_code": LA, "child_id": child, "source_file": f"{name}.csv",
                                "source_line": line, "sex": "1", "ethnicity": "WBRI",
                                "collection_year": 2024, "age_months": 150 + k,
                                }.get(c, _VALUES[kind]))
            line += 1
    types = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
             "BOOLEAN": pa.bool_()}
    return pa.table({c: pa.array(rows[c], type=types[kind]) for c, kind in cols})


def _package(folder: Path, recipient: str, extract: str, name: str, sign_key: Any) -> Path:
    path = folder / name
    write_package(path, [recipient], {"study_id": "nwd", "spec_version": "2025.1",
                                      "la_code": LA, "extract_date": extract},
                  {"children": _table("children", KIDS, 1),
                   "referrals": _table("referrals", KIDS, 2)}, b"rule_code,count\n",
                  sign_key=sign_key)
    return path


@pytest.fixture()
def ingested(tmp_path: Path, nwd_study: StudyFile, la_keys: Any) -> tuple[Path, Path, str]:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(vault, USER, PASSWORD, nwd_study, [LA])
    recipient = evaluator_recipient(vault)
    pkgs = tmp_path / "packages"
    pkgs.mkdir()
    pkg = _package(pkgs, recipient, "2025-04-01", "la877-2025.tvpkg", la_keys.key(LA))
    ingest_packages(vault, USER, PASSWORD, [pkg], study=nwd_study)
    return vault, pkgs, recipient


def _count(vault: Path, sql: str, params: list[object]) -> int:
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        row = s.con.execute(sql, params).fetchone()
        assert row is not None
        return int(row[0])


def test_reingest_does_not_bring_an_erased_child_back(ingested: tuple[Path, Path, str],
                                                      nwd_study: StudyFile,
                                                      la_keys: Any) -> None:
    vault, pkgs, recipient = ingested
    v = desk.Vault(vault, USER, PASSWORD)
    rid = desk.new_request(v, nwd_study, type="erasure", la_code=LA, child_id=KIDS[0],
                           received=TODAY, channel="post", note=None, today=TODAY)
    desk.execute(v, nwd_study, rid, today=TODAY)
    where = "WHERE la_code = ? AND child_id = ?"
    for table in ("raw.children", "raw.referrals", "harmonised.children",
                  "harmonised.referrals"):
        assert _count(vault, f"SELECT count(*) FROM {table} {where}", [LA, KIDS[0]]) == 0
    # The kept package file held the child: the erasure destroyed it.
    assert not (pkgs / "la877-2025.tvpkg").exists()
    # A later extract from the LA still holding the child: its rows are dropped at the door.
    newer = _package(pkgs, recipient, "2025-10-01", "la877-2025b.tvpkg", la_keys.key(LA))
    report = ingest_packages(vault, USER, PASSWORD, [newer], study=nwd_study)
    assert report.ingested[0].tombstoned_children == 1
    assert report.ingested[0].tombstoned_rows == 3
    for table in ("raw.children", "raw.referrals", "harmonised.children",
                  "harmonised.referrals"):
        assert _count(vault, f"SELECT count(*) FROM {table} {where}", [LA, KIDS[0]]) == 0
    assert _count(vault, "SELECT count(*) FROM harmonised.children WHERE la_code = ?",
                  [LA]) == len(KIDS) - 1


def test_demo_requests_one_of_each_type(ingested: tuple[Path, Path, str],
                                        nwd_study: StudyFile, tmp_path: Path) -> None:
    vault, _pkgs, _ = ingested
    identity, recipient = generate_identity()
    out = tmp_path / "responses"
    summaries = demo_requests(vault, USER, PASSWORD, nwd_study, LA, KIDS[1:6], recipient, out,
                              today=TODAY)
    assert [s.type for s in summaries] == ["access", "rectification", "erasure",
                                           "restriction", "objection"]
    assert {s.state for s in summaries} == {"completed"}
    access = summaries[0]
    assert access.paused_days == 0  # identity restarts the month rather than pausing it
    assert access.due == dt.date(2026, 3, 25)  # ID received 25 Feb (received 20 Feb + 5)
    assert [p.name for p in out.iterdir()] == ["access-request-1.zip.age"]
    members = open_access_response(access.files[0], identity)
    wb = load_workbook(io.BytesIO(members["access-request-1.xlsx"]))
    assert wb["raw.referrals"].max_row == 3  # header + the child's two referrals
    assert summaries[1].rows_touched == {"raw.children": 1, "harmonised.children": 1}
    assert summaries[2].rekeyed
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        assert sorted(excluded_children(s.con).fetchall()) == [(LA, KIDS[4]), (LA, KIDS[5])]
        assert s.con.execute("SELECT ethnicity FROM harmonised.children WHERE child_id = ?",
                             [KIDS[2]]).fetchone() == ("WIRI",)
        # The evaluation's own cohort builder sees neither the erased child (K3) nor the
        # restricted (K4) or objecting (K5) one; everyone else is in its input.
        build = build_analysis_table(s.con, nwd_study)
        cohort = set(build.analysis["child_id"])
        assert build.excluded_children == 2
        assert cohort == set(KIDS) - {KIDS[3], KIDS[4], KIDS[5]}
    with pytest.raises(InputFileError, match="5 distinct children"):
        demo_requests(vault, USER, PASSWORD, nwd_study, LA, KIDS[6:8], recipient, out)


def test_erasure_lists_runs_and_releases_that_may_have_counted_the_child(
        ingested: tuple[Path, Path, str], nwd_study: StudyFile) -> None:
    vault, _pkgs, _ = ingested
    # `results` and `releases` are catalogs of the outputs domain (one file each, so one
    # session each: a transaction writes one file).
    with open_vault(vault, USER, PASSWORD, command="t", args={}) as s:
        s.con.execute("CREATE TABLE results.runs (run_id VARCHAR, created_at TIMESTAMP)")
        s.con.execute("INSERT INTO results.runs VALUES ('run-before', TIMESTAMP '2020-01-01'), "
                      "('run-after', now()::TIMESTAMP)")
    with open_vault(vault, USER, PASSWORD, command="t", args={}) as s:
        s.con.execute("CREATE TABLE releases.releases (release_id VARCHAR, run_id VARCHAR)")
        s.con.execute("INSERT INTO releases.releases VALUES ('rel-1', 'run-after'), "
                      "('rel-0', 'run-before')")
    v = desk.Vault(vault, USER, PASSWORD)
    rid = desk.new_request(v, nwd_study, type="erasure", la_code=LA, child_id=KIDS[7],
                           received=TODAY, channel="post", note=None, today=TODAY)
    report = desk.execute(v, nwd_study, rid, today=TODAY)
    assert [(o["kind"], o["id"]) for o in report.affected_outputs] == [("run", "run-after"),
                                                                        ("release", "rel-1")]
    # The letter counts them and names no internal id.
    assert "in 2 pieces of work" in report.outcome
    assert "run-after" not in report.outcome and "rel-1" not in report.outcome
