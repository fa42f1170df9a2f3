"""Listing and report output for every command: `--format table|json|csv` and `--json`.

A command that lists or reports describes its rows once, as a `Listing` (column keys, titles,
JSON types), and hands the rows to `emit`. The same description gives

- **table**: a terminal table that never cuts a value: short fixed values (ids, dates, codes,
  numbers) never wrap, free text wraps between words, and a table wider than the terminal is
  drawn at its natural width (the terminal wraps the lines; nothing is replaced by `…`).
  Piped or redirected, the table is plain text, one line per row, no colour, no box.
- **csv**: a header of column keys, one record per row (RFC 4180 quoting).
- **json**: an array of objects keyed by column key; dates as ISO 8601 strings, missing
  values as null. `json_schema()` gives the JSON Schema that `docs/json-schemas/` holds.

Usage in a command (see docs/cli.md):

    LISTING = Listing("rights-list", "Data-subject requests", (
        Column("id", "id", "integer"), Column("due", "due", "date"), ...))

    def rights_list(..., fmt: FormatOption = None, as_json: JsonOption = False) -> None:
        emit(LISTING, rows, output_format(fmt, as_json))
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import typer

JsonType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
SCHEMA_BASE = "https://trialvault.invalid/schemas/"  # an id, not a place to fetch from
_JSON_TYPES: dict[str, dict[str, str]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[
    OutputFormat | None,
    typer.Option("--format", help="Output as a table (default), json or csv. Tables never "
                 "cut values; json follows the schema in docs/json-schemas/.",
                 show_default=False, case_sensitive=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]


def output_format(fmt: OutputFormat | None, as_json: bool) -> OutputFormat:
    """The format asked for by `--format` and `--json` (which must not disagree)."""
    if as_json and fmt not in (None, OutputFormat.json):
        raise typer.BadParameter(f"--json and --format {fmt.value} disagree: give one",
                                 param_hint="--json")
    if as_json:
        return OutputFormat.json
    return fmt or OutputFormat.table


@dataclass(frozen=True)
class Column:
    """One column: `key` names it in JSON and CSV, `title` heads the table."""

    key: str
    title: str
    type: JsonType = "string"
    nullable: bool = False
    wrap: bool = False  # free text may wrap between words; other values never wrap
    description: str = ""


@dataclass(frozen=True)
class Listing:
    """The rows a command lists: a name (its schema's file name) and its columns."""

    name: str
    description: str
    columns: tuple[Column, ...]
    version: int = 1
    _keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = [c.key for c in self.columns]
        titles = [c.title for c in self.columns]
        for what, names in (("key", keys), ("title", titles)):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"listing {self.name}: column {what}s used twice: {twice}")
        object.__setattr__(self, "_keys", frozenset(keys))

    def records(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts in column order; a missing or unknown key is a bug."""
        out = []
        for row in rows:
            if set(row) != self._keys:
                raise ValueError(f"listing {self.name}: row keys {sorted(row)} are not the "
                                 f"columns {sorted(self._keys)}")
            out.append({c.key: _jsonable(row[c.key]) for c in self.columns})
        return out

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of this listing's `--format json` output."""
        properties: dict[str, Any] = {}
        for c in self.columns:
            prop: dict[str, Any] = dict(_JSON_TYPES[c.type])
            if c.nullable:
                prop["type"] = [prop["type"], "null"]
            if c.description:
                prop["description"] = c.description
            properties[c.key] = prop
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_BASE}{self.name}.v{self.version}.json",
            "title": f"trialvault {self.name}",
            "description": self.description,
            "type": "array",
            "items": {"type": "object", "properties": properties,
                      "required": [c.key for c in self.columns],
                      "additionalProperties": False},
        }


def trialvault_listings() -> dict[str, Listing]:
    """Every `Listing` held by a loaded `trialvault` module, by name (load the commands first:
    `trialvault.cli.load_all()`). Two different listings with one name are refused."""
    found: dict[str, Listing] = {}
    for module_name, module in list(sys.modules.items()):
        if module_name != "trialvault" and not module_name.startswith("trialvault."):
            continue
        for value in vars(module).values():
            if isinstance(value, Listing) and found.setdefault(value.name, value) != value:
                raise ValueError(f"two listings are named {value.name!r}")
    return found


def write_schemas(folder: Path) -> list[Path]:
    """Write the JSON Schema of every listing into `folder` (docs/json-schemas)."""
    written = []
    for name, listing in sorted(trialvault_listings().items()):
        path = folder / f"{name}.schema.json"
        path.write_text(json.dumps(listing.json_schema(), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def emit(listing: Listing, rows: Iterable[Mapping[str, Any]], fmt: OutputFormat, *,
         title: str | None = None, file: IO[str] | None = None,
         highlight: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
    """Write `rows` to `file` (stdout) in `fmt`. `highlight(row)` may name a rich style for a
    row (e.g. "bold red" for an overdue request); it colours terminal tables only."""
    out = file or sys.stdout
    rows = list(rows)
    records = listing.records(rows)
    if fmt is OutputFormat.json:
        out.write(json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    elif fmt is OutputFormat.csv:
        out.write(to_csv(listing, records))
    else:
        out.write(render_table(listing, records, title=title, terminal=_is_terminal(out),
                               width=shutil.get_terminal_size().columns,
                               styles=[highlight(r) for r in rows] if highlight else None))


def emit_json(document: Any, *, file: IO[str] | None = None) -> None:
    """A report's JSON document (an object with its own schema in docs/json-schemas/)."""
    (file or sys.stdout).write(json.dumps(_jsonable_deep(document), indent=2,
                                          ensure_ascii=False) + "\n")


def to_csv(listing: Listing, records: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.key for c in listing.columns])
    for record in records:
        writer.writerow([_csv_cell(record[c.key]) for c in listing.columns])
    return buffer.getvalue()


def render_table(listing: Listing, records: Sequence[Mapping[str, Any]], *,
                 title: str | None = None, terminal: bool = False, width: int = 80,
                 styles: Sequence[str | None] | None = None) -> str:
    """The table as text. On a terminal: a rich table with a header rule; else plain."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    cells = [[_cell(r[c.key]) for c in listing.columns] for r in records]
    min_widths = [_min_width(c, [row[i] for row in cells]) for i, c in enumerate(listing.columns)]
    natural = [max([len(c.title), *(len(row[i]) for row in cells)])
               for i, c in enumerate(listing.columns)]
    gaps = 3 * len(listing.columns)  # rich's cell padding and rules
    table = Table(title=title if terminal else None, box=box.SIMPLE_HEAD if terminal else None,
                  show_edge=False, pad_edge=False, header_style="bold" if terminal else "")
    for i, c in enumerate(listing.columns):
        right = c.type in ("integer", "number")
        if c.wrap:
            table.add_column(c.title, overflow="fold", min_width=min_widths[i])
        else:
            table.add_column(c.title, no_wrap=True, min_width=min_widths[i],
                             justify="right" if right else "left")
    for i, row in enumerate(cells):
        table.add_row(*row, style=(styles[i] if styles and terminal else None))
    # Never narrower than the columns need: a long table wraps in the terminal, never loses
    # characters. Piped output has no width limit at all (one line per row).
    render_width = (max(width, sum(min_widths) + gaps) if terminal
                    else sum(natural) + gaps + 10)
    buffer = io.StringIO()
    console = Console(file=buffer, width=render_width, force_terminal=terminal,
                      no_color=not terminal, color_system="auto" if terminal else None,
                      highlight=False, emoji=False, markup=False)
    console.print(table)
    lines = [line.rstrip() for line in buffer.getvalue().split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def _min_width(column: Column, values: list[str]) -> int:
    """The narrowest a column may be without cutting a value: a fixed value's full length, a
    free text's longest word (at least 12, or its whole length when shorter)."""
    longest = max([len(column.title), *(len(v) for v in values)])
    if not column.wrap:
        return longest
    word = max([len(column.title), *(len(w) for v in values for w in v.split())])
    return max(word, min(longest, 12))


def _is_terminal(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _csv_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _cell(value)


def utc(value: str | dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp (naive values are UTC, as the vault stores them) as an aware UTC
    datetime, to the second: JSON shows it as RFC 3339, a table without microseconds."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _jsonable_deep(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable_deep(v) for v in value]
    return _jsonable(value)
