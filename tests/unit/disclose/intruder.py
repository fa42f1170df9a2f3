"""An intruder who sees only the published count tables of a release, written independently
of `trialvault.disclose.protect` so that tests prove protection without trusting it.

The intruder knows how the tables hang together (cohort = events + non-events [+ undefined] for
every outcome, denominators = events + non-events, the flow start = cohort + removed, the flow
end = the cohort total, totals are sums), that counts are non-negative integers, and the rounding
base: a published number `r` means any integer that rounds (half up) to `r`. With integer
programs (scipy `milp`) the intruder computes the exact range of any quantity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

TOTAL = "Total"


def value_range(text: str, base: int) -> tuple[int, int]:
    r = int(text)
    if base <= 1:
        return r, r
    lo = int(np.ceil(r - base / 2))
    return max(lo, 0), int(np.ceil(r + base / 2)) - 1


@dataclass
class Intruder:
    """Integer variables, linear constraints read off the published tables, then ranges."""

    rows: list[str]
    cols: list[str]
    base: int
    symbol: str
    names: list[str] = field(default_factory=list)
    constraints: list[tuple[dict[int, float], float, float]] = field(default_factory=list)
    # (table, row, column) → the cell as a sum of variables, for every published cell.
    cells: dict[tuple[str, str, str], dict[int, float]] = field(default_factory=dict)

    def var(self, name: str) -> int:
        self.names.append(name)
        return len(self.names) - 1

    def grid(self, prefix: str) -> dict[tuple[str, str], int]:
        return {(r, c): self.var(f"{prefix}/{r}/{c}") for r in self.rows for c in self.cols}

    def read_table(self, name: str, table: pd.DataFrame, grid: dict[tuple[str, str], int]
                   ) -> None:
        """Every published number of a rows × cols table with totals becomes a constraint."""
        for r in [*self.rows, TOTAL]:
            for c in [*self.cols, TOTAL]:
                if r not in table.index or c not in table.columns:
                    continue
                self.cells[(name, r, c)] = self.expr(grid, r, c)
                text = str(table.loc[r, c])
                if text == self.symbol:
                    continue
                lo, hi = value_range(text, self.base)
                self.constraints.append((self.expr(grid, r, c), lo, hi))

    def expr(self, grid: dict[tuple[str, str], int], r: str, c: str) -> dict[int, float]:
        rs = self.rows if r == TOTAL else [r]
        cs = self.cols if c == TOTAL else [c]
        return {grid[(a, b)]: 1.0 for a in rs for b in cs}

    def equal(self, left: dict[int, float], right: dict[int, float]) -> None:
        coef = dict(left)
        for k, v in right.items():
            coef[k] = coef.get(k, 0.0) - v
        self.constraints.append((coef, 0.0, 0.0))

    def at_most(self, small: dict[int, float], large: dict[int, float]) -> None:
        coef = {k: -v for k, v in small.items()}
        for k, v in large.items():
            coef[k] = coef.get(k, 0.0) + v
        self.constraints.append((coef, 0.0, np.inf))

    def range_of(self, expr: dict[int, float]) -> tuple[float, float]:
        n = len(self.names)
        a = np.zeros((len(self.constraints), n))
        lo = np.empty(len(self.constraints))
        hi = np.empty(len(self.constraints))
        for k, (coef, low, high) in enumerate(self.constraints):
            for j, v in coef.items():
                a[k, j] += v
            lo[k], hi[k] = low, high
        c = np.zeros(n)
        for j, v in expr.items():
            c[j] += v
        out = []
        for sign in (1.0, -1.0):
            res = milp(sign * c, constraints=[LinearConstraint(a, lo, hi)],
                       integrality=np.ones(n), bounds=Bounds(0, np.inf))
            if res.status != 0 or res.x is None:
                out.append(np.inf)  # unbounded: nothing published limits it
            else:
                out.append(sign * res.fun)
        return out[0], out[1]


def attack(tables: dict[str, pd.DataFrame], rows: list[str], cols: list[str],
           outcomes: list[str], *, base: int, symbol: str
           ) -> tuple[Intruder, dict[str, dict[tuple[str, str], int]]]:
    """Build the intruder's model of a release's count tables.

    `tables` maps 'cohort', 'events_<o>', optionally 'denominators_<o>' and 'flow' to the
    published text tables. Returns the intruder (with `cells`: every published cell as an
    expression) and its variable grids by table name.
    """
    it = Intruder(rows, cols, base, symbol)
    grids: dict[str, dict[tuple[str, str], int]] = {"cohort": it.grid("cohort")}
    it.read_table("cohort", tables["cohort"], grids["cohort"])
    for o in outcomes:
        ev = it.grid(f"events_{o}")
        grids[f"events_{o}"] = ev
        it.read_table(f"events_{o}", tables[f"events_{o}"], ev)
        den_name = f"denominators_{o}"
        den = it.grid(den_name) if den_name in tables else None
        if den is not None:
            grids[den_name] = den
            it.read_table(den_name, tables[den_name], den)
        for key in grids["cohort"]:
            # events <= denominators <= cohort; denominators = cohort when not published.
            upper = den if den is not None else grids["cohort"]
            it.at_most({ev[key]: 1.0}, {upper[key]: 1.0})
            if den is not None:
                it.at_most({den[key]: 1.0}, {grids["cohort"][key]: 1.0})
    flow = tables.get("flow")
    if flow is not None and len(flow) >= 2:
        labels = list(flow.index)
        removed = {label: it.var(f"flow/{label}") for label in labels[1:-1]}
        cohort_all = it.expr(grids["cohort"], TOTAL, TOTAL)
        start = dict(cohort_all)
        start.update({v: 1.0 for v in removed.values()})
        for label, coef in [(labels[0], start), (labels[-1], cohort_all),
                            *[(lb, {v: 1.0}) for lb, v in removed.items()]]:
            it.cells[("flow", label, "n")] = coef
            text = str(flow.loc[label, "n"])
            if text != symbol:
                lo, hi = value_range(text, base)
                it.constraints.append((coef, lo, hi))
        grids["flow"] = {(lb, "n"): v for lb, v in removed.items()}
    return it, grids
