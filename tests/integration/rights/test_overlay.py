"""Rectification as a standing overlay: survives later extracts, reports conflicts, checks
values against the DfE code lists, and refuses a record that is not named unambiguously."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.rights import service as desk
from trialvault.seal import write_package
from trialvault.study.model import StudyFile
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import evaluator_recipient, ingest_packages, init_vault
from trialvault.vault.overlay import allowed_codes, check_value, code_meaning
from trialvault.vault.schema import package_columns
from trialvault.vault.session import open_vault

USER, PASSWORD = "dm", "overlay test passphrase"
LA = 877
KID, OTHER = "OV-CHILD-1", "OV-CHILD-2"
TODAY = dt.date(2026, 3, 2)
TYPES = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
         "BOOLEAN": pa.bool_()}


def _episodes(placement: str, ethnicity: str) -> dict[str, pa.Table]:
    """Each child has one episode returned in two collection years (the same file name and
    line in each year's return), and one children row."""
    ep_rows: list[dict[str, Any]] = []
    for child in (KID, OTHER):
        for year in (2024, 2025):
            ep_rows.append({"la_code": LA, "child_id": child, "collection_year": year,
                            "episode_start_date": dt.date(2023, 5, 1), "placement_type":
                            placement if child == KID else "U1", "legal_status": "C2",
                            "source_file": "episodes.csv", "source_line": 2})
    kids = [{"la_code": LA, "child_id": c, "sex": "F", "ethnicity": ethnicity,
             "source_file": "header.csv", "source_line": i + 2}
            for i, c in enumerate((KID, OTHER))]

    def table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
        cols = package_columns(name)
        return pa.table({c: pa.array([r.get(c) for r in rows], type=TYPES[k])
                         for c, k in cols})

    return {"cla_episodes": table("cla_episodes", ep_rows), "children": table("children", kids)}


@pytest.fixture()
def setup(tmp_path: Path, nwd_study: StudyFile, la_keys: Any) -> dict[str, Any]:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    la_keys.trust(vault, USER, PASSWORD, nwd_study, [LA])
    recipient = evaluator_recipient(vault)
    counter = iter(range(1, 100))

    def extract(placement: str, ethnicity: str, month: int) -> Any:
        path = tmp_path / f"extract-{next(counter)}.tvpkg"
        write_package(path, [recipient], {"study_id": "nwd", "spec_version": "2025.1",
                                          "la_code": LA,
                                          "extract_date": f"2025-{month:02d}-01"},
                      _episodes(placement, ethnicity), b"file,line,child,rule\n",
                      sign_key=la_keys.key(LA))
        return ingest_packages(vault, USER, PASSWORD, [path], study=nwd_study)

    extract("K2", "WBRI", 4)
    return {"vault": vault, "desk": desk.Vault(vault, USER, PASSWORD), "extract": extract}


def _current(vault: Path, sql: str) -> list[tuple[Any, ...]]:
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        return s.con.execute(sql, [LA, KID]).fetchall()


def _new(v: desk.Vault, study: StudyFile) -> int:
    return desk.new_request(v, study, type="rectification", la_code=LA, child_id=KID,
                            received=TODAY, channel="email", note=None, today=TODAY)


def test_a_correction_survives_two_later_extracts_and_reports_a_conflict(
        setup: dict[str, Any], nwd_study: StudyFile) -> None:
    v, vault = setup["desk"], setup["vault"]
    rid = _new(v, nwd_study)
    why = "The LA confirmed the placement was a foster placement."
    # `--source-file episodes.csv --source-line 2` names rows of two collection years.
    with pytest.raises(InputFileError, match=r"2 different records.*2024, 2025"):
        desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
            "cla_episodes", "placement_type", "U4", why, "episodes.csv", 2))
    assert _current(vault, "SELECT DISTINCT placement_type FROM raw.cla_episodes WHERE "
                           "la_code = ? AND child_id = ?") == [("K2",)]
    report = desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
        "cla_episodes", "placement_type", "U4", why, "episodes.csv", 2, collection_year=2025))
    assert report.rows_touched["raw.cla_episodes"] == 1
    meaning = code_meaning("cla_episodes", "placement_type", "U4")
    assert meaning and f'now says "{meaning}" instead of' in report.outcome
    query = ("SELECT collection_year, placement_type FROM harmonised.cla_episodes WHERE "
             "la_code = ? AND child_id = ? ORDER BY 1")
    assert _current(vault, query) == [(2024, "K2"), (2025, "U4")]

    for month in (6, 9):  # two later extracts still holding the old value
        ingested = setup["extract"]("K2", "WBRI", month)
        assert ingested.rectifications.applied == 1 and ingested.rectifications.conflicts == 0
        assert _current(vault, query) == [(2024, "K2"), (2025, "U4")]
    detail = desk.show_request(v, rid, today=TODAY, reveal=True)
    (lineage,) = detail.corrections
    assert (lineage["old"], lineage["new"]) == ("K2", "U4")
    assert list(lineage["packages"].values()) == ["corrected"] * 3
    assert desk.show_request(v, rid, today=TODAY).corrections[0]["new"] == desk.MASK

    # The LA changes the field itself: its value is kept and the conflict reported.
    changed = setup["extract"]("R1", "WBRI", 11)
    assert changed.rectifications.conflicts == 1 and changed.rectifications.applied == 0
    assert _current(vault, query) == [(2024, "R1"), (2025, "R1")]
    states = desk.show_request(v, rid, today=TODAY, reveal=True).corrections[0]["packages"]
    assert sorted(states.values()) == ["corrected"] * 3 + ["the LA changed it (conflict)"]
    # The other child was never touched.
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        assert s.con.execute("SELECT DISTINCT placement_type FROM raw.cla_episodes WHERE "
                             "child_id = ?", [OTHER]).fetchall() == [("U1",)]


def test_values_are_checked_against_code_lists_and_nothing_changes(
        setup: dict[str, Any], nwd_study: StudyFile) -> None:
    v, vault = setup["desk"], setup["vault"]
    rid = _new(v, nwd_study)
    why = "The person says this is wrong."
    bad = [("cla_episodes", "placement_type", "ZZZZ-not-a-DfE-code", "rule codelist"),
           ("children", "sex", "banana", "rule codelist"),
           ("children", "ethnicity", "wbri", "rule codelist"),
           ("cla_episodes", "legal_status", "", "rule value"),
           ("children", "disability", "maybe", "true or false"),
           ("children", "child_id", "X", "rule column"),
           ("placements", "type", "X", "rule table")]
    for table, column, value, message in bad:
        with pytest.raises(InputFileError, match=message) as err:
            desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
                table, column, value, why, collection_year=2025
                if table == "cla_episodes" else None))
        assert not value or value not in str(err.value).split(": ", 1)[-1].split("(codes")[0]
    # K3 (supported accommodation) exists only from collection year 2025.
    with pytest.raises(InputFileError, match="in collection year 2024"):
        desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
            "cla_episodes", "placement_type", "K3", why, collection_year=2024))
    with pytest.raises(PolicyRefusal, match="already holds"):
        desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
            "children", "ethnicity", "WBRI", why))
    assert desk.show_request(v, rid, today=TODAY).view.state == "received"
    assert _current(vault, "SELECT DISTINCT ethnicity FROM raw.children WHERE la_code = ? "
                           "AND child_id = ?") == [("WBRI",)]
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        tables = {r[0] for r in s.con.execute("SELECT table_name FROM duckdb_tables() WHERE "
                                              "database_name = 'rights'").fetchall()}
        # The overlay table is created with its first correction: none was recorded.
        assert "overlay" not in tables


def test_code_lists_follow_the_spec() -> None:
    sex = allowed_codes("children", "sex", 2025)
    assert sex is not None and sex[0] == {"M", "F", "U"}
    assert allowed_codes("cla_episodes", "placement_type", 2024) is not None
    assert "K3" not in allowed_codes("cla_episodes", "placement_type", 2024)[0]
    assert allowed_codes("children", "age_months_at_reference", None) is None
    assert code_meaning("children", "ethnicity", "WIRI") == "White Irish"
    assert check_value("assessments", "assessment_factors", "1A, 9A", year=2025) == "1A,9A"
    assert check_value("children", "disability", "TRUE", year=None) == "true"
    assert check_value("cla_episodes", "episode_start_date", "2024-02-29", year=None) \
        == "2024-02-29"
    with pytest.raises(InputFileError, match="YYYY-MM-DD"):
        check_value("cla_episodes", "episode_start_date", "29/02/2024", year=None)


def test_a_package_is_named_by_a_unique_prefix(setup: dict[str, Any],
                                               nwd_study: StudyFile) -> None:
    """`--package` takes the id as `status` shows it (a unique prefix); an unknown one is
    NotFound and changes nothing."""
    from trialvault.errors import NotFound

    v, vault = setup["desk"], setup["vault"]
    rid = _new(v, nwd_study)
    why = "The person says the ethnicity recorded is wrong."
    with open_vault(vault, USER, PASSWORD, command="t", args={}, write=False) as s:
        package = str(s.con.execute("SELECT package_id FROM meta.packages").fetchone()[0])  # type: ignore[index]
    with pytest.raises(NotFound, match="no package 'zzzz9999'"):
        desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
            "children", "ethnicity", "WIRI", why, package_id="zzzz9999"))
    assert desk.show_request(v, rid, today=TODAY).view.state == "received"
    report = desk.execute(v, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
        "children", "ethnicity", "WIRI", why, package_id=package[:8].upper()))
    assert report.rows_touched["raw.children"] == 1
