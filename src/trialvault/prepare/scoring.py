"""Score validation against the faults the synthetic generator planted (`truth.json`).

A fault names its file (relative to the synthetic output folder: `<la>/ssda903/<year>/x.csv`,
`<la>/cin_census/<year>.xml`, `<la>/education.csv`), the 1-based line, the child, the kind and
the DfE rule it should trigger. A CSV fault is found when an issue names the same file,
collection year and line. In XML a fault's line is the faulty element's, while an issue names
the line of its block (e.g. `<CINdetails>`); there a fault is found when an issue with the
expected rule, for the same file and child, starts at most `XML_BLOCK_LINES` lines before it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Longest distance from a block's start tag to one of its fields in the generated XML.
XML_BLOCK_LINES = 40


@dataclass(frozen=True)
class FaultScore:
    planted: int
    found: int
    found_with_rule: int
    missed: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    @property
    def recall(self) -> float | None:
        return round(self.found / self.planted, 4) if self.planted else None

    def as_dict(self) -> dict[str, Any]:
        return {"planted": self.planted, "found": self.found,
                "found_with_expected_rule": self.found_with_rule, "recall": self.recall,
                "missed_by_kind": {"/".join(k): n for k, n in self.missed.items()}}


def _place(path: str) -> tuple[str, str, str]:
    """(format, file name, collection year or '') of a truth-file path."""
    parts = path.split("/")
    name = parts[-1]
    if len(parts) >= 4 and parts[1] == "ssda903":
        return "ssda903", name, parts[2]
    if len(parts) >= 3 and parts[1] == "cin_census":
        return "cin_census", name, name.rsplit(".", 1)[0]
    return (name.rsplit(".", 1)[0], name, "")


def _format_of(table: Any) -> str | None:
    """The format of a report row that names its table but not its format (the LA report)."""
    from trialvault.spec import load_layout

    return "cin_census" if table in load_layout("cin_census").tables else None


def score_faults(faults: Iterable[Mapping[str, Any]], issues: Sequence[Mapping[str, Any]]
                 ) -> FaultScore:
    """`faults`: entries of truth.json's `faults` (one LA's); `issues`: report rows with file,
    year, line, child, rule and table (as in `report.LA_COLUMNS`)."""
    by_line: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    blocks: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
    for issue in issues:
        year = "" if issue.get("year") in (None, "") else str(issue["year"])
        line = int(issue["line"]) if issue.get("line") not in (None, "") else -1
        by_line[(str(issue["file"]), year, line)].add(str(issue["rule"]))
        if issue.get("format", _format_of(issue.get("table"))) == "cin_census":
            blocks[(str(issue["file"]), str(issue.get("child")))].append((line, str(issue["rule"])))
    planted = found = with_rule = 0
    missed: Counter[tuple[str, str, str]] = Counter()
    for fault in faults:
        planted += 1
        fmt, name, year = _place(str(fault["file"]))
        line = int(fault["line"])
        if fmt == "cin_census":
            rules = {r for ln, r in blocks.get((name, str(fault["child"])), [])
                     if line - XML_BLOCK_LINES <= ln <= line
                     and (fault.get("rule") is None or r == fault.get("rule"))}
        else:
            rules = by_line.get((name, year, line), set())
        if rules:
            found += 1
            expected = fault.get("rule")
            if expected is None or expected in rules:
                with_rule += 1
        else:
            missed[(fmt, str(fault["kind"]), str(fault.get("column")))] += 1
    return FaultScore(planted=planted, found=found, found_with_rule=with_rule, missed=missed)
