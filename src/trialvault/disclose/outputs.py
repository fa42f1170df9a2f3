"""Checked outputs and the checking report: plain data that round-trips through JSON.

A `CheckedOutput` is one table as it would be released (numbers as text, suppressed cells as the
study's symbol) with every rule applied to it, every cell changed and why, a status and free-text
context — in the spirit of ACRO's `results.json` and OpenSAFELY Airlock file groups. It never
holds the true value of a changed cell.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

from trialvault.disclose.rules import Status

OutputKind = Literal["counts", "magnitude", "estimates", "series"]
Action = Literal["suppressed", "rounded", "withheld"]
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
class CellChange:
    """One published cell that differs from the underlying value, and why (never the value)."""

    row: str
    column: str
    action: Action
    rule: str
    reason: str


@dataclass
class CheckedOutput:
    """One output of a release after disclosure control."""

    name: str
    title: str
    kind: OutputKind
    context: str
    table: pd.DataFrame  # published text: numbers, or the suppression symbol
    status: Status
    rules: list[RuleResult] = field(default_factory=list)
    changes: list[CellChange] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    symbol: str = "c"

    @property
    def withheld(self) -> bool:
        """A failing output is listed in the checking report but never written out."""
        return self.status == "fail"

    def numeric(self) -> pd.DataFrame:
        """The published table as floats; suppressed and empty cells are NaN."""
        return self.table.apply(lambda col: pd.to_numeric(
            col.where(col != self.symbol), errors="coerce")).astype(float)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "kind": self.kind, "context": self.context,
            "status": self.status, "symbol": self.symbol,
            "table": {"index_name": self.table.index.name,
                      "index": [str(i) for i in self.table.index],
                      "columns": [str(c) for c in self.table.columns],
                      "data": self.table.astype(str).to_numpy().tolist()},
            "rules": [asdict(r) for r in self.rules],
            "changes": [asdict(c) for c in self.changes],
            "audit": self.audit,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckedOutput:
        t = data["table"]
        table = pd.DataFrame(t["data"], index=pd.Index(t["index"], name=t["index_name"]),
                             columns=t["columns"], dtype=object)
        return cls(
            name=data["name"], title=data["title"], kind=data["kind"], context=data["context"],
            table=table, status=data["status"], symbol=data.get("symbol", "c"),
            rules=[RuleResult(**r) for r in data["rules"]],
            changes=[CellChange(**c) for c in data["changes"]], audit=data.get("audit", {}),
        )


@dataclass
class CheckedRelease:
    """Every output of one release, the rules used and where the numbers came from."""

    study_id: str
    rules: dict[str, Any]
    outputs: list[CheckedOutput]
    provenance: dict[str, str] = field(default_factory=dict)
    periods: list[dict[str, str]] = field(default_factory=list)  # label + ISO start date
    la_names: dict[str, str] = field(default_factory=dict)  # DfE code → name (public)

    @property
    def status(self) -> Status:
        return worst([o.status for o in self.outputs])

    def output(self, name: str) -> CheckedOutput:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(o.name == name for o in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {"study_id": self.study_id, "status": self.status, "rules": self.rules,
                "provenance": self.provenance, "periods": self.periods,
                "la_names": self.la_names, "outputs": [o.to_json() for o in self.outputs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckedRelease:
        return cls(study_id=data["study_id"], rules=data["rules"],
                   outputs=[CheckedOutput.from_json(o) for o in data["outputs"]],
                   provenance=data.get("provenance", {}), periods=data.get("periods", []),
                   la_names=data.get("la_names", {}))


def fmt_number(value: float, digits: int) -> str:
    """Fixed decimals for estimates; an empty string for a value the evaluation lacks."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}"
