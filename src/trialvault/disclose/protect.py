"""Secondary suppression for linked count tables, proven by an interval audit.

The model: a *linked group* is a set of hidden non-negative integer *atoms* (e.g. children per
LA × period × outcome value) and published *cells*, each the sum of some atoms (interior cells,
row/column totals, grand totals, and cells of other tables built from the same atoms — a cohort
table and an events table are linked because cohort = events + non-events).

What an intruder knows from a release is, for every published cell, the interval of true values
that round to the number shown (one value when rounding is off) and that atoms are non-negative.
An *unsafe quantity* (a primary-suppressed cell, or any atom that is itself small or zero — e.g.
the non-events hidden behind a published cohort and events count) is protected when the feasible
range an intruder can derive for it, `max - min` over all integer solutions, is at least the
threshold. The audit computes that range with linear programs (scipy `linprog`/`milp`, HiGHS);
secondary suppression is greedy: while an unsafe quantity is under-protected, suppress a published
cell whose constraint is binding in the LP (an interior cell in preference to a total, the
smallest that closes the gap), then re-solve. Suppressing a cell only removes a constraint, so a
quantity once protected stays protected: groups can be processed one after another against one
shared suppression set, which is how tables linked across groups (the cohort table shared by every
outcome) stay consistent. The final audit solves the integer programs, so the proof does not rely
on the LP relaxation being exact.

Across releases (`across`), a group also holds *fixed* cells: numbers an earlier release already
published (with the interval that release showed). They constrain the intruder like any
published cell but can never be suppressed; the quantities to protect are then passed in
explicitly (`extra` targets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from trialvault.disclose.rules import (
    SECONDARY,
    THRESHOLD,
    ZERO,
    frequency_unsafe,
    round_to_base,
    rounding_interval,
)
from trialvault.study.model import Disclosure

CellId = tuple[str, str, str]  # (table, row label, column label)
TOTAL = "Total"
_EPS = 1e-7
# A relaxation range this much wider than needed is taken as secured while protecting (the
# integer programs are left to the final audit, which sends any shortfall back, exactly).
LP_SLACK = 2


@dataclass(frozen=True)
class Cell:
    """One published count: the sum of `atoms` of its group."""

    id: CellId
    atoms: tuple[int, ...]
    value: int
    margin: bool
    fixed: bool = False  # published by an earlier release: a constraint, never suppressible
    interval: tuple[int, int] | None = None  # what a fixed cell showed (None: from `value`)


@dataclass(frozen=True)
class Unsafe:
    """A quantity that must not be recoverable: a set of atoms, why, and what it is called."""

    atoms: frozenset[int]
    rule: str
    label: str
    value: int
    table: str


@dataclass
class LinkedGroup:
    """Published cells that are all sums of one vector of hidden atoms."""

    name: str
    atom_values: list[int] = field(default_factory=list)
    atom_labels: list[str] = field(default_factory=list)
    # How sensitive an atom is: "full" (small and zero counts are unsafe), "small" (only small
    # positive counts: a zero here says nothing about a child), "none"; and the table it is
    # reported under in the checking report.
    atom_sensitivity: list[str] = field(default_factory=list)
    atom_home: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    # table name → (interior cell ids by row, row-total ids, column-total ids): the lines the
    # cheap pre-pass looks along before any LP is solved.
    lines: list[tuple[list[CellId], CellId]] = field(default_factory=list)
    # Structure every reader knows: sum(left) == sum(right) (e.g. a cohort cell equals the
    # events + non-events + undefined of each outcome). Never suppressible.
    identities: list[tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    # An unsafe atom hidden behind published cells → the cell to suppress first to cover it.
    hints: dict[int, CellId] = field(default_factory=dict)

    def add_identity(self, left: Iterable[int], right: Iterable[int]) -> None:
        lt, rt = tuple(left), tuple(right)
        if sum(self.atom_values[a] for a in lt) != sum(self.atom_values[a] for a in rt):
            raise ValueError(f"{self.name}: counts do not add up (an identity of the tables "
                             "does not hold)")
        self.identities.append((lt, rt))

    def add_atom(self, value: int, label: str, sensitivity: str = "full",
                 home: str = "") -> int:
        if value < 0:
            raise ValueError(f"{self.name}: a count is negative ({label})")
        self.atom_values.append(int(value))
        self.atom_labels.append(label)
        self.atom_sensitivity.append(sensitivity)
        self.atom_home.append(home or self.name)
        return len(self.atom_values) - 1

    def add_cell(self, cell_id: CellId, atoms: Iterable[int], *, margin: bool,
                 fixed: bool = False, interval: tuple[int, int] | None = None) -> Cell:
        atoms_t = tuple(sorted(set(atoms)))
        value = int(sum(self.atom_values[a] for a in atoms_t))
        if not atoms_t:  # empty by design: nothing to hide, nothing to suppress
            fixed, interval = True, (0, 0)
        cell = Cell(cell_id, atoms_t, value, margin, fixed, interval)
        self.cells.append(cell)
        return cell

    def add_table(self, table: str, rows: Sequence[str], cols: Sequence[str],
                  atoms: Sequence[Sequence[Sequence[int]]], *, margins: bool) -> None:
        """Add a rows × cols table whose interior cell (i, j) is the sum of `atoms[i][j]`,
        with row totals, column totals and the grand total when `margins`."""
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                self.add_cell((table, r, c), atoms[i][j], margin=False)
        if not margins:
            return
        for r in rows:
            self.lines.append(([(table, r, c) for c in cols], (table, r, TOTAL)))
        for c in cols:
            self.lines.append(([(table, r, c) for r in rows], (table, TOTAL, c)))
        self.lines.append(([(table, TOTAL, c) for c in cols], (table, TOTAL, TOTAL)))
        self.lines.append(([(table, r, TOTAL) for r in rows], (table, TOTAL, TOTAL)))
        for i, r in enumerate(rows):
            self.add_cell((table, r, TOTAL), [a for j in range(len(cols)) for a in atoms[i][j]],
                          margin=True)
        for j, c in enumerate(cols):
            self.add_cell((table, TOTAL, c), [a for i in range(len(rows)) for a in atoms[i][j]],
                          margin=True)
        self.add_cell((table, TOTAL, TOTAL),
                      [a for row in atoms for cell in row for a in cell], margin=True)


def shown_value(value: int, rules: Disclosure, rounding: bool) -> int:
    return int(round_to_base([value], rules.rounding_base)[0]) if rounding else int(value)


def unsafe_quantities(group: LinkedGroup, rules: Disclosure, *, rounding: bool) -> list[Unsafe]:
    """Primary-unsafe cells plus every small or zero atom (linked-table differencing)."""
    found: dict[frozenset[int], Unsafe] = {}
    cell_values = np.array([c.value for c in group.cells], dtype=np.int64)
    small, zero = frequency_unsafe(cell_values, rules, rounding=rounding)
    for k, cell in enumerate(group.cells):
        if (small[k] or zero[k]) and not cell.fixed and cell.atoms:
            key = frozenset(cell.atoms)
            found.setdefault(key, Unsafe(key, THRESHOLD if small[k] else ZERO,
                                         " / ".join(cell.id), cell.value, cell.id[0]))
    atom_values = np.array(group.atom_values, dtype=np.int64)
    a_small, a_zero = frequency_unsafe(atom_values, rules, rounding=False)
    sens = np.array(group.atom_sensitivity or ["full"] * len(atom_values))
    a_small &= sens != "none"
    a_zero &= sens == "full"
    for a in np.flatnonzero(a_small | a_zero):
        key = frozenset([int(a)])
        found.setdefault(key, Unsafe(key, THRESHOLD if a_small[a] else ZERO,
                                     group.atom_labels[a], int(atom_values[a]),
                                     group.atom_home[a]))
    return list(found.values())


def primary_cells(group: LinkedGroup, rules: Disclosure, *, rounding: bool) -> dict[CellId, str]:
    """Published cells unsafe on their own, with the rule code that makes them so."""
    values = np.array([c.value for c in group.cells], dtype=np.int64)
    small, zero = frequency_unsafe(values, rules, rounding=rounding)
    return {c.id: (THRESHOLD if small[k] else ZERO)
            for k, c in enumerate(group.cells)
            if (small[k] or zero[k]) and not c.fixed and c.atoms}


@dataclass
class _System:
    """The constraints an intruder has: published (unsuppressed) cells and their intervals."""

    cells: list[Cell]  # the first len(cells) rows of `matrix`; identities follow
    matrix: sparse.csr_array
    lo: np.ndarray
    hi: np.ndarray
    n_atoms: int
    a_ub: sparse.csr_array = field(init=False)
    b_ub: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        # linprog wants A x <= b: stack the upper bounds and the negated lower bounds once.
        self.a_ub = sparse.vstack([self.matrix, -self.matrix]).tocsr()
        self.b_ub = np.concatenate([self.hi, -self.lo])


def _system(group: LinkedGroup, suppressed: set[CellId], rules: Disclosure,
            rounding: bool) -> _System:
    cells = [c for c in group.cells if c.id not in suppressed]
    n_rows = len(cells) + len(group.identities)
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    lo = np.zeros(n_rows)
    hi = np.zeros(n_rows)
    for k, cell in enumerate(cells):
        rows += [k] * len(cell.atoms)
        cols += list(cell.atoms)
        data += [1.0] * len(cell.atoms)
        if cell.interval is not None:
            lo[k], hi[k] = cell.interval
            continue
        shown = shown_value(cell.value, rules, rounding)
        lo[k], hi[k] = rounding_interval(shown, rules.rounding_base) if rounding else (shown, shown)
    for k, (left, right) in enumerate(group.identities, start=len(cells)):
        rows += [k] * (len(left) + len(right))
        cols += [*left, *right]
        data += [1.0] * len(left) + [-1.0] * len(right)
    n_atoms = len(group.atom_values)
    matrix = sparse.csr_array((data, (rows, cols)), shape=(n_rows, n_atoms))
    return _System(cells, matrix, lo, hi, n_atoms)


def _ranges(system: _System, atoms: frozenset[int], points: list[np.ndarray] | None = None
            ) -> tuple[float, float, set[int], bool]:
    """LP relaxation: (min, max, indices of binding published cells, whether both optima are
    integral). An integral LP optimum is feasible for the integer problem and bounds it, so it
    *is* the integer optimum: the MILP is needed only when the LP answer is fractional.
    Integral optima are appended to `points` (feasible integer solutions, reused as
    certificates)."""
    c = np.zeros(system.n_atoms)
    c[list(atoms)] = 1.0
    m = system.matrix.shape[0]
    binding: set[int] = set()
    out = []
    integral = True
    for sign in (1.0, -1.0):
        res = linprog(sign * c, A_ub=system.a_ub if m else None, b_ub=system.b_ub if m else None,
                      bounds=(0, None), method="highs")
        if res.status == 3:  # unbounded: no published cell limits this quantity from above
            out.append(np.inf)
            continue
        if res.status != 0:
            raise RuntimeError(f"disclosure audit LP failed: {res.message}")
        out.append(sign * res.fun)
        is_int = bool(np.all(np.abs(res.x - np.round(res.x)) < 1e-6))
        integral &= is_int
        if points is not None:
            # A fractional optimum rounded often still satisfies every (interval) constraint:
            # then it is a feasible integer point, a certificate the audit can reuse.
            near = np.round(res.x)
            if is_int or _feasible(system, near):
                points.append(near)
        marg = np.abs(res.ineqlin.marginals) if m else np.zeros(0)
        binding |= {int(k % m) for k in np.flatnonzero(marg > _EPS)
                    if k % m < len(system.cells)}
    return out[0], out[1], binding, integral


def _certified(points: list[np.ndarray], atoms: frozenset[int], need: int
               ) -> tuple[float, float] | None:
    """Two known feasible integer solutions whose values of the quantity differ by at least
    `need` prove its integer range is at least that wide, without solving anything."""
    if not points:
        return None
    values = np.stack(points)[:, sorted(atoms)].sum(axis=1)
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi - lo >= need else None


def _feasible(system: _System, x: np.ndarray) -> bool:
    if np.any(x < 0):
        return False
    if not system.matrix.shape[0]:
        return True
    ax = system.matrix @ x
    return bool(np.all(ax >= system.lo - 1e-9) and np.all(ax <= system.hi + 1e-9))


def integer_range(system: _System, atoms: frozenset[int], *, lp_known_fractional: bool = False,
                  points: list[np.ndarray] | None = None) -> tuple[float, float]:
    """Exact integer range of a quantity given the published cells."""
    if not lp_known_fractional:
        lo, hi, _, integral = _ranges(system, atoms)
        if integral:
            return round(lo), hi if np.isinf(hi) else round(hi)
    c = np.zeros(system.n_atoms)
    c[list(atoms)] = 1.0
    constraints = ([LinearConstraint(system.matrix, system.lo, system.hi)]
                   if system.matrix.shape[0] else [])
    integrality = np.ones(system.n_atoms)
    out = []
    for sign in (1.0, -1.0):
        res = milp(sign * c, constraints=constraints, integrality=integrality,
                   bounds=Bounds(0, np.inf))
        if res.status == 0:
            out.append(sign * res.fun)
            if points is not None and res.x is not None:
                points.append(np.round(res.x))
        elif res.status in (3, 4) or res.x is None:  # unbounded (HiGHS may say 4: "other")
            out.append(np.inf)
        else:
            raise RuntimeError(f"disclosure audit MILP failed: {res.message}")
    return round(out[0]), out[1] if np.isinf(out[1]) else round(out[1])


def _pick(candidates: Iterable[Cell], gap: float) -> Cell | None:
    """Interior before totals; the smallest cell that closes the gap, else the largest."""
    pool = list(candidates)
    if not pool:
        return None

    def key(c: Cell) -> tuple[bool, bool, float]:
        covers = c.value >= gap
        return (c.margin, not covers, c.value if covers else -c.value)

    return min(pool, key=key)


@dataclass
class Protection:
    """The outcome of protecting groups against one shared suppression set."""

    suppressed: dict[CellId, str] = field(default_factory=dict)  # cell → rule code
    secondary_for: dict[CellId, str] = field(default_factory=dict)  # cell → protected label
    lp_solves: int = 0
    cache_key: tuple[str, int] | None = None
    cache: _System | None = None
    # Feasible integer solutions found so far, per group. Suppression only removes constraints,
    # so a solution stays feasible as the group is protected further.
    points: dict[str, list[np.ndarray]] = field(default_factory=dict)


Target = tuple[Unsafe, int]  # a quantity and the feasible range it needs


def _targets(group: LinkedGroup, rules: Disclosure, protection: Protection,
             rounding: bool, extra: Sequence[Target] = ()) -> list[Target]:
    """What must be protected, with the range each needs: every unsafe quantity a range of at
    least the threshold, and every suppressed cell of the group a range above zero (so a `c`
    never hides a value that can be solved); plus any `extra` targets (earlier releases)."""
    items = [(u, rules.threshold) for u in sorted(unsafe_quantities(group, rules,
                                                                    rounding=rounding),
                                                  key=lambda u: u.value)]
    items += [t for t in extra if t[0].atoms not in {u.atoms for u, _ in items}]
    seen = {u.atoms for u, _ in items}
    for cell in group.cells:
        key = frozenset(cell.atoms)
        if cell.id in protection.suppressed and key not in seen:
            seen.add(key)
            items.append((Unsafe(key, protection.suppressed[cell.id], " / ".join(cell.id),
                                 cell.value, cell.id[0]), 1))
    return items


def _cached_system(group: LinkedGroup, protection: Protection, rules: Disclosure,
                   rounding: bool) -> _System:
    # Suppression only grows, so the number of suppressed cells identifies the system.
    key = (group.name, len(protection.suppressed))
    if protection.cache_key != key or protection.cache is None:
        protection.cache = _system(group, set(protection.suppressed), rules, rounding)
        protection.cache_key = key
    return protection.cache


def _secure(group: LinkedGroup, item: Unsafe, need: int, rules: Disclosure,
            protection: Protection, *, rounding: bool, exact: bool = False) -> None:
    """Suppress cells until `item` has an integer range of at least `need`."""
    points = protection.points.setdefault(
        group.name, [np.asarray(group.atom_values, dtype=float)])
    while True:
        if _certified(points, item.atoms, need) is not None:
            return
        system = _cached_system(group, protection, rules, rounding)
        lo, hi, binding, integral = _ranges(system, item.atoms, points)
        protection.lp_solves += 2
        if hi - lo >= need and not integral:
            if not exact and hi - lo >= need + LP_SLACK:
                return  # the final audit proves it on the integers (and sends it back if not)
            lo, hi = integer_range(system, item.atoms, lp_known_fractional=True, points=points)
        if hi - lo >= need:
            return
        # If the relaxation looks wide but the integers are not, every binding cell is a
        # candidate; with no binding cell (degenerate duals) any published cell is.
        pool = ([system.cells[k] for k in binding if not system.cells[k].fixed]
                or [c for c in system.cells if not c.fixed])
        choice = _pick(pool, need - (hi - lo))
        if choice is None:  # nothing left to suppress: cannot happen with atoms >= 0
            raise RuntimeError(f"{group.name}: cannot protect {item.label}")
        protection.suppressed[choice.id] = SECONDARY
        protection.secondary_for[choice.id] = item.label


def _prepass(group: LinkedGroup, rules: Disclosure, protection: Protection,
             rounding: bool) -> None:
    """Cheap, classic moves that the LP would find anyway, made first to save LP solves.

    1. An unsafe atom hidden behind published cells (non-events = cohort - events): suppress
       the cell the group's `hints` name for it.
    2. A line of a table (row or column with its published total) holding exactly one suppressed
       cell: suppress the smallest other cell of the line (its total if it has no other).
    """
    sup = protection.suppressed
    for item in unsafe_quantities(group, rules, rounding=rounding):
        (atom,) = item.atoms if len(item.atoms) == 1 else (-1,)
        hint = group.hints.get(atom)
        if hint is not None and hint not in sup:
            sup[hint] = SECONDARY
            protection.secondary_for[hint] = item.label
    by_id = {c.id: c for c in group.cells}
    changed = True
    while changed:
        changed = False
        for members, total in group.lines:
            hidden = [m for m in members if m in sup]
            if len(hidden) != 1 or total in sup:
                continue
            open_cells = [by_id[m] for m in members if m not in sup and not by_id[m].fixed]
            choice = (_pick(open_cells, rules.threshold) if open_cells
                      else None if by_id[total].fixed else by_id[total])
            if choice is None:
                continue
            sup[choice.id] = SECONDARY
            protection.secondary_for[choice.id] = " / ".join(hidden[0])
            changed = True


def secure_exactly(group: LinkedGroup, findings: Sequence[AuditFinding], rules: Disclosure,
                   protection: Protection, *, rounding: bool,
                   extra: Sequence[Target] = ()) -> int:
    """Suppress more until each unprotected finding's integer range is what it needs;
    returns how many targets were worked on."""
    wanted = {f.label for f in findings if not f.protected}
    todo = [(u, need) for u, need in _targets(group, rules, protection, rounding, extra)
            if u.label in wanted]
    for item, need in todo:
        _secure(group, item, need, rules, protection, rounding=rounding, exact=True)
    return len(todo)


def protect_group(group: LinkedGroup, rules: Disclosure, protection: Protection, *,
                  rounding: bool, extra: Sequence[Target] = ()) -> None:
    """Add primary and secondary suppressions for one group to the shared `protection`."""
    for cid, rule in primary_cells(group, rules, rounding=rounding).items():
        protection.suppressed.setdefault(cid, rule)
    _prepass(group, rules, protection, rounding)
    # A target once secured stays secured (suppression only removes constraints), so each is
    # solved once; new secondary cells become targets (range > 0) and are picked up in turn.
    done: set[frozenset[int]] = set()
    while True:
        todo = [(u, need) for u, need in _targets(group, rules, protection, rounding, extra)
                if u.atoms not in done]
        if not todo:
            return
        for item, need in todo:
            _secure(group, item, need, rules, protection, rounding=rounding)
            done.add(item.atoms)


@dataclass(frozen=True)
class AuditFinding:
    """The feasible range an intruder can derive for one unsafe quantity or suppressed cell."""

    label: str
    rule: str
    low: float  # a proven feasible range: exact from the programs, or at least this wide
    high: float
    needed: int
    table: str

    @property
    def protected(self) -> bool:
        return self.high - self.low >= self.needed

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "rule": self.rule, "low": self.low,
                "high": None if np.isinf(self.high) else self.high, "needed": self.needed,
                "table": self.table, "protected": self.protected}


def audit_group(group: LinkedGroup, suppressed: dict[CellId, str], rules: Disclosure, *,
                rounding: bool, points: list[np.ndarray] | None = None,
                extra: Sequence[Target] = ()) -> list[AuditFinding]:
    """The integer range of every unsafe quantity and every suppressed cell, proven from the
    published cells alone: either two solutions that satisfy every published cell (checked here)
    and differ by at least what is needed, or the exact range from linear/integer programs.
    `points` may offer candidate solutions; only those feasible now are used."""
    system = _system(group, set(suppressed), rules, rounding)
    pool = [x for x in (points or []) if _feasible(system, x)]
    pool.append(np.asarray(group.atom_values, dtype=float))
    findings = []
    for item, need in _targets(group, rules, Protection(dict(suppressed)), rounding, extra):
        cert = _certified(pool, item.atoms, need)
        lo, hi = cert if cert is not None else integer_range(system, item.atoms)
        findings.append(AuditFinding(item.label, item.rule, lo, hi, need, item.table))
    return findings

