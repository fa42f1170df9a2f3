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

Every CSV or xlsx writer in trialvault goes through this module (one helper for both); a large
generated sheet (the LA's validation report) may use `write_plain_xlsx`, which writes text and
numbers straight into the workbook's XML and has no formula path at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def safe_cell_sql(expr: str) -> str:
    """`safe_cell` as a DuckDB SQL expression over the VARCHAR `expr`, for a CSV streamed
    straight from a query (the LA's validation report): the same triggers, the same prefix."""
    triggers = ", ".join(f"chr({ord(c)})" for c in FORMULA_TRIGGERS)
    prefix = ESCAPE_PREFIX.replace("'", "''")
    return (f"CASE WHEN left({expr}, 1) IN ({triggers}) THEN '{prefix}' || ({expr}) "
            f"ELSE ({expr}) END")


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
    # Imported here: the LA's report (`write_plain_xlsx`) needs no xlsxwriter, and its command
    # is held to the public validator's peak memory (issue 19).
    import xlsxwriter

    return xlsxwriter.Workbook(target, settings)


# --- a plain workbook written directly, for large generated sheets ---------------------------
# XlsxWriter costs about 100 microseconds a row; the LA's validation report writes tens of
# thousands of rows on every draft of a return. `write_plain_xlsx` writes the same text and
# numbers as inline strings straight into the package's XML, about twenty times faster. It has
# no formula, URL or number parsing at all: a string is only ever written as text.

# One pass: XML's three special characters escaped, and the characters XML 1.0 does not allow
# (C0 controls other than tab, newline and carriage return) replaced by U+FFFD.
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                           **{chr(c): "\ufffd" for c in range(32) if c not in (9, 10, 13)},
                           "\ufffe": "\ufffd", "\uffff": "\ufffd"})
_PLAIN_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>')


def _plain_cell(value: Any, style: str = "") -> str:
    # Cells carry no `r`: each follows the one before, as the format allows.
    if isinstance(value, str):
        return (f'<c t="inlineStr"{style}><is><t xml:space="preserve">'
                f'{value[:32767].translate(_XML_TEXT)}</t></is></c>')
    if value is None:
        return "<c/>"
    if isinstance(value, bool):
        return f'<c t="b"{style}><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f"<c{style}><v>{value!r}</v></c>"
    return _plain_cell(str(value), style)


def write_plain_xlsx(target: str | IO[bytes],
                     sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[Any]]]], *,
                     widths: dict[str, Sequence[int]] | None = None) -> dict[str, int]:
    """A workbook of `sheets` (name, header, rows): bold frozen header, text and numbers only.

    For large generated sheets (see above); a sheet holds at most Excel's 1,048,575 data rows
    (a ValueError beyond). `widths`: column widths per sheet name. Returns data rows per sheet.
    The rows are written to the zip member as they come (no whole sheet in memory).
    """
    import zipfile

    names = [name[:MAX_SHEET_NAME] for name, _, _ in sheets]
    if len(set(names)) != len(names):
        raise ValueError("sheet names must differ in their first 31 characters")
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    counts: dict[str, int] = {}
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(1, len(names) + 1))
        zf.writestr("[Content_Types].xml", head + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            f"{overrides}</Types>"))
        zf.writestr("_rels/.rels", head + (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'))
        sheet_list = "".join(f'<sheet name="{n.translate(_XML_TEXT)}" sheetId="{i}" '
                             f'r:id="rId{i}"/>' for i, n in enumerate(names, start=1))
        zf.writestr("xl/workbook.xml", head + f"<workbook {ns} {rel_ns}>"
                    f"<sheets>{sheet_list}</sheets></workbook>")
        rels = "".join(
            f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/'
            f'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, len(names) + 1))
        styles_id = len(names) + 1
        zf.writestr("xl/_rels/workbook.xml.rels", head + (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'{rels}<Relationship Id="rId{styles_id}" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>'))
        zf.writestr("xl/styles.xml", _PLAIN_STYLES)
        for i, (name, (_, header, rows)) in enumerate(zip(names, sheets, strict=True), start=1):
            width = len(header)
            cols = ""
            if widths and name in widths:
                cols = "<cols>" + "".join(
                    f'<col min="{c}" max="{c}" width="{w}" customWidth="1"/>'
                    for c, w in enumerate(widths[name], start=1)) + "</cols>"
            with zf.open(f"xl/worksheets/sheet{i}.xml", "w", force_zip64=True) as out:
                out.write((head + f"<worksheet {ns}><sheetViews><sheetView workbookViewId=\"0\">"
                           '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" '
                           'state="frozen"/></sheetView></sheetViews>' + cols + "<sheetData>"
                           + "<row>" + "".join(_plain_cell(h, ' s="1"') for h in header)
                           + "</row>").encode())
                count = 0
                chunk: list[str] = []
                cell = _plain_cell
                for count, row in enumerate(rows, start=1):
                    if count >= 1_048_576:
                        raise ValueError(f"sheet {name}: more rows than Excel holds")
                    chunk.append("<row>" + "".join([cell(v) for v in row[:width]]) + "</row>")
                    if len(chunk) >= 2048:
                        out.write("".join(chunk).encode())
                        chunk.clear()
                out.write(("".join(chunk) + "</sheetData></worksheet>").encode())
                counts[name] = count
    return counts


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
