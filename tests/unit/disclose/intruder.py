"""An intruder who sees only the published numbers of a release, written independently of
`trialvault.disclose` (it shares no code with the protector) so that tests prove protection
without trusting it.

The intruder knows what anyone reading the release and the study file knows:
- which strata (LA × period × exposed) the rollout schedule allows;
- how every published table is built from hidden non-negative integer counts: children per
  stratum; per binary outcome its events, non-events, missing and undefined children in each
  stratum (adding up to the stratum); per count outcome children measured, missing and undefined
  by condition; baseline categories adding up to each condition; flow steps;
- that a published number `r` means any integer that rounds (half up) to `r`.
With integer programs (scipy `milp`) the intruder computes the exact range of any quantity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

TOTAL = "Total"
CONDITIONS = ("Unexposed", "Exposed")
Expr = dict[int, float]


def value_range(text: str, base: int) -> tuple[int, int]:
    r = int(text)
    if base <= 1:
        return r, r
    lo = int(np.ceil(r - base / 2))
    return max(lo, 0), int(np.ceil(r + base / 2)) - 1


@dataclass(frozen=True)
class OutcomeSpec:
    id: str
    title: str
    binary: bool
    can_be_missing: bool
    can_be_undefined: bool


@dataclass
class Intruder:
    base: int
    symbol: str
    names: list[str] = field(default_factory=list)
    constraints: list[tuple[Expr, float, float]] = field(default_factory=list)
    # (table, row, column) → the published cell as a sum of variables.
    cells: dict[tuple[str, str, str], Expr] = field(default_factory=dict)
    vars: dict[str, int] = field(default_factory=dict)
    _cache: tuple[sparse.csr_array, np.ndarray, np.ndarray] | None = None
    _cache_key: tuple[int, int] | None = None

    def var(self, name: str) -> int:
        self.names.append(name)
        self.vars[name] = len(self.names) - 1
        return len(self.names) - 1

    def equal(self, left: Sequence[int], right: Sequence[int]) -> None:
        coef: Expr = {}
        for k in left:
            coef[k] = coef.get(k, 0.0) + 1.0
        for k in right:
            coef[k] = coef.get(k, 0.0) - 1.0
        self.constraints.append((coef, 0.0, 0.0))

    def read(self, table: str, row: str, col: str, atoms: Sequence[int],
             published: dict[str, pd.DataFrame]) -> None:
        """A cell of `table` is the sum of `atoms`; its text, if published, constrains it."""
        if table not in published:
            return
        frame = published[table]
        if row not in frame.index or col not in frame.columns:
            return
        expr: Expr = {}
        for a in atoms:
            expr[a] = expr.get(a, 0.0) + 1.0
        self.cells[(table, row, col)] = expr
        text = str(frame.loc[row, col])
        if text == "z":  # not applicable: the cell has no children by design
            self.constraints.append((expr, 0, 0))
        elif text != self.symbol:
            lo, hi = value_range(text, self.base)
            self.constraints.append((expr, lo, hi))

    def _matrix(self) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
        key = (len(self.names), len(self.constraints))
        if self._cache is None or self._cache_key != key:
            rows, cols, vals = [], [], []
            lo = np.empty(len(self.constraints))
            hi = np.empty(len(self.constraints))
            for k, (coef, low, high) in enumerate(self.constraints):
                for j, v in coef.items():
                    rows.append(k)
                    cols.append(j)
                    vals.append(v)
                lo[k], hi[k] = low, high
            a = sparse.csr_array((vals, (rows, cols)),
                                 shape=(len(self.constraints), len(self.names)))
            self._cache = (a, lo, hi)
            self._cache_key = key
        assert self._cache is not None
        return self._cache

    def range_of(self, expr: Expr) -> tuple[float, float]:
        n = len(self.names)
        a, lo, hi = self._matrix()
        c = np.zeros(n)
        for j, v in expr.items():
            c[j] += v
        out = []
        for sign in (1.0, -1.0):
            res = milp(sign * c, constraints=[LinearConstraint(a, lo, hi)],
                       integrality=np.ones(n), bounds=Bounds(0, np.inf))
            out.append(np.inf if res.status != 0 or res.x is None else sign * res.fun)
        return out[0], out[1]


def attack(published: dict[str, pd.DataFrame], *, strata: Sequence[tuple[int, str, int]],
           la_names: dict[int, str], periods: Sequence[str], outcomes: Sequence[OutcomeSpec],
           baseline: Sequence[tuple[str, Sequence[str]]], flow: Sequence[tuple[str, str]],
           flow_labels: tuple[str, str, str], base: int, symbol: str) -> Intruder:
    """Build the intruder's model of a release from its published tables (see module doc).
    `flow`: (label, stage) of the steps outside the main analysis."""
    it = Intruder(base, symbol)
    c = {s: it.var(f"C|{s}") for s in strata}
    las = list(la_names)

    def sel(la: int | None = None, p: str | None = None, e: int | None = None) -> list[int]:
        return [v for (a, q, x), v in c.items() if (la is None or a == la)
                and (p is None or q == p) and (e is None or x == e)]

    def grid(table: str, cols: Sequence[str], pick) -> None:  # type: ignore[no-untyped-def]
        for la in [*las, None]:
            for col in [*cols, None]:
                row = la_names[la] if la is not None else TOTAL
                name = col if col is not None else TOTAL
                it.read(table, row, name, pick(la, col), published)

    grid("cohort", periods, lambda la, p: sel(la, p))
    grid("allocation", CONDITIONS, lambda la, cond: sel(la, e=None if cond is None
                                                        else CONDITIONS.index(cond)))
    f = {label: it.var(f"F|{label}") for label, _ in flow}
    start, cohort_label, main_label = flow_labels
    inside = [f[lb] for lb, stage in flow if stage == "in_cohort"]
    it.read("flow", start, "Children", [*c.values(), *f.values()], published)
    for label, _ in flow:
        it.read("flow", label, "Children", [f[label]], published)
    it.read("flow", cohort_label, "Children", [*c.values(), *inside], published)
    it.read("flow", main_label, "Children", list(c.values()), published)
    for o in outcomes:
        if o.binary:
            ev, non, mis = {}, {}, {}
            for s, cv in c.items():
                ev[s], non[s] = it.var(f"E|{o.id}|{s}"), it.var(f"N|{o.id}|{s}")
                parts = [ev[s], non[s]]
                if o.can_be_missing:
                    mis[s] = it.var(f"M|{o.id}|{s}")
                    parts.append(mis[s])
                if o.can_be_undefined:
                    parts.append(it.var(f"U|{o.id}|{s}"))
                it.equal([cv], parts)
            grid(f"events_{o.id}", periods,
                 lambda la, p, ev=ev: [ev[s] for s in strata if (la is None or s[0] == la)
                                       and (p is None or s[1] == p)])
            for e, cond in enumerate(CONDITIONS):
                mine = [s for s in strata if s[2] == e]
                it.read("outcomes_by_condition", f"{o.title}: children measured", cond,
                        [v for s in mine for v in (ev[s], non[s])], published)
                it.read("outcomes_by_condition", f"{o.title}: children with the outcome", cond,
                        [ev[s] for s in mine], published)
                if o.can_be_missing:
                    it.read("missing_data", f"{o.title}: children expected to have it", cond,
                            [v for s in mine for v in (ev[s], non[s], mis[s])], published)
                    it.read("missing_data", f"{o.title}: missing", cond, [mis[s] for s in mine],
                            published)
        else:
            for e, cond in enumerate(CONDITIONS):
                d = it.var(f"D|{o.id}|{e}")
                parts = [d]
                m = it.var(f"M|{o.id}|{e}") if o.can_be_missing else None
                if m is not None:
                    parts.append(m)
                if o.can_be_undefined:
                    parts.append(it.var(f"U|{o.id}|{e}"))
                it.equal(sel(e=e), parts)
                it.read("outcomes_by_condition", f"{o.title}: children measured", cond, [d],
                        published)
                if m is not None:
                    it.read("missing_data", f"{o.title}: children expected to have it", cond,
                            [d, m], published)
                    it.read("missing_data", f"{o.title}: missing", cond, [m], published)
    for title, cats in baseline:
        for e, cond in enumerate(CONDITIONS):
            atoms = [it.var(f"B|{title}|{cat}|{e}") for cat in cats]
            it.equal(sel(e=e), atoms)
            for cat, a in zip(cats, atoms, strict=True):
                it.read("baseline", f"{title}: {cat}", cond, [a], published)
    return it
