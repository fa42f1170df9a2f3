"""The LA report (CSV + XLSX, from the findings in DuckDB) and the package copy (counts only)."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from openpyxl import load_workbook

from trialvault.formats import read_ssda903
from trialvault.prepare import report, validate
from trialvault.prepare.report import LA_COLUMNS, PACKAGE_COLUMNS, package_csv, write_la_report
from trialvault.spec.rules import load_rules

HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n")


def _return(folder: Path, children: list[str], ethnic: str = "XXXX") -> Path:
    folder.mkdir(parents=True)
    (folder / "header.csv").write_text(HEADER + "".join(
        f'"{c.replace(chr(34), chr(34) * 2)}",1,01/01/2010,{ethnic},A123456789012,,\n'
        for c in children))
    (folder / "episodes.csv").write_text(EPISODES + "".join(
        f'"{c.replace(chr(34), chr(34) * 2)}",01/06/2022,S,C2,N1,U1,PR1,,,,,,\n'
        for c in children))
    return folder


@pytest.fixture
def validated(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    root = tmp_path / "903"
    _return(root / "2023", ['=HYPERLINK("http://x")', "C2", "C3"])
    _return(root / "2022", ["C2"], ethnic="WBRI")
    source = read_ssda903([root])
    con = validate.connect()
    validate.validate_sources(con, [source], {"ssda903": load_rules("ssda903")})
    yield con
    con.close()


def _csv_rows(path: Path) -> list[dict[str, str]]:
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # BOM: Excel reads UTF-8
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_la_report_has_every_finding_with_its_value_and_no_formula(
        validated: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    files = write_la_report(validated, tmp_path / "report")
    assert [p.name for p in files.paths] == ["validation_issues.csv", "validation_issues.xlsx"]
    rows = _csv_rows(files.paths[0])
    assert list(rows[0]) == list(LA_COLUMNS)
    ethnic = [r for r in rows if r["rule"] == "103"]  # ethnicity not a valid code
    assert {r["child"] for r in ethnic} == {"'=HYPERLINK(\"http://x\")", "C2", "C3"}
    first = next(r for r in ethnic if r["year"] == "2023" and r["child"] == "C2")
    assert first["value"] == "ETHNIC=XXXX" and first["type"] == "error"
    assert first["file"] == "header.csv" and first["line"] == "3" and first["record"] == "2"
    assert files.findings == len(rows) and files.by_kind()["error"] > 0
    assert not list((tmp_path / "report").glob("*.tmp"))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        book = load_workbook(files.paths[1])
    assert book.sheetnames == ["summary", "findings"]
    sheet = book["findings"]
    assert [c.value for c in sheet[1]] == list(LA_COLUMNS)
    cells = [row for row in sheet.iter_rows(min_row=2) if row[5].value == "103"]
    formula = next(c[4] for c in cells if str(c[4].value).startswith("="))
    assert formula.value == '=HYPERLINK("http://x")' and formula.data_type == "s"  # text
    summary = {r[2].value: r for r in book["summary"].iter_rows(min_row=2)}
    assert summary["103"][6].value == len(ethnic) and summary["103"][3].value == "error"


def test_workbook_caps_findings_per_rule_and_points_to_the_csv(
        validated: duckdb.DuckDBPyConnection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "XLSX_PER_RULE", 1)
    files = write_la_report(validated, tmp_path / "report")
    book = load_workbook(files.paths[1])
    rules = [row[5].value for row in book["findings"].iter_rows(min_row=2)]
    assert rules.count("103") == 1 and len(rules) == len(set(rules))
    summary = {r[2].value: r for r in book["summary"].iter_rows(min_row=2)}
    assert summary["103"][7].value == "first 1 (all in validation_issues.csv)"
    assert len([r for r in _csv_rows(files.paths[0]) if r["rule"] == "103"]) == 3


def test_last_years_findings_are_left_out(validated: duckdb.DuckDBPyConnection,
                                          tmp_path: Path) -> None:
    every = write_la_report(validated, tmp_path / "all", xlsx=False)
    assert {r["year"] for r in _csv_rows(every.paths[0])} == {"2022", "2023"}
    files = write_la_report(validated, tmp_path / "this", leave_out={"ssda903": [2022]},
                            xlsx=False)
    assert [p.name for p in files.paths] == ["validation_issues.csv"]
    assert {r["year"] for r in _csv_rows(files.paths[0])} == {"2023"}


def test_package_copy_holds_counts_by_rule_only(validated: duckdb.DuckDBPyConnection,
                                                tmp_path: Path) -> None:
    files = write_la_report(validated, tmp_path / "report", xlsx=False)
    text = package_csv(files.by_rule).decode()
    rows = list(csv.DictReader(text.splitlines()))
    assert tuple(rows[0]) == PACKAGE_COLUMNS
    assert "C2" not in text and "HYPERLINK" not in text and "XXXX" not in text
    counts = {r["rule"]: int(r["rows"]) for r in rows}
    assert counts["103"] == 3 and sum(counts.values()) == files.findings


def test_no_findings_gives_the_header_only(tmp_path: Path) -> None:
    con = validate.connect()
    try:
        files = write_la_report(con, tmp_path / "report")
    finally:
        con.close()
    assert _csv_rows(files.paths[0]) == [] and files.by_rule == []
    assert files.paths[0].read_text(encoding="utf-8-sig").startswith("file,line,record")
    assert package_csv([]).decode().strip() == ",".join(PACKAGE_COLUMNS)


def test_spec_text_in_the_report_never_starts_a_formula() -> None:
    """The report escapes only the columns the LA's files fill first (file, child): every other
    column starts with the spec's own text, which must never start a formula."""
    from trialvault.spec.rules import RULE_FORMATS
    from trialvault.spreadsheets import FORMULA_TRIGGERS

    assert report._LA_TEXT_COLUMNS == ("file", "child")
    texts = [report.QUARANTINED]
    for fmt in RULE_FORMATS:
        for rule in load_rules(fmt).rules:
            texts += [rule.code, rule.dfe_kind, rule.message, rule.table, ",".join(rule.fields),
                      *rule.fields]
    assert len(texts) > 1000
    assert [t for t in texts if t.startswith(FORMULA_TRIGGERS)] == []


def test_workbook_rows_are_each_rules_first_rows_of_the_csv(
        validated: duckdb.DuckDBPyConnection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "XLSX_PER_RULE", 2)
    files = write_la_report(validated, tmp_path / "report")
    csv_rows = _csv_rows(files.paths[0])
    assert len(csv_rows) > 3 * 3
    expected, seen = [], {}
    for row in csv_rows:
        key = (row["table"], row["rule"], row["type"])
        if seen.get(key, 0) < 2:
            seen[key] = seen.get(key, 0) + 1
            expected.append([row["file"], row["line"], row["child"], row["rule"], row["value"]])
    book = load_workbook(files.paths[1])
    got = [[c.value for c in (r[0], r[1], r[4], r[5], r[8])]
           for r in book["findings"].iter_rows(min_row=2)]
    unescape = {"'=HYPERLINK(\"http://x\")": '=HYPERLINK("http://x")'}  # the CSV's escaping
    assert [[unescape.get(e[0], e[0]), int(e[1]), unescape.get(e[2], e[2]), e[3], e[4] or None]
            for e in expected] == got


@pytest.mark.parametrize("per_rule", [1, 100])
def test_both_csv_writers_give_the_same_bytes_and_workbook_rows(
        validated: duckdb.DuckDBPyConnection, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, per_rule: int) -> None:
    # Few findings go through DuckDB's writer (no pyarrow), many through pyarrow's: an LA's
    # report must not depend on which one its size picked.
    monkeypatch.setattr(report, "XLSX_PER_RULE", per_rule)
    written = {}
    for name, threshold in (("duckdb", 10**9), ("arrow", 0)):
        monkeypatch.setattr(report, "ARROW_WRITER_FROM", threshold)
        files = write_la_report(validated, tmp_path / name)
        book = load_workbook(files.paths[1])
        written[name] = (files.paths[0].read_bytes(),
                         [[c.value for c in r] for r in book["findings"].iter_rows()])
    assert written["duckdb"] == written["arrow"]
    assert written["duckdb"][0].count(b"\r\n") > 5
    assert len(written["duckdb"][1]) > 2  # a header and findings of more than one rule
