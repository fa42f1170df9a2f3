"""Run a rule's table-literal examples through the real engine (used by the spec tests).

Each example case becomes a fresh in-memory DuckDB holding the rule's tables (context rows plus
the case's rows), typed exactly as real input is; the rule runs and the flagged rows are
compared with what the case expects.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from trialvault.formats import SourceTables
from trialvault.formats import cin_census as cin_reader
from trialvault.formats import ssda903 as ssda903_reader
from trialvault.prepare.validate import ISSUES, connect, load_tables, run_rules
from trialvault.spec import load_layout
from trialvault.spec.rules import Rule, RuleSet

_SCHEMAS = {"ssda903": ssda903_reader.table_schema, "cin_census": cin_reader.table_schema}
DEFAULT_YEAR = 2023


def _defaults(fmt: str, year: int) -> dict[str, Any]:
    if fmt == "cin_census":
        return {"LAchildID": "C1", "child_key": 1, "cin_details_key": 1, "assessments_key": 1,
                "child_protection_plans_key": 1, "child_characteristics_key": 1,
                "collection_year": year, "reference_date": f"{year}-03-31", "la": "201",
                "source_file": "example.xml"}
    return {"CHILD": "C1", "collection_year": year, "source_file": "example.csv"}


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


def _flagged(ruleset: RuleSet, rule: Rule, tables: dict[str, list[dict[str, Any]]],
             year: int) -> set[int]:
    fmt = ruleset.format
    layout = load_layout(fmt)
    source = SourceTables(format=fmt, tables={
        name: _table(fmt, name, [{k: v for k, v in r.items() if k != "_flag"} for r in rows],
                     year)
        for name, rows in tables.items()}, files=("example",))
    con = connect()
    try:
        load_tables(con, source, layout)
        run_rules(con, RuleSet(format=fmt, source=ruleset.source, rules=[rule]))
        found = con.execute(f"SELECT row_id FROM {ISSUES}").fetchall()
    finally:
        con.close()
    return {int(r[0]) for r in found}


def check_examples(ruleset: RuleSet, rule: Rule) -> list[str]:
    """Problems with `rule` on its own examples (empty when every case behaves)."""
    examples = rule.examples
    year = examples.year or rule.valid_from or DEFAULT_YEAR
    problems: list[str] = []
    for kind, cases in (("fail", examples.fail), ("pass", examples.pass_)):
        for index, case in enumerate(cases):
            rows = [case] if isinstance(case, dict) else list(case)
            context = {k: list(v) for k, v in examples.context.items()}
            before = len(context.get(rule.table, []))
            context[rule.table] = context.get(rule.table, []) + rows
            flagged = _flagged(ruleset, rule, context, year)
            own = {before + i for i in range(len(rows))}
            marked = {before + i for i, r in enumerate(rows) if r.get("_flag") is True}
            label = f"rule {rule.code} {kind} case {index}"
            if kind == "pass":
                if flagged:
                    problems.append(f"{label}: rows {sorted(flagged)} flagged, expected none")
            elif isinstance(case, dict) or not any("_flag" in r for r in rows):
                if not flagged & own:
                    problems.append(f"{label}: nothing flagged")
            elif flagged & own != marked:
                problems.append(f"{label}: flagged {sorted(flagged & own)}, expected "
                                f"{sorted(marked)}")
    return problems
