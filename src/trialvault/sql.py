"""The one way to put a name or a value into SQL text: every identifier that did not come from a
literal in our own code (a table or column name from a manifest, a file header, a study file)
goes through `quote_ident`, every text through `quote_literal`, never through an f-string as it
is. `create_table_from_columns` and `insert_columns` load Python lists into DuckDB with neither
pyarrow nor query parameters (DuckDB's Python client imports numpy, pandas and pyarrow, about
85 MB, on the first query with a parameter).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

# Column types `create_table_from_columns` accepts (they are spliced into SQL as written).
LOADABLE_TYPES = frozenset({"VARCHAR", "INTEGER", "BIGINT", "BOOLEAN", "DOUBLE"})
# Rows per INSERT: the JSON text of a chunk is held twice (Python, DuckDB) while it loads.
_CHUNK_ROWS = 4096


def quote_ident(name: str) -> str:
    """A DuckDB/ANSI quoted identifier: `"name"` with inner quotes doubled. Refuses NUL."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """`schema.table` (or `catalog.schema.table`) with each part quoted."""
    return ".".join(quote_ident(part) for part in name.split("."))


def quote_literal(text: str) -> str:
    """A standard SQL string literal: `'text'` with inner quotes doubled (DuckDB reads no
    backslash escapes in such literals). Refuses NUL."""
    if "\x00" in text:
        raise ValueError("an SQL literal cannot contain NUL")
    return "'" + text.replace("'", "''") + "'"


def create_table_from_columns(con: duckdb.DuckDBPyConnection, name: str,
                              fields: Sequence[tuple[str, str]],
                              columns: Mapping[str, Sequence[Any]], *, temp: bool = False,
                              chunk_rows: int = _CHUNK_ROWS) -> None:
    """Create table `name` with `fields` ((column, type) in order; types from LOADABLE_TYPES)
    and fill it from `columns` (`insert_columns`). Nothing is created for a bad call."""
    _row_count(fields, columns)
    declared = ", ".join(f"{quote_ident(n)} {t}" for n, t in fields)
    con.execute(f"CREATE {'TEMP ' if temp else ''}TABLE {quote_qualified(name)} ({declared})")
    insert_columns(con, name, fields, columns, chunk_rows=chunk_rows)


def insert_columns(con: duckdb.DuckDBPyConnection, name: str, fields: Sequence[tuple[str, str]],
                   columns: Mapping[str, Sequence[Any]], *, chunk_rows: int = _CHUNK_ROWS
                   ) -> None:
    """Append `columns` (one list per column of `fields`, None = NULL, all of one length) to
    table `name`, whose columns are `fields` in that order.

    Each chunk of rows travels as one JSON document inside one SQL string literal and DuckDB's
    `json_transform_strict` turns it back into typed lists: every value arrives exactly as
    given (a value of the wrong type is an error, not a NULL), and no value is ever part of the
    SQL outside that quoted literal."""
    rows = _row_count(fields, columns)
    if not rows or not fields:
        return
    # JSON keys are positions, so a column name never has to be valid JSON or SQL twice over.
    keys = [f"c{i}" for i in range(len(fields))]
    shape = quote_literal(json.dumps({k: f"{t}[]" for k, (_, t) in zip(keys, fields,
                                                                       strict=True)}))
    select = ", ".join(f"unnest(_j.{k})" for k in keys)
    for start in range(0, rows, chunk_rows):
        document = json.dumps({k: list(columns[n][start:start + chunk_rows])
                               for k, (n, _) in zip(keys, fields, strict=True)},
                              ensure_ascii=False, allow_nan=False)
        try:
            con.execute(f"INSERT INTO {quote_qualified(name)} SELECT {select} FROM "
                        f"(SELECT json_transform_strict({quote_literal(document)}, {shape}) "
                        "AS _j)")
        except Exception as exc:  # DuckDB's message may quote the value: name the kind only
            raise ValueError(f"cannot load {name} rows {start + 1}-{start + chunk_rows}: a value "
                             f"does not fit its column's type ({type(exc).__name__})") from None


def _row_count(fields: Sequence[tuple[str, str]], columns: Mapping[str, Sequence[Any]]) -> int:
    """The rows `columns` hold, once they are checked against `fields`."""
    unknown = sorted({t for _, t in fields} - LOADABLE_TYPES)
    if unknown:
        raise ValueError(f"cannot load columns of type {', '.join(unknown)}")
    if set(columns) != {n for n, _ in fields}:
        raise ValueError("columns must match fields")
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError("columns must all have the same length")
    return lengths.pop() if lengths else 0
