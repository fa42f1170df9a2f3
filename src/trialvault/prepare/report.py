"""The validation report: what an LA analyst fixes the return from, and what the package says.

Two products:

- **the LA's report**, kept at the LA (it names child codes and quotes values: the LA's own data),
  in the report folder:
  - `validation_issues.csv`: one row per finding, every finding — file, line, record (the row of
    a CSV, the `<Child>` of an XML file: one-line XML has every record on one line), collection
    year, child, rule, type (`error` or `query`, as the DfE classes it), the DfE message, the
    offending values (`FIELD=value; ...` of the fields the rule looks at, as written), table,
    fields, and what happens to the row (`row not packaged` for the rules that quarantine it).
    Written by DuckDB's CSV writer straight from the sorted findings (UTF-8 with a byte-order
    mark so Excel opens it as UTF-8; the cells an LA's file can start escaped through
    `trialvault.spreadsheets`).
  - `validation_issues.xlsx`: a `summary` sheet (one row per rule: type, message, table, fields,
    findings) and a `findings` sheet with at most `XLSX_PER_RULE` findings per rule (the first
    by file and line; the summary says when a rule has more, and the CSV beside it holds them
    all). Written row by row by `spreadsheets.write_plain_xlsx` (strings only ever as text).
- **the package copy** (`validation/issues.csv` inside the sealed package): counts by rule only —
  format, table, rule, type, severity, rows. No child code, no file line, no value.

Findings on last year's return (`--previous`, loaded only so the year-on-year rules have
something to compare with) are left out of both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialvault.errors import InputFileError
from trialvault.spreadsheets import csv_bytes, safe_cell_sql
from trialvault.sql import quote_literal

if TYPE_CHECKING:
    import duckdb

LA_COLUMNS = ("file", "line", "record", "year", "child", "rule", "type", "message", "value",
              "table", "fields", "action")
PACKAGE_COLUMNS = ("format", "table", "rule", "type", "severity", "rows")
SUMMARY_COLUMNS = ("format", "table", "rule", "type", "message", "fields", "findings",
                   "in this workbook")
REPORT_STEM = "validation_issues"
# Findings per rule in the workbook; a rule with more is summarised and the CSV holds them all
# (a sheet of a million rows takes minutes to write; an analyst fixes a rule from its first
# examples and the summary gives every count).
XLSX_PER_RULE = 100
QUARANTINED = "row not packaged"
# Columns whose first character can come from the LA's files (a file name, a child code),
# escaped against formula injection. The others start with text from the spec (rule code,
# type, message, table, fields; a value starts with its field's name: `FIELD=...`), which
# tests/unit/prepare/test_report.py checks never starts a formula; escaping every column cost
# a quarter of the report's time at x20.
_LA_TEXT_COLUMNS = ("file", "child")
# Total order (ties broken down to the value), so the workbook's first rows of a rule are the
# CSV's first rows of that rule: the two are separate queries.
_ORDER = 'format, file, year, line, record, rule, child, "table", _row_id'
_RULE_KEY = 'format, "table", rule, type'
_TEXT_COLUMNS = tuple(c for c in LA_COLUMNS if c not in ("line", "record", "year"))
# From this many findings the CSV goes through pyarrow (`_write_csv_arrow`).
ARROW_WRITER_FROM = 100_000
_BATCH_ROWS = 64_000

_NO_FINDINGS = ("SELECT NULL::VARCHAR AS file, NULL::INTEGER AS line, NULL::INTEGER AS record, "
                "NULL::INTEGER AS year, NULL::VARCHAR AS child, NULL::VARCHAR AS rule, "
                "NULL::VARCHAR AS type, NULL::VARCHAR AS message, NULL::VARCHAR AS value, "
                "NULL::VARCHAR AS \"table\", NULL::VARCHAR AS fields, NULL::VARCHAR AS action, "
                "NULL::VARCHAR AS format, NULL::VARCHAR AS severity, NULL::BIGINT AS _row_id "
                "WHERE FALSE")


@dataclass(frozen=True)
class RuleCount:
    """Findings of one rule (on one table) in the report."""

    format: str
    table: str
    rule: str
    kind: str
    severity: str
    message: str
    fields: str
    rows: int


@dataclass(frozen=True)
class ReportFiles:
    """What `write_la_report` wrote: paths, findings by rule, and their total."""

    paths: list[Path]
    by_rule: list[RuleCount]

    @property
    def findings(self) -> int:
        return sum(r.rows for r in self.by_rule)

    def by_kind(self) -> dict[str, int]:
        return {k: sum(r.rows for r in self.by_rule if r.kind == k) for k in ("error", "query")}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], set[str]]:
    """(schema, table) -> column names, for every table (one catalog query: information_schema
    per table cost 5 ms each)."""
    return {(schema, table): set(names) for schema, table, names in con.execute(
        "SELECT schema_name, table_name, list(column_name) FROM duckdb_columns() "
        "GROUP BY ALL").fetchall()}


def _value_expr(fields_list: list[str], columns: set[str]) -> str:
    """`FIELD=value; ...` for the rule's fields that are columns of the table, as written (the
    raw text of a typed column; a code as the rules read it, trimmed and upper-cased)."""
    cases = []
    for fields in fields_list:
        parts = []
        for field in (f for f in fields.split(",") if f):
            source = f"raw_{field}" if f"raw_{field}" in columns else (
                field if field in columns else None)
            if source is None:
                continue
            label = field.replace("'", "''")
            parts.append(f"'{label}=' || COALESCE(CAST(t.{_q(source)} AS VARCHAR), '')")
        if parts:
            literal = fields.replace("'", "''")
            cases.append(f"WHEN '{literal}' THEN concat_ws('; ', {', '.join(parts)})")
    return f"CASE i.fields {' '.join(cases)} END" if cases else "NULL::VARCHAR"


def _findings_sql(con: duckdb.DuckDBPyConnection,
                  leave_out: Mapping[str, Collection[int]]) -> str | None:
    """One SELECT of every reported finding in LA_COLUMNS order (plus format, severity and the
    row's id), unordered."""
    groups = con.execute("SELECT r.format, r.table_name, list(DISTINCT r.fields) "
                         "FROM validation.findings f JOIN validation.rules r USING (rule_id) "
                         "GROUP BY ALL ORDER BY ALL").fetchall()
    parts = []
    every = _columns(con) if groups else {}
    for fmt, table, fields_list in groups:
        columns = every.get((fmt, table), set())
        record = "t.source_record" if "source_record" in columns else "NULL::INTEGER"
        year = "t.collection_year" if "collection_year" in columns else "NULL::INTEGER"
        skip = sorted(int(y) for y in leave_out.get(fmt, ()))
        where = [f"i.format = '{fmt}'", f"i.table_name = '{table}'"]
        if skip and "collection_year" in columns:
            where.append(f"t.collection_year NOT IN ({', '.join(map(str, skip))})")
        parts.append(f"""
            SELECT i.file, i.line, {record} AS record, {year} AS year, i.child, i.rule,
                   i.kind AS type, i.message, {_value_expr(fields_list, columns)} AS value,
                   i.table_name AS "table", i.fields,
                   CASE i.severity WHEN 'reject' THEN '{QUARANTINED}' ELSE '' END AS action,
                   i.format, i.severity, i.row_id AS _row_id
            FROM validation.issues i JOIN {_q(fmt)}.{_q(table)} t ON t._row = i.row_id
            WHERE {' AND '.join(where)}""")
    return " UNION ALL ".join(parts) if parts else None


def write_la_report(con: duckdb.DuckDBPyConnection, folder: Path, *,
                    leave_out: Mapping[str, Collection[int]] | None = None,
                    xlsx: bool = True) -> ReportFiles:
    """Write the LA's report (CSV, and the XLSX unless `xlsx` is false) into `folder` from the
    findings in `con` (`validation.findings` and `validation.rules`, joined to their rows by the
    `validation.issues` view); `leave_out`: per format, collection years whose findings are
    not reported (last year's return). Each file appears whole or not at all."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"cannot create report folder ({exc.strerror})",
                             file=str(folder)) from None
    select = _findings_sql(con, leave_out or {}) or _NO_FINDINGS
    row = con.execute("SELECT count(*) FROM validation.findings").fetchone()
    many = bool(row and row[0] >= ARROW_WRITER_FROM)
    # Many findings: a view, which the Arrow writer streams (sorted), so nothing holds every
    # finding. Few: a table, so the counts, the CSV and the workbook's rows (three queries) do
    # not each join the findings to their rows again (x1 CIN census: 0.35 s -> 0.1 s).
    kind = "VIEW" if many else "TABLE"
    con.execute(f"DROP VIEW IF EXISTS _report; DROP TABLE IF EXISTS temp.main._report; "
                f"CREATE TEMP {kind} _report AS {select}")
    try:
        by_rule = [RuleCount(*row) for row in con.execute("""
            SELECT format, "table", rule, type, severity, any_value(message), any_value(fields),
                   count(*)
            FROM _report GROUP BY format, "table", rule, type, severity
            ORDER BY format, type, rule, "table" """).fetchall()]
        csv_path = folder / f"{REPORT_STEM}.csv"
        first: list[tuple[Any, ...]] = []
        keep = XLSX_PER_RULE if xlsx else 0
        if many:
            _atomic(csv_path, lambda tmp: first.extend(_write_csv_arrow(con, tmp,
                                                                        keep_first=keep)))
        else:
            _atomic(csv_path, lambda tmp: first.extend(_write_csv(con, tmp, keep_first=keep)))
        paths = [csv_path]
        if xlsx:
            xlsx_path = folder / f"{REPORT_STEM}.xlsx"
            _atomic(xlsx_path, lambda tmp: _write_xlsx(tmp, by_rule, first))
            paths.append(xlsx_path)
    finally:
        con.execute(f"DROP {kind} IF EXISTS temp.main._report")
    return ReportFiles(paths=paths, by_rule=by_rule)


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv(con: duckdb.DuckDBPyConnection, path: Path, *, keep_first: int = 0
               ) -> list[tuple[Any, ...]]:
    """Every finding, sorted, into the CSV; return the first `keep_first` findings of each rule
    in that order (unescaped, in LA_COLUMNS order) for the workbook. DuckDB's CSV writer does
    it without pyarrow (the CIN-only check never loads it); `_write_csv_arrow` writes the same
    bytes faster when there are many findings."""
    cells = ", ".join(safe_cell_sql(_q(c)) + f" AS {_q(c)}" if c in _LA_TEXT_COLUMNS else _q(c)
                      for c in LA_COLUMNS)
    body = path.with_name(path.name + ".body")
    try:
        # Strings always quoted, as pyarrow's writer does: both writers give the same bytes.
        con.execute(f"COPY (SELECT {cells} FROM _report ORDER BY {_ORDER}) "
                    f"TO {quote_literal(str(body))} (FORMAT csv, HEADER false, "
                    f"FORCE_QUOTE ({', '.join(_q(c) for c in _TEXT_COLUMNS)}), "
                    "DELIMITER ',', QUOTE '\"', ESCAPE '\"', NEW_LINE '\r\n')")
        with path.open("wb") as out, body.open("rb") as rows:
            # The BOM makes Excel read UTF-8; the header line comes from the same escaping helper.
            out.write(csv_bytes(LA_COLUMNS, [], bom=True))
            shutil.copyfileobj(rows, out, 1 << 20)
    finally:
        body.unlink(missing_ok=True)
    if not keep_first:
        return []
    columns = ", ".join(_q(c) for c in LA_COLUMNS)
    return con.execute(f"""
        SELECT {columns} FROM (
            SELECT *, row_number() OVER (PARTITION BY {_RULE_KEY} ORDER BY {_ORDER}) AS _nth
            FROM _report)
        WHERE _nth <= {int(keep_first)} ORDER BY {_ORDER}""").fetchall()


def _write_csv_arrow(con: duckdb.DuckDBPyConnection, path: Path, *, keep_first: int = 0
                     ) -> list[tuple[Any, ...]]:
    """`_write_csv` for many findings: one sorted pass streamed through pyarrow's CSV writer in
    Arrow batches, the workbook's rows picked from the batches on the way (x20 SSDA903, 733,480
    findings: 2.5 s against 5 s for DuckDB's writer and a second pass)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cells = ", ".join(safe_cell_sql(_q(c)) + f" AS {_q(c)}" if c in _LA_TEXT_COLUMNS else _q(c)
                      for c in LA_COLUMNS)
    raw = ", ".join(f"{_q(c)} AS {_q('_raw_' + c)}" for c in _LA_TEXT_COLUMNS)
    reader = con.execute(f"SELECT {cells}, format AS _format, {raw} FROM _report "
                         f"ORDER BY {_ORDER}").fetch_record_batch(_BATCH_ROWS)
    schema = pa.schema([reader.schema.field(c) for c in LA_COLUMNS])
    unescaped = [f"_raw_{c}" if c in _LA_TEXT_COLUMNS else c for c in LA_COLUMNS]
    seen: dict[str, int] = {}
    kept: list[tuple[Any, ...]] = []
    with path.open("wb") as out:
        # The BOM makes Excel read UTF-8; the header line comes from the same escaping helper.
        out.write(csv_bytes(LA_COLUMNS, [], bom=True))
        options = pacsv.WriteOptions(include_header=False, eol="\r\n")
        with pacsv.CSVWriter(out, schema, write_options=options) as writer:
            for batch in reader:
                writer.write_batch(batch.select(list(LA_COLUMNS)))
                if keep_first:
                    kept += _first_of_each_rule(batch, keep_first, seen, unescaped)
    return kept


def _first_of_each_rule(batch: Any, keep_first: int, seen: dict[str, int],
                        columns: list[str]) -> list[tuple[Any, ...]]:
    """Rows of `batch` among the first `keep_first` of their rule (format, table, rule, type)
    counting the rows of earlier batches in `seen`; in batch order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    key = pc.binary_join_element_wise(
        *(pc.fill_null(batch[c], "") for c in ("_format", "table", "rule", "type")), "\x1f")
    take: list[int] = []
    for value in pc.unique(key).to_pylist():
        room = keep_first - seen.get(value, 0)
        if room <= 0:
            continue
        rows = pc.indices_nonzero(pc.equal(key, value)).to_pylist()[:room]
        seen[value] = seen.get(value, 0) + len(rows)
        take += rows
    if not take:
        return []
    picked = batch.take(pa.array(sorted(take), pa.int64()))
    return list(zip(*(picked[c].to_pylist() for c in columns), strict=True))


def _write_xlsx(path: Path, by_rule: list[RuleCount], findings: list[tuple[Any, ...]]) -> None:
    from trialvault.spreadsheets import write_plain_xlsx

    summary = [(r.format, r.table, r.rule, r.kind, r.message, r.fields, r.rows,
                r.rows if r.rows <= XLSX_PER_RULE else
                f"first {XLSX_PER_RULE} (all in {REPORT_STEM}.csv)") for r in by_rule]
    # Strings are written as text only (no formula, URL or number parsing), so no escaping.
    write_plain_xlsx(str(path), [("summary", SUMMARY_COLUMNS, summary),
                                 ("findings", LA_COLUMNS, findings)],
                     widths={"summary": (12, 20, 8, 8, 80, 30, 10, 30),
                             "findings": (24, 8, 8, 6, 18, 8, 6, 60, 40, 20, 24, 16)})


def summary(by_rule: list[RuleCount], rows_checked: Mapping[str, int],
            rules_run: Mapping[str, list[str]]) -> dict[str, Any]:
    """The manifest's validation summary: counts by rule, type and severity (no values, no child
    codes), in the shape of `validate.ValidationResult.summary`."""
    return {
        "issues": sum(r.rows for r in by_rule),
        "by_kind": {k: sum(r.rows for r in by_rule if r.kind == k) for k in ("error", "query")},
        "by_severity": {s: sum(r.rows for r in by_rule if r.severity == s)
                        for s in ("reject", "warn")},
        "rows_checked": dict(rows_checked),
        "rules_run": {fmt: len(codes) for fmt, codes in rules_run.items()},
        "by_rule": [{"format": r.format, "table": r.table, "rule": r.rule, "kind": r.kind,
                     "severity": r.severity, "rows": r.rows}
                    for r in sorted(by_rule, key=lambda r: (r.format, r.table, r.rule, r.kind,
                                                            r.severity))],
    }


def package_csv(by_rule: list[RuleCount]) -> bytes:
    """The package copy: counts by rule only (see module doc)."""
    return csv_bytes(PACKAGE_COLUMNS, [(r.format, r.table, r.rule, r.kind, r.severity, r.rows)
                                       for r in by_rule])
