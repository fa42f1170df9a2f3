"""The format readers on the public fake returns and on small hand-made inputs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from trialvault.errors import InputFileError
from trialvault.formats import (
    READERS,
    ReaderRegistry,
    read_cin_census,
    read_education,
    read_neet,
    read_ssda903,
)
from trialvault.formats.ssda903 import year_of_folder

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n1,1,01/01/2010,WBRI,A123456789012,,\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n1,01/06/2022,S,C2,N1,U1,PR1,,,,,,\n")


def return_folder(folder: Path, header: str = HEADER, episodes: str = EPISODES) -> Path:
    folder.mkdir(parents=True)
    (folder / "header.csv").write_text(header)
    (folder / "episodes.csv").write_text(episodes)
    return folder


def test_registry_holds_every_format_and_refuses_duplicates() -> None:
    assert sorted(READERS) == ["cin_census", "education", "neet", "ssda903"]
    registry = ReaderRegistry()
    registry.register("x")(read_neet)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("x")(read_neet)
    with pytest.raises(KeyError, match="no reader"):
        registry["y"]


def test_fake_903_csv_set(fake_903: Path) -> None:
    source = read_ssda903([fake_903], year=2023)
    rows = {name: t.num_rows for name, t in source.tables.items()}
    # Row counts from ../shared/external/README.md.
    assert rows["header"] == 2675 and rows["episodes"] == 5050 and rows["reviews"] == 12582
    assert rows["missing"] == 43 and rows["uasc"] == 132 and rows["placed_for_adoption"] == 29
    assert "fake_903.xml" in source.meta["ignored"]
    assert source.meta["year_from"] == {2023: "given (--ssda903-year)"}
    sw = source.tables["sw_episodes"].to_pylist()[0]  # BOM + CRLF file
    assert sw["CHILD"] == "CHILD10" and sw["source_line"] == 2 and sw["source_record"] == 1
    episodes = source.tables["episodes"]
    assert episodes["source_line"].to_pylist()[:3] == [2, 3, 4]
    assert episodes["source_record"].to_pylist()[:3] == [1, 2, 3]
    assert set(episodes["collection_year"].to_pylist()) == {2023}


def test_two_files_of_one_table_are_refused_by_name(shared_external: Path) -> None:
    # The shared folder holds placed_for_adoption.csv and placed_for_adoption_errors.csv.
    with pytest.raises(InputFileError, match=re.escape(
            "placed_for_adoption.csv and placed_for_adoption_errors.csv both hold the "
            "placed_for_adoption table")) as err:
        read_ssda903([shared_external / "ssda903"], year=2023)
    assert err.value.rule == "duplicate-table"


def test_stray_copy_of_episodes_is_refused(tmp_path: Path) -> None:
    folder = return_folder(tmp_path / "r")
    (folder / "episodes (1).csv").write_text(EPISODES)
    with pytest.raises(InputFileError, match=r"episodes \(1\).csv and episodes.csv both hold"):
        read_ssda903([folder])


def test_fake_903_xml(shared_external: Path) -> None:
    source = read_ssda903([shared_external / "ssda903" / "fake_903.xml"], year=2019)
    rows = {name: t.num_rows for name, t in source.tables.items()}
    assert rows["header"] == 253 and rows["episodes"] == 459 and rows["missing"] == 6
    assert rows["placed_for_adoption"] == 3 and rows["oc3"] == 6 and rows["uasc"] == 12
    first = source.tables["episodes"].to_pylist()[0]
    assert first["PLACE"] is not None and first["CHILD"] is not None  # PL -> PLACE, CHILDID
    assert first["source_file"] == "fake_903.xml" and first["source_line"] == 2
    # One line of XML: the record (the <CHILD>'s place in the file) tells children apart.
    assert source.tables["header"]["source_record"].to_pylist()[:3] == [1, 2, 3]
    assert set(source.tables["header"]["source_line"].to_pylist()) == {2}


def test_per_year_subfolders_give_the_year(tmp_path: Path) -> None:
    root = tmp_path / "903"
    return_folder(root / "2023")
    return_folder(root / "2022-23")
    with pytest.raises(InputFileError, match="same collection year"):
        read_ssda903([root])
    shutil.rmtree(root / "2023")
    return_folder(root / "2022")
    return_folder(root / "2023_24")
    source = read_ssda903([root])
    assert source.meta["collection_years"] == [2022, 2023, 2024]


def test_year_folder_names() -> None:
    assert year_of_folder("2023") == 2023 and year_of_folder("2022-23") == 2023
    assert year_of_folder("1999_00") == 2000
    assert year_of_folder("2022-24") is None and year_of_folder("misc") is None


def test_year_inferred_from_latest_episode(tmp_path: Path) -> None:
    source = read_ssda903([return_folder(tmp_path / "r")])
    assert source.meta["collection_years"] == [2023]  # DECOM 1 June 2022 -> 2022 to 2023


def test_missing_table_and_unknown_columns(tmp_path: Path) -> None:
    folder = return_folder(tmp_path / "a")
    (folder / "episodes.csv").unlink()
    with pytest.raises(InputFileError, match=r"lacks table\(s\) \['episodes'\]"):
        read_ssda903([folder])
    folder = return_folder(tmp_path / "b")
    (folder / "notes.csv").write_text("CHILD,NOTES\n1,x\n")
    with pytest.raises(InputFileError, match="match no SSDA903 table") as err:
        read_ssda903([folder])
    assert err.value.file == "notes.csv" and err.value.line == 1
    (folder / "notes.csv").unlink()
    (folder / "episodes.csv").write_text(EPISODES.replace("DECOM", "DECOMM", 1)
                                         .replace(",URN", ",URN,NOTES", 1))
    with pytest.raises(InputFileError, match=r"nearest is episodes: unknown column\(s\) "
                       r"\['DECOMM', 'NOTES'\]; required column\(s\) \['DECOM'\] missing"):
        read_ssda903([folder])


def test_mixed_year_folders_and_loose_files(tmp_path: Path) -> None:
    root = tmp_path / "903"
    return_folder(root / "2023")
    (root / "header.csv").write_text(HEADER)
    with pytest.raises(InputFileError, match="mixes per-year subfolders"):
        read_ssda903([root])


def test_unknown_xml_element_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    path.write_text("<EXPSSDA903><CHILD><HEADER><CHILDID>1</CHILDID><NAME>x</NAME></HEADER>"
                    "</CHILD></EXPSSDA903>")
    with pytest.raises(InputFileError, match="unknown element <NAME> in <HEADER>"):
        read_ssda903([path], year=2023)


@pytest.mark.parametrize("name", ["fake_CIN_data.xml", "CIN_Census_2021.xml", "CIN2rows.xml",
                                  "CIN_Census_2024.xml", "CIN_Census_2026.xml",
                                  "CIN_Census_2021_no_assessment_factors.xml"])
def test_every_cin_schema_variant_reads(shared_external: Path, name: str) -> None:
    source = read_cin_census([shared_external / "cin_census" / name])
    ids = source.tables["child_identifiers"]
    assert ids.num_rows >= 1
    sexes = [r["GenderCurrent"] or r["Sex"] for r in ids.to_pylist()]
    assert all(s is not None for s in sexes)


def test_fake_cin_counts_and_keys(shared_external: Path) -> None:
    source = read_cin_census([shared_external / "cin_census" / "fake_CIN_data.xml"])
    rows = {name: t.num_rows for name, t in source.tables.items()}
    # Counts from ../shared/external/README.md.
    assert rows["child_identifiers"] == 332 and rows["cin_details"] == 402
    assert rows["disabilities"] == 117 and rows["assessments"] == 0
    deaths = [r for r in source.tables["child_identifiers"].to_pylist() if r["PersonDeathDate"]]
    assert len(deaths) == 21
    header = source.meta["headers"][0]
    assert (header["collection_year"], header["reference_date"], header["la"]) == (
        2022, "2022-07-21", "975")
    assert header["year_from"] == "<Year> in the header"
    records = source.tables["child_identifiers"].column("source_record")
    assert records[:3] == [1, 2, 3] and records[-1] == 332
    assert source.tables["collection_details"].column("source_record") == [0]


def test_cin_nested_blocks_carry_their_parents_keys(shared_external: Path) -> None:
    source = read_cin_census([shared_external / "cin_census" / "CIN2rows.xml",
                              shared_external / "cin_census" / "CIN_Census_2026.xml"])
    details = source.tables["cin_details"].to_pylist()
    plans = source.tables["child_protection_plans"].to_pylist()
    keys = {d["cin_details_key"] for d in details}
    assert plans and all(p["cin_details_key"] in keys for p in plans)
    assert len({d["cin_details_key"] for d in details}) == len(details)
    assert source.tables["pre_proceedings"].num_rows == 1
    factors = source.tables["assessment_factors"].to_pylist()
    assessments = {a["assessments_key"] for a in source.tables["assessments"].to_pylist()}
    assert factors and all(f["assessments_key"] in assessments for f in factors)


def test_cin_unknown_element_and_same_names(tmp_path: Path, shared_external: Path) -> None:
    path = tmp_path / "cin.xml"
    text = (shared_external / "cin_census" / "CIN_Census_2021.xml").read_text()
    path.write_text(text.replace("<Ethnicity>", "<Religion>x</Religion><Ethnicity>"))
    with pytest.raises(InputFileError, match="unknown element <Religion>") as err:
        read_cin_census([path])
    assert err.value.line is not None
    with pytest.raises(InputFileError, match="same name"):
        read_cin_census([path, path])


def test_education_and_neet(tmp_path: Path) -> None:
    edu = tmp_path / "education.csv"
    edu.write_text("UPN,DOB,ACADEMIC_YEAR,TERM,SESSIONS_POSSIBLE,SESSIONS_AUTHORISED,"
                   "SESSIONS_UNAUTHORISED,FSM_ELIGIBLE,PUPIL_PREMIUM\n"
                   "A123456789012,2010-01-01,2021/22,AUT,130,2,1,0,1\n")
    table = read_education([edu]).tables["attendance"]
    assert table.num_rows == 1 and table["POSTCODE"].to_pylist() == [None]
    neet = tmp_path / "neet.csv"
    neet.write_text("UPN,DOB,ACTIVITY_MONTH,ACTIVITY_CODE,EXTRA\nA123456789012,2005-01-01,"
                    "2022-01-01,619,x\n")
    with pytest.raises(InputFileError, match=r"unknown activity column\(s\) \['EXTRA'\]"):
        read_neet([neet])
    with pytest.raises(InputFileError, match="exactly one"):
        read_neet([neet, neet])
