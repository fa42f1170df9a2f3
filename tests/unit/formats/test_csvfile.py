"""CSV reading: strict headers, bad rows named by line, exact line numbers (property-tested)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialvault.errors import InputFileError
from trialvault.formats.csvfile import read_csv_table, read_header

COLUMNS = ["CHILD", "SEX", "DOB"]


def write(tmp_path: Path, text: str, name: str = "header.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_reads_strings_with_lineage_and_nulls(tmp_path: Path) -> None:
    path = write(tmp_path, "CHILD,SEX,DOB\n1,1,01/01/2010\n2,,02/01/2010\n")
    table = read_csv_table(path, COLUMNS, ["CHILD"])
    assert table.column_names == [*COLUMNS, "source_file", "source_line"]
    assert table.to_pylist()[1] == {"CHILD": "2", "SEX": None, "DOB": "02/01/2010",
                                    "source_file": "header.csv", "source_line": 3}


def test_header_order_and_case_do_not_matter_and_absent_optional_is_null(tmp_path: Path
                                                                           ) -> None:
    path = write(tmp_path, "dob,child\n01/01/2010,7\n")
    table = read_csv_table(path, COLUMNS, ["CHILD"])
    assert table.to_pylist() == [{"CHILD": "7", "SEX": None, "DOB": "01/01/2010",
                                  "source_file": "header.csv", "source_line": 2}]


def test_unknown_column_in_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "CHILD,SEX,DOB,NAME\n1,1,01/01/2010,x\n")
    with pytest.raises(InputFileError, match=r"unknown header column\(s\) \['NAME'\]") as err:
        read_csv_table(path, COLUMNS, table="header")
    assert (err.value.file, err.value.line, err.value.rule) == ("header.csv", 1, "columns")


def test_row_with_extra_fields_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "CHILD,SEX,DOB\n1,1,01/01/2010\n2,1,01/01/2010,SECRET\n")
    with pytest.raises(InputFileError, match="different number of fields") as err:
        read_csv_table(path, COLUMNS)
    assert err.value.line == 3
    assert "SECRET" not in str(err.value)


def test_missing_required_or_repeated_column(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="lacks required"):
        read_csv_table(write(tmp_path, "SEX,DOB\n1,x\n"), COLUMNS, ["CHILD"])
    with pytest.raises(InputFileError, match="appear twice"):
        read_csv_table(write(tmp_path, "CHILD,child\n1,2\n"), COLUMNS)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="empty"):
        read_csv_table(write(tmp_path, ""), COLUMNS)
    assert read_csv_table(write(tmp_path, "CHILD,SEX\n"), COLUMNS).num_rows == 0


def test_blank_lines_crlf_bom_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_bytes(b"\xef\xbb\xbfCHILD,SEX\r\n1,1\r\n\r\n2,2")
    table = read_csv_table(path, COLUMNS)
    assert table["CHILD"].to_pylist() == ["1", "2"]
    assert table["source_line"].to_pylist() == [2, 4]
    assert read_header(path) == ["CHILD", "SEX"]


def test_quoted_newlines_keep_record_start_lines(tmp_path: Path) -> None:
    path = write(tmp_path, 'CHILD,SEX\n"a\nb",1\n\n"c",2\n')
    table = read_csv_table(path, COLUMNS)
    assert table["CHILD"].to_pylist() == ["a\nb", "c"]
    assert table["source_line"].to_pylist() == [2, 5]


cell = st.one_of(st.just(""), st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\x00"),
    max_size=8))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(cell, cell, cell), max_size=12),
       blanks=st.lists(st.booleans(), max_size=12))
def test_any_table_round_trips_with_exact_lines(tmp_path: Path, rows: list[tuple[str, ...]],
                                                blanks: list[bool]) -> None:
    """Whatever the values (quotes, commas, newlines, unicode), every record comes back with the
    line it starts on, counted as a text editor does (blank lines included)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    expected_lines = []
    line = 2
    written = []
    for i, row in enumerate(rows):
        if i < len(blanks) and blanks[i]:
            buffer.write("\n")
            line += 1
        if all(v == "" for v in row):
            continue  # an all-empty row is a blank line in CSV: not a record
        start = buffer.tell()
        writer.writerow(row)
        expected_lines.append(line)
        line += buffer.getvalue()[start:].count("\n")
        written.append(row)
    path = tmp_path / "p.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))
    table = read_csv_table(path, COLUMNS)
    got = [tuple("" if v is None else v for v in (r["CHILD"], r["SEX"], r["DOB"]))
           for r in table.to_pylist()]
    assert got == written
    assert table["source_line"].to_pylist() == expected_lines
