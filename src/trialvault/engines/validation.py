"""Validation rules (`spec/rules/*.yaml`) through any `Engine`.

Typing stays where the prepare stage does it: `prepare.validate.load_tables` turns one return's
text columns into DATE/INTEGER/BOOLEAN in a private in-memory DuckDB (no spill to disk). The
typed tables, the spec's code lists and the rule macros (`in_codes`, `age_years`, read back
from that DuckDB) then go to the engine, and every rule's `where`/`query` runs there — on
DuckDB as written, on Spark transpiled. The findings have exactly the columns and order of
`prepare.validate.issues_table`, so `ValidationResult` is the same value whichever engine ran.

`flag_examples` runs every rule's table-literal examples in one batch per rule (a `_case`
column separates the cases, and the rule's table references are narrowed to one case), which
keeps the Spark spec tests to one query per rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp

from trialvault.engines.base import Engine, EngineError
from trialvault.engines.transpile import Macro, macros_from_duckdb
from trialvault.errors import InputFileError
from trialvault.formats import SourceTables
from trialvault.prepare.validate import CHILD_COLUMN, ISSUE_COLUMNS, ValidationResult
from trialvault.prepare.validate import connect as typing_connection
from trialvault.prepare.validate import load_tables as type_tables
from trialvault.spec import load_layout
from trialvault.spec.rules import Rule, RuleSet

CODE_LISTS = "validation.code_lists"
WORKING_DAYS = "validation.working_days"
CASE_COLUMN = "_case"
ISSUE_SCHEMA = pa.schema([
    ("format", pa.string()), ("table_name", pa.string()), ("row_id", pa.int64()),
    ("file", pa.string()), ("line", pa.int32()), ("child", pa.string()), ("rule", pa.string()),
    ("kind", pa.string()), ("severity", pa.string()), ("message", pa.string()),
    ("fields", pa.string()),
])
assert tuple(ISSUE_SCHEMA.names) == ISSUE_COLUMNS  # the prepare stage's issue layout


@dataclass(frozen=True)
class TypedTables:
    """Typed tables (`<format>.<table>` → Arrow), code lists and rule macros, ready to load."""

    tables: dict[str, pa.Table]
    code_lists: pa.Table
    macros: dict[str, Macro]
    rows_checked: dict[str, int]
    working_days: pa.Table | None = None


def type_sources(sources: Iterable[SourceTables],
                 con: duckdb.DuckDBPyConnection | None = None) -> TypedTables:
    """Type every source the way `prepare` does (private in-memory DuckDB, no spill).

    `con`: a connection from `prepare.validate.connect()` to reuse (setting one up costs about
    a second); by default a fresh one, closed afterwards.
    """
    own = con is None
    con = con or typing_connection()
    try:
        tables: dict[str, pa.Table] = {}
        rows: dict[str, int] = {}
        for source in sources:
            layout = load_layout(source.format)
            type_tables(con, source, layout)
            rows[source.format] = source.row_count
            for name in layout.tables:
                tables[f"{source.format}.{name}"] = con.execute(
                    f'SELECT * FROM "{source.format}"."{name}"').fetch_arrow_table()
        code_lists = con.execute(f"SELECT * FROM {CODE_LISTS}").fetch_arrow_table()
        working_days = con.execute(f"SELECT * FROM {WORKING_DAYS}").fetch_arrow_table()
        return TypedTables(tables, code_lists, macros_from_duckdb(con), rows, working_days)
    finally:
        if own:
            con.close()


def load_typed(engine: Engine, typed: TypedTables) -> None:
    """Put typed tables, code lists and macros into `engine`."""
    # Macros read the code lists and the working days, so those tables come first.
    engine.load_table(CODE_LISTS, typed.code_lists)
    if typed.working_days is not None:
        engine.load_table(WORKING_DAYS, typed.working_days)
    engine.define_macros(typed.macros)
    engine.load_tables(typed.tables)


def issue_sql(ruleset: RuleSet, rule: Rule, *, child_column: bool) -> str:
    """The DuckDB-dialect SELECT of one rule's findings: row_id, file, line, child.

    Runs with the format's tables unqualified (`schema=fmt`); the views the rule reads come
    first as common table expressions. Mirrors what `prepare.validate.run_rules` inserts, so
    both paths flag the same rows.
    """
    fmt = ruleset.format
    table = f'"{rule.table}"'
    if rule.where is not None:
        flagged = f"SELECT _row FROM {table} WHERE ({rule.where})"
    else:
        flagged = f"SELECT DISTINCT _row FROM ({rule.query}) AS _q"
    years = []
    if rule.valid_from is not None:
        years.append(f"t.collection_year >= {int(rule.valid_from)}")
    if rule.valid_to is not None:
        years.append(f"t.collection_year <= {int(rule.valid_to)}")
    year_filter = f" AND {' AND '.join(years)}" if years else ""
    child = f't."{CHILD_COLUMN[fmt]}"' if child_column else "CAST(NULL AS VARCHAR)"
    return ruleset.with_views(rule.tables, (
        f"SELECT t._row AS row_id, t.source_file AS file, t.source_line AS line, "
        f"CAST({child} AS VARCHAR) AS child FROM {table} AS t "
        f"WHERE t._row IN ({flagged}){year_filter}"))


def run_rules_on(engine: Engine, ruleset: RuleSet, typed: TypedTables,
                 codes: Iterable[str] | None = None) -> tuple[pa.Table, list[str]]:
    """Findings of `ruleset` (all rules, or `codes`) on tables already loaded in `engine`."""
    fmt = ruleset.format
    wanted = set(codes) if codes is not None else None
    parts: list[pa.Table] = []
    ran: list[str] = []
    empty = {name.split(".", 1)[1] for name, table in typed.tables.items()
             if name.startswith(f"{fmt}.") and table.num_rows == 0}
    for rule in ruleset.rules:
        if wanted is not None and rule.code not in wanted:
            continue
        if set(rule.needs) & empty:
            continue  # reference data not given: not run (as prepare.validate.run_rules)
        schema = typed.tables[f"{fmt}.{rule.table}"].schema
        has_child = fmt in CHILD_COLUMN and CHILD_COLUMN[fmt] in schema.names
        found = _run(engine, rule, fmt, issue_sql(ruleset, rule, child_column=has_child))
        parts.append(_issue_rows(fmt, rule, found))
        ran.append(rule.code)
    return _concat_issues(parts), ran


def validate_on_engine(engine: Engine, sources: Iterable[SourceTables],
                       rulesets: Mapping[str, RuleSet]) -> ValidationResult:
    """`prepare.validate.validate_sources`, with the rules run by `engine`."""
    typed = type_sources(sources)
    load_typed(engine, typed)
    parts: list[pa.Table] = []
    rules_run: dict[str, list[str]] = {}
    try:
        for fmt in typed.rows_checked:
            if fmt in rulesets:
                found, ran = run_rules_on(engine, rulesets[fmt], typed)
                parts.append(found)
                rules_run[fmt] = ran
    finally:
        engine.drop_tables([*typed.tables, CODE_LISTS, WORKING_DAYS])
    return ValidationResult(issues=sort_issues(_concat_issues(parts)), rules_run=rules_run,
                            rows_checked=dict(typed.rows_checked))


def _run(engine: Engine, rule: Rule, fmt: str, sql: str) -> pa.Table:
    try:
        return engine.query(sql, schema=fmt)
    except EngineError as exc:
        # A rule that cannot run is a spec defect (or a construct the engine lacks): name it.
        raise InputFileError(f"rule {rule.code} cannot run on {engine.name}: {exc}",
                             file=f"{fmt}.yaml", rule=rule.code) from None


def sort_issues(issues: pa.Table) -> pa.Table:
    """The order of `prepare.validate.issues_table` (nulls last, like DuckDB)."""
    keys = [(c, "ascending", "at_end") for c in ("format", "file", "line", "rule", "table_name",
                                                 "row_id")]
    return issues.sort_by(keys)


def _issue_rows(fmt: str, rule: Rule, found: pa.Table) -> pa.Table:
    n = found.num_rows

    def const(value: str) -> pa.Array:
        return pa.array([value] * n, pa.string())

    return pa.table({
        "format": const(fmt), "table_name": const(rule.table),
        "row_id": pc.cast(found["row_id"], pa.int64()),
        "file": pc.cast(found["file"], pa.string()),
        "line": pc.cast(found["line"], pa.int32()),
        "child": pc.cast(found["child"], pa.string()),
        "rule": const(rule.code), "kind": const(rule.dfe_kind),
        "severity": const(rule.severity),
        "message": const(rule.message), "fields": const(",".join(rule.fields)),
    }, schema=ISSUE_SCHEMA)


def _concat_issues(parts: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(parts) if parts else ISSUE_SCHEMA.empty_table()


# --- examples, batched -------------------------------------------------------------------
CaseKey = tuple[str, str, int]  # (rule code, "fail" | "pass", case index)


def example_cases(ruleset: RuleSet, rule: Rule) -> list[tuple[CaseKey, dict[str, list[dict[str,
                                                                                        Any]]],
                                                           int]]:
    """Each example case of `rule` as (key, rows by table, collection year), built exactly as
    `prepare.examples.check_examples` builds them (context rows first, then the case's rows)."""
    from trialvault.prepare.examples import DEFAULT_YEAR

    examples = rule.examples
    year = examples.year or rule.valid_from or DEFAULT_YEAR
    out = []
    for kind, cases in (("fail", examples.fail), ("pass", examples.pass_)):
        for index, case in enumerate(cases):
            rows = [case] if isinstance(case, dict) else list(case)
            tables = {k: list(v) for k, v in examples.context.items()}
            tables[rule.table] = tables.get(rule.table, []) + rows
            clean = {name: [{k: v for k, v in r.items() if k != "_flag"} for r in rs]
                     for name, rs in tables.items()}
            out.append(((rule.key, kind, index), clean, year))
    return out


def flag_examples(engine: Engine, ruleset: RuleSet, rules: Iterable[Rule] | None = None,
                  *, batch: int = 12) -> dict[CaseKey, set[int]]:
    """The `_row` ids each example case's rule flags on `engine` (one query per rule).

    All cases are typed together (typing is row by row) with a `_case` column, and `_row` is
    renumbered from 0 within each case, as a case run on its own would number it.
    """
    from trialvault.prepare.examples import _table as example_table

    fmt = ruleset.format
    layout = load_layout(fmt)
    chosen = list(rules) if rules is not None else list(ruleset.rules)
    raw: dict[str, list[pa.Table]] = {}
    cases_of: dict[str, list[tuple[int, CaseKey]]] = {}
    number = 0
    for rule in chosen:
        for key, tables, year in example_cases(ruleset, rule):
            for name, rows in tables.items():
                table = example_table(fmt, name, rows, year)
                raw.setdefault(name, []).append(table.append_column(
                    CASE_COLUMN, pa.array([number] * table.num_rows, pa.int32())))
            cases_of.setdefault(rule.key, []).append((number, key))
            number += 1
    if not raw:
        return {}
    source = SourceTables(format=fmt, files=("example",),
                          tables={n: pa.concat_tables(p) for n, p in raw.items()})
    typed = type_sources([source])
    loaded = {name: _renumber_within_case(table) for name, table in typed.tables.items()}
    load_typed(engine, TypedTables(loaded, typed.code_lists, typed.macros, typed.rows_checked,
                                   typed.working_days))
    result: dict[CaseKey, set[int]] = {}
    keys: dict[int, CaseKey] = {}
    selects: dict[str, str] = {}
    for rule in chosen:
        has_child = CHILD_COLUMN.get(fmt, "") in loaded[f"{fmt}.{rule.table}"].schema.names
        base = issue_sql(ruleset, rule, child_column=has_child)
        selects[rule.key] = " UNION ALL ".join(
            f"SELECT {n} AS case_no, row_id FROM ("
            f"{narrow_to_case(base, fmt, set(layout.tables), n)}) AS _c{n}"
            for n, _ in cases_of[rule.key])
        for n, key in cases_of[rule.key]:
            keys[n] = key
            result[key] = set()
    try:
        # A few rules per query: on Spark each query costs a job's overhead, not its rows.
        for start in range(0, len(chosen), batch):
            group = chosen[start:start + batch]
            try:
                found = engine.query(" UNION ALL ".join(selects[r.key] for r in group),
                                     schema=fmt)
            except EngineError:
                # Find the rule that cannot run, so the error names it.
                found = _concat_found([_run(engine, r, fmt, selects[r.key]) for r in group])
            for case_no, row_id in zip(found["case_no"].to_pylist(),
                                       found["row_id"].to_pylist(), strict=True):
                result[keys[int(case_no)]].add(int(row_id))
    finally:
        engine.drop_tables([*loaded, CODE_LISTS, WORKING_DAYS])
    return result


def _concat_found(parts: list[pa.Table]) -> pa.Table:
    schema = pa.schema([("case_no", pa.int64()), ("row_id", pa.int64())])
    return pa.concat_tables([p.select(["case_no", "row_id"]).cast(schema) for p in parts])


def _renumber_within_case(table: pa.Table) -> pa.Table:
    if CASE_COLUMN not in table.column_names or table.num_rows == 0:
        return table
    cases = table[CASE_COLUMN].to_pylist()
    rows = table["_row"].to_pylist()
    # Each case's rows were appended together, so its `_row`s are contiguous from its first.
    first: dict[int, int] = {}
    for case, row in zip(cases, rows, strict=True):
        first[case] = min(row, first.get(case, row))
    local = [row - first[case] for case, row in zip(cases, rows, strict=True)]
    index = table.schema.get_field_index("_row")
    return table.set_column(index, "_row", pa.array(local, pa.int64()))


def narrow_to_case(sql: str, fmt: str, tables: set[str], case_no: int) -> str:
    """`sql` with every reference to a format table replaced by its rows of one case."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}

    def narrow(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table) or node.name.lower() in ctes:
            return node
        if node.db not in ("", fmt) or node.name not in tables:
            return node
        alias = node.alias or node.name
        inner = sqlglot.parse_one(
            f'SELECT * FROM "{fmt}"."{node.name}" WHERE {CASE_COLUMN} = {int(case_no)}',
            read="duckdb")
        return exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    return tree.transform(narrow).sql(dialect="duckdb")
