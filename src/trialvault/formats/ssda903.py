"""SSDA903 (children looked after) return: the CSV table set and the XML (`<EXPSSDA903>`) form.

Input is a folder of CSVs, a folder of per-year subfolders (`2023/`, `2022-23/`, `2022_23/`,
each holding CSVs or one XML file), or one XML file. CSV tables are recognised by their header
(file names vary between LAs). Two files holding the same table are refused, both named (a
copy such as `episodes (1).csv` left in the folder would otherwise be merged and every row
reported twice); files that are not CSV are not read and are listed in `meta["ignored"]`. The
collection year (year ending 31 March) comes from the subfolder name, else from the caller,
else from the latest episode start in the return; `meta["year_from"]` says which, per year.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from trialvault.errors import InputFileError
from trialvault.formats.base import (
    COLLECTION_YEAR,
    READERS,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_RECORD,
    ArrowRowBuffer,
    Fields,
    SourceTables,
)
from trialvault.formats.csvfile import read_csv_table, read_header
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits
from trialvault.formats.xmlfile import Node, iter_records
from trialvault.spec import FormatLayout, TableLayout, load_layout

FORMAT = "ssda903"
REQUIRED_TABLES = ("header", "episodes")
_YEAR_DIR = re.compile(r"^(?:(\d{4})|(\d{4})[-_](\d{2}))$")
# XML-only header elements: the UASC flag and the adoption (AD1) / care-leaver (OC3) items that
# the CSV form keeps in their own files but the XML puts straight into HEADER.
_XML_HEADER_TABLES = ("ad1", "oc3")
_AD1_ITEMS = frozenset({"DATE_INT", "DATE_MATCH", "FOSTER_CARE", "NB_ADOPTR", "SEX_ADOPTR",
                        "LS_ADOPTR"})


def year_of_folder(name: str) -> int | None:
    """Collection year named by a folder: `2023`, `2022-23` or `2022_23` all mean 2023."""
    match = _YEAR_DIR.match(name)
    if not match:
        return None
    if match.group(1):
        return int(match.group(1))
    start, end = int(match.group(2)), int(match.group(3))
    if (start + 1) % 100 != end:
        return None
    return start + 1


def table_schema(name: str) -> pa.Schema:
    """Arrow schema of table `name` as this reader returns it (all strings, year, lineage)."""
    spec = load_layout(FORMAT).table(name)
    return pa.schema([*(pa.field(c, pa.string()) for c in spec.all_column_names),
                      pa.field(COLLECTION_YEAR, pa.int32()), pa.field(SOURCE_FILE, pa.string()),
                      pa.field(SOURCE_LINE, pa.int32()), pa.field(SOURCE_RECORD, pa.int32())])


@READERS.register(FORMAT)
def read_ssda903(paths: Sequence[Path], *, limits: ReadLimits = DEFAULT_LIMITS,
                 year: int | None = None) -> SourceTables:
    """Read one SSDA903 return (see module doc); `paths` holds one folder or XML file, or
    several (one per collection year)."""
    layout = load_layout(FORMAT)
    parts: list[_Part] = []
    for path in paths:
        parts.extend(_read_one(path, layout, limits, year))
    if not parts:
        raise InputFileError("no SSDA903 files given")
    tables: dict[str, list[pa.Table]] = {}
    files: list[str] = []
    ignored: list[str] = []
    year_from: dict[int, str] = {}
    for part in parts:
        files.extend(part.files)
        ignored.extend(part.ignored)
        year_from.update(part.year_from)
        for name, table in part.tables.items():
            tables.setdefault(name, []).append(table)
    merged = {name: pa.concat_tables(chunks) for name, chunks in tables.items()}
    years = sorted({y for t in merged.values() for y in
                    pc.unique(t[COLLECTION_YEAR]).to_pylist() if y is not None})
    return SourceTables(format=FORMAT, tables=merged, files=tuple(files),
                        meta={"collection_years": years, "ignored": ignored,
                              "year_from": year_from})


class _Part(NamedTuple):
    tables: dict[str, pa.Table]
    files: list[str]
    ignored: list[str]
    year_from: dict[int, str]


def _read_one(path: Path, layout: FormatLayout, limits: ReadLimits, year: int | None
              ) -> list[_Part]:
    if path.is_file():
        return [_read_xml(path, layout, limits, year)]
    if not path.is_dir():
        raise InputFileError("SSDA903 input is neither a folder nor a file", file=str(path))
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    year_dirs = [(d, year_of_folder(d.name)) for d in subdirs]
    year_dirs = [(d, y) for d, y in year_dirs if y is not None]
    if year_dirs:
        loose = sorted(p.name for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in (".csv", ".xml"))
        if loose:
            raise InputFileError(f"folder mixes per-year subfolders with loose files {loose}; "
                                 "put each year's files in its own subfolder", file=str(path))
        seen = [y for _, y in year_dirs]
        if len(seen) != len(set(seen)):
            raise InputFileError("two subfolders name the same collection year", file=str(path))
        return [_read_folder(d, layout, limits, y, f"folder name {d.name}")
                for d, y in year_dirs]
    return [_read_folder(path, layout, limits, year)]


def _read_folder(folder: Path, layout: FormatLayout, limits: ReadLimits, year: int | None,
                 how: str = "given (--ssda903-year)") -> _Part:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    xmls = [p for p in files if p.suffix.lower() == ".xml"]
    csvs = [p for p in files if p.suffix.lower() == ".csv"]
    ignored: list[str] = []
    if csvs:
        # A folder of CSVs is the CSV form; other files in it (an XML export, Ofsted lookups)
        # are not read, and the caller is told which (SourceTables.meta["ignored"]).
        ignored = [p.name for p in files if p not in csvs]
        xmls = []
    elif len(xmls) > 1:
        raise InputFileError(f"folder holds {len(xmls)} XML files; give one per year",
                             file=str(folder))
    if xmls:
        return _read_xml(xmls[0], layout, limits, year, how)
    if not csvs:
        raise InputFileError("folder holds no SSDA903 CSV or XML file", file=str(folder))
    tables: dict[str, pa.Table] = {}
    seen: dict[str, str] = {}
    for csv_path in csvs:
        table = _identify(csv_path, read_header(csv_path, limits), layout)
        if table in seen:
            raise InputFileError(f"{seen[table]} and {csv_path.name} both hold the {table} "
                                 "table; keep the one to submit and move the other out of the "
                                 "folder", file=str(folder), rule="duplicate-table")
        seen[table] = csv_path.name
        spec = layout.tables[table]
        read = read_csv_table(csv_path, spec.all_column_names,
                              [c.name for c in spec.columns if c.required],
                              limits=limits, table=table)
        tables[table] = read.append_column(
            pa.field(SOURCE_RECORD, pa.int32()),
            pa.array(range(1, read.num_rows + 1), pa.int32()))
    _check_required(tables, folder)
    with_year, year_from = _with_year(tables, layout, year, folder.name, how)
    return _Part(with_year, [p.name for p in csvs], ignored, year_from)


def _identify(path: Path, header: list[str], layout: FormatLayout) -> str:
    """The table whose columns match the header: all required present, nothing unknown."""
    given = {h.upper() for h in header}
    matches = []
    tables = [spec for spec in layout.tables.values() if not spec.reference]
    for spec in tables:
        known = {c.upper() for c in spec.all_column_names}
        required = {c.name.upper() for c in spec.columns if c.required}
        if given <= known and required <= given:
            matches.append(spec.name)
    if len(matches) > 1:
        by_name = [m for m in matches if (layout.tables[m].file or "").lower() == path.name.lower()]
        matches = by_name if len(by_name) == 1 else matches
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise InputFileError(_mismatch(path, header, tables), file=path.name, line=1,
                             rule="columns")
    raise InputFileError(f"columns match several SSDA903 tables {matches}; name the file as "
                         "the DfE does (e.g. header.csv)", file=path.name, line=1,
                         rule="columns")


def _mismatch(path: Path, header: list[str], tables: list[TableLayout]) -> str:
    """Why a header matches no table, against the table it is closest to (by file name, else
    by shared columns): the unknown columns and the missing required ones, by name."""
    given = {h.upper(): h for h in header}

    def closeness(spec: TableLayout) -> tuple[bool, int]:
        named = (spec.file or "").lower() == path.name.lower()
        return named, len(set(given) & {c.upper() for c in spec.all_column_names})

    best = max(tables, key=closeness)
    if closeness(best) == (False, 0):
        return (f"columns {header} match no SSDA903 table (is this a return file? the DfE "
                "files are header.csv, episodes.csv, reviews.csv, ...)")
    known = {c.upper() for c in best.all_column_names}
    unknown = [given[h] for h in given if h not in known]
    missing = [c.name for c in best.columns if c.required and c.name.upper() not in given]
    parts = ([f"unknown column(s) {unknown}"] if unknown else []) + (
        [f"required column(s) {missing} missing"] if missing else [])
    return f"columns match no SSDA903 table; nearest is {best.name}: {'; '.join(parts)}"


def _check_required(tables: dict[str, Any], where: Path) -> None:
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise InputFileError(f"SSDA903 return lacks table(s) {missing}", file=str(where),
                             rule="tables")


def _with_year(tables: dict[str, pa.Table], layout: FormatLayout, year: int | None,
               where: str, how: str = "given (--ssda903-year)"
               ) -> tuple[dict[str, pa.Table], dict[int, str]]:
    if year is None:
        year, how = _infer_year(tables["episodes"], layout.date_format), (
            f"latest episode start (DECOM) in {where}")
    if year is None:
        raise InputFileError("cannot tell the collection year: put the return in a folder "
                             "named by its year (e.g. 2023) or give the year", file=where,
                             rule="collection-year")
    out = {}
    for name, table in tables.items():
        index = table.schema.get_field_index(SOURCE_FILE)
        out[name] = table.add_column(index, COLLECTION_YEAR,
                                     pa.array([year] * table.num_rows, pa.int32()))
    return out, {year: how}


def _infer_year(episodes: pa.Table, date_format: str) -> int | None:
    """Collection year holding the latest episode start (years end on 31 March)."""
    dates = pc.strptime(episodes["DECOM"], format=date_format, unit="s", error_is_null=True)
    latest = pc.max(dates).as_py()
    if latest is None:
        return None
    day = latest.date() if isinstance(latest, dt.datetime) else latest
    return int(day.year + 1 if day.month >= 4 else day.year)


# --- the XML form ----------------------------------------------------------------------------

def _xml_names(spec: TableLayout) -> dict[str, str]:
    return {(c.xml_name or c.name): c.name for c in spec.columns}


def _read_xml(path: Path, layout: FormatLayout, limits: ReadLimits, year: int | None,
              how: str = "given (--ssda903-year)") -> _Part:
    root, record = layout.xml_root or "EXPSSDA903", layout.xml_child or "CHILD"
    blocks = {t.xml_element: t for t in layout.tables.values()
              if t.xml_element and t.name != "header"}
    header_spec = layout.tables["header"]
    header_fields = _xml_names(header_spec)
    # Elements HEADER may hold directly: its own columns, UASC/DUC and the AD1/OC3 items.
    flat: dict[str, str] = {**header_fields, "UASC": "UASC", "DUC": "DUC"}
    for name in _XML_HEADER_TABLES:
        flat.update(_xml_names(layout.tables[name]))
    rows: dict[str, ArrowRowBuffer] = {name: ArrowRowBuffer(_fields(spec))
                                       for name, spec in layout.tables.items()}
    for ordinal, child in enumerate(iter_records(path, root, frozenset({record}), limits), 1):
        _read_child(child, path.name, header_spec, blocks, flat, rows, ordinal)
    tables = {name: rows[name].arrow_table() for name in layout.tables
              if len(rows[name]) or name in REQUIRED_TABLES}
    _check_required({k: v for k, v in tables.items() if v.num_rows}, path)
    with_year, year_from = _with_year(tables, layout, year, path.name, how)
    return _Part(with_year, [path.name], [], year_from)


def _fields(spec: TableLayout) -> Fields:
    return Fields((*((c, "string") for c in spec.all_column_names), (SOURCE_FILE, "string"),
                   (SOURCE_LINE, "int32"), (SOURCE_RECORD, "int32")))


def _read_child(child: Node, name: str, header_spec: TableLayout, blocks: dict[str, TableLayout],
                flat: dict[str, str], rows: dict[str, ArrowRowBuffer],
                ordinal: int = 0) -> None:
    headers = child.findall("HEADER")
    if len(headers) != 1:
        raise InputFileError(f"<{child.tag}> holds {len(headers)} HEADER elements, expected 1",
                             file=name, line=child.line, rule="xml-structure")
    header = headers[0]
    values: dict[str, str | None] = {}
    nested: list[Node] = []
    for node in header.children:
        if node.tag in blocks:
            nested.append(node)
        elif node.tag in flat and not node.children:
            values[flat[node.tag]] = node.text
        else:
            _unknown(node, name, "HEADER")
    lineage = {SOURCE_FILE: name, SOURCE_LINE: header.line, SOURCE_RECORD: ordinal}
    rows["header"].append({**{c: values.get(c) for c in header_spec.all_column_names}, **lineage})
    ident = {"CHILD": values.get("CHILD"), "DOB": values.get("DOB")}
    uasc = values.get("UASC")
    if (uasc is not None and uasc != "0") or values.get("DUC") is not None:
        rows["uasc"].append({**ident, "SEX": values.get("SEX"), "DUC": values.get("DUC"),
                             **lineage})
    if values.get("IN_TOUCH") is not None or values.get("ACTIV") or values.get("ACCOM"):
        rows["oc3"].append({**ident, **{k: values.get(k) for k in ("IN_TOUCH", "ACTIV", "ACCOM")},
                            **lineage})
    ad1_cols = [c for c in flat.values() if c in _AD1_ITEMS]
    if any(values.get(c) is not None for c in ad1_cols):
        rows["ad1"].append({**ident, **{c: values.get(c) for c in ad1_cols}, **lineage})
    for node in child.children:
        if node.tag == "HEADER":
            continue
        if node.tag in blocks:
            nested.append(node)
        else:
            _unknown(node, name, child.tag)
    for node in nested:
        spec = blocks[node.tag]
        names = _xml_names(spec)
        row: dict[str, Any] = dict(ident)
        for field_node in node.children:
            if field_node.tag not in names or field_node.children:
                _unknown(field_node, name, node.tag)
            row[names[field_node.tag]] = field_node.text
        rows[spec.name].append({**row, SOURCE_FILE: name, SOURCE_LINE: node.line,
                                SOURCE_RECORD: ordinal})


def _unknown(node: Node, name: str, parent: str) -> None:
    raise InputFileError(f"unknown element <{node.tag}> in <{parent}>", file=name,
                         line=node.line, rule="columns")
