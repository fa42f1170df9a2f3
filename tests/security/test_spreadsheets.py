"""Formula injection (issue 14): a hostile cell must never become a live formula.

A child code or message from an LA's file reaches CSV and xlsx files that a person opens in a
spreadsheet. Every writer goes through `trialvault.spreadsheets`; these tests try the payloads
for real and read the files back with the csv module and openpyxl.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.spreadsheets import (
    FORMULA_TRIGGERS,
    add_sheet,
    csv_bytes,
    new_workbook,
    safe_cell,
)

PAYLOADS = [
    '=HYPERLINK("http://x","y")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1,2\n3",
]

# Text a spreadsheet could read: no NUL or surrogates (XML 1.0 cannot hold them at all).
cell_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
                    | st.sampled_from(["\t", "\r", "\n"]), max_size=40)


def _read_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_payload_in_csv_is_escaped(payload: str) -> None:
    rows = _read_csv(csv_bytes(["child", "rule"], [[payload, "8500"]], bom=True))
    assert rows[1] == ["'" + payload, "8500"]


def test_numbers_dates_and_none_are_left_as_they_are() -> None:
    assert safe_cell(-5) == -5
    assert safe_cell(2.5) == 2.5
    assert safe_cell(None) is None
    assert safe_cell(dt.date(2024, 3, 31)) == dt.date(2024, 3, 31)
    assert safe_cell("A123") == "A123"
    rows = _read_csv(csv_bytes(["n", "d", "x"], [[-5, dt.date(2024, 3, 31), None]]))
    assert rows[1] == ["-5", "2024-03-31", ""]


@given(cell_text)
@settings(max_examples=300, deadline=None)
def test_no_csv_cell_starts_with_a_formula_trigger(value: str) -> None:
    data = csv_bytes(["h"], [[value]])
    (cell,) = _read_csv(data)[1]
    assert not cell.startswith(FORMULA_TRIGGERS)
    # the escape is one reversible quote: nothing else of the value is changed
    assert cell == value or (cell == "'" + value and value.startswith(FORMULA_TRIGGERS))


@given(st.lists(st.lists(cell_text, min_size=3, max_size=3), max_size=8))
@settings(max_examples=100, deadline=None)
def test_csv_keeps_rows_and_columns(rows: list[list[str]]) -> None:
    back = _read_csv(csv_bytes(["a", "b", "c"], rows))
    assert len(back) == len(rows) + 1
    assert all(len(r) == 3 for r in back)


def _no_formulas(data: bytes) -> list[str]:
    """Every cell value of every sheet; fails if any cell is a formula."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    values = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{sheet.title}!{cell.coordinate} is a formula"
                assert cell.hyperlink is None, f"{sheet.title}!{cell.coordinate} is a link"
                if cell.value is not None:
                    values.append(cell.value)
    return values


@pytest.mark.parametrize("constant_memory", [False, True])
def test_xlsx_keeps_a_formula_payload_as_plain_text(constant_memory: bool, tmp_path) -> None:
    buffer = io.BytesIO()
    book = new_workbook(buffer, constant_memory=constant_memory, tmpdir=str(tmp_path))
    add_sheet(book, "payloads", ["child"], [[p] for p in PAYLOADS])
    ws = book.add_worksheet("raw")
    for i, p in enumerate(PAYLOADS):  # write_row/write of a bare string must not parse it
        ws.write(i, 0, p)
    ws.write(len(PAYLOADS), 0, "http://attacker.example/x")
    book.close()
    values = _no_formulas(buffer.getvalue())
    assert values.count('=HYPERLINK("http://x","y")') == 2
    assert "http://attacker.example/x" in values


@given(st.lists(cell_text, min_size=1, max_size=10))
@settings(max_examples=40, deadline=None)
def test_xlsx_stores_any_text_as_text(values: list[str]) -> None:
    buffer = io.BytesIO()
    book = new_workbook(buffer)
    add_sheet(book, "s", ["v"], [[v] for v in values])
    book.close()
    _no_formulas(buffer.getvalue())


def test_the_safe_options_cannot_be_turned_back_on() -> None:
    with pytest.raises(ValueError, match="strings_to_formulas"):
        new_workbook(io.BytesIO(), strings_to_formulas=True)
