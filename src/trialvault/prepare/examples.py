"""Run a rule's table-literal examples through the real engine (used by the spec tests).

Each example case becomes a fresh in-memory DuckDB holding the rule's tables (context rows plus
the case's rows), typed exactly as real input is; the rule runs and the flagged rows are
compared with what the case expects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import duckdb
import pyarrow as pa

from trialvault.formats import SourceTables
from trialvault.formats import cin_census as cin_reader
from trialvault.formats import pupil as pupil_reader
from trialvault.formats import ssda903 as ssda903_reader
from trialvault.prepare.validate import (
    FINDINGS,
    ISSUES,
    RULES,
    connect,
    load_tables,
    run_rules,
)
from trialvault.spec import load_layout
from trialvault.spec.rules import Row, Rule, RuleSet

_SCHEMAS: dict[str, Callable[[str], pa.Schema]] = {
    "ssda903": ssda903_reader.table_schema,
    "cin_census": cin_reader.table_schema,
    "education": functools.partial(pupil_reader.table_schema, "education"),
    "neet": functools.partial(pupil_reader.table_schema, "neet"),
}
DEFAULT_YEAR = 2023


def _defaults(fmt: str, year: int) -> dict[str, Any]:
    if fmt == "cin_census":
        return {"LAchildID": "C1", "child_key": 1, "cin_details_key": 1, "assessments_key": 1,
                "child_protection_plans_key": 1, "child_characteristics_key": 1,
                "collection_year": year, "reference_date": f"{year}-03-31", "la": "201",
                "source_file": "example.xml"}
    if fmt == "ssda903":
        return {"CHILD": "C1", "collection_year": year, "source_file": "example.csv"}
    return {"UPN": "A123456789012", "source_file": "example.csv"}


def _table(fmt: str, name: str, rows: list[dict[str, Any]], year: int) -> pa.Table:
    schema = _SCHEMAS[fmt](name)
    defaults = _defaults(fmt, year)
    columns: dict[str, list[Any]] = {}
    for field in schema:
        values = []
        for i, row in enumerate(rows):
            if field.name == "source_line":
                values.append(row.get("source_line", i + 2))
            elif field.name in row:
                value = row[field.name]
                values.append(None if value is None else
                              (value if pa.types.is_integer(field.type) else str(value)))
            else:
                values.append(defaults.get(field.name))
        columns[field.name] = values
    return pa.Table.from_pydict(columns, schema=schema)


def _flagged(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rule: Rule,
             tables: dict[str, list[dict[str, Any]]], year: int) -> set[int]:
    fmt = ruleset.format
    layout = load_layout(fmt)
    # Only the tables the rule says it reads are loaded, so a rule whose SQL reads a table it
    # does not declare fails here.
    wanted = ruleset.base_tables((rule.table, *rule.tables))
    only = layout.replace(tables={n: t for n, t in layout.tables.items()
                                                if n in wanted})
    source = SourceTables(format=fmt, tables={
        name: _table(fmt, name, [{k: v for k, v in r.items() if k != "_flag"} for r in rows],
                     year)
        for name, rows in tables.items()}, files=("example",))
    con.execute(f"DROP SCHEMA IF EXISTS {fmt} CASCADE")
    con.execute(f"DELETE FROM {FINDINGS}; DELETE FROM {RULES}")
    columns = load_tables(con, source, only, materialise=False)
    run_rules(con, RuleSet(format=fmt, source=ruleset.source, views=ruleset.views,
                           rules=[rule]), tables=columns)
    found = con.execute(f"SELECT row_id FROM {ISSUES}").fetchall()
    return {int(r[0]) for r in found}


def check_examples(ruleset: RuleSet, rule: Rule,
                   con: duckdb.DuckDBPyConnection | None = None) -> list[str]:
    """Problems with `rule` on its own examples (empty when every case behaves). Pass `con`
    (from `validate.connect()`) to reuse one database across many rules."""
    own = con is None
    con = con or connect()
    try:
        return _check(con, ruleset, rule)
    finally:
        if own:
            con.close()


_CHILD_COLUMNS = ("CHILD", "LAchildID")


def _in_case(row: dict[str, Any], case: int, fmt: str, keep_child: bool = False
             ) -> dict[str, Any]:
    """`row` moved into case `case`'s own namespace: child codes prefixed, block keys offset,
    so that all cases of a rule share one database without seeing each other (rules compare
    rows of the same child or block only). `keep_child`: leave child codes as written (for a
    rule about the code itself; its cases must then use distinct codes)."""
    defaults = _defaults(fmt, 0)
    out = dict(row)
    for column in () if keep_child else _CHILD_COLUMNS:
        if column in defaults or column in out:
            value = out.get(column, defaults.get(column))
            if value is not None:
                out[column] = f"k{case}:{value}"
    for column, value in list(defaults.items()) + list(row.items()):
        if column.endswith("_key"):
            value = out.get(column, value)
            if value is not None:
                out[column] = int(value) + 1000 * case
    return out


def _check(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, rule: Rule) -> list[str]:
    examples = rule.examples
    fmt = ruleset.format
    year = examples.year or rule.valid_from or DEFAULT_YEAR
    tables: dict[str, list[dict[str, Any]]] = {}
    cases: list[tuple[str, int, Row | list[Row], list[int]]] = []
    keep = examples.child_codes_as_written
    for kind, given in (("fail", examples.fail), ("pass", examples.pass_)):
        for index, case in enumerate(given):
            number = len(cases)
            for name, rows in examples.context.items():
                tables.setdefault(name, []).extend(_in_case(r, number, fmt, keep) for r in rows)
            rows = [case] if isinstance(case, dict) else list(case)
            primary = tables.setdefault(rule.table, [])
            positions = list(range(len(primary), len(primary) + len(rows)))
            primary.extend(_in_case(r, number, fmt, keep) for r in rows)
            cases.append((kind, index, case, positions))
    flagged = _flagged(con, ruleset, rule, tables, year)
    problems: list[str] = []
    for kind, index, case, positions in cases:
        rows = [case] if isinstance(case, dict) else list(case)
        # Row numbers within the case (0 = its first row).
        own = {i for i, p in enumerate(positions) if p in flagged}
        marked = {i for i, r in enumerate(rows) if r.get("_flag") is True}
        label = f"rule {rule.key} {kind} case {index}"
        if kind == "pass":
            if own:
                problems.append(f"{label}: rows {sorted(own)} flagged, expected none")
        elif isinstance(case, dict) or not any("_flag" in r for r in rows):
            if not own:
                problems.append(f"{label}: nothing flagged")
        elif own != marked:
            problems.append(f"{label}: flagged rows {sorted(own)}, expected {sorted(marked)}")
    # A flagged context row of the rule's own table is a problem in a pass case; it is
    # counted against no case here, so report it once.
    strays = flagged - {p for *_, positions in cases for p in positions}
    if strays:
        problems.append(f"rule {rule.code}: context rows {sorted(strays)} flagged")
    return problems
