"""Validation rules as data: one YAML file per format under `spec/rules/`.

A rule is small and self-describing: the DfE rule code and message LA analysts know, the table
whose rows it flags, the fields it looks at, its severity (`reject`: the row is quarantined and
reported; `warn`: reported only), the collection years it applies to, and the check itself as
SQL run by DuckDB (vectorised):

- `where`: a predicate over the rule's table; rows for which it is true are flagged, or
- `query`: a SELECT returning the `_row` ids of flagged rows of the rule's table (for checks
  across rows or tables).

Both see the typed tables of the format (dates as DATE, `raw_<COL>` holding the text of every
non-string column, `collection_year`, `collection_start`, `collection_end`) and the macro
`in_codes(value, 'CODE_LIST', collection_year)`. Each rule carries `examples` (rows that must
fail and rows that must pass) that the test suite runs through the same engine.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trialvault.errors import InputFileError
from trialvault.spec.layout import load_layout, read_yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FORMATS: tuple[str, ...] = ("ssda903", "cin_census", "education", "neet")
Severity = Literal["reject", "warn"]
# Columns every typed table has besides the layout's own (added by reader and engine).
ENGINE_COLUMNS = frozenset({"_row", "collection_year", "collection_start", "collection_end",
                            "source_file", "source_line"})

Row = dict[str, Any]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Examples(_Frozen):
    """Table-literal cases: every `fail` case must be flagged, no `pass` case may be.

    A case is one row of the rule's table, or a list of rows (rows marked `_flag: true` are the
    ones that must be flagged; unmarked lists need at least one flagged row). `context` holds
    rows of other tables present in every case. Values are written as in the file (strings).
    """

    year: int | None = Field(default=None, description="Collection year of the example rows")
    context: dict[str, list[Row]] = Field(default_factory=dict)
    fail: list[Row | list[Row]] = Field(min_length=1)
    pass_: list[Row | list[Row]] = Field(alias="pass", min_length=1)


class Rule(_Frozen):
    code: str = Field(min_length=1, description="DfE rule code, e.g. 101 or 8500")
    message: str = Field(min_length=1, description="The DfE message where one exists")
    table: str = Field(description="Table whose rows the rule flags")
    tables: list[str] = Field(default_factory=list, description="Other tables the check reads")
    fields: list[str] = Field(min_length=1, description="Fields the rule is about")
    severity: Severity
    valid_from: int | None = Field(default=None, description="First collection year it applies")
    valid_to: int | None = Field(default=None, description="Last collection year it applies")
    where: str | None = None
    query: str | None = None
    note: str | None = Field(default=None, description="How and why it differs from the DfE")
    examples: Examples

    @model_validator(mode="after")
    def _one_check(self) -> Rule:
        if (self.where is None) == (self.query is None):
            raise ValueError(f"rule {self.code}: give exactly one of 'where' and 'query'")
        return self

    def applies_in(self, year: int) -> bool:
        return (self.valid_from is None or year >= self.valid_from) and (
            self.valid_to is None or year <= self.valid_to)


class RuleSet(_Frozen):
    format: str
    source: str = Field(description="Where the rules' facts come from")
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        codes = [r.code for r in self.rules]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise ValueError(f"rule code(s) given twice: {dup}")
        return self

    def rule(self, code: str) -> Rule:
        for rule in self.rules:
            if rule.code == code:
                return rule
        raise KeyError(f"no rule {code!r} for format {self.format}")

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.rules]


def parse_rules(path: Path) -> RuleSet:
    """Load and check one rule file: tables and fields must exist in the format's layout."""
    data = read_yaml(path)
    try:
        ruleset = RuleSet.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        raise InputFileError(f"bad rule file: {problems}", file=path.name) from None
    _check_against_layout(ruleset, path.name)
    return ruleset


def _check_against_layout(ruleset: RuleSet, name: str) -> None:
    layout = load_layout(ruleset.format)
    extra = _extra_columns(ruleset.format)
    for rule in ruleset.rules:
        for table in (rule.table, *rule.tables):
            if table not in layout.tables:
                raise InputFileError(f"rule {rule.code}: unknown table {table!r}", file=name)
        known = {c for t in (rule.table, *rule.tables) for c in layout.tables[t].column_names}
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
    ruleset = parse_rules(RULES_DIR / f"{fmt}.yaml")
    if ruleset.format != fmt:
        raise InputFileError(f"rule file says format {ruleset.format!r}, expected {fmt!r}",
                             file=f"{fmt}.yaml")
    return ruleset
