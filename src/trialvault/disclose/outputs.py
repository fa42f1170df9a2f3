"""Checked outputs, in two audiences, as plain data that round-trips through JSON.

- `CheckedOutput`: one table **as it leaves** the vault: numbers as text, suppressed cells as
  the study's symbol, a title and context in words. It says nothing about why a cell is
  suppressed (a rule code per cell tells a reader a cell is 0, or 1-9), nor which cells rounding
  changed (that would say every other count is exact).
- `OutputReview`: the same output **for the reviewers inside the vault**: each cell's true
  value, what is shown, the rule and reason, which quantity a secondary suppression protects,
  and the audit's feasible ranges. It never leaves the vault.
- `CheckedRelease`: every output of one release with its review, the rules, the study's LA
  order and step dates, the data's origin and the cross-release findings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from trialvault.disclose.rules import Status

OutputKind = Literal["counts", "magnitude", "estimates", "series", "variance"]
Action = Literal["published", "rounded", "suppressed", "withheld"]
_ORDER: dict[str, int] = {"pass": 0, "review": 1, "fail": 2}


def worst(statuses: list[Status]) -> Status:
    """The most severe of several statuses (`pass` when there are none)."""
    return max(statuses, key=lambda s: _ORDER[s], default="pass")


@dataclass(frozen=True)
class RuleResult:
    """One rule applied to one output: how many cells it flagged and what that means."""

    code: str
    description: str
    status: Status
    cells: int


@dataclass(frozen=True)
class CellReview:
    """One cell for the reviewers: the true value, what is shown and why (vault only)."""

    row: str
    column: str
    value: float | int | None
    shown: str
    action: Action
    rule: str
    reason: str
    protects: str = ""  # a secondary suppression: the quantity it protects


@dataclass
class OutputReview:
    """How one output was checked (vault only)."""

    name: str
    status: Status
    rules: list[RuleResult] = field(default_factory=list)
    cells: list[CellReview] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)  # feasible ranges proven

    @property
    def suppressed(self) -> list[CellReview]:
        return [c for c in self.cells if c.action in ("suppressed", "withheld")]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status,
                "rules": [asdict(r) for r in self.rules],
                "cells": [asdict(c) for c in self.cells], "audit": self.audit}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutputReview:
        return cls(data["name"], data["status"], [RuleResult(**r) for r in data["rules"]],
                   [CellReview(**c) for c in data["cells"]], list(data.get("audit", [])))


@dataclass
class CheckedOutput:
    """One output as it would be released (public)."""

    name: str
    title: str
    kind: OutputKind
    context: str
    table: pd.DataFrame  # published text: numbers, or the suppression symbol
    symbol: str = "c"
    withheld: bool = False  # failed its checks: listed by name, never written out
    row_keys: list[str] = field(default_factory=list)  # e.g. the LA code of each row

    def numeric(self) -> pd.DataFrame:
        """The published table as floats; suppressed and empty cells are NaN."""
        return self.table.apply(lambda col: pd.to_numeric(
            col.where(col != self.symbol), errors="coerce")).astype(float)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "kind": self.kind, "context": self.context,
            "symbol": self.symbol, "withheld": self.withheld, "row_keys": self.row_keys,
            "table": {"index_name": self.table.index.name,
                      "index": [str(i) for i in self.table.index],
                      "columns": [str(c) for c in self.table.columns],
                      "data": self.table.astype(str).to_numpy().tolist()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckedOutput:
        t = data["table"]
        table = pd.DataFrame(t["data"], index=pd.Index(t["index"], name=t["index_name"]),
                             columns=t["columns"], dtype=object)
        return cls(name=data["name"], title=data["title"], kind=data["kind"],
                   context=data["context"], table=table, symbol=data.get("symbol", "c"),
                   withheld=bool(data.get("withheld", False)),
                   row_keys=list(data.get("row_keys", [])))


@dataclass
class CheckedRelease:
    """Every output of one release (public) with its review (vault only)."""

    study_id: str
    rules: dict[str, Any]
    outputs: list[CheckedOutput]
    reviews: dict[str, OutputReview] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)
    periods: list[dict[str, str]] = field(default_factory=list)  # label + ISO start date
    # The study's LAs in the study file's order: code, name, step date (public design).
    la_order: list[dict[str, str]] = field(default_factory=list)
    data_origin: str = "unknown"
    # Internal: the count group's structure (for later releases) and cross-release findings.
    structure: dict[str, Any] = field(default_factory=dict)
    across: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> Status:
        return worst([r.status for r in self.reviews.values()])

    def output(self, name: str) -> CheckedOutput:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(o.name == name for o in self.outputs)

    @property
    def la_names(self) -> dict[str, str]:
        return {d["code"]: d["name"] for d in self.la_order}

    def public_json(self) -> dict[str, Any]:
        """Everything that may leave the vault."""
        return {"study_id": self.study_id, "rules": self.rules,
                "provenance": self.provenance, "periods": self.periods,
                "la_order": self.la_order, "data_origin": self.data_origin,
                "outputs": [o.to_json() for o in self.outputs]}

    def internal_json(self) -> dict[str, Any]:
        """The reviewers' checking report (stays in the vault)."""
        return {"status": self.status,
                "reviews": {k: r.to_json() for k, r in self.reviews.items()},
                "structure": self.structure, "across": self.across}

    @classmethod
    def from_json(cls, public: dict[str, Any], internal: dict[str, Any] | None = None
                  ) -> CheckedRelease:
        internal = internal or {}
        return cls(study_id=public["study_id"], rules=public["rules"],
                   outputs=[CheckedOutput.from_json(o) for o in public["outputs"]],
                   reviews={k: OutputReview.from_json(v)
                            for k, v in internal.get("reviews", {}).items()},
                   provenance=public.get("provenance", {}), periods=public.get("periods", []),
                   la_order=list(public.get("la_order", [])),
                   data_origin=public.get("data_origin", "unknown"),
                   structure=internal.get("structure", {}), across=internal.get("across", []))


def fmt_number(value: float, digits: int) -> str:
    """Fixed decimals for estimates; an empty string for a value the evaluation lacks."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"


def fmt_p(value: float) -> str:
    """A p-value as a reader expects it: never 0.000 (below 0.001 it is '< 0.001')."""
    if value is None or (isinstance(value, float) and (math.isnan(value))):
        return ""
    if value < 0.001:
        return "< 0.001"
    if value > 0.999:
        return "> 0.999"
    return f"{value:.3f}"
