"""The spec loader: layouts and code lists load, match the public fake files, and refuse bad YAML."""

from __future__ import annotations

import csv
from pathlib import Path

import defusedxml.ElementTree as ET
import pytest

from trialvault.errors import InputFileError
from trialvault.spec import (
    FORMATS,
    code_list_group,
    load_code_lists,
    load_layout,
    parse_code_lists,
    parse_layout,
)

GOOD_LAYOUT = """\
format: neet
title: t
specification: s
container: csv
date_format: "%Y-%m-%d"
tables:
  activity:
    file: neet.csv
    harmonised: neet
    key: [UPN]
    columns:
      - {name: UPN, type: string, required: true, code_list: null, identifier: true, field: null}
"""


def test_every_format_loads() -> None:
    for fmt in FORMATS:
        layout = load_layout(fmt)
        assert layout.format == fmt
        assert layout.tables
        for name, table in layout.tables.items():
            assert table.name == name


def test_unknown_format_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown format"):
        load_layout("annex_a")


def test_every_harmonised_field_is_a_study_field(nwd_study) -> None:  # type: ignore[no-untyped-def]
    allowed = nwd_study.allowed_fields
    for fmt in FORMATS:
        for table in load_layout(fmt).tables.values():
            for col in table.columns:
                if col.field is not None:
                    assert col.field in allowed, (fmt, table.name, col.name, col.field)
                if col.identifier:
                    assert col.field is None, (fmt, table.name, col.name)


def test_code_lists_versioned() -> None:
    lists = load_code_lists()
    assert lists["SEX"].valid_in(2024) == {"1", "2"}
    assert lists["SEX"].valid_in(2025) == {"M", "F", "U"}
    assert lists["SEX"].harmonise("1") == "M"
    place_2026 = lists["PLACE"].valid_in(2026)
    assert {"Z11", "K3"} <= place_2026
    assert not {"Z1", "H5", "P2"} & place_2026
    assert {"H5", "P2", "Z1"} <= lists["PLACE"].valid_in(2020)
    assert "K3" not in lists["PLACE"].valid_in(2020)
    assert lists["LS"].codes["C2"] == "Full care order"


def test_groups() -> None:
    residential = code_list_group("residential_placements")
    assert {"K1", "K2", "R1", "R5", "S1"} <= residential
    assert "U4" not in residential
    neet = code_list_group("neet_activity_codes")
    assert "619" in neet and "540" in neet and "210" not in neet
    with pytest.raises(KeyError, match="unknown code-list group"):
        code_list_group("nope")


def test_layout_matches_public_903_csvs(shared_external: Path) -> None:
    layout = load_layout("ssda903")
    for table in layout.tables.values():
        if table.reference:
            continue
        assert table.file is not None
        path = shared_external / "ssda903" / table.file
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh))
        assert header == table.column_names, table.name


def test_public_903_codes_are_in_the_code_lists(shared_external: Path) -> None:
    lists = load_code_lists()
    layout = load_layout("ssda903")
    episodes = layout.table("episodes")
    with (shared_external / "ssda903" / "episodes.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for col in ("RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "REC"):
        code_list = lists[episodes.column(col).code_list or ""]
        seen = {r[col] for r in rows if r[col]}
        assert seen <= set(code_list.codes), (col, sorted(seen - set(code_list.codes)))


def test_layout_matches_public_cin_xml(shared_external: Path) -> None:
    layout = load_layout("cin_census")
    known = {c.name for t in layout.tables.values() for c in t.columns}
    known |= {p for t in layout.tables.values() if t.xml_path for p in t.xml_path.split("/")}
    known |= {"Children", "Child", "Header"}
    for path in sorted((shared_external / "cin_census").glob("*.xml")):
        tags = {el.tag for el in ET.parse(path).getroot().iter()}
        assert tags <= known, (path.name, sorted(tags - known))


def test_extra_key_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "neet.yaml"
    bad.write_text(GOOD_LAYOUT.replace("required: true", "required: true, colour: red"))
    with pytest.raises(InputFileError, match=r"tables\.activity\.columns\.0\.colour"):
        parse_layout(bad)
    assert parse_layout(_write(tmp_path, GOOD_LAYOUT)).tables["activity"].key == ["UPN"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text(text)
    return path


def test_duplicate_key_is_refused_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "codes.yaml"
    bad.write_text("code_lists:\n  X:\n    title: t\n    codes:\n      A: a\n      A: b\n"
                   "groups: {}\n")
    with pytest.raises(InputFileError, match=r"line 6.*duplicate key 'A'"):
        parse_code_lists(bad)


def test_group_with_unknown_code_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "codes.yaml"
    bad.write_text("code_lists:\n  X:\n    title: t\n    codes: {A: a}\n"
                   "groups:\n  g: {code_list: X, description: d, codes: [A, B]}\n")
    with pytest.raises(InputFileError, match=r"group g: codes not in X: \['B'\]"):
        parse_code_lists(bad)


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "neet.yaml"
    bad.write_text(GOOD_LAYOUT + "  broken: [\n")
    with pytest.raises(InputFileError, match=r"neet\.yaml.*line"):
        parse_layout(bad)
