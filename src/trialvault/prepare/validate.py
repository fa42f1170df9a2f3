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
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from trialvault.errors import InputFileError
from trialvault.formats import ColumnTable, Fields, SourceTables, Table, as_arrow
from trialvault.prepare.working_days import WORKING_DAYS_BEFORE, create_working_days
from trialvault.spec import FormatLayout, TableLayout, load_code_lists, load_layout
from trialvault.spec.rules import Rule, RuleSet
from trialvault.sql import create_table_from_columns, insert_columns, quote_literal

if TYPE_CHECKING:
    import pyarrow as pa

ISSUES = "validation.issues"      # a view: one row per finding, ISSUE_COLUMNS
FINDINGS = "validation.findings"  # (rule_id, row_id): what the rules insert
RULES = "validation.rules"        # rule_id -> format, table, code, type, severity, message
ISSUE_COLUMNS = ("format", "table_name", "row_id", "file", "line", "child", "rule", "kind",
                 "severity", "message", "fields")
# The column naming the child in each format's tables (education/NEET rows have none: UPN is
# an identifier and never goes into a report).
CHILD_COLUMN = {"ssda903": "CHILD", "cin_census": "LAchildID"}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# Below this many input rows DuckDB runs single-threaded: starting parallel pipelines costs
# more than it saves on small tables (measured on the public fake returns).
SMALL_INPUT_ROWS = 200_000


def connect(*, threads: int | None = None, lean: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never spills to disk (no plaintext personal data on disk).

    `lean`: give freed memory back at once. DuckDB's allocator otherwise keeps freed blocks for
    reuse until 512 MiB are free. On a check of XML returns alone (no Arrow: about 100 MB in
    all) that cache is a fifth of the peak and flushing it costs little (x1 CIN census: 115 ->
    97 MB); where Arrow tables are read (SSDA903) it is a small share and flushing costs
    double the time (x1 SSDA903: 1.8 -> 3.7 s)."""
    con = duckdb.connect(":memory:")
    con.execute("SET temp_directory = ''")
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    if lean:
        con.execute("SET allocator_bulk_deallocation_flush_threshold = '0B'")
    _install_spec(con)
    return con


_CODE_LIST_FIELDS = (("list", "VARCHAR"), ("code", "VARCHAR"), ("valid_from", "INTEGER"),
                     ("valid_to", "INTEGER"))
_HARMONISE_FIELDS = (("list", "VARCHAR"), ("code", "VARCHAR"), ("target", "VARCHAR"))


@functools.cache
def _spec_tables() -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """The code lists (list, code, validity) and harmonisations (list, code, target), as
    columns."""
    codes: dict[str, list[Any]] = {name: [] for name, _ in _CODE_LIST_FIELDS}
    for name, code_list in load_code_lists().items():
        for code in code_list.codes:
            validity = code_list.validity.get(code)
            codes["list"].append(name)
            codes["code"].append(code)
            codes["valid_from"].append(validity.valid_from if validity else None)
            codes["valid_to"].append(validity.valid_to if validity else None)
    pairs: dict[str, list[Any]] = {name: [] for name, _ in _HARMONISE_FIELDS}
    for name, code_list in load_code_lists().items():
        for old, new in code_list.harmonised_to.items():
            pairs["list"].append(name)
            pairs["code"].append(old)
            pairs["target"].append(new)
    return codes, pairs


def _install_spec(con: duckdb.DuckDBPyConnection) -> None:
    codes, pairs = _spec_tables()
    con.execute("CREATE SCHEMA IF NOT EXISTS validation")
    con.execute("DROP TABLE IF EXISTS validation.code_lists; "
                "DROP TABLE IF EXISTS validation.harmonise")
    create_table_from_columns(con, "validation.code_lists", _CODE_LIST_FIELDS, codes)
    create_table_from_columns(con, "validation.harmonise", _HARMONISE_FIELDS, pairs)
    create_working_days(con)
    con.execute(f"CREATE OR REPLACE MACRO working_days_before(d, k) AS {WORKING_DAYS_BEFORE}")
    # `in_codes(x, 'LIST', year)`: x is a code of LIST valid in collection year `year`.
    con.execute("""
        CREATE OR REPLACE MACRO in_codes(x, list_name, yr) AS x IN (
            SELECT c.code FROM validation.code_lists c WHERE c.list = list_name
              AND (c.valid_from IS NULL OR yr IS NULL OR c.valid_from <= yr)
              AND (c.valid_to IS NULL OR yr IS NULL OR yr <= c.valid_to))""")
    # `dmy_date(text)`: a d/m/yyyy text as a DATE, NULL when it is not a real date (31/02).
    # Spelt with TRY_CAST of an ISO string rather than TRY_STRPTIME, which Spark lacks.
    con.execute("""
        CREATE OR REPLACE MACRO dmy_date(s) AS TRY_CAST(
            split_part(s, '/', 3) || '-' || lpad(split_part(s, '/', 2), 2, '0') || '-'
            || lpad(split_part(s, '/', 1), 2, '0') AS DATE)""")
    # `is_weekend(day)`: Saturday or Sunday, counted from Monday 1 January 1900 (DuckDB's and
    # Spark's day-of-week functions number the days differently, and SQLGlot does not map them).
    con.execute("CREATE OR REPLACE MACRO is_weekend(d) AS "
                "datediff('day', DATE '1900-01-01', d) % 7 IN (5, 6)")
    # Whole years between two dates (age on a date, as the DfE counts birthdays).
    con.execute("""
        CREATE OR REPLACE MACRO age_years(born, on_date) AS
            date_part('year', on_date) - date_part('year', born)
            - CASE WHEN strftime(on_date, '%m%d') < strftime(born, '%m%d') THEN 1 ELSE 0 END""")
    con.execute(f"CREATE OR REPLACE TABLE {FINDINGS} (rule_id INTEGER, row_id BIGINT)")
    con.execute(f"CREATE OR REPLACE TABLE {RULES} (rule_id INTEGER, format VARCHAR, "
                "table_name VARCHAR, rule VARCHAR, kind VARCHAR, severity VARCHAR, "
                "message VARCHAR, fields VARCHAR)")
    con.execute(f"CREATE OR REPLACE VIEW {ISSUES} AS {_EMPTY_ISSUES}")


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


def _empty_table(spec: TableLayout, source: SourceTables) -> Table:
    # A table absent from the return is an empty table, so rules that read it still run.
    if source.format == "cin_census":
        from trialvault.formats.cin_census import table_fields

        return table_fields(spec.name).empty_table()
    if source.format == "ssda903":
        from trialvault.formats.ssda903 import table_schema

        return table_schema(spec.name).empty_table()
    if source.format in ("education", "neet"):
        from trialvault.formats.pupil import table_schema as pupil_schema

        return pupil_schema(source.format, spec.name).empty_table()
    return Fields(tuple((c, "string") for c in spec.all_column_names)).empty_table()


def _load_table(con: duckdb.DuckDBPyConnection, fmt: str, spec: TableLayout, table: Table,
                date_format: str, materialise: bool, upper: bool = False) -> list[str]:
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
    select = f"SELECT {', '.join(exprs)} FROM {q(view)}"
    loaded = [*spec.all_column_names, *(n for n in table.column_names if n not in layout_cols)]
    if isinstance(table, ColumnTable) and materialise:
        # Python columns go in as a temporary table (no pyarrow: see trialvault.sql).
        con.execute(f"DROP TABLE IF EXISTS temp.main.{q(view)}")
        create_table_from_columns(con, view, [*table.fields.sql_fields(), ("_row", "BIGINT")],
                                  {**table.columns, "_row": range(table.num_rows)}, temp=True)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {q(fmt)}.{q(spec.name)} AS {select}")
        finally:
            con.execute(f"DROP TABLE IF EXISTS temp.main.{q(view)}")
        return loaded
    import pyarrow as pa

    arrow = as_arrow(table)
    con.register(view, arrow.append_column("_row", pa.array(range(arrow.num_rows), pa.int64())))
    if not materialise:
        con.execute(f"CREATE OR REPLACE VIEW {q(fmt)}.{q(spec.name)} AS {select}")
        return loaded
    try:
        con.execute(f"CREATE OR REPLACE TABLE {q(fmt)}.{q(spec.name)} AS {select}")
    finally:
        con.unregister(view)
    return loaded


@dataclass(frozen=True)
class ValidationResult:
    """Findings of one validation run (values never included: rows are named by file/line)."""

    issues: pa.Table | None  # None: not collected (the findings stayed in DuckDB)
    rules_run: dict[str, list[str]]
    rows_checked: dict[str, int]

    @property
    def collected(self) -> pa.Table:
        if self.issues is None:
            raise ValueError("the findings were not collected (validate_sources collect=False)")
        return self.issues

    @property
    def issue_count(self) -> int:
        return self.collected.num_rows

    def counts(self) -> dict[str, dict[str, int]]:
        """{format: {rule: flagged rows}}."""
        out: dict[str, dict[str, int]] = {}
        for fmt, rule in zip(self.collected["format"].to_pylist(),
                             self.collected["rule"].to_pylist(), strict=True):
            out.setdefault(fmt, {}).setdefault(rule, 0)
            out[fmt][rule] += 1
        return out

    def summary(self) -> dict[str, Any]:
        """Counts by rule, DfE type and severity, for the manifest (no values, no child codes)."""
        by: dict[tuple[str, str, str, str, str], int] = {}
        for key in zip(*(self.collected[c].to_pylist() for c in
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
    columns, as `load_tables` returns); findings go into `validation.findings` and show in the
    view `validation.issues`. Returns the codes run."""
    fmt = ruleset.format
    wanted = set(codes) if codes is not None else None
    if tables is None:
        found = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                            f"WHERE table_schema = {quote_literal(fmt)}").fetchall()
        columns = {(t, c) for t, c in found}
    else:
        columns = {(t, c) for t, cols in tables.items() for c in cols}
    con.execute(f"SET search_path = '{fmt},main'")
    empty = _empty_tables(con, fmt, {n for r in ruleset.rules for n in r.needs}, columns)
    # A rule that needs reference data the LA did not give (a postcode directory, say) is not
    # run: it would flag every row. The caller reports it as not run, with the reason.
    chosen = [r for r in ruleset.rules if (wanted is None or r.code in wanted)
              and not set(r.needs) & empty]
    ids = _register(con, fmt, chosen)
    shared = _materialise_views(con, ruleset, chosen)
    try:
        # The row-wise rules of a table run together, as a UNION of filtered scans; each rule
        # across rows or tables runs on its own: one statement each keeps memory flat (a UNION
        # of dozens of joins holds all their hash tables at once). Views several rules read are
        # computed once, before them.
        by_table: dict[str, list[tuple[int, Rule]]] = {}
        for rule_id, rule in zip(ids, chosen, strict=True):
            if rule.where is not None:
                by_table.setdefault(rule.table, []).append((rule_id, rule))
            else:
                _run_query_rule(con, ruleset, rule_id, rule, shared)
        for batch in by_table.values():
            for start in range(0, len(batch), _WHERE_BATCH):
                _run_where_rules(con, ruleset, batch[start:start + _WHERE_BATCH], shared)
    finally:
        for view in shared:
            con.execute(f"DROP TABLE IF EXISTS temp.main.{q(view)}")
        con.execute("SET search_path = 'main'")
    _issues_view(con, columns_by_format={fmt: columns})
    return [r.code for r in chosen]


# Row-wise rules per statement (a UNION of simple scans; more only lengthens the plan).
_WHERE_BATCH = 64


def _materialise_views(con: duckdb.DuckDBPyConnection, ruleset: RuleSet,
                       rules: list[Rule]) -> list[str]:
    """Views read by two or more of `rules`, computed once into temporary tables of the same
    name (dropped after the run); returns their names, dependencies first."""
    uses: dict[str, int] = {}
    for rule in rules:
        for view in ruleset.views_of(rule.tables):
            uses[view] = uses.get(view, 0) + 1
    wanted = {v for v, n in uses.items() if n >= 2}
    done: list[str] = []
    for view in ruleset.views_of(wanted):
        if view not in wanted:
            continue
        sql = ruleset.with_views(ruleset.views[view].tables, ruleset.views[view].sql,
                                 materialised=done)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {q(view)} AS {sql}")
        except duckdb.Error as exc:
            raise InputFileError(f"view {view} cannot be computed ({type(exc).__name__})",
                                 file=f"{ruleset.format}.yaml") from None
        done.append(view)
    return done


def _register(con: duckdb.DuckDBPyConnection, fmt: str, rules: list[Rule]) -> list[int]:
    """Give each rule an id in `validation.rules` (its code, table, type, message, fields)."""
    row = con.execute(f"SELECT coalesce(max(rule_id) + 1, 0) FROM {RULES}").fetchone()
    first = int(row[0]) if row else 0
    ids = list(range(first, first + len(rules)))
    if rules:
        meta: dict[str, list[Any]] = {
            "rule_id": ids, "format": [fmt] * len(rules), "table_name": [r.table for r in rules],
            "rule": [r.code for r in rules], "kind": [r.dfe_kind for r in rules],
            "severity": [r.severity for r in rules], "message": [r.message for r in rules],
            "fields": [",".join(r.fields) for r in rules]}
        insert_columns(con, RULES, _RULE_FIELDS, meta)
    return ids


_RULE_FIELDS = (("rule_id", "INTEGER"), ("format", "VARCHAR"), ("table_name", "VARCHAR"),
                ("rule", "VARCHAR"), ("kind", "VARCHAR"), ("severity", "VARCHAR"),
                ("message", "VARCHAR"), ("fields", "VARCHAR"))


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


def _year_filter(rule: Rule, alias: str | None = None) -> list[str]:
    column = f"{alias}.collection_year" if alias else "collection_year"
    years = []
    if rule.valid_from is not None:
        years.append(f"{column} >= {int(rule.valid_from)}")
    if rule.valid_to is not None:
        years.append(f"{column} <= {int(rule.valid_to)}")
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


def _run_query_rule(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rule_id: int,
                    rule: Rule, shared: Collection[str] = ()) -> None:
    assert rule.query is not None
    flagged = f"SELECT DISTINCT _q._row FROM ({rule.query}) AS _q"
    years = _year_filter(rule)
    if years:
        flagged = (f"SELECT _row FROM {q(rule.table)} WHERE {' AND '.join(years)} "
                   f"AND _row IN ({flagged})")
    sql = f"INSERT INTO {FINDINGS} " + ruleset.with_views(
        rule.tables, f"SELECT {int(rule_id)}, _row FROM ({flagged}) AS _f", materialised=shared)
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        raise _rule_error(ruleset.format, rule, exc) from None


def _run_where_rules(con: duckdb.DuckDBPyConnection, ruleset: RuleSet,
                     rules: list[tuple[int, Rule]], shared: Collection[str] = ()) -> None:
    """Row-wise rules of one table in one statement: a UNION ALL of filtered scans (DuckDB
    scans a column table in a few milliseconds; building a list per row is slower)."""
    table = rules[0][1].table
    parts = [f"SELECT {int(rule_id)}, _row FROM {q(table)} WHERE "
             + " AND ".join([f"({rule.where})", *_year_filter(rule)])
             for rule_id, rule in rules]
    sql = f"INSERT INTO {FINDINGS} " + ruleset.with_views(
        [t for _, r in rules for t in r.tables], " UNION ALL ".join(parts),
        materialised=shared)
    try:
        con.execute(sql)
    except duckdb.Error as exc:
        if len(rules) == 1:
            raise _rule_error(ruleset.format, rules[0][1], exc) from None
        # Nothing was inserted: run the rules one by one to name the broken one.
        for rule_id, rule in rules:
            _run_where_rules(con, ruleset, [(rule_id, rule)], shared)
        raise


def _issues_view(con: duckdb.DuckDBPyConnection,
                 columns_by_format: Mapping[str, set[tuple[str, str]]] | None = None) -> None:
    """`validation.issues`: every finding with its file, line and child (from its table) and
    its rule's code, type, severity, message and fields, in ISSUE_COLUMNS order."""
    pairs = con.execute(f"SELECT DISTINCT format, table_name FROM {RULES} ORDER BY ALL"
                        ).fetchall()
    known: dict[str, set[tuple[str, str]]] = {}
    parts = []
    for fmt, table in pairs:
        if fmt not in known:
            known[fmt] = (columns_by_format or {}).get(fmt) or {
                (t, c) for t, c in con.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    f"WHERE table_schema = {quote_literal(fmt)}").fetchall()}
        parts.append(f"""
            SELECT r.format, r.table_name, f.row_id, t.source_file AS file,
                   t.source_line AS line, {_child_expr(fmt, table, known[fmt])} AS child,
                   r.rule, r.kind, r.severity, r.message, r.fields
            FROM {FINDINGS} f JOIN {RULES} r ON r.rule_id = f.rule_id
            JOIN {q(fmt)}.{q(table)} t ON t._row = f.row_id
            WHERE r.format = '{fmt}' AND r.table_name = '{table}'""")
    con.execute(f"CREATE OR REPLACE VIEW {ISSUES} AS "
                + (" UNION ALL ".join(parts) if parts else _EMPTY_ISSUES))


_EMPTY_ISSUES = ("SELECT NULL::VARCHAR AS format, NULL::VARCHAR AS table_name, "
                 "NULL::BIGINT AS row_id, NULL::VARCHAR AS file, NULL::INTEGER AS line, "
                 "NULL::VARCHAR AS child, NULL::VARCHAR AS rule, NULL::VARCHAR AS kind, "
                 "NULL::VARCHAR AS severity, NULL::VARCHAR AS message, "
                 "NULL::VARCHAR AS fields WHERE FALSE")


def record_findings(con: duckdb.DuckDBPyConnection, issues: pa.Table) -> None:
    """Put findings made elsewhere (another engine's `ValidationResult.issues`, ISSUE_COLUMNS)
    into `con` as if its rules had run there: `validation.rules`, `validation.findings` and
    the `validation.issues` view over the tables already loaded."""
    con.register("_found", issues)
    try:
        con.execute(f"""
            INSERT INTO {RULES}
            SELECT (SELECT coalesce(max(rule_id) + 1, 0) FROM {RULES})
                     + row_number() OVER (ORDER BY format, table_name, rule) - 1,
                   format, table_name, rule, kind, severity, message, fields
            FROM (SELECT DISTINCT ON (format, table_name, rule) * FROM _found)""")
        con.execute(f"""
            INSERT INTO {FINDINGS}
            SELECT r.rule_id, f.row_id FROM _found f
            JOIN {RULES} r USING (format, table_name, rule)""")
    finally:
        con.unregister("_found")
    _issues_view(con)


def issues_table(con: duckdb.DuckDBPyConnection, *, limit: int | None = None) -> pa.Table:
    """All findings so far (or the first `limit`), ordered by format, file, line and rule."""
    cap = f" LIMIT {int(limit)}" if limit is not None else ""
    return con.execute(f"SELECT * FROM {ISSUES} ORDER BY format, file, line, rule, table_name, "
                       f"row_id{cap}").arrow().read_all()


def rule_tables(ruleset: RuleSet) -> set[str]:
    """Every table some rule of `ruleset` reads (directly or through a view)."""
    return ruleset.base_tables(t for r in ruleset.rules for t in (r.table, *r.tables))


def validate_sources(con: duckdb.DuckDBPyConnection, sources: Iterable[SourceTables],
                     rulesets: dict[str, RuleSet],
                     needed: Mapping[str, Collection[str]] | None = None, *,
                     collect: bool = True) -> ValidationResult:
    """Load every source into `con`, run its format's rules, and return the findings.
    `needed`: per format, tables to load besides those the rules read (all when None).
    `collect=False` leaves the findings in `con` only (the result's `issues` is empty): the
    LA report streams them from there."""
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
    issues = issues_table(con) if collect else None
    return ValidationResult(issues=issues, rules_run=rules_run, rows_checked=rows)
