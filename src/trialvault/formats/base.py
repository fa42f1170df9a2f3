"""What every reader returns, and the registry that maps a format name to its reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union

if TYPE_CHECKING:
    import pyarrow as pa

SOURCE_FILE = "source_file"
SOURCE_LINE = "source_line"
# The record's place in its file: the data row of a CSV (1 = first row after the header), the
# <Child>/<CHILD> element of an XML return (1 = first; 0 = the file's header). One-line XML has
# every record on the same line, so the report names the record.
SOURCE_RECORD = "source_record"
COLLECTION_YEAR = "collection_year"

# The column types a reader produces: text as in the file, and integers it adds (keys, lines).
Kind = Literal["string", "int32", "int64"]
_SQL_TYPES = {"string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT"}


@dataclass(frozen=True)
class Fields:
    """A reader table's columns and their kinds: what Arrow calls a schema, without Arrow (the
    LA's CIN-only check never imports pyarrow: 40 MB of its peak memory)."""

    fields: tuple[tuple[str, Kind], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.fields]

    def sql_fields(self) -> list[tuple[str, str]]:
        """(column, DuckDB type) pairs, for `trialvault.sql.create_table_from_columns`."""
        return [(name, _SQL_TYPES[kind]) for name, kind in self.fields]

    def empty_table(self) -> ColumnTable:
        return ColumnTable(self, {name: [] for name in self.names})

    def to_arrow(self) -> pa.Schema:
        import pyarrow as pa

        types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64()}
        return pa.schema([pa.field(name, types[kind]) for name, kind in self.fields])


class ColumnTable:
    """A table as Python lists, one per column (None = null): what the XML readers build. It
    goes into DuckDB without pyarrow (`trialvault.sql.create_table_from_columns`) and becomes
    an Arrow table on demand (`to_arrow`)."""

    def __init__(self, fields: Fields, columns: dict[str, list[Any]]) -> None:
        lengths = {len(values) for values in columns.values()}
        if set(columns) != set(fields.names) or len(lengths) > 1:
            raise ValueError("a column table needs one list per field, all of one length")
        self.fields = fields
        self.columns = columns
        self.num_rows = lengths.pop() if lengths else 0

    @property
    def column_names(self) -> list[str]:
        return self.fields.names

    def column(self, name: str) -> list[Any]:
        return self.columns[name]

    def to_pylist(self) -> list[dict[str, Any]]:
        names = self.column_names
        return [dict(zip(names, row, strict=True))
                for row in zip(*(self.columns[n] for n in names), strict=True)]

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        return pa.Table.from_pydict(self.columns, schema=self.fields.to_arrow())


# A reader's table: Arrow (the CSV readers, parsed by pyarrow) or Python columns (XML readers).
Table = Union["pa.Table", ColumnTable]


def as_arrow(table: Table) -> pa.Table:
    """`table` as an Arrow table (converted when it is a `ColumnTable`)."""
    return table.to_arrow() if isinstance(table, ColumnTable) else table


@dataclass(frozen=True)
class SourceTables:
    """The tables read from one format's files, before validation.

    Every table holds the layout's columns as strings (exactly as in the file, empty = null),
    then reader-added columns: `collection_year` (INTEGER, where the format has one), keys that
    tie nested XML blocks to their parent (`*_key`), `source_file`, `source_line` and
    `source_record` (SSDA903 and CIN census).
    """

    format: str
    tables: Mapping[str, Table]
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


class RowBuffer:
    """The rows of one table as an XML reader finds them, kept as one list per column (a dict
    per row would cost several times as much). Codes and dates repeat: each column keeps one
    copy of each of its first `_SHARED_VALUES` distinct texts and points every repeat at it
    (x20 CIN census: 132 -> 126 MB peak), and stops sharing when a column's texts are mostly distinct
    (child codes), where it would only add a dictionary."""

    def __init__(self, fields: Fields) -> None:
        self.fields = fields
        self._columns: dict[str, list[Any]] = {name: [] for name in fields.names}
        self._shared: dict[str, dict[str, str] | None] = {name: {} for name in fields.names}
        self._count = 0

    def append(self, row: dict[str, Any]) -> None:
        get = row.get
        shared = self._shared
        for name, values in self._columns.items():
            value = get(name)
            seen = shared[name]
            if seen is not None and value.__class__ is str:
                value = seen.setdefault(value, value)
                if len(seen) > _SHARED_VALUES:
                    shared[name] = None
            values.append(value)
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def table(self) -> ColumnTable:
        return ColumnTable(self.fields, self._columns)


_SHARED_VALUES = 4096


class ArrowRowBuffer(RowBuffer):
    """A `RowBuffer` that turns its rows into Arrow every `chunk` rows: for readers whose
    tables are Arrow anyway (SSDA903 XML beside its CSV form), so a large file never sits in
    Python objects."""

    def __init__(self, fields: Fields, chunk: int = 8192) -> None:
        super().__init__(fields)
        self.chunk = chunk
        self._parts: list[pa.Table] = []
        self._pending = 0

    def append(self, row: dict[str, Any]) -> None:
        super().append(row)
        self._pending += 1
        if self._pending >= self.chunk:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._parts.append(ColumnTable(self.fields, self._columns).to_arrow())
            self._columns = {name: [] for name in self.fields.names}
            self._pending = 0

    def arrow_table(self) -> pa.Table:
        import pyarrow as pa

        self._flush()
        if not self._parts:
            return self.fields.to_arrow().empty_table()
        return self._parts[0] if len(self._parts) == 1 else pa.concat_tables(self._parts)
