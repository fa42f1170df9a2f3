"""Read one CSV file of a known layout into an Arrow table of strings, with lineage.

Parsing is pyarrow's (multi-threaded C++); only the line bookkeeping is ours. Every value stays a
string here: typing (dates, integers, codes) is validation's job, so a bad value becomes a rule
finding on its line rather than a reader crash.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from trialvault.errors import InputFileError
from trialvault.formats.base import SOURCE_FILE, SOURCE_LINE
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits, decode_utf8, read_file_bounded


def read_header(path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> list[str]:
    """The column names in the first line of a CSV file (stripped), for telling tables apart."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(limits.max_line_bytes + 1)
    except OSError as exc:
        raise InputFileError(f"cannot read file ({exc.strerror})", file=str(path)) from None
    if len(first) > limits.max_line_bytes:
        raise InputFileError(f"line is longer than the limit of {limits.max_line_bytes} bytes",
                             file=path.name, line=1, rule="line-length")
    text = decode_utf8(first, path.name)
    return _parse_header(text, path.name)


def _parse_header(first_line: str, name: str) -> list[str]:
    rows = list(csv.reader([first_line.rstrip("\r\n")]))
    if not rows or not any(c.strip() for c in rows[0]):
        raise InputFileError("file has no header line", file=name, line=1, rule="header")
    return [c.strip() for c in rows[0]]


def read_csv_table(path: Path, columns: Sequence[str], required: Sequence[str] = (), *,
                   limits: ReadLimits = DEFAULT_LIMITS, table: str | None = None) -> pa.Table:
    """Read `path` whose header must use only `columns` (any order, case-insensitive) and hold
    every `required` one. Returns one string column per entry of `columns` (absent optional
    columns are all null), then `source_file` (file name) and `source_line` (1-based line of the
    record, counting the header as line 1). Empty fields are null.
    """
    name = path.name
    data = read_file_bounded(path, limits)
    text = decode_utf8(data, name)
    if not text.strip():
        raise InputFileError("file is empty (no header line)", file=name, line=1, rule="header")
    header = _parse_header(text.split("\n", 1)[0], name)
    canonical = _match_columns(header, columns, required, name, table)
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    parsed = _parse(body, header, text, name)
    lines = _record_lines(body, text, parsed, name)
    _check_field_sizes(parsed, lines, name, limits.max_field_bytes)
    arrays: list[pa.Array] = []
    by_name = dict(zip(canonical, parsed.columns, strict=True))
    for column in columns:
        arrays.append(by_name[column] if column in by_name
                      else pa.nulls(parsed.num_rows, pa.string()))
    arrays.append(pa.array([name] * parsed.num_rows, pa.string()) if parsed.num_rows
                  else pa.array([], pa.string()))
    arrays.append(pa.array(lines, pa.int32()))
    return pa.Table.from_arrays(arrays, names=[*columns, SOURCE_FILE, SOURCE_LINE])


def _check_field_sizes(parsed: pa.Table, lines: list[int], name: str, limit: int) -> None:
    """Refuse a file with a field longer than `limit` characters, naming its line."""
    for column in parsed.columns:
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > limit:
            index = pc.index(pc.greater(lengths, limit), True).as_py()
            raise InputFileError(f"field is longer than the limit of {limit} characters",
                                 file=name, line=lines[index] if index >= 0 else None,
                                 rule="field-size")


def _match_columns(header: list[str], columns: Sequence[str], required: Sequence[str],
                   name: str, table: str | None) -> list[str]:
    lookup = {c.upper(): c for c in columns}
    what = f"{table} " if table else ""
    unknown = [h for h in header if h.upper() not in lookup]
    if unknown:
        raise InputFileError(f"unknown {what}column(s) {unknown}; expected only {list(columns)}",
                             file=name, line=1, rule="columns")
    canonical = [lookup[h.upper()] for h in header]
    repeated = sorted({c for c in canonical if canonical.count(c) > 1})
    if repeated:
        raise InputFileError(f"column(s) {repeated} appear twice", file=name, line=1,
                             rule="columns")
    missing = [c for c in required if c not in canonical]
    if missing:
        raise InputFileError(f"{what}file lacks required column(s) {missing}", file=name,
                             line=1, rule="columns")
    return canonical


def _parse(body: bytes, header: list[str], text: str, name: str) -> pa.Table:
    bad_rows: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row.actual_columns)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=[f"c{i}" for i in
                                                                      range(len(header))]),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(len(header))},
                strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=[""]),
        )
    except pa.ArrowInvalid as exc:
        # pyarrow's messages quote row contents: report the line, never the text.
        line = _first_bad_line(text, len(header))
        raise InputFileError(f"malformed CSV ({str(exc).split(':')[0]})", file=name, line=line,
                             rule="csv-syntax") from None
    if bad_rows:
        line = _first_bad_line(text, len(header))
        raise InputFileError(f"row has a different number of fields than the header's "
                             f"{len(header)} (extra or missing columns)", file=name, line=line,
                             rule="columns")
    return table


def _first_bad_line(text: str, width: int) -> int | None:
    reader = csv.reader(io.StringIO(text))
    previous = 0
    try:
        for row in reader:
            start, previous = previous + 1, reader.line_num
            if row and len(row) != width:
                return start
    except csv.Error:
        return reader.line_num
    return None


def _record_lines(body: bytes, text: str, parsed: pa.Table, name: str) -> list[int]:
    """1-based line where each data record starts (header = line 1)."""
    if not _has_multiline_values(parsed):
        # One record per non-blank line: the fast path, vectorised.
        arr = np.frombuffer(body, dtype=np.uint8)
        ends = np.flatnonzero(arr == 10)
        starts = np.concatenate(([0], ends + 1))
        ends = np.concatenate((ends, [arr.size]))
        lengths = ends - starts
        carriage = np.zeros(lengths.size, dtype=bool)
        nonzero = lengths > 0
        carriage[nonzero] = arr[ends[nonzero] - 1] == 13
        blank = (lengths == 0) | ((lengths == 1) & carriage)
        numbers = np.flatnonzero(~blank) + 1
        lines = numbers[1:]
        if lines.size == parsed.num_rows:
            return [int(x) for x in lines.tolist()]
    lines_slow: list[int] = []
    reader = csv.reader(io.StringIO(text))
    previous = 0
    for row in reader:
        start, previous = previous + 1, reader.line_num
        if row:
            lines_slow.append(start)
    lines_slow = lines_slow[1:]
    if len(lines_slow) != parsed.num_rows:
        raise InputFileError("could not align records with lines (malformed quoting?)",
                             file=name, rule="csv-syntax")
    return lines_slow


def _has_multiline_values(table: pa.Table) -> bool:
    return any(pc.any(pc.match_substring_regex(column, r"[\r\n]")).as_py()
               for column in table.columns)
