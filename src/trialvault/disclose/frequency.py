"""Count tables of a release: build the linked groups, protect them together, publish.

The release's count tables are linked: the cohort flow ends in the cohort total; the cohort
table (LA × period, with totals) is shared by every binary outcome; each binary outcome adds an
events table (and a denominators table when the outcome is not defined for every child). They
form one `LinkedGroup`, so the audit sees `cohort = undefined + non-events + events` for every
outcome at once and protects the non-events hidden behind two published tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.outputs import CellChange, CheckedOutput, RuleResult
from trialvault.disclose.protect import (
    TOTAL,
    AuditFinding,
    Cell,
    CellId,
    LinkedGroup,
    Protection,
    audit_group,
    protect_group,
    shown_value,
)
from trialvault.disclose.rules import ROUNDING, SECONDARY, THRESHOLD, ZERO, Status, describe
from trialvault.study.model import Disclosure

# How much of an atom is itself sensitive. Small counts always are; a zero only where it says
# something about every child in a class (every child had, or did not have, the outcome).
FULL, SMALL_ONLY, NONE = "full", "small", "none"

FLOW, COHORT = "flow", "cohort"


def events_table(outcome: str) -> str:
    return f"events_{outcome}"


def denominators_table(outcome: str) -> str:
    return f"denominators_{outcome}"


@dataclass
class CountTables:
    """The protected count tables of one release, ready to publish."""

    cells: dict[CellId, Cell]
    layout: dict[str, tuple[list[str], list[str], bool]]  # table → rows, cols, margins
    protection: Protection
    findings: dict[str, list[AuditFinding]]  # table → audit findings about its cells
    rounding: bool


def _matrix(frame: pd.DataFrame, las: Sequence[int], periods: Sequence[str], col: str
            ) -> np.ndarray:
    wide = frame.pivot_table(index="la_code", columns="period", values=col, aggfunc="sum")
    wide = wide.reindex(index=list(las), columns=list(periods)).fillna(0)
    values = wide.to_numpy()
    if np.any(values < 0) or np.any(values != np.round(values)):
        raise ValueError(f"results input: '{col}' must be non-negative whole counts")
    return values.astype(np.int64)


def _add_flow(group: LinkedGroup, flow: pd.DataFrame, cohort_atoms: list[int]) -> None:
    removed = [group.add_atom(int(n), f"{FLOW} / {label}", SMALL_ONLY, FLOW)
               for label, n in zip(flow["label"].iloc[1:-1], flow["n"].iloc[1:-1], strict=True)]
    labels = list(flow["label"])
    group.add_cell((FLOW, labels[0], "n"), [*cohort_atoms, *removed], margin=True)
    for label, atom in zip(labels[1:-1], removed, strict=True):
        group.add_cell((FLOW, label, "n"), [atom], margin=False)
    group.add_cell((FLOW, labels[-1], "n"), cohort_atoms, margin=True)


def build_group(results: ResultsInput, row_names: list[str]) -> tuple[
        LinkedGroup, dict[str, tuple[list[str], list[str], bool]]]:
    """Every count table of the release as one linked group.

    Atoms: the cohort count per LA × period; per binary outcome, its events, non-events and
    (when the outcome can be undefined) undefined children per LA × period, tied to the cohort
    count by an identity every reader knows; and the children removed at each flow step. One
    group, because an intruder combines all tables at once: a cohort cell is bounded below by
    the events of *every* outcome.
    """
    las, periods = results.la_codes, results.period_labels
    n = _matrix(results.cohort, las, periods, "n")
    flow = results.flow.reset_index(drop=True)
    if len(flow) >= 2 and int(flow["n"].iloc[-1]) != int(n.sum()):
        raise ValueError("results input: the last flow step must equal the cohort total")
    layout: dict[str, tuple[list[str], list[str], bool]] = {
        FLOW: (list(flow["label"]) if len(flow) >= 2 else [], ["n"], False),
        COHORT: (row_names, list(periods), True)}
    g = LinkedGroup("release")
    cohort = [[g.add_atom(int(n[i, j]), f"{COHORT} / {row_names[i]} / {p}", FULL, COHORT)
               for j, p in enumerate(periods)] for i in range(len(las))]
    g.add_table(COHORT, row_names, periods, [[[a] for a in row] for row in cohort], margins=True)
    if len(flow) >= 2:
        _add_flow(g, flow, [a for row in cohort for a in row])
    for outcome, frame in results.binary.groupby("outcome", sort=False):
        name = str(outcome)
        denom = _matrix(frame, las, periods, "n")
        events = _matrix(frame, las, periods, "events")
        if np.any(events > denom) or np.any(denom > n):
            raise ValueError(f"results input: outcome '{name}' has events > n or n > cohort")
        partial = bool(np.any(denom != n))
        ev_t, den_t = events_table(name), denominators_table(name)
        cells_den, cells_ev = [], []
        for i, row in enumerate(row_names):
            r_den, r_ev = [], []
            for j, p in enumerate(periods):
                here = f"{name} / {row} / {p}"
                y1 = g.add_atom(int(events[i, j]), f"{here} / events", FULL, ev_t)
                y0 = g.add_atom(int(denom[i, j] - events[i, j]), f"{here} / non-events", FULL,
                                ev_t)
                parts = [y0, y1]
                g.hints[y0] = (ev_t, row, p)
                if partial:
                    u = g.add_atom(int(n[i, j] - denom[i, j]), f"{here} / undefined",
                                   SMALL_ONLY, den_t)
                    g.hints[u] = (den_t, row, p)
                    parts.append(u)
                g.add_identity([cohort[i][j]], parts)
                r_den.append([y0, y1])
                r_ev.append([y1])
            cells_den.append(r_den)
            cells_ev.append(r_ev)
        if partial:
            g.add_table(den_t, row_names, periods, cells_den, margins=True)
            layout[den_t] = (row_names, list(periods), True)
        g.add_table(ev_t, row_names, periods, cells_ev, margins=True)
        layout[ev_t] = (row_names, list(periods), True)
    return g, layout


def protect_counts(results: ResultsInput, rules: Disclosure, row_names: list[str], *,
                   rounding: bool = True) -> CountTables:
    """Primary and secondary suppression over every count table, then the integer audit."""
    group, layout = build_group(results, row_names)
    protection = Protection()
    protect_group(group, rules, protection, rounding=rounding)
    cells = {c.id: c for c in group.cells}
    findings: dict[str, list[AuditFinding]] = {}
    for f in audit_group(group, protection.suppressed, rules, rounding=rounding,
                         points=protection.points.get(group.name)):
        findings.setdefault(f.table, []).append(f)
    return CountTables(cells, layout, protection, findings, rounding)


def publish(tables: CountTables, table: str, rules: Disclosure, *, title: str, context: str,
            row_title: str, col_title: str) -> CheckedOutput:
    """One protected count table as text, with its rules, changes and audit summary."""
    rows, cols, margins = tables.layout[table]
    out_rows = [*rows, TOTAL] if margins else rows
    out_cols = [*cols, TOTAL] if margins else cols
    text = pd.DataFrame("", index=pd.Index(out_rows, name=row_title), columns=out_cols,
                        dtype=object)
    changes: list[CellChange] = []
    counts = {THRESHOLD: 0, ZERO: 0, SECONDARY: 0, ROUNDING: 0}
    for r in out_rows:
        for c in out_cols:
            cell = tables.cells[(table, r, c)]
            rule = tables.protection.suppressed.get(cell.id)
            if rule is not None:
                text.loc[r, c] = rules.suppression_symbol
                counts[rule] += 1
                reason = describe(rule, rules)
                if rule == SECONDARY:
                    reason = "protects another suppressed quantity: " + reason
                changes.append(CellChange(r, c, "suppressed", rule, reason))
                continue
            shown = shown_value(cell.value, rules, tables.rounding)
            text.loc[r, c] = str(shown)
            if shown != cell.value:
                counts[ROUNDING] += 1
                changes.append(CellChange(r, c, "rounded", ROUNDING, describe(ROUNDING, rules)))
    found = tables.findings.get(table, [])
    results = [RuleResult(code, describe(code, rules), "review" if k else "pass", k)
               for code, k in counts.items()
               if code != ROUNDING or tables.rounding]
    audit = {
        "method": "integer feasible range of every unsafe quantity and suppressed cell, from "
                  "the published cells of all linked tables",
        "quantities": len(found),
        "all_protected": all(f.protected for f in found),
        "narrowest_range": (min(f.high - f.low for f in found) if found else None),
    }
    status: Status = "review" if changes else "pass"
    if not audit["all_protected"]:
        status = "fail"
    return CheckedOutput(table, title, "counts", context, text, status, results, changes,
                         audit, rules.suppression_symbol)
