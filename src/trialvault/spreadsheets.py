"""Files a spreadsheet will open: CSV with formula-looking cells escaped, xlsx with formulas off.

Values from outside (a child code in an LA's XML, a rule message quoting a field) reach CSV and
xlsx files that people open in Excel or LibreOffice. A cell that starts with `=`, `+`, `-` or
`@` is evaluated as a formula there (`=HYPERLINK(...)` leaks data or runs a command through DDE);
tab and carriage return start one too after some import paths strip them. So:

- CSV: `safe_cell` prefixes such a string with a single quote, as OWASP's "CSV Injection" page
  recommends; the `csv` module quotes separators and doubles inner quotes. Numbers are left as
  numbers (a negative int is not a string and no spreadsheet reads `-5` as a formula).
- xlsx: a string is stored as a string cell, never parsed as a formula or a URL
  (`strings_to_formulas=False`, `strings_to_urls=False`), so the text is kept exactly and the
  quote is not needed.

Every CSV or xlsx writer in trialvault goes through this module (one helper for both).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import IO, Any

import xlsxwriter

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice Calc or
# Google Sheets (OWASP, "CSV Injection").
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
ESCAPE_PREFIX = "'"
MAX_SHEET_NAME = 31  # Excel's limit
_WIDTH_SAMPLE = 200  # rows looked at to size columns

# Never parse a string as anything but text: a child code is not a formula, a URL or a number.
_SAFE_WORKBOOK_OPTIONS: dict[str, Any] = {
    "strings_to_formulas": False,
    "strings_to_urls": False,
    "strings_to_numbers": False,
}


def safe_cell(value: Any) -> Any:
    """`value` for a CSV cell: a string that a spreadsheet would run as a formula gets a `'`.

    Anything that is not a string is returned unchanged (None, numbers, dates).
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return ESCAPE_PREFIX + value
    return value


def write_csv(out: IO[str], header: Sequence[str], rows: Iterable[Sequence[Any]], *,
              none_as: str = "") -> int:
    """Write `header` and `rows` to the text stream `out`, every cell through `safe_cell`.

    `None` is written as `none_as`. Returns the number of data rows written. The stream should
    be opened with `newline=""`. Lines end with CRLF as RFC 4180 says: with a bare "\\n" line
    end the `csv` module would not quote a cell holding a lone "\\r", and a reader would split
    the row there.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([none_as if v is None else safe_cell(v) for v in row])
        count += 1
    return count


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], *, none_as: str = "",
              bom: bool = False) -> bytes:
    """The CSV (UTF-8; with a BOM when `bom`, so Excel opens it as UTF-8) as bytes."""
    buffer = io.StringIO(newline="")
    write_csv(buffer, header, rows, none_as=none_as)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def new_workbook(target: str | IO[bytes], *, constant_memory: bool = False,
                 tmpdir: str | None = None, **options: Any) -> xlsxwriter.Workbook:
    """An XlsxWriter workbook that stores every string as text (never a formula or URL).

    By default the workbook is built in memory (`in_memory`): XlsxWriter otherwise spools each
    sheet to a temporary file, which would put personal data on disk in the clear.
    `constant_memory=True` is for large sheets written row by row in order: it flushes each row
    to a temporary file in `tmpdir` (so use it only where the rows may touch that disk).
    Other XlsxWriter options pass through, but the three "strings as text" options cannot be
    turned back on.
    """
    for key in _SAFE_WORKBOOK_OPTIONS:
        if options.get(key):
            raise ValueError(f"{key} must stay off: strings are written as text")
    settings: dict[str, Any] = dict(options)
    settings.update(_SAFE_WORKBOOK_OPTIONS)
    if constant_memory:
        settings["constant_memory"] = True
        settings["in_memory"] = False
        if tmpdir is not None:
            settings["tmpdir"] = tmpdir
    else:
        settings.setdefault("in_memory", True)
    return xlsxwriter.Workbook(target, settings)


def add_sheet(workbook: xlsxwriter.Workbook, name: str, header: Sequence[str],
              rows: Iterable[Sequence[Any]], *, header_format: Any = None,
              max_width: int = 40) -> int:
    """A sheet `name` (cut to Excel's 31 characters) with a bold-able header row, frozen.

    Returns the number of data rows written. Column widths follow the header and the first
    200 rows, capped at `max_width`.
    """
    sheet = workbook.add_worksheet(name[:MAX_SHEET_NAME])
    sheet.write_row(0, 0, list(header), header_format)
    widths = [len(str(h)) for h in header]
    count = 0
    for count, row in enumerate(rows, start=1):
        cells = [_xlsx_value(v) for v in row]
        sheet.write_row(count, 0, cells)
        if count <= _WIDTH_SAMPLE:
            for i, v in enumerate(cells[:len(widths)]):
                widths[i] = max(widths[i], len(str(v)) if v is not None else 0)
    sheet.freeze_panes(1, 0)
    for i, width in enumerate(widths):
        sheet.set_column(i, i, min(width + 2, max_width))
    return count



def _xlsx_value(value: Any) -> Any:
    # XlsxWriter knows str, numbers, bools, dates and None; anything else (Decimal, UUID) as text.
    if value is None or isinstance(value, str | int | float | bool | dt.date | dt.datetime
                                   | dt.time):
        return value
    return str(value)
