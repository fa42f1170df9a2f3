"""The validation engine: typed tables in DuckDB, rules from the spec run as SQL.

Each format's tables live in a DuckDB schema named after the format (`ssda903.episodes`,
`cin_census.cin_details`, ...). Typing turns the readers' strings into DATE / INTEGER / BOOLEAN
columns (a value that does not parse becomes NULL, its text stays in `raw_<COL>` so a rule can
report it) and adds `_row`, `collection_start` and `collection_end`. Every finding becomes one
row of `validation.issues`: format, table, row, file, line, child, rule, DfE type (error or
query), our severity (reject or warn), message and fields.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from trialvault.errors import InputFileError
from trialvault.formats import SourceTables
from trialvault.formats import cin_census as _cin_reader
from trialvault.formats import pupil as _pupil_reader
from trialvault.formats import ssda903 as _ssda903_reader
from trialvault.prepare.working_days import WORKING_DAYS_BEFORE, working_days_table
from trialvault.spec import FormatLayout, TableLayout, load_code_lists, load_layout
from trialvault.spec.rules import Rule, RuleSet

ISSUES = "validation.issues"
ISSUE_COLUMNS = ("format", "table_name", "row_id", "file", "line", "child", "rule", "kind",
                 "severity", "message", "fields")
# The column naming the child in each format's tables (education/NEET rows have none: UPN is
# an identifier and never goes into a report).
CHILD_COLUMN = {"ssda903": "CHILD", "cin_census": "LAchildID"}
_READER_SCHEMAS: dict[str, Callable[[str], pa.Schema]] = {
    "ssda903": _ssda903_reader.table_schema,
    "cin_census": _cin_reader.table_schema,
    "education": functools.partial(_pupil_reader.table_schema, "education"),
    "neet": functools.partial(_pupil_reader.table_schema, "neet"),
}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# Below this many input rows DuckDB runs single-threaded: starting parallel pipelines costs
# more than it saves on small tables (measured on the public fake returns).
SMALL_INPUT_ROWS = 200_000


def connect(*, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never spills to disk (no plaintext personal data on disk)."""
    con = duckdb.connect(":memory:")
    con.execute("SET temp_directory = ''")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    _install_spec(con)
    return con


@functools.cache
def _spec_tables() -> tuple[pa.Table, pa.Table]:
    """The code lists (list, code, validity) and harmonisations (list, code, target)."""
    rows = []
    for name, code_list in load_code_lists().items():
        for code in code_list.codes:
            validity = code_list.validity.get(code)
            rows.append((name, code, validity.valid_from if validity else None,
                         validity.valid_to if validity else None))
    codes = pa.table({"list": [r[0] for r in rows], "code": [r[1] for r in rows],
                      "valid_from": pa.array([r[2] for r in rows], pa.int32()),
                      "valid_to": pa.array([r[3] for r in rows], pa.int32())})
    harmonise = [(name, old, new) for name, code_list in load_code_lists().items()
                 for old, new in code_list.harmonised_to.items()]
    pairs = pa.table({"list": [h[0] for h in harmonise], "code": [h[1] for h in harmonise],
                      "target": [h[2] for h in harmonise]})
    return codes, pairs


def _install_spec(con: duckdb.DuckDBPyConnection) -> None:
    codes, pairs = _spec_tables()
    con.execute("CREATE SCHEMA IF NOT EXISTS validation")
    con.register("_code_lists", codes)
    con.register("_harmonise", pairs)
    try:
        con.execute("CREATE OR REPLACE TABLE validation.code_lists AS SELECT * FROM _code_lists;"
                    "CREATE OR REPLACE TABLE validation.harmonise AS SELECT * FROM _harmonise")
    finally:
        con.unregister("_code_lists")
        con.unregister("_harmonise")
    con.register("_working_days", working_days_table())
    try:
        con.execute("CREATE OR REPLACE TABLE validation.working_days AS SELECT * FROM _working_days")
    finally:
        con.unregister("_working_days")
    con.execute(f"CREATE OR REPLACE MACRO working_days_before(d, k) AS {WORKING_DAYS_BEFORE}")
    # `in_codes(x, 'LIST', year)`: x is a code of LIST valid in collection year `year`.
    con.execute("""
        CREATE OR REPLACE MACRO in_codes(x, list_name, yr) AS x IN (
            SELECT c.code FROM validation.code_lists c WHERE c.list = list_name
              AND (c.valid_from IS NULL OR yr IS NULL OR c.valid_from <= yr)
              AND (c.valid_to IS NULL OR yr IS NULL OR yr <= c.valid_to))""")
    # Whole years between two dates (age on a date, as the DfE counts birthdays).
    con.execute("""
        CREATE OR REPLACE MACRO age_years(born, on_date) AS
            date_part('year', on_date) - date_part('year', born)
            - CASE WHEN strftime(on_date, '%m%d') < strftime(born, '%m%d') THEN 1 ELSE 0 END""")
    con.execute(f"CREATE OR REPLACE TABLE {ISSUES} (format VARCHAR, table_name VARCHAR, "
                "row_id BIGINT, file VARCHAR, line INTEGER, child VARCHAR, rule VARCHAR, "
                "kind VARCHAR, severity VARCHAR, message VARCHAR, fields VARCHAR)")


def _date_regex(date_format: str) -> str:
    parts = re.split(r"(%[dmY])", date_format)
    mapping = {"%d": r"\d{1,2}", "%m": r"\d{1,2}", "%Y": r"\d{4}"}
    return "".join(mapping.get(p, re.escape(p)) for p in parts)


def _typed_expr(column: str, kind: str, date_format: str, upper: bool = False) -> list[str]:
    col = q(column)
    text = f"NULLIF(TRIM({col}), '')"
    if kind == "string":
        return [f"{f'upper({text})' if upper else text} AS {col}"]
    raw = f"{col} AS {q('raw_' + column)}"
    if kind == "date":
        pattern = _date_regex(date_format).replace("'", "''")
        expr = (f"CASE WHEN regexp_full_match({text}, '{pattern}') "
                f"THEN TRY_STRPTIME({text}, '{date_format}')::DATE END")
    elif kind == "integer":
        expr = (f"CASE WHEN regexp_full_match({text}, '-?[0-9]{{1,9}}') "
                f"THEN TRY_CAST({text} AS INTEGER) END")
    elif kind == "boolean":
        expr = (f"CASE lower({text}) WHEN '1' THEN TRUE WHEN 'true' THEN TRUE "
                "WHEN '0' THEN FALSE WHEN 'false' THEN FALSE END")
    else:
        raise ValueError(f"unknown column type {kind}")
    return [f"{expr} AS {col}", raw]


def _period_exprs(fmt: str, names: set[str]) -> list[str]:
    if fmt == "cin_census" and "reference_date" in names:
        # The CIN census year runs to its ReferenceDate (normally 31 March).
        ref = ("CASE WHEN regexp_full_match(TRIM(reference_date), '\\d{4}-\\d{1,2}-\\d{1,2}') "
               "THEN TRY_STRPTIME(TRIM(reference_date), '%Y-%m-%d')::DATE END")
        fallback = "make_date(collection_year, 3, 31)"
        end = f"COALESCE({ref}, {fallback})"
        return [f"{end} AS collection_end",
                f"CAST({end} - INTERVAL 1 YEAR + INTERVAL 1 DAY AS DATE) AS collection_start"]
    if "collection_year" in names:
        return ["make_date(collection_year - 1, 4, 1) AS collection_start",
                "make_date(collection_year, 3, 31) AS collection_end"]
    return ["NULL::INTEGER AS collection_year", "NULL::DATE AS collection_start",
            "NULL::DATE AS collection_end"]


def load_tables(con: duckdb.DuckDBPyConnection, source: SourceTables,
                layout: FormatLayout | None = None, *, materialise: bool = True,
                only: Collection[str] | None = None) -> dict[str, list[str]]:
    """Create the typed tables of `source` in schema `<format>`; return their columns.

    `only` limits typing to the tables something will read (rules, minimisation): the others
    are never used, so typing them is wasted work. `materialise=False` makes views over the
    registered Arrow data instead (cheap to create, typed again on every read: for the tiny
    example tables only)."""
    fmt = source.format
    layout = layout or load_layout(fmt)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(fmt)}")
    columns = {}
    for name, spec in layout.tables.items():
        if only is not None and name not in only:
            continue
        table = source.tables.get(name)
        if table is None:
            table = _empty_table(spec, source)
        columns[name] = _load_table(con, fmt, spec, table, layout.date_format, materialise,
                                    layout.upper_case)
    return columns


def _empty_table(spec: TableLayout, source: SourceTables) -> pa.Table:
    # A table absent from the return is an empty table, so rules that read it still run.
    schema_of = _READER_SCHEMAS.get(source.format)
    if schema_of is not None:
        return schema_of(spec.name).empty_table()
    return pa.schema([pa.field(c, pa.string()) for c in spec.all_column_names]).empty_table()


def _load_table(con: duckdb.DuckDBPyConnection, fmt: str, spec: TableLayout, table: pa.Table,
                date_format: str, materialise: bool, upper: bool = False) -> list[str]:
    with_row = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
    view = f"_arrow_{fmt}_{spec.name}"
    names = set(table.column_names)
    exprs = ["_row"]
    layout_cols = set(spec.all_column_names)
    for column in spec.columns:
        # Only coded columns: child codes and UPNs must stay as written, since they link to
        # other returns and exports that are not upper-cased.
        exprs += _typed_expr(column.name, column.type, date_format,
                             upper and column.code_list is not None)
    exprs += [q(n) for n in table.column_names if n not in layout_cols]
    exprs += _period_exprs(fmt, names)
    con.register(view, with_row)
    select = f"SELECT {', '.join(exprs)} FROM {q(view)}"
    if not materialise:
        con.execute(f"CREATE OR REPLACE VIEW {q(fmt)}.{q(spec.name)} AS {select}")
        return [*spec.all_column_names, *(n for n in table.column_names if n not in layout_cols)]
    try:
        con.execute(f"CREATE OR REPLACE TABLE {q(fmt)}.{q(spec.name)} AS {select}")
    finally:
        con.unregister(view)
    return [*spec.all_column_names, *(n for n in table.column_names if n not in layout_cols)]


@dataclass(frozen=True)
class ValidationResult:
    """Findings of one validation run (values never included: rows are named by file/line)."""

    issues: pa.Table
    rules_run: dict[str, list[str]]
    rows_checked: dict[str, int]

    @property
    def issue_count(self) -> int:
        return self.issues.num_rows

    def counts(self) -> dict[str, dict[str, int]]:
        """{format: {rule: flagged rows}}."""
        out: dict[str, dict[str, int]] = {}
        for fmt, rule in zip(self.issues["format"].to_pylist(), self.issues["rule"].to_pylist(),
                             strict=True):
            out.setdefault(fmt, {}).setdefault(rule, 0)
            out[fmt][rule] += 1
        return out

    def summary(self) -> dict[str, Any]:
        """Counts by rule, DfE type and severity, for the manifest (no values, no child codes)."""
        by: dict[tuple[str, str, str, str, str], int] = {}
        for key in zip(*(self.issues[c].to_pylist() for c in
                         ("format", "table_name", "rule", "kind", "severity")), strict=True):
            by[key] = by.get(key, 0) + 1
        return {
            "issues": self.issue_count,
            "by_kind": {k: sum(n for key, n in by.items() if key[3] == k)
                        for k in ("error", "query")},
            "by_severity": {s: sum(n for key, n in by.items() if key[4] == s)
                            for s in ("reject", "warn")},
            "rows_checked": dict(self.rows_checked),
            "rules_run": {fmt: len(codes) for fmt, codes in self.rules_run.items()},
            "by_rule": [{"format": f, "table": t, "rule": r, "kind": k, "severity": s, "rows": n}
                        for (f, t, r, k, s), n in sorted(by.items())],
        }


def run_rules(con: duckdb.DuckDBPyConnection, ruleset: RuleSet,
              codes: Iterable[str] | None = None, *,
              tables: dict[str, list[str]] | None = None) -> list[str]:
    """Run the rules of `ruleset` (all, or `codes`) on the loaded tables (`tables`: their
    columns, as `load_tables` returns); findings go into `validation.issues`. Returns the codes
    run."""
    fmt = ruleset.format
    wanted = set(codes) if codes is not None else None
    if tables is None:
        found = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                            "WHERE table_schema = ?", [fmt]).fetchall()
        columns = {(t, c) for t, c in found}
    else:
        columns = {(t, c) for t, cols in tables.items() for c in cols}
    con.execute(f"SET search_path = '{fmt},main'")
    empty = _empty_tables(con, fmt, {n for r in ruleset.rules for n in r.needs}, columns)
    # A rule that needs reference data the LA did not give (a postcode directory, say) is not
    # run: it would flag every row. The caller reports it as not run, with the reason.
    chosen = [r for r in ruleset.rules if (wanted is None or r.code in wanted)
              and not set(r.needs) & empty]
    try:
        # All rules of one table run as one statement (a statement costs milliseconds whatever
        # its size, and there are dozens of rules per table); the row-wise ones in one scan.
        by_table: dict[str, list[Rule]] = {}
        for rule in chosen:
            by_table.setdefault(rule.table, []).append(rule)
        for batch in by_table.values():
            _run_batch(con, ruleset, batch, columns)
    finally:
        con.execute("SET search_path = 'main'")
    return [r.code for r in chosen]


def _empty_tables(con: duckdb.DuckDBPyConnection, fmt: str, names: set[str],
                  columns: set[tuple[str, str]]) -> set[str]:
    loaded = {t for t, _ in columns}
    empty = set()
    for name in sorted(names):
        row = (con.execute(f"SELECT count(*) FROM {q(fmt)}.{q(name)}").fetchone()
               if name in loaded else None)
        if not row or not row[0]:
            empty.add(name)
    return empty


def _year_filter(rule: Rule, alias: str) -> list[str]:
    years = []
    if rule.valid_from is not None:
        years.append(f"{alias}.collection_year >= {int(rule.valid_from)}")
    if rule.valid_to is not None:
        years.append(f"{alias}.collection_year <= {int(rule.valid_to)}")
    return years


def _child_expr(fmt: str, table: str, columns: set[tuple[str, str]]) -> str:
    child = CHILD_COLUMN.get(fmt)
    return f"t.{q(child)}" if child and (table, child) in columns else "NULL"


# DuckDB errors raised before any row is read (a mistake in the rule's SQL) name only the SQL;
# any other error (a conversion, say) may quote a value, so only its kind is reported.
_SQL_ERRORS = (duckdb.BinderException, duckdb.ParserException, duckdb.CatalogException)


def _rule_error(fmt: str, rule: Rule, exc: duckdb.Error) -> InputFileError:
    # A broken rule is a spec defect: name it, never the data.
    detail = f": {str(exc).splitlines()[0]}" if isinstance(exc, _SQL_ERRORS) else ""
    return InputFileError(f"rule {rule.code} cannot run ({type(exc).__name__}{detail})",
                          file=f"{fmt}.yaml", rule=rule.code)


def _run_rule(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rule: Rule,
              columns: set[tuple[str, str]]) -> None:
    fmt = ruleset.format
    table = q(rule.table)
    if rule.where is not None:
        flagged = f"SELECT _row FROM {table} WHERE ({rule.where})"
    else:
        flagged = f"SELECT DISTINCT _row FROM ({rule.query}) AS _q"
    years = _year_filter(rule, "t")
    year_filter = f"AND {' AND '.join(years)}" if years else ""
    select = ruleset.with_views(rule.tables, f"""
        SELECT ?, ?, t._row, t.source_file, t.source_line, {_child_expr(fmt, rule.table, columns)},
               ?, ?, ?, ?, ?
        FROM {table} AS t
        WHERE t._row IN ({flagged}) {year_filter}""")
    sql = f"INSERT INTO {ISSUES} {select}"
    try:
        con.execute(sql, [fmt, rule.table, rule.code, rule.dfe_kind, rule.severity, rule.message,
                          ",".join(rule.fields)])
    except duckdb.Error as exc:
        raise _rule_error(fmt, rule, exc) from None


def _run_batch(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rules: list[Rule],
               columns: set[tuple[str, str]]) -> None:
    """The rules of one table in one statement: the row-wise ones in one scan (each row yields
    the indexes of the rules it breaks), the others as subqueries, all joined to the rules'
    codes and messages."""
    fmt = ruleset.format
    if len(rules) == 1:
        _run_rule(con, ruleset, rules[0], columns)
        return
    table = rules[0].table
    parts = []
    hits = [f"CASE WHEN ({rule.where}) THEN {i} END"
            for i, rule in enumerate(rules) if rule.where is not None]
    if hits:
        parts.append(f"""
            SELECT w._row, _hits._rule_idx AS idx
            FROM (SELECT t._row, list_filter([{', '.join(hits)}], _hit -> _hit IS NOT NULL)
                                 AS _rule_hits
                  FROM {q(table)} AS t) AS w,
                 unnest(w._rule_hits) AS _hits(_rule_idx)""")
    parts += [f"SELECT DISTINCT _q._row, {i} AS idx FROM ({rule.query}) AS _q"
              for i, rule in enumerate(rules) if rule.query is not None]
    meta = pa.table({"idx": list(range(len(rules))), "code": [r.code for r in rules],
                     "kind": [r.dfe_kind for r in rules],
                     "severity": [r.severity for r in rules],
                     "message": [r.message for r in rules],
                     "fields": [",".join(r.fields) for r in rules],
                     "valid_from": pa.array([r.valid_from for r in rules], pa.int32()),
                     "valid_to": pa.array([r.valid_to for r in rules], pa.int32())})
    con.register("_rule_meta", meta)
    select = ruleset.with_views([t for r in rules for t in r.tables], f"""
        SELECT ?, ?, t._row, t.source_file, t.source_line, {_child_expr(fmt, table, columns)},
               m.code, m.kind, m.severity, m.message, m.fields
        FROM ({' UNION ALL '.join(parts)}) AS f
        JOIN {q(table)} AS t ON t._row = f._row
        JOIN _rule_meta AS m ON m.idx = f.idx
        WHERE (m.valid_from IS NULL OR t.collection_year >= m.valid_from)
          AND (m.valid_to IS NULL OR t.collection_year <= m.valid_to)""")
    sql = f"INSERT INTO {ISSUES} {select}"
    try:
        con.execute(sql, [fmt, table])
    except duckdb.Error:
        # The statement inserted nothing: run the rules one by one to name the broken one.
        for rule in rules:
            _run_rule(con, ruleset, rule, columns)
        raise
    finally:
        con.unregister("_rule_meta")


def issues_table(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """All findings so far, ordered by format, file, line and rule."""
    return con.execute(f"SELECT * FROM {ISSUES} ORDER BY format, file, line, rule, table_name, "
                       "row_id").arrow().read_all()


def rule_tables(ruleset: RuleSet) -> set[str]:
    """Every table some rule of `ruleset` reads (directly or through a view)."""
    return ruleset.base_tables(t for r in ruleset.rules for t in (r.table, *r.tables))


def validate_sources(con: duckdb.DuckDBPyConnection, sources: Iterable[SourceTables],
                     rulesets: dict[str, RuleSet],
                     needed: Mapping[str, Collection[str]] | None = None) -> ValidationResult:
    """Load every source into `con`, run its format's rules, and return the findings.
    `needed`: per format, tables to load besides those the rules read (all when None)."""
    rules_run: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    for source in sources:
        only = None
        if needed is not None:
            only = set(needed.get(source.format, ()))
            if source.format in rulesets:
                only |= rule_tables(rulesets[source.format])
        columns = load_tables(con, source, only=only)
        rows[source.format] = source.row_count
        if source.format in rulesets:
            rules_run[source.format] = run_rules(con, rulesets[source.format], tables=columns)
    return ValidationResult(issues=issues_table(con), rules_run=rules_run, rows_checked=rows)
