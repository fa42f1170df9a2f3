"""Only the study's data period goes into a package.

A row whose activity (the table's `activity` dates in the layout: an episode's start and end, a
review's date; an empty end is still open at the end of its collection year) misses the study's
data period (`data_period.first_year` 1 January to `last_year` 31 December) is counted and
deleted from the typed tables before linkage and minimisation; a row of a table without
activity dates (the SSDA903 header, a CIN child's identifiers) goes when its collection year
misses the period, or when the child had dated rows in that return and none is left. Rows of
last year's return (`--previous`, loaded only for the year-on-year rules) all go. The LA's
validation report still covers every row: the LA wants its whole return clean.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trialvault.spec import load_layout

if TYPE_CHECKING:
    import datetime as dt

    import duckdb

CHILD = {"ssda903": "CHILD", "cin_census": "LAchildID"}


@dataclass(frozen=True)
class PeriodCut:
    """Rows deleted, by `format.table`, and children with nothing left in the period."""

    rows: dict[str, int] = field(default_factory=dict)
    previous_rows: int = 0
    children: int = 0
    dated_rows_left: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(con: duckdb.DuckDBPyConnection, fmt: str) -> dict[str, set[str]]:
    """The format's tables (not views) and their columns."""
    found: dict[str, set[str]] = {}
    for table, column in con.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = ? AND t.table_type = 'BASE TABLE'", [fmt]).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def _children(con: duckdb.DuckDBPyConnection, fmt: str, tables: list[str], child: str
              ) -> set[str]:
    out: set[str] = set()
    for name in tables:
        out |= {c for (c,) in con.execute(f"SELECT DISTINCT {_q(child)} FROM {_q(fmt)}.{_q(name)} "
                                          f"WHERE {_q(child)} IS NOT NULL").fetchall()}
    return out


def _delete(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> int:
    found = con.execute(sql, params or []).fetchone()
    return int(found[0]) if found else 0


def cut_to_period(con: duckdb.DuckDBPyConnection, start: dt.date, end: dt.date, *,
                  formats: Collection[str] = ("ssda903", "cin_census"),
                  previous: Mapping[str, Collection[int]] | None = None) -> PeriodCut:
    """Delete the rows outside [start, end] (and last year's return) from the typed tables."""
    rows: dict[str, int] = {}
    previous_rows = children = dated_left = 0
    for fmt in formats:
        layout = load_layout(fmt)
        tables = _tables(con, fmt)
        child = CHILD.get(fmt)
        spans: dict[str, tuple[str, str]] = {}
        for name, columns in sorted(tables.items()):
            spec = layout.tables.get(name)
            if spec is None or spec.reference or "collection_year" not in columns:
                continue
            old = sorted(int(y) for y in (previous or {}).get(fmt, ()))
            if old:
                previous_rows += _delete(con, f"DELETE FROM {_q(fmt)}.{_q(name)} WHERE "
                                              f"collection_year IN ({', '.join(map(str, old))})")
            if spec.activity and set(spec.activity) <= columns:
                first, last = _q(spec.activity[0]), _q(spec.activity[-1])
                spans[name] = (f"COALESCE({first}, collection_start)",
                               f"COALESCE({last}, collection_end)" if len(spec.activity) == 2
                               else f"COALESCE({first}, collection_end)")
            else:
                spans[name] = ("collection_start", "collection_end")
        dated = [n for n in spans if layout.tables[n].activity]
        with_child = [n for n in dated if child is not None and child in tables[n]]
        before = _children(con, fmt, with_child, child) if child else set()
        for name, (begins, ends) in spans.items():
            # Kept when the span meets the period; a span with no date at all is kept.
            gone = _delete(con, f"DELETE FROM {_q(fmt)}.{_q(name)} "
                                f"WHERE {begins} > ? OR {ends} < ?", [end, start])
            if gone:
                rows[f"{fmt}.{name}"] = gone
        for name in dated:
            dated_left += _delete(con, f"SELECT count(*) FROM {_q(fmt)}.{_q(name)}")
        if child is None:
            continue
        lost = sorted(before - _children(con, fmt, with_child, child))
        children += len(lost)
        if not lost:
            continue
        for name in spans:
            if name in dated or child not in tables[name]:
                continue
            gone = _delete(con, f"DELETE FROM {_q(fmt)}.{_q(name)} "
                                f"WHERE list_contains(?, {_q(child)})", [lost])
            if gone:
                rows[f"{fmt}.{name}"] = rows.get(f"{fmt}.{name}", 0) + gone
    return PeriodCut(rows=rows, previous_rows=previous_rows, children=children,
                     dated_rows_left=dated_left)
