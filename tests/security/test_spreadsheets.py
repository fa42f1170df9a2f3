"""Formula injection (issue 14): a hostile cell must never become a live formula.

A child code or message from an LA's file reaches CSV and xlsx files that a person opens in a
spreadsheet. Every writer goes through `trialvault.spreadsheets`; these tests try the payloads
for real and read the files back with the csv module and openpyxl.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.rights.actions import AccessBundle
from trialvault.rights.export import access_workbook
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


# --- the access-request workbook: a hostile child code from an LA's file ---------------------

HOSTILE_CHILD = '=HYPERLINK("http://x","y")'


def _bundle_sheets(data: bytes) -> dict[str, list[list[object]]]:
    book = openpyxl.load_workbook(io.BytesIO(data))
    return {s.title: [[c.value for c in row] for row in s.iter_rows()] for s in book.worksheets}


def test_access_workbook_keeps_a_formula_child_code_inert() -> None:
    """Issue 14: a child code `=HYPERLINK(…)` from an LA's CIN XML came out as a live formula
    in six sheets of the access-request workbook."""
    tables = {f"raw.{t}": (["la_code", "child_id", "source_file", "note"],
                           [(877, HOSTILE_CHILD, "cin_2024.xml", "@SUM(1+1)"),
                            (877, HOSTILE_CHILD, "cin_2024.xml", "-2+3")])
              for t in ("children", "referrals", "assessments", "cin_plans", "cla_episodes",
                        "missing")}
    bundle = AccessBundle(tables=tables, packages=[{"package_id": "p1", "la_code": 877,
                                                    "file_name": "=cmd|' /C calc'!A0"}],
                          outputs=[{"output": "+1+1", "kind": "run"}])
    data = access_workbook(bundle)
    values = _no_formulas(data)
    assert values.count(HOSTILE_CHILD) == 12  # kept exactly, as text, in all six sheets
    sheets = _bundle_sheets(data)
    assert len(sheets) == 8 and sheets["packages"][1][3] == "=cmd|' /C calc'!A0"
    assert b"<f>" not in _sheet_xml(data)


def _sheet_xml(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return b"".join(archive.read(n) for n in archive.namelist()
                        if n.startswith("xl/worksheets/"))


def test_access_response_from_a_real_vault_has_no_formula(tmp_path: Path,
                                                          nwd_study: Any) -> None:
    """The whole path: an LA package holding the hostile code, ingested into a real vault; the
    DPO executes an access request; the sealed response's workbook holds no formula."""
    from trialvault.rights import service as desk
    from trialvault.rights.export import open_access_response
    from trialvault.seal import LaSigningKey, generate_identity, write_package
    from trialvault.trust import FAST_TEST_KDF
    from trialvault.vault import evaluator_recipient, ingest_packages, init_vault
    from trialvault.vault.schema import package_columns

    user, password = "dm", "the dpo desk test passphrase"
    vault = tmp_path / "vault"
    init_vault(vault, user, password, kdf_params=FAST_TEST_KDF, study_id="nwd")
    fill = {"INTEGER": 0, "VARCHAR": "x", "DATE": dt.date(2024, 5, 1), "BOOLEAN": False}
    types = {"INTEGER": pa.int32(), "VARCHAR": pa.string(), "DATE": pa.date32(),
             "BOOLEAN": pa.bool_()}

    def table(name: str) -> pa.Table:
        cols = package_columns(name)
        row = {"la_code": 877, "child_id": HOSTILE_CHILD, "source_file": "cin_2024.xml",
               "source_line": 12, "sex": "1", "ethnicity": "WBRI", "collection_year": 2024}
        return pa.table({c: pa.array([row.get(c, fill[kind])] * 2, type=types[kind])
                         for c, kind in cols})

    package = tmp_path / "la-877.tvpkg"
    key = LaSigningKey.generate(877)
    from trialvault.vault.la_keys import trust_la_key

    trust_la_key(vault, user, password, 877, key.public.line(), study=nwd_study)
    write_package(package, [evaluator_recipient(vault)],
                  {"study_id": "nwd", "spec_version": "2025.1", "la_code": 877,
                   "extract_date": "2025-04-01"},
                  {"children": table("children"), "referrals": table("referrals")}, b"",
                  sign_key=key)
    ingest_packages(vault, user, password, [package], study=nwd_study)
    v = desk.Vault(vault, user, password)
    today = dt.date.today()
    rid = desk.new_request(v, nwd_study, type="access", la_code=877, child_id=HOSTILE_CHILD,
                           received=today, channel="post", note=None, today=today)
    desk.start(v, rid, today=today)
    identity, recipient = generate_identity()
    report = desk.execute(v, nwd_study, rid, today=today, recipient=recipient,
                          out_dir=tmp_path / "responses")
    members = open_access_response(report.files[0], identity)
    workbook = next(data for name, data in members.items() if name.endswith(".xlsx"))
    values = _no_formulas(workbook)
    assert values.count(HOSTILE_CHILD) >= 4  # both tables, raw and harmonised rows
    assert b"<f>" not in _sheet_xml(workbook)
