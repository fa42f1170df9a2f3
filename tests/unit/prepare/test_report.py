"""The LA report (CSV + XLSX) and the package copy of the issues."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import load_workbook

from trialvault.prepare.report import LA_COLUMNS, package_csv, write_la_report

ROWS = [("episodes.csv", 2023, 3, "=HYPERLINK(\"x\")", "356", "reject",
         "The date the episode ceased is before the date the same episode started.",
         "ssda903", "episodes", "DECOM,DEC"),
        ("2023.xml", 2023, 40, "C7", "8600", "reject", "Child referral date missing",
         "cin_census", "cin_details", "CINreferralDate")]


def test_la_report_has_every_column_and_no_formula(tmp_path: Path) -> None:
    paths = write_la_report(ROWS, tmp_path / "report")
    assert [p.name for p in paths] == ["validation_issues.csv", "validation_issues.xlsx"]
    with paths[0].open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(LA_COLUMNS) and rows[1]["child"] == "C7"
    sheet = load_workbook(paths[1]).active
    assert [c.value for c in sheet[1]] == list(LA_COLUMNS)
    child = sheet["D2"]
    assert child.value == ROWS[0][3] and child.data_type == "s"  # text, not a formula
    assert sheet["C3"].value == 40
    assert not list((tmp_path / "report").glob("*.tmp"))


def test_package_copy_keeps_codes_and_lines_only() -> None:
    text = package_csv(ROWS).decode()
    rows = list(csv.DictReader(text.splitlines()))
    assert "message" not in rows[0]
    assert rows[1] == {"file": "2023.xml", "year": "2023", "line": "40", "child": "C7",
                       "rule": "8600", "severity": "reject", "format": "cin_census",
                       "table": "cin_details", "fields": "CINreferralDate"}
