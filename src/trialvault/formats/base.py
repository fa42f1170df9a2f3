"""What every reader returns, and the registry that maps a format name to its reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
# The record's place in its file: the data row of a CSV (1 = first row after the header), the
# <Child>/<CHILD> element of an XML return (1 = first; 0 = the file's header). One-line XML has
# every record on the same line, so the report names the record.
SOURCE_RECORD = "source_record"
COLLECTION_YEAR = "collection_year"


@dataclass(frozen=True)
class SourceTables:
    """The tables read from one format's files, before validation.

    Every table holds the layout's columns as strings (exactly as in the file, empty = null),
    then reader-added columns: `collection_year` (INTEGER, where the format has one), keys that
    tie nested XML blocks to their parent (`*_key`), `source_file`, `source_line` and
    `source_record` (SSDA903 and CIN census).
    """

    format: str
    tables: dict[str, pa.Table]
    files: tuple[str, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def row_count(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


# A reader takes the input paths plus keyword options (`limits`, format-specific ones).
Reader = Callable[..., SourceTables]
R = TypeVar("R", bound=Reader)


class ReaderRegistry(Mapping[str, Reader]):
    """Format name -> reader. Registering a name twice is an error, not a silent override."""

    def __init__(self) -> None:
        self._readers: dict[str, Reader] = {}

    def register(self, name: str) -> Callable[[R], R]:
        def decorator(reader: R) -> R:
            if name in self._readers:
                raise ValueError(f"a reader for format {name!r} is already registered")
            self._readers[name] = reader
            return reader

        return decorator

    def __getitem__(self, name: str) -> Reader:
        try:
            return self._readers[name]
        except KeyError:
            raise KeyError(f"no reader for format {name!r} (known: "
                           f"{', '.join(sorted(self._readers))})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


READERS = ReaderRegistry()


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Arrow table from row dicts (XML readers collect rows; columns missing from a row are null)."""
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


class RowBuffer:
    """The rows of one table as an XML reader finds them, turned into Arrow every `chunk` rows
    (a row dict costs about ten times its Arrow form: a large file never sits in dicts)."""

    def __init__(self, schema: pa.Schema, chunk: int = 8192) -> None:
        self.schema = schema
        self.chunk = chunk
        self._rows: list[dict[str, Any]] = []
        self._parts: list[pa.Table] = []
        self._count = 0

    def append(self, row: dict[str, Any]) -> None:
        self._rows.append(row)
        self._count += 1
        if len(self._rows) >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._parts.append(rows_to_table(self._rows, self.schema))
            self._rows = []

    def __len__(self) -> int:
        return self._count

    def table(self) -> pa.Table:
        self._flush()
        if not self._parts:
            return self.schema.empty_table()
        return self._parts[0] if len(self._parts) == 1 else pa.concat_tables(self._parts)
