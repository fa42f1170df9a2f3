"""Validation rules as data: one YAML file per format under `spec/rules/`.

A rule is small and self-describing: the DfE rule code and message LA analysts know, its DfE
type (`kind`: `error` must be fixed, `query` must be fixed or explained; by the DfE's convention
a code ending in Q is a query, and the SSDA903 return has errors only), the table whose rows it
flags, the fields it looks at, our handling (`severity`: `reject` quarantines the row and
reports it; `warn` reports it only), the collection years it applies to (`valid_from`,
`valid_to`: collection year N ends on 31 March N; a code the DfE changed between years has one
entry per version, with disjoint years), and the check itself as SQL run by DuckDB
(vectorised):

- `where`: a predicate over the rule's table; rows for which it is true are flagged, or
- `query`: a SELECT returning the `_row` ids of flagged rows of the rule's table (for checks
  across rows or tables).

Both see the typed tables of the format (dates as DATE, `raw_<COL>` holding the text of every
non-string column, `collection_year`, `collection_start`, `collection_end`), the macros
`in_codes(value, 'CODE_LIST', collection_year)`, `age_years(born, on_date)`,
`dmy_date(text)`, `is_weekend(day)` and `working_days_before(day, k)`, and the rule set's named
`views` (derived tables several rules share, e.g. the children looked after continuously for 12
months), which a rule names in `tables` and the engine puts in front of its SQL as a common
table expression.
Each rule carries `examples` (rows that must fail and rows that must pass) that the test suite
runs through the same engine. The SQL must mean the same on DuckDB and on Spark (transpiled by
`engines.transpile`): no DuckDB-only functions such as TRY_STRPTIME, and no functions whose
meaning differs between them, such as dayofweek (0 or 1 for Sunday).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from trialvault.errors import InputFileError, describe_struct_error
from trialvault.records import Record
from trialvault.spec.layout import convert_entries, load_layout, read_yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FORMATS: tuple[str, ...] = ("ssda903", "cin_census", "education", "neet")
Severity = Literal["reject", "warn"]
Kind = Literal["error", "query"]
# Columns every typed table has besides the layout's own (added by reader and engine).
ENGINE_COLUMNS = frozenset({"_row", "collection_year", "collection_start", "collection_end",
                            "source_file", "source_line", "source_record"})

Row = dict[str, Any]


class _Frozen(Record, frozen=True, kw_only=True):
    """An entry of a rule file."""


class Examples(_Frozen, frozen=True, kw_only=True):
    """Table-literal cases: every `fail` case must be flagged, no `pass` case may be.

    A case is one row of the rule's table, or a list of rows (rows marked `_flag: true` are the
    ones that must be flagged; unmarked lists need at least one flagged row). `context` holds
    rows of other tables present in every case. Values are written as in the file (strings).
    """

    year: Annotated[int | None, Meta(description="Collection year of the example rows")] = None
    child_codes_as_written: Annotated[bool, Meta(
        description="Run the cases with child codes as written (for a rule about the code itself; "
        "cases then need distinct codes), not made unique per case")] = False
    context: dict[str, list[Row]] = msgspec.field(default_factory=dict)
    fail: Annotated[list[Row | list[Row]], Meta(min_length=1)]
    pass_: Annotated[list[Row | list[Row]], Meta(min_length=1)] = msgspec.field(name="pass")


class Rule(_Frozen, frozen=True, kw_only=True):
    code: Annotated[str, Meta(min_length=1, description="DfE rule code, e.g. 101 or 8500")]
    message: Annotated[str, Meta(min_length=1, description="The DfE message where one exists")]
    table: Annotated[str, Meta(description="Table whose rows the rule flags")]
    tables: Annotated[list[str], Meta(
        description="Other tables the check reads")] = msgspec.field(default_factory=list)
    fields: Annotated[list[str], Meta(min_length=1, description="Fields the rule is about")]
    severity: Severity
    kind: Annotated[Kind | None, Meta(
        description="DfE type; default: query when the code ends in Q, else error")] = None
    part: Annotated[str | None, Meta(
        description="For a check the DfE reports on several tables: which one this entry flags "
        "(one entry per table)")] = None
    valid_from: Annotated[int | None, Meta(description="First collection year it applies")] = None
    valid_to: Annotated[int | None, Meta(description="Last collection year it applies")] = None
    needs: Annotated[list[str], Meta(
        description="Reference tables the check needs (e.g. postcodes); it is not run when they "
        "are empty")] = msgspec.field(default_factory=list)
    where: str | None = None
    query: str | None = None
    note: Annotated[str | None, Meta(description="How and why it differs from the DfE")] = None
    examples: Examples

    def __post_init__(self) -> None:
        if (self.where is None) == (self.query is None):
            raise ValueError(f"rule {self.code}: give exactly one of 'where' and 'query'")

    def applies_in(self, year: int) -> bool:
        return (self.valid_from is None or year >= self.valid_from) and (
            self.valid_to is None or year <= self.valid_to)

    @property
    def dfe_kind(self) -> Kind:
        """`error` or `query`, as the DfE classes the check."""
        if self.kind is not None:
            return self.kind
        return "query" if self.code.endswith("Q") else "error"

    @property
    def key(self) -> str:
        """Unique within a rule set: the code, plus the first year for a later version and the
        part for a check reported on several tables."""
        key = self.code if self.valid_from is None else f"{self.code}@{self.valid_from}"
        return key if self.part is None else f"{key}#{self.part}"

    def overlaps(self, other: Rule) -> bool:
        if self.part != other.part:
            return False
        low = max(self.valid_from or 0, other.valid_from or 0)
        high = min(self.valid_to or 9999, other.valid_to or 9999)
        return low <= high


class View(_Frozen, frozen=True, kw_only=True):
    """A derived table rules share: a SELECT over the format's tables (and earlier views)."""

    description: Annotated[str, Meta(min_length=1)]
    tables: Annotated[list[str], Meta(
        min_length=1, description="Tables and views the SELECT reads")]
    sql: Annotated[str, Meta(min_length=1)]


class RuleSet(_Frozen, frozen=True, kw_only=True):
    format: str
    source: Annotated[str, Meta(description="Where the rules' facts come from")]
    views: dict[str, View] = msgspec.field(default_factory=dict)
    rules: list[Rule] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        # A code may appear once per version; versions must not share a collection year.
        dup = sorted({a.code for i, a in enumerate(self.rules) for b in self.rules[i + 1:]
                      if a.code == b.code and a.overlaps(b)})
        if dup:
            raise ValueError(f"rule code(s) given twice for the same collection year: {dup}")

    def rule(self, code: str, year: int | None = None) -> Rule:
        """The rule `code` (a key such as `101@2025` names one version), in force in `year`
        when given, else its first version."""
        for rule in self.rules:
            if rule.key == code or (rule.code == code and (year is None
                                                           or rule.applies_in(year))):
                return rule
        raise KeyError(f"no rule {code!r} for format {self.format}")

    @property
    def codes(self) -> list[str]:
        """Every rule code (once, in file order)."""
        return list(dict.fromkeys(r.code for r in self.rules))

    def codes_in(self, year: int) -> list[str]:
        """The codes in force in collection year `year`."""
        return list(dict.fromkeys(r.code for r in self.rules if r.applies_in(year)))

    def views_of(self, tables: Iterable[str]) -> list[str]:
        """The views among `tables`, with the views they read, in dependency order."""
        ordered: list[str] = []

        def visit(name: str) -> None:
            if name in self.views and name not in ordered:
                for inner in self.views[name].tables:
                    visit(inner)
                ordered.append(name)

        for table in tables:
            visit(table)
        return ordered

    def base_tables(self, tables: Iterable[str]) -> set[str]:
        """The format tables `tables` read, directly or through views."""
        names = set(tables)
        for view in self.views_of(tables):
            names |= set(self.views[view].tables)
        return names - set(self.views)

    def with_views(self, tables: Iterable[str], sql: str, *,
                   materialised: Collection[str] = ()) -> str:
        """`sql` preceded by `WITH view AS (...)` for each view among `tables` (or none);
        views in `materialised` are already tables under their own name and are left out."""
        views = [v for v in self.views_of(tables) if v not in materialised]
        if not views:
            return sql
        ctes = ", ".join(f"{name} AS ({self.views[name].sql})" for name in views)
        return f"WITH {ctes} {sql}"


def parse_rules(path: Path) -> RuleSet:
    """Load and check one rule file, or a folder of them (merged in name order): tables and
    fields must exist in the format's layout, and a code may not repeat across files."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files:
        raise InputFileError("rule folder holds no *.yaml file", file=str(path))
    parts = [_parse_rule_file(f) for f in files]
    formats = {p.format for p in parts}
    if len(formats) != 1:
        raise InputFileError(f"rule files disagree on the format: {sorted(formats)}",
                             file=path.name)
    if len(parts) == 1:
        _check_against_layout(parts[0], path.name)
        return parts[0]
    names = [v for p in parts for v in p.views]
    twice = sorted({v for v in names if names.count(v) > 1})
    if twice:
        raise InputFileError(f"view(s) defined in two rule files: {twice}", file=path.name)
    try:
        merged = RuleSet(format=parts[0].format, source=parts[0].source,
                         views={k: v for p in parts for k, v in p.views.items()},
                         rules=[r for p in parts for r in p.rules])
    except ValueError as exc:  # __post_init__'s check across the files
        raise InputFileError(f"bad rule files: {exc}", file=path.name) from None
    _check_against_layout(merged, path.name)
    return merged


def _parse_rule_file(path: Path) -> RuleSet:
    data = read_yaml(path)
    if isinstance(data, dict) and "views" in data:
        data = {**data, "views": convert_entries(data["views"], View, path, "rule file", "views")}
    try:
        ruleset = msgspec.convert(data, RuleSet)
    except msgspec.ValidationError as exc:
        problem = describe_struct_error(str(exc), file_kind="rule-file")
        raise InputFileError(f"bad rule file: {problem}", file=path.name) from None
    return ruleset


def _check_against_layout(ruleset: RuleSet, name: str) -> None:
    layout = load_layout(ruleset.format)
    extra = _extra_columns(ruleset.format)
    for view_name, view in ruleset.views.items():
        if view_name in layout.tables:
            raise InputFileError(f"view {view_name!r} has the name of a table", file=name)
        for table in view.tables:
            if table not in layout.tables and table not in ruleset.views:
                raise InputFileError(f"view {view_name}: unknown table {table!r}", file=name)
    for rule in ruleset.rules:
        missing = sorted(set(rule.needs) - {t.name for t in layout.tables.values() if t.reference})
        if missing or not set(rule.needs) <= set(rule.tables):
            raise InputFileError(f"rule {rule.code}: needs {missing or rule.needs} must be reference "
                                 "tables it also lists in tables", file=name)
        if rule.table not in layout.tables:
            raise InputFileError(f"rule {rule.code}: unknown table {rule.table!r}", file=name)
        for table in rule.tables:
            if table not in layout.tables and table not in ruleset.views:
                raise InputFileError(f"rule {rule.code}: unknown table {table!r}", file=name)
        known = {c for t in ruleset.base_tables((rule.table, *rule.tables))
                 for c in layout.tables[t].all_column_names}
        unknown = sorted(set(rule.fields) - known - extra - ENGINE_COLUMNS)
        if unknown:
            raise InputFileError(f"rule {rule.code}: unknown field(s) {unknown}", file=name)
        for table, rows in rule.examples.context.items():
            if table not in layout.tables:
                raise InputFileError(f"rule {rule.code}: example context names unknown table "
                                     f"{table!r}", file=name)
            del rows


def _extra_columns(fmt: str) -> frozenset[str]:
    # Reader-added columns rules may name (child id and keys of the nested CIN blocks).
    if fmt == "cin_census":
        return frozenset({"LAchildID", "child_key", "reference_date", "la"})
    return frozenset()


@functools.cache
def load_rules(fmt: str) -> RuleSet:
    """The validation rules of one format (ssda903 or cin_census)."""
    if fmt not in RULE_FORMATS:
        raise KeyError(f"no validation rules for format {fmt!r} (known: "
                       f"{', '.join(RULE_FORMATS)})")
    folder = RULES_DIR / fmt
    ruleset = parse_rules(folder if folder.is_dir() else RULES_DIR / f"{fmt}.yaml")
    if ruleset.format != fmt:
        raise InputFileError(f"rule file says format {ruleset.format!r}, expected {fmt!r}",
                             file=f"{fmt}.yaml")
    return ruleset
