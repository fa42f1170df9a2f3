"""The validation error report: what an LA analyst can fix from.

Two copies:
- the LA's own, kept at the LA (`validation_issues.csv` and `.xlsx` in the report folder): file,
  collection year, line, child code, rule code, severity, message, table and fields;
- the package copy (`validation/issues.csv` inside the sealed package): file, collection year,
  line, child code, rule code, severity, table and fields. It carries no field value: the
  evaluator can tell which rows were flagged and why, and nothing else.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from trialvault.errors import InputFileError
from trialvault.files import write_atomic

LA_COLUMNS = ("file", "year", "line", "child", "rule", "severity", "message", "format", "table",
              "fields")
PACKAGE_COLUMNS = ("file", "year", "line", "child", "rule", "severity", "format", "table",
                   "fields")
REPORT_STEM = "validation_issues"
# An Excel sheet holds 1,048,576 rows; beyond this the workbook says to use the CSV.
XLSX_MAX_ROWS = 1_000_000


def issue_rows(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every finding with its collection year, in LA_COLUMNS order, sorted by file and line."""
    years = []
    for fmt in ("ssda903", "cin_census"):
        found = con.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = ?", [fmt]).fetchall()
        for (table,) in found:
            years.append(f"SELECT '{fmt}' AS format, '{table}' AS table_name, _row, "
                         f"collection_year FROM {fmt}.\"{table}\"")
    year_join = (f"LEFT JOIN ({' UNION ALL '.join(years)}) y ON y.format = i.format "
                 "AND y.table_name = i.table_name AND y._row = i.row_id") if years else ""
    year_col = "y.collection_year" if years else "NULL"
    return con.execute(f"""
        SELECT i.file, {year_col}, i.line, i.child, i.rule, i.severity, i.message, i.format,
               i.table_name, i.fields
        FROM validation.issues i {year_join}
        ORDER BY i.format, i.file, {year_col}, i.line, i.rule""").fetchall()


def package_csv(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """The package copy: no messages' context beyond rule, no values (see module doc)."""
    keep = [LA_COLUMNS.index(c) for c in PACKAGE_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PACKAGE_COLUMNS)
    for row in rows:
        writer.writerow(["" if row[i] is None else row[i] for i in keep])
    return buffer.getvalue().encode("utf-8")


def write_la_report(rows: Sequence[tuple[Any, ...]], folder: Path) -> list[Path]:
    """Write the LA's report (CSV and XLSX) into `folder`; each file appears whole or not at all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"cannot create report folder ({exc.strerror})",
                             file=str(folder)) from None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LA_COLUMNS)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    csv_path = folder / f"{REPORT_STEM}.csv"
    write_atomic(csv_path, buffer.getvalue().encode("utf-8-sig"))  # BOM: Excel opens it as UTF-8
    xlsx_path = folder / f"{REPORT_STEM}.xlsx"
    _atomic_xlsx(xlsx_path, rows)
    return [csv_path, xlsx_path]


def _text_cell(sheet: Any, value: str) -> WriteOnlyCell:
    # openpyxl writes a string starting with "=" as a formula; child codes and messages are
    # text, so such a value is pinned as a string cell (no formula injection).
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"
    return cell


def _atomic_xlsx(path: Path, rows: Sequence[tuple[Any, ...]]) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("issues")
    bold = Font(bold=True)
    header = []
    for name in LA_COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows[:XLSX_MAX_ROWS]:
        sheet.append([_text_cell(sheet, v) if isinstance(v, str) and v.startswith("=") else v
                      for v in row])
    if len(rows) > XLSX_MAX_ROWS:
        sheet.append([f"{len(rows) - XLSX_MAX_ROWS} more issues: see {REPORT_STEM}.csv"])
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        book.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
