"""DuckDB SQL → Spark SQL with SQLGlot, plus the few rewrites SQLGlot leaves to us.

The definitions stay written once, in DuckDB's dialect. SQLGlot (`read="duckdb",
write="spark"`) translates functions, casts and quoting; on top of it this module

- inlines DuckDB macros (`in_codes(...)`, `age_years(...)`): their text is read back from the
  DuckDB connection that defined them (`duckdb_functions()`), so the definition stays single;
- rewrites `x = ANY (SELECT ...)` (how DuckDB prints `IN` inside a macro) to `x IN (SELECT ...)`;
- rewrites date ± `INTERVAL (expr) MONTH|YEAR` and date ± `to_years(expr)` / `to_months(expr)`
  with a non-literal amount, which Spark's parser rejects, to `ADD_MONTHS(date, ±months)` (same
  end-of-month clamping as DuckDB);
- maps `arg_max_null(x, y)` / `arg_min_null(x, y)` (the value of x on the row with the
  largest/smallest y, NULL x kept) to Spark's `MAX_BY` / `MIN_BY`, which keep a NULL x too
  (DuckDB's own `max_by` skips NULL x, so it is not portable);
- rewrites `regexp_full_match(s, p)` to `s RLIKE '^(?:p)$'` (Spark's RLIKE searches);
- rewrites `list_sum(list)` (DuckDB; NULL elements ignored) to Spark's
  `AGGREGATE(list, 0, (acc, x) -> acc + COALESCE(x, 0))`;
- maps schema-qualified names `schema.table` to one identifier `schema__table`, because Spark's
  temporary views have no schema; unqualified names can be given a default schema (the DuckDB
  `search_path` a rule runs under).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from trialvault.engines.base import EngineError

SCHEMA_SEPARATOR = "__"


@dataclass(frozen=True)
class Macro:
    """A scalar DuckDB macro: parameter names and the body expression (DuckDB SQL)."""

    name: str
    parameters: tuple[str, ...]
    body: str


def flat_name(name: str) -> str:
    """`schema.table` → `schema__table` (Spark temporary views have no schema)."""
    return name.replace(".", SCHEMA_SEPARATOR)


def macros_from_duckdb(con: object) -> dict[str, Macro]:
    """The user-defined scalar macros of a DuckDB connection, by name."""
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT function_name, parameters, macro_definition FROM duckdb_functions() "
        "WHERE function_type = 'macro' AND NOT internal").fetchall()
    return {str(name): Macro(str(name), tuple(str(p) for p in params), str(body))
            for name, params, body in rows}


def to_spark(sql: str, *, macros: Mapping[str, Macro] | None = None,
             default_schema: str | None = None) -> str:
    """One DuckDB statement as Spark SQL (see the module doc for the rewrites)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as exc:
        raise EngineError(f"SQL does not parse as DuckDB SQL: {_first_line(exc)}") from None
    tree = rewrite_for_spark(tree, macros=macros or {}, default_schema=default_schema)
    try:
        return tree.sql(dialect="spark")
    except SqlglotError as exc:
        raise EngineError(f"SQL has no Spark translation: {_first_line(exc)}") from None


def rewrite_for_spark(tree: exp.Expr, *, macros: Mapping[str, Macro],
                      default_schema: str | None) -> exp.Expr:
    """The AST rewrites of the module doc, applied in a safe order."""
    if macros:
        tree = _inline_macros(tree, macros)
    tree = tree.transform(_any_to_in, copy=False)
    tree = tree.transform(_month_interval, copy=False)
    tree = tree.transform(_full_match, copy=False)
    tree = tree.transform(_arg_null, copy=False)
    tree = tree.transform(_list_sum, copy=False)
    return _flatten_tables(tree, default_schema)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _inline_macros(tree: exp.Expr, macros: Mapping[str, Macro]) -> exp.Expr:
    parsed = {name.lower(): (m, sqlglot.parse_one(m.body, read="duckdb"))
              for name, m in macros.items()}

    def expand(node: exp.Expr) -> exp.Expr:
        name = _function_name(node)
        if name is None or name not in parsed:
            return node
        macro, body = parsed[name]
        args = list(node.expressions) if isinstance(node, exp.Anonymous) else \
            [a for a in node.args.values() if isinstance(a, exp.Expr)]
        if len(args) != len(macro.parameters):
            raise EngineError(f"macro {macro.name} takes {len(macro.parameters)} arguments, "
                              f"got {len(args)}")
        binding = {p.lower(): a for p, a in zip(macro.parameters, args, strict=True)}

        def bind(inner: exp.Expr) -> exp.Expr:
            if isinstance(inner, exp.Column) and not inner.table and \
                    inner.name.lower() in binding:
                return exp.Paren(this=binding[inner.name.lower()].copy())
            return inner

        # Macros may call other macros (expanded on the way back up by `transform`).
        return exp.Paren(this=_inline_macros(body.copy().transform(bind), macros))

    return tree.transform(expand)


def _function_name(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return None


def _any_to_in(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.EQ) and isinstance(node.expression, exp.Any):
        inner = node.expression.this
        if isinstance(inner, exp.Subquery):
            return exp.In(this=node.this, query=inner.copy())
    return node


_MONTHS_PER = {"MONTH": 1, "MONTHS": 1, "YEAR": 12, "YEARS": 12}


_TO_INTERVAL = {"to_months": "MONTH", "to_years": "YEAR"}


def _interval_parts(node: exp.Expr) -> tuple[str, exp.Expr] | None:
    """(unit, amount) of `INTERVAL (amount) UNIT` or `to_years(amount)`-style calls."""
    if isinstance(node, exp.Interval) and node.unit is not None:
        return node.unit.name.upper(), node.this
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _TO_INTERVAL:
        return _TO_INTERVAL[str(node.name).lower()], node.expressions[0]
    return None


def _month_interval(node: exp.Expr) -> exp.Expr:
    if not isinstance(node, exp.Add | exp.Sub):
        return node
    parts = _interval_parts(node.expression)
    if parts is None:
        return node
    unit, amount = parts
    if unit not in _MONTHS_PER or (isinstance(amount, exp.Literal)
                                   and isinstance(node.expression, exp.Interval)):
        return node  # Spark parses literal intervals itself
    months: exp.Expr = amount.copy()
    if _MONTHS_PER[unit] != 1:
        months = exp.Mul(this=exp.Paren(this=months), expression=exp.Literal.number(12))
    if isinstance(node, exp.Sub):
        months = exp.Neg(this=exp.Paren(this=months))
    return exp.Anonymous(this="ADD_MONTHS", expressions=[node.this.copy(), months])


def _full_match(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.RegexpFullMatch):
        subject, pattern = node.this, node.expression
    elif isinstance(node, exp.Anonymous) and str(node.name).lower() == "regexp_full_match":
        subject, pattern = node.expressions[0], node.expressions[1]
    else:
        return node
    if not isinstance(pattern, exp.Literal) or not pattern.is_string:
        raise EngineError("regexp_full_match needs a literal pattern to run on Spark")
    anchored = exp.Literal.string(f"^(?:{pattern.this})$")
    return exp.RegexpLike(this=subject.copy(), expression=anchored)


def _arg_null(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in ("arg_max_null", "arg_min_null"):
            spark_name = "MAX_BY" if name == "arg_max_null" else "MIN_BY"
            return exp.Anonymous(this=spark_name,
                                 expressions=[e.copy() for e in node.expressions])
    return node


_LIST_SUM = "AGGREGATE(__tv_list__, CAST(0 AS BIGINT), (acc, x) -> acc + COALESCE(x, 0))"


def _list_sum(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Anonymous) and str(node.name).lower() == "list_sum":
        arg = node.expressions[0].copy()
        template = sqlglot.parse_one(_LIST_SUM, read="spark")

        def put(inner: exp.Expr) -> exp.Expr:
            if isinstance(inner, exp.Column) and inner.name == "__tv_list__":
                return arg
            return inner

        return exp.Paren(this=template.transform(put))
    return node


def _flatten_tables(tree: exp.Expr, default_schema: str | None) -> exp.Expr:
    ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}

    def flatten(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Table) or not node.name:
            return node
        if isinstance(node.this, exp.Func | exp.Anonymous):
            return node
        schema = node.db or (default_schema if node.name.lower() not in ctes else None)
        if not schema:
            return node
        flat = node.copy()
        flat.set("this", exp.to_identifier(f"{schema}{SCHEMA_SEPARATOR}{node.name}"))
        flat.set("db", None)
        flat.set("catalog", None)
        return flat

    return tree.transform(flatten)
