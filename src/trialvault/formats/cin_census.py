"""Children in need census: one XML file (root `<Message>`) per collection year.

Every year's schema variant is read by one walker driven by the layout's `xml_path`s: a block
element becomes a row of its table, its leaf children the columns; a `repeated` table (e.g.
Disabilities) gives one row per leaf. Both `GenderCurrent` (to 2023/24) and `Sex` (from 2024/25)
are accepted, as are the 2026 pre-proceedings blocks. Nested rows carry the keys of the blocks
that enclose them (`child_key`, `cin_details_key`, ...), unique across all files read, and the
child's `LAchildID`, so validation can join them without guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trialvault.errors import InputFileError
from trialvault.formats.base import (
    COLLECTION_YEAR,
    READERS,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_RECORD,
    Fields,
    Kind,
    RowBuffer,
    SourceTables,
)
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits
from trialvault.formats.xmlfile import Node, iter_records
from trialvault.spec import FormatLayout, TableLayout, load_layout

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "cin_census"
CHILD_ID = "LAchildID"
REFERENCE_DATE = "reference_date"
LA = "la"
CHILD_KEY = "child_key"
_HEADER_TABLES = ("collection_details", "source")


def key_column(table: str) -> str:
    """Name of the key column a block's rows get (and that rows nested in it carry)."""
    return CHILD_KEY if table == "child" else f"{table}_key"


class _Tree:
    """The layout's tables arranged by XML path: which block holds which."""

    def __init__(self, layout: FormatLayout) -> None:
        self.layout = layout
        self.by_path: dict[tuple[str, ...], TableLayout] = {}
        self.known = {t.name: frozenset(t.all_column_names) for t in layout.tables.values()}
        for table in layout.tables.values():
            if not table.xml_path:
                raise InputFileError(f"layout table {table.name} has no xml_path",
                                     file=f"{FORMAT}.yaml")
            self.by_path[tuple(table.xml_path.split("/"))] = table
        # Keys a table's rows carry: one per enclosing non-repeated block, outermost first.
        # Blocks that hold other blocks get a key their own and their nested rows carry.
        self.containers = {t.name for path, t in self.by_path.items() if not t.repeated and any(
            len(p) > len(path) and p[:len(path)] == path for p in self.by_path)}
        self.keys: dict[str, list[str]] = {}
        for path, table in self.by_path.items():
            if len(path) < 3 or path[1] != "Children":
                self.keys[table.name] = []
                continue
            enclosing = [self.by_path[path[:i]].name for i in range(1, len(path) + 1)
                         if path[:i] in self.by_path]
            self.keys[table.name] = [CHILD_KEY, *(key_column(t) for t in enclosing
                                                   if t in self.containers)]

    def fields(self, table: TableLayout) -> Fields:
        fields: list[tuple[str, Kind]] = [(c, "string") for c in table.all_column_names]
        if self.keys[table.name]:
            if CHILD_ID not in table.all_column_names:
                fields.append((CHILD_ID, "string"))
            fields += [(k, "int64") for k in self.keys[table.name]]
        fields += [(COLLECTION_YEAR, "int32"), (REFERENCE_DATE, "string"), (LA, "string"),
                   (SOURCE_FILE, "string"), (SOURCE_LINE, "int32"), (SOURCE_RECORD, "int32")]
        return Fields(tuple(fields))


def table_fields(name: str) -> Fields:
    """The columns of table `name` as this reader returns it (all strings, keys, lineage)."""
    layout = load_layout(FORMAT)
    return _Tree(layout).fields(layout.table(name))


def table_schema(name: str) -> pa.Schema:
    """`table_fields` as an Arrow schema."""
    return table_fields(name).to_arrow()


@READERS.register(FORMAT)
def read_cin_census(paths: Sequence[Path], *, limits: ReadLimits = DEFAULT_LIMITS
                    ) -> SourceTables:
    """Read CIN census XML files (any number, typically one per collection year)."""
    if not paths:
        raise InputFileError("no CIN census file given")
    layout = load_layout(FORMAT)
    tree = _Tree(layout)
    rows: dict[str, RowBuffer] = {name: RowBuffer(tree.fields(spec))
                                  for name, spec in layout.tables.items()}
    counter = [0]
    headers = []
    names = [p.name for p in paths]
    if len(names) != len(set(names)):
        raise InputFileError("two CIN census files have the same name; rename one so the "
                             "error report can tell them apart")
    for path in paths:
        if not path.is_file():
            raise InputFileError("CIN census input is not a file", file=str(path))
        headers.append(_read_file(path, tree, limits, rows, counter))
    tables = {name: rows[name].table() for name in layout.tables}
    return SourceTables(format=FORMAT, tables=tables, files=tuple(names),
                        meta={"headers": headers,
                              "collection_years": sorted({h["collection_year"] for h in headers
                                                          if h["collection_year"] is not None})})


def _read_file(path: Path, tree: _Tree, limits: ReadLimits, rows: dict[str, RowBuffer],
               counter: list[int]) -> dict[str, Any]:
    name = path.name
    root = tree.layout.xml_root or "Message"
    context: dict[str, Any] | None = None
    ordinal = 0  # the <Child>'s place in the file (one-line XML has every child on one line)
    for record in iter_records(path, root, frozenset({"Header", "Child"}), limits):
        if record.tag == "Header":
            if context is not None:
                raise InputFileError("file has a second <Header>", file=name, line=record.line,
                                     rule="xml-structure")
            context = _read_header(record, tree, name, rows)
            continue
        if context is None:
            raise InputFileError("<Child> before the <Header>", file=name, line=record.line,
                                 rule="xml-structure")
        counter[0] += 1
        ordinal += 1
        identifiers = record.find("ChildIdentifiers")
        child_id = identifiers.value(CHILD_ID) if identifiers is not None else None
        base = {**context["lineage"], CHILD_ID: child_id, CHILD_KEY: counter[0],
                SOURCE_RECORD: ordinal}
        _walk(record, ("Message", "Children", "Child"), base, tree, name, rows, counter)
    if context is None:
        raise InputFileError("file has no <Header> (not a CIN census return?)", file=name,
                             rule="xml-structure")
    return {k: v for k, v in context.items() if k != "lineage"}


def _read_header(record: Node, tree: _Tree, name: str, rows: dict[str, RowBuffer]
                 ) -> dict[str, Any]:
    values: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    for block in record.children:
        table = tree.by_path.get(("Message", "Header", block.tag))
        if table is None:
            _unknown(block, name, "Header")
            continue
        values[table.name] = _leaves(block, table, name, tree.known[table.name])
        lines[table.name] = block.line
    details = values.get("collection_details", {})
    source = values.get("source", {})
    year_text = details.get("Year")
    reference = details.get("ReferenceDate")
    year_from = "<Year> in the header"
    try:
        year = int(year_text) if year_text else None
    except ValueError:
        year = None
    if year is None and reference and len(reference) >= 4 and reference[:4].isdigit():
        year, year_from = int(reference[:4]), "<ReferenceDate> in the header"
    lineage = {COLLECTION_YEAR: year, REFERENCE_DATE: reference, LA: source.get("LEA"),
               SOURCE_FILE: name}
    for table_name, row in values.items():
        rows[table_name].append({**row, **lineage, SOURCE_LINE: lines[table_name],
                                 SOURCE_RECORD: 0})
    return {"file": name, "collection_year": year, "reference_date": reference,
            "year_from": year_from if year is not None else None,
            "la": source.get("LEA"), "lineage": lineage}


def _leaves(block: Node, table: TableLayout, name: str, known: frozenset[str]
            ) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for leaf in block.children:
        if leaf.tag not in known or leaf.children:
            _unknown(leaf, name, block.tag)
        if leaf.tag in row and row[leaf.tag] is not None:
            raise InputFileError(f"<{leaf.tag}> given twice in <{block.tag}>", file=name,
                                 line=leaf.line, rule="xml-structure")
        row[leaf.tag] = leaf.text
    return row


def _walk(node: Node, path: tuple[str, ...], base: dict[str, Any], tree: _Tree, name: str,
          rows: dict[str, RowBuffer], counter: list[int]) -> None:
    """Emit the rows of the blocks inside `node` (whose own path is `path`)."""
    for child in node.children:
        child_path = (*path, child.tag)
        table = tree.by_path.get(child_path)
        if table is None:
            # A pure container (e.g. <Children>) is allowed only if some table lies below it.
            if any(p[:len(child_path)] == child_path for p in tree.by_path) and child.children:
                _walk(child, child_path, base, tree, name, rows, counter)
                continue
            _unknown(child, name, node.tag)
            continue
        if table.repeated:
            column = table.columns[0].name
            for leaf in child.children:
                if leaf.tag != column or leaf.children:
                    _unknown(leaf, name, child.tag)
                rows[table.name].append({**base, column: leaf.text, SOURCE_LINE: leaf.line})
            continue
        scalars = Node(child.tag, child.line)
        nested = Node(child.tag, child.line)
        for leaf in child.children:
            (nested if (*child_path, leaf.tag) in tree.by_path or leaf.children
             else scalars).children.append(leaf)
        row = {**base, **_leaves(scalars, table, name, tree.known[table.name]),
               SOURCE_LINE: child.line}
        inner = base
        if table.name in tree.containers:
            counter[0] += 1
            inner = {**base, key_column(table.name): counter[0]}
            row[key_column(table.name)] = counter[0]
        rows[table.name].append(row)
        if nested.children:
            _walk(nested, child_path, inner, tree, name, rows, counter)


def _unknown(node: Node, name: str, parent: str) -> None:
    raise InputFileError(f"unknown element <{node.tag}> in <{parent}>", file=name,
                         line=node.line, rule="columns")
