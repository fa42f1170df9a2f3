"""The data spec as data: input-format layouts and DfE code lists, loaded from YAML.

Every model is a frozen msgspec struct that forbids unknown keys, so a typo in a spec file is an
error naming the key; checks across fields run in `__post_init__`. Duplicate YAML keys (a code
listed twice, a table defined twice) are refused too: PyYAML would silently keep the last one.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta

from trialvault.errors import InputFileError, describe_struct_error
from trialvault.records import Record

SPEC_DIR = Path(__file__).resolve().parent
LAYOUT_DIR = SPEC_DIR / "layouts"
CODELISTS_FILE = SPEC_DIR / "codelists.yaml"
FORMATS: tuple[str, ...] = ("ssda903", "cin_census", "education", "neet")

ColumnType = Literal["string", "date", "integer", "boolean"]


class _Frozen(Record, frozen=True, kw_only=True):
    """An entry of a layout or code-list file."""


class ColumnLayout(_Frozen, frozen=True, kw_only=True):
    """One column (CSV) or element (XML) of an input table."""

    name: Annotated[str, Meta(min_length=1, description="DfE column / element name as in the file")]
    type: ColumnType
    required: bool
    code_list: Annotated[str | None, Meta(
        description="Name of a code list in codelists.yaml, or null")]
    identifier: Annotated[bool, Meta(
        description="A direct identifier that prepare drops (UPN, DOB, ...)")]
    field: Annotated[str | None, Meta(
        description="Harmonised field it maps to (docs/architecture.md)")]
    xml_name: Annotated[str | None, Meta(description="XML element name where it differs")] = None
    xml_only: Annotated[bool, Meta(
        description="Only the XML form carries it (the CSV file of the table has no such column)")] = False
    description: str | None = None
    valid_from: Annotated[int | None, Meta(description="First collection year it exists")] = None
    valid_to: Annotated[int | None, Meta(description="Last collection year it exists")] = None

    def valid_in(self, year: int) -> bool:
        return (self.valid_from is None or year >= self.valid_from) and (
            self.valid_to is None or year <= self.valid_to)


class TableLayout(_Frozen, frozen=True, kw_only=True):
    """One table of a format: a CSV file or an XML block."""

    name: str
    columns: Annotated[list[ColumnLayout], Meta(min_length=1)]
    file: Annotated[str | None, Meta(description="CSV file name (CSV formats)")] = None
    xml_element: Annotated[str | None, Meta(description="SSDA903 XML element of a row")] = None
    xml_path: Annotated[str | None, Meta(description="CIN XML path of the block")] = None
    harmonised: Annotated[str | None, Meta(
        description="Harmonised table it feeds, or null (dropped)")]
    key: Annotated[list[str], Meta(description="Natural key columns (one row per key)")]
    repeated: Annotated[bool, Meta(description="Element repeats inside its parent")] = False
    reference: Annotated[bool, Meta(
        description="Reference data the LA supplies beside the return (e.g. a postcode directory), "
        "not a table of the return")] = False
    description: str | None = None
    activity: Annotated[list[str], Meta(
        max_length=2, description="Date columns giving the span of what the row records ([start, "
        "end], or [date] for an event; an empty end is still open). A row whose span misses the "
        "study's data period is not packaged; rows of a table without one follow their collection "
        "year")] = msgspec.field(default_factory=list)
    derived: Annotated[dict[str, str], Meta(
        description="Harmonised fields derived, and how")] = msgspec.field(default_factory=dict)
    valid_from: int | None = None
    valid_to: int | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"table {self.name}: column listed twice: {dup}")
        unknown = sorted(set(self.key) - set(names) - {"LAchildID", "CINreferralDate"})
        if unknown:
            raise ValueError(f"table {self.name}: key names unknown columns {unknown}")
        dates = {c.name for c in self.columns if c.type == "date"}
        if set(self.activity) - dates:
            raise ValueError(f"table {self.name}: activity names columns that are not dates "
                             f"{sorted(set(self.activity) - dates)}")

    @property
    def column_names(self) -> list[str]:
        """The columns of the table's CSV file, in the DfE's order (what a writer of the CSV
        form writes); `all_column_names` adds the XML-only ones (the SSDA903 header's UASC)."""
        return [c.name for c in self.columns if not c.xml_only]

    @property
    def all_column_names(self) -> list[str]:
        """Every column a reader may return for the table (CSV and XML forms)."""
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnLayout:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name} has no column {name}")

    def columns_in(self, year: int) -> list[ColumnLayout]:
        """The columns a file of collection year `year` carries."""
        return [c for c in self.columns if c.valid_in(year)]

    def valid_in(self, year: int) -> bool:
        return (self.valid_from is None or year >= self.valid_from) and (
            self.valid_to is None or year <= self.valid_to)

    @property
    def identifier_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.identifier]


class FormatLayout(_Frozen, frozen=True, kw_only=True):
    """A whole input format: its tables and how its files are laid out."""

    format: str
    title: str
    specification: Annotated[str, Meta(
        description="The public DfE specification the layout follows")]
    container: Literal["csv_set", "csv", "xml"]
    date_format: str
    upper_case: Annotated[bool, Meta(
        description="Coded values are compared upper-cased (DfE codes are upper case; a lower-case "
        "one is the same code)")] = False
    xml_root: str | None = None
    xml_child: str | None = None
    collection_year_from: str | None = None
    tables: Annotated[dict[str, TableLayout], Meta(min_length=1)]

    def table(self, name: str) -> TableLayout:
        try:
            return self.tables[name]
        except KeyError:
            raise KeyError(f"format {self.format} has no table {name}") from None


class CodeValidity(_Frozen, frozen=True, kw_only=True):
    valid_from: int | None = None
    valid_to: int | None = None


class CodeList(_Frozen, frozen=True, kw_only=True):
    """A DfE code list: code -> label, with the collection years each code is valid in."""

    name: str
    title: str
    codes: Annotated[dict[str, str], Meta(min_length=1)]
    validity: dict[str, CodeValidity] = msgspec.field(default_factory=dict)
    harmonised_to: Annotated[dict[str, str], Meta(
        description="Old code -> the code the harmonised tables keep")] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        stray = sorted(set(self.validity) - set(self.codes))
        if stray:
            raise ValueError(f"code list {self.name}: validity for unknown codes {stray}")

    def valid_in(self, year: int) -> set[str]:
        """Codes valid in collection year `year` (the year ending 31 March `year`)."""
        out = set()
        for code in self.codes:
            v = self.validity.get(code)
            if v is None or ((v.valid_from is None or year >= v.valid_from)
                             and (v.valid_to is None or year <= v.valid_to)):
                out.add(code)
        return out

    def harmonise(self, code: str) -> str:
        return self.harmonised_to.get(code, code)


class CodeGroup(_Frozen, frozen=True, kw_only=True):
    code_list: str
    description: str
    codes: Annotated[list[str], Meta(min_length=1)]


class CodeListFile(_Frozen, frozen=True, kw_only=True):
    code_lists: dict[str, CodeList]
    groups: dict[str, CodeGroup]

    def __post_init__(self) -> None:
        for name, group in self.groups.items():
            if group.code_list not in self.code_lists:
                raise ValueError(f"group {name}: unknown code list {group.code_list}")
            unknown = sorted(set(group.codes) - set(self.code_lists[group.code_list].codes))
            if unknown:
                raise ValueError(f"group {name}: codes not in {group.code_list}: {unknown}")
            if len(set(group.codes)) != len(group.codes):
                raise ValueError(f"group {name}: a code is listed twice")


# --- YAML reading that refuses duplicate keys -------------------------------------------------

# libyaml's parser when PyYAML was built with it (the rule files are ~1 MB of YAML: the C
# parser reads them in a fifth of the time); the constructors, and so the checks, are the same.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):
    """SafeLoader that raises on a mapping key given twice (PyYAML keeps the last silently)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                              deep: bool = False) -> dict[Hashable, Any]:
    loader.flatten_mapping(node)
    seen: dict[Hashable, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_unique_mapping)


def read_yaml(path: Path) -> Any:
    """Parse a spec YAML file; errors name the file, the line and the offending key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"cannot read spec file ({exc.strerror})", file=str(path)) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise InputFileError(f"invalid spec YAML: {exc.problem}", file=str(path),
                             line=line) from None
    except yaml.YAMLError as exc:
        raise InputFileError(f"invalid spec YAML: {exc}", file=str(path)) from None


def _named(entries: Any) -> Any:
    # Tables and code lists are keyed by name in YAML; each entry is given its key as `name`.
    if not isinstance(entries, dict):
        return entries
    return {name: {"name": name, **entry} if isinstance(entry, dict) else entry
            for name, entry in entries.items()}


def _split_code_entries(name: Any, code_list: Any, path: Path) -> Any:
    """A code list's YAML entries, `CODE: label` or `CODE: {label, valid_from, valid_to}`, as
    the model's `codes` (code -> label) and `validity`."""
    if not isinstance(code_list, dict) or not isinstance(code_list.get("codes"), dict):
        return code_list
    codes: dict[str, Any] = {}
    validity: dict[str, Any] = {}
    for code, entry in code_list["codes"].items():
        if isinstance(entry, dict):
            extra = sorted(set(entry) - {"label", "valid_from", "valid_to"})
            if extra or "label" not in entry:
                raise InputFileError(
                    f"bad code lists: key 'code_lists.{name}.codes.{code}': entry needs 'label' "
                    f"and may have valid_from/valid_to only (found {sorted(entry)})",
                    file=str(path))
            codes[str(code)] = entry["label"]
            validity[str(code)] = {k: entry[k] for k in ("valid_from", "valid_to") if k in entry}
        else:
            codes[str(code)] = entry
    return {**code_list, "codes": codes, "validity": validity}


def _convert(data: Any, model: type[Any], path: Path, what: str, within: str = "") -> Any:
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        problem = describe_struct_error(str(exc), file_kind="spec", within=within)
        raise InputFileError(f"bad {what}: {problem}", file=str(path)) from None


def convert_entries(entries: Any, model: type[Any], path: Path, what: str, key: str) -> Any:
    """A YAML mapping's entries converted one by one, so that a refusal names the entry's key
    (msgspec's own path shows a mapping key as `[...]`)."""
    if not isinstance(entries, dict):
        return entries
    return {name: _convert(entry, model, path, what, within=f"{key}.{name}")
            for name, entry in entries.items()}


def parse_layout(path: Path) -> FormatLayout:
    """Load one layout file (any path); raise InputFileError naming the file and the key."""
    data = read_yaml(path)
    if isinstance(data, dict) and "tables" in data:
        tables = convert_entries(_named(data["tables"]), TableLayout, path, "layout", "tables")
        data = {**data, "tables": tables}
    layout: FormatLayout = _convert(data, FormatLayout, path, "layout")
    return layout


def parse_code_lists(path: Path) -> CodeListFile:
    data = read_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("code_lists"), dict):
        lists = {n: _split_code_entries(n, v, path)
                 for n, v in _named(data["code_lists"]).items()}
        data = {**data, "code_lists": convert_entries(lists, CodeList, path, "code lists",
                                                      "code_lists")}
    if isinstance(data, dict) and "groups" in data:
        data = {**data, "groups": convert_entries(data["groups"], CodeGroup, path, "code lists",
                                                  "groups")}
    code_lists: CodeListFile = _convert(data, CodeListFile, path, "code lists")
    return code_lists


@functools.cache
def load_layout(fmt: str) -> FormatLayout:
    """The layout of one input format: ssda903, cin_census, education or neet."""
    if fmt not in FORMATS:
        raise KeyError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    layout = parse_layout(LAYOUT_DIR / f"{fmt}.yaml")
    if layout.format != fmt:
        raise InputFileError(f"layout says format {layout.format!r}, expected {fmt!r}",
                             file=f"{fmt}.yaml")
    _check_code_list_names(layout)
    return layout


def _check_code_list_names(layout: FormatLayout) -> None:
    known = load_code_list_file().code_lists
    for table in layout.tables.values():
        for col in table.columns:
            if col.code_list is not None and col.code_list not in known:
                raise InputFileError(
                    f"table {table.name}, column {col.name}: unknown code list {col.code_list}",
                    file=f"{layout.format}.yaml")


@functools.cache
def load_code_list_file() -> CodeListFile:
    return parse_code_lists(CODELISTS_FILE)


def load_code_lists() -> dict[str, CodeList]:
    """Every DfE code list by name."""
    return dict(load_code_list_file().code_lists)


def code_list_group(name: str) -> frozenset[str]:
    """A named group of codes used by the analysis, e.g. `residential_placements`."""
    groups = load_code_list_file().groups
    try:
        return frozenset(groups[name].codes)
    except KeyError:
        raise KeyError(f"unknown code-list group {name!r} (known: {sorted(groups)})") from None
