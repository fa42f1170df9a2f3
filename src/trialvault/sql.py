"""The one way to put a name into SQL: every identifier that did not come from a literal in our
own code (a table or column name from a manifest, a file header, a study file) goes through
`quote_ident`, never through an f-string as it is.
"""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A DuckDB/ANSI quoted identifier: `"name"` with inner quotes doubled. Refuses NUL."""
    if "\x00" in name:
        raise ValueError("an SQL identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_qualified(name: str) -> str:
    """`schema.table` (or `catalog.schema.table`) with each part quoted."""
    return ".".join(quote_ident(part) for part in name.split("."))
