"""Randomisation inference for the stepped wedge: every assignment of LAs to steps the design allows.

The design randomises which LA takes which step date. The reference set is every *distinct*
assignment of the schedule's step dates to the LAs: all permutations of the multiset of dates
(5! = 120 for five distinct steps; with several LAs sharing a step, permutations that only swap
LAs within a step are the same assignment and counted once: n! / ∏ k_j!).

Test statistic: the exposure coefficient of the linear (probability) model with LA and period
fixed effects and the plan's covariates — β̂_a = x̃_a'y / x̃_a'x̃_a with x̃_a the exposure under
assignment a, partialled out of W (Frisch–Waugh–Lovell). Exposure under a is recomputed from each
child's index date: exposed = index_date ≥ step date of the child's LA under a.

p-value: share of assignments with |T_a| ≥ |T_obs| (the observed assignment included), exact
under the sharp null of no effect for any child.

Confidence interval by test inversion (Rosenbaum 2002, *Observational Studies*, 2nd ed., ch. 2;
for stepped wedges Kennedy-Shaffer, de Gruttola & Lipsitch 2020, *Stat Med* 39(7):815–844, and
Rabideau & Wang 2021, *Stat Med* 40(20):4442–4456, who invert tests built on individual-level
regression statistics as done here): under the sharp null of a constant additive effect τ (the
LPM's risk difference), the untreated outcome is y − τ·x_obs and the outcome under assignment a
is y − τ·x_obs + τ·x_a. By linearity of OLS the statistic centred
at τ is T_a(τ) = b_a − τ·c_a with b_a = β̂_a(y) and c_a = x̃_a'x_obs / x̃_a'x̃_a (c_obs = 1).
p(τ) is a step function whose jumps are the roots of (b_a − τc_a)² = (β̂ − τ)²; we find them all,
so the interval {τ : p(τ) > α} is exact (its hull is reported; ±inf when unbounded).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from trialvault.errors import TrialvaultError
from trialvault.evaluate.design import Design

_EPOCH = dt.date(1970, 1, 1)
_REL_TOL = 1e-10


@dataclass(frozen=True)
class RandomisationResult:
    outcome: str
    estimate: float
    p_value: float
    ci_low: float
    ci_high: float
    n_assignments: int
    """Assignments in the reference set (each counted once)."""
    n_degenerate: int = 0
    """Assignments where exposure is collinear with the fixed effects (left out)."""


def count_assignments(step_dates: Sequence[dt.date]) -> int:
    """n! / ∏ k_j! for a schedule with k_j LAs at step j."""
    total = math.factorial(len(step_dates))
    for k in Counter(step_dates).values():
        total //= math.factorial(k)
    return total


def distinct_assignments(step_dates: Sequence[dt.date]) -> Iterator[tuple[dt.date, ...]]:
    """Every distinct permutation of the multiset of step dates, in lexicographic order."""
    items = sorted(step_dates)
    n = len(items)
    # Narayana's next-permutation algorithm visits each distinct multiset permutation once.
    while True:
        yield tuple(items)
        i = n - 2
        while i >= 0 and items[i] >= items[i + 1]:
            i -= 1
        if i < 0:
            return
        j = n - 1
        while items[j] <= items[i]:
            j -= 1
        items[i], items[j] = items[j], items[i]
        items[i + 1:] = reversed(items[i + 1:])


def _schedule(steps: dict[int, dt.date], clusters: Iterable[int], max_assignments: int
              ) -> tuple[list[int], tuple[dt.date, ...]]:
    """The LAs (sorted) and their observed step dates, refusing clusters without a step and
    schedules with more assignments than `max_assignments`."""
    las = sorted(steps)
    unknown = sorted(set(clusters) - set(las))
    if unknown:
        raise TrialvaultError(f"randomisation inference: {len(unknown)} cluster(s) in the data "
                              "have no step in design.rollout")
    observed = tuple(steps[g] for g in las)
    n_total = count_assignments(observed)
    if n_total > max_assignments:
        raise TrialvaultError(
            f"randomisation inference: {n_total} assignments exceed the limit of "
            f"{max_assignments}; enumerate fewer steps or raise the limit")
    return las, observed


def randomisation_test(design: Design, steps: dict[int, dt.date], *, alpha: float,
                       max_assignments: int = 200_000) -> RandomisationResult:
    """Exact RI p-value and test-inversion CI for the exposure effect in `design`.

    `steps` maps each cluster (LA code) to its observed step date; the reference set permutes
    those dates over the LAs.
    """
    # Every LA of the schedule takes part, even one with no cohort member for this outcome:
    # its step date is still one of the dates being permuted.
    las, observed = _schedule(steps, design.clusters, max_assignments)

    # Column of each design row's LA within `las`.
    la_pos = np.searchsorted(np.asarray(las), np.asarray(design.clusters))[design.cluster]
    x_obs = design.x
    x_tilde_obs = design.partial_out(x_obs)
    d_obs = float(x_tilde_obs @ x_obs)
    if d_obs <= _REL_TOL * max(1.0, float(x_obs @ x_obs)):
        raise TrialvaultError(
            f"outcome '{design.outcome}': exposure is collinear with the LA and period effects")
    beta = float(x_tilde_obs @ design.y) / d_obs

    b_list: list[float] = []
    c_list: list[float] = []
    n_degenerate = 0
    batch: list[np.ndarray] = []
    for assignment in distinct_assignments(observed):
        if assignment == observed:
            continue  # counted once below with T_obs(τ) = β̂ − τ
        step_day = np.array([(d - _EPOCH).days for d in assignment], dtype=np.int64)
        batch.append((design.index_day >= step_day[la_pos]).astype(float))
        if len(batch) == 16:
            n_degenerate += _score_batch(design, batch, x_obs, b_list, c_list)
            batch = []
    if batch:
        n_degenerate += _score_batch(design, batch, x_obs, b_list, c_list)

    b = np.asarray(b_list)
    c = np.asarray(c_list)
    n_ref = len(b) + 1
    p_value = _p_value(b, c, beta, 0.0)
    lo, hi = _invert(b, c, beta, alpha)
    return RandomisationResult(outcome=design.outcome, estimate=beta, p_value=p_value,
                               ci_low=lo, ci_high=hi, n_assignments=n_ref,
                               n_degenerate=n_degenerate)


def _score_batch(design: Design, batch: list[np.ndarray], x_obs: np.ndarray,
                 b_out: list[float], c_out: list[float]) -> int:
    xs = np.column_stack(batch)
    xt = design.partial_out(xs)
    denom = np.einsum("ij,ij->j", xt, xs)
    scale = np.maximum(1.0, np.einsum("ij,ij->j", xs, xs))
    ok = denom > _REL_TOL * scale
    b = (xt.T @ design.y)[ok] / denom[ok]
    c = (xt.T @ x_obs)[ok] / denom[ok]
    b_out.extend(b.tolist())
    c_out.extend(c.tolist())
    return int((~ok).sum())


def _p_value(b: np.ndarray, c: np.ndarray, beta: float, tau: float) -> float:
    t_obs = abs(beta - tau)
    t = np.abs(b - tau * c)
    extreme = t >= t_obs * (1 - _REL_TOL) - _REL_TOL
    return float((int(extreme.sum()) + 1) / (len(b) + 1))


def _invert(b: np.ndarray, c: np.ndarray, beta: float, alpha: float) -> tuple[float, float]:
    """Hull of {τ : p(τ) > alpha}, exact: p only changes where (b − τc)² = (β̂ − τ)²."""
    roots: list[float] = [beta]
    # (c² − 1)τ² − 2(bc − β̂)τ + (b² − β̂²) = 0 for each assignment
    qa, qb, qc = c * c - 1.0, -2.0 * (b * c - beta), b * b - beta * beta
    lin = np.abs(qa) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        roots += list((-qc[lin] / qb[lin])[np.isfinite(-qc[lin] / qb[lin])])
        disc = qb[~lin] ** 2 - 4 * qa[~lin] * qc[~lin]
        real = disc >= 0
        sq = np.sqrt(disc[real])
        a2 = 2 * qa[~lin][real]
        roots += list((-qb[~lin][real] - sq) / a2) + list((-qb[~lin][real] + sq) / a2)
    return _accepted_interval(roots, beta, alpha, lambda tau: _p_value(b, c, beta, tau))


def _accepted_interval(roots: list[float], beta: float, alpha: float,
                       p_value: Callable[[float], float]) -> tuple[float, float]:
    """The shifts τ whose p-value exceeds alpha, given every τ where the p-value can change.

    The p-value is a step function of τ between breakpoints (`roots`): probe the middle of
    every interval between them and beyond both ends, and keep the outermost accepted ones.
    """
    pts = np.unique(np.asarray([r for r in roots if np.isfinite(r)]))
    span = max(1.0, float(np.ptp(pts)) if len(pts) > 1 else abs(beta))
    probes = np.concatenate([[pts[0] - span], (pts[:-1] + pts[1:]) / 2, [pts[-1] + span]])
    accepted = [k for k, tau in enumerate(probes) if p_value(float(tau)) > alpha]
    if not accepted:
        return float("nan"), float("nan")
    first, last = accepted[0], accepted[-1]
    lo = -math.inf if first == 0 else float(pts[first - 1])
    hi = math.inf if last == len(probes) - 1 else float(pts[last])
    return lo, hi


# --- the plan's estimand as the statistic ---------------------------------------------------

@dataclass(frozen=True)
class CellStats:
    """Sufficient statistics of one outcome's model at the level of assignment cells.

    Under any assignment a child's exposure and exposure time depend only on its LA, its period
    and how many of the schedule's step dates fall on or before its index date: the cell. So
    every exposure column is a cell indicator, and the model's exposure coefficients need only
    per-cell sums and Q'1_c (Q an orthonormal basis of the nuisance columns W)."""

    la_pos: np.ndarray      # cell -> position of its LA in `las`
    period: np.ndarray      # cell -> period index
    passed: np.ndarray      # cell -> number of distinct step dates on or before its children
    weight: np.ndarray      # cell -> Σ w (regression weights; 1 per child unweighted)
    count: np.ndarray       # cell -> children (the estimand's weights)
    wy: np.ndarray          # cell -> Σ w·y
    S: np.ndarray           # p × cells: Q' √w 1_c
    qy: np.ndarray          # Q' √w y
    # For the studentised statistic (cluster-robust SE): r = M_W √w y, the nuisance residual.
    rc: np.ndarray          # cell -> Σ √w r
    qr_g: np.ndarray        # LA × p: Q_g' r_g
    qq_g: np.ndarray        # LA × p × p: Q_g' Q_g


def cell_stats(y: np.ndarray, W: np.ndarray, la_pos: np.ndarray, period: np.ndarray,
               passed: np.ndarray, weights: np.ndarray | None = None) -> CellStats:
    """Collapse child rows to assignment cells (see `CellStats`)."""
    from scipy import sparse

    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    root = np.sqrt(w)
    q, _ = np.linalg.qr(W * root[:, None])
    keys = np.column_stack([la_pos, period, passed]).astype(np.int64)
    uniq, cell = np.unique(keys, axis=0, return_inverse=True)
    cell = cell.ravel()
    m = len(uniq)
    onehot = sparse.csr_matrix((root, (cell, np.arange(len(y)))), shape=(m, len(y)))
    yw = root * y
    qy = q.T @ yw
    r = yw - q @ qy
    G = int(la_pos.max()) + 1
    qr_g = np.zeros((G, q.shape[1]))
    qq_g = np.zeros((G, q.shape[1], q.shape[1]))
    for g in np.unique(la_pos):
        rows = la_pos == g
        qr_g[g] = q[rows].T @ r[rows]
        qq_g[g] = q[rows].T @ q[rows]
    return CellStats(la_pos=uniq[:, 0], period=uniq[:, 1], passed=uniq[:, 2],
                     weight=np.bincount(cell, weights=w, minlength=m),
                     count=np.bincount(cell, minlength=m).astype(float),
                     wy=np.bincount(cell, weights=w * y, minlength=m),
                     S=np.asarray((onehot @ q).T), qy=qy,
                     rc=np.bincount(cell, weights=root * r, minlength=m), qr_g=qr_g, qq_g=qq_g)


@dataclass(frozen=True)
class CellFit:
    """The exposure model fitted under one assignment: estimand weights, and the map
    v (cell values) -> the statistic of an outcome equal to v."""

    E: np.ndarray           # cells × exposure columns
    shares: np.ndarray      # the estimand's weights on the columns
    A: np.ndarray           # S E
    chol: tuple[np.ndarray, bool]

    def statistic(self, cs: CellStats, v: np.ndarray) -> np.ndarray:
        """Statistic (the estimand's estimate) of the cell-level outcome(s) v (cells,) or
        (cells, m): w'(D̃'D̃)^{-1} D̃'v with D̃ the exposure columns net of W."""
        from scipy.linalg import cho_solve

        v2 = v.reshape(len(cs.weight), -1)
        rhs = self.E.T @ (cs.weight[:, None] * v2) - self.A.T @ (cs.S @ v2)
        out = self.shares @ cho_solve(self.chol, rhs)
        return out if v.ndim > 1 else out[0]

    def statistic_y(self, cs: CellStats) -> float:
        from scipy.linalg import cho_solve

        rhs = self.E.T @ cs.wy - self.A.T @ cs.qy
        return float(self.shares @ cho_solve(self.chol, rhs))


    def scores(self, cs: CellStats, v: np.ndarray | None) -> np.ndarray:
        """Per-LA scores u_g = h'D̃_g'e_g (h = (D̃'D̃)^{-1}w, e the full model's residual) of
        the outcome y (v None) or of cell-level outcome(s) v (cells, m): Σ_g u_g² is the
        statistic's CR0 cluster-robust variance. Everything from cell and LA sums."""
        from scipy.linalg import cho_solve

        if v is None:
            rc, Sv = cs.rc[:, None], None
            beta = cho_solve(self.chol, (self.E.T @ cs.wy - self.A.T @ cs.qy)[:, None])
        else:
            v = v.reshape(len(cs.weight), -1)
            Sv = cs.S @ v                                       # Q'√w v
            rc = cs.weight[:, None] * v - cs.S.T @ Sv            # cell sums of √w M_W v
            beta = cho_solve(self.chol, self.E.T @ (cs.weight[:, None] * v) - self.A.T @ Sv)
        h = cho_solve(self.chol, self.shares)
        out = np.zeros((cs.qq_g.shape[0], beta.shape[1]))
        for g in np.unique(cs.la_pos):
            in_g = cs.la_pos == g
            Eg = self.E * in_g[:, None]
            SgE = cs.S[:, in_g] @ self.E[in_g]                  # Q_g'D_g
            qgr = cs.qr_g[g][:, None] if v is None else (
                cs.S[:, in_g] @ v[in_g] - cs.qq_g[g] @ Sv)      # Q_g' r_g
            dr = Eg.T @ rc - self.A.T @ qgr                     # D̃_g' r_g
            dd = (np.diag(Eg.T @ cs.weight) - SgE.T @ self.A - self.A.T @ SgE
                  + self.A.T @ cs.qq_g[g] @ self.A)             # D̃_g'D̃_g
            out[g] = h @ (dr - dd @ beta)
        return out


def fit_cells(cs: CellStats, step_rank: np.ndarray, step_period: np.ndarray, model: str,
              k_max: int) -> CellFit | None:
    """The exposure columns under the assignment giving LA i the step date of rank
    `step_rank[i]` (period `step_period[i]`); None when they are collinear with W."""
    from scipy.linalg import cho_factor

    exposed = step_rank[cs.la_pos] < cs.passed
    if model == "immediate":
        E = exposed[:, None].astype(float)
    else:
        k = np.clip(cs.period - step_period[cs.la_pos], 0, k_max)
        levels = np.unique(k[exposed])
        E = ((k[:, None] == levels[None, :]) & exposed[:, None]).astype(float)
    if E.shape[1] == 0:
        return None
    n_col = E.T @ cs.count
    if (n_col == 0).any():
        return None
    A = cs.S @ E
    dtd = np.diag(E.T @ cs.weight) - A.T @ A
    scale = max(1.0, float(np.abs(np.diag(dtd)).max()))
    try:
        chol = cho_factor(dtd)
    except np.linalg.LinAlgError:
        return None
    if float(np.min(np.abs(np.diag(chol[0])))) ** 2 < _REL_TOL * scale:
        return None
    return CellFit(E=E, shares=n_col / n_col.sum(), A=A, chol=chol)


def randomisation_estimand(y: np.ndarray, W: np.ndarray, *, la: np.ndarray, period: np.ndarray,
                           index_day: np.ndarray, steps: dict[int, dt.date],
                           step_period: dict[dt.date, int], model: str, k_max: int,
                           alpha: float, weights: np.ndarray | None = None,
                           transition: dict[dt.date, dt.date] | None = None,
                           shift: str = "constant", statistic: str = "estimate",
                           outcome: str = "", max_assignments: int = 200_000
                           ) -> RandomisationResult:
    """Exact RI p-value and test-inversion CI with the estimand's estimate as the statistic.

    The statistic under each assignment is what the analysis would report had that assignment
    been drawn: the `model`'s ("immediate" or "exposure_time") estimate of the mean effect
    among exposed children, with the exposed children's shares of that assignment. Rows are
    children (outcome y, nuisance columns W, LA code, period index, index day); `steps` the
    observed step date of each LA; `step_period` the period index of each step date.
    `transition`: step date -> first day of its transition window; children indexed in the
    window before their LA's step under an assignment are left out of that assignment's fit
    (None: nobody is).

    Inversion (`shift`): "constant" tests the sharp null "every exposed child's outcome is
    shifted by τ"; "profile" tests "shifted by τ + s_k at exposure time k", the s_k the
    observed exposure-time estimates' deviations from their weighted mean (so a ramp keeps
    its shape while its mean among the exposed, the estimand, is τ). Either way the statistic
    centred at τ is linear in τ and the interval is found exactly by `_invert`.
    """
    las, observed = _schedule(steps, np.unique(la).tolist(), max_assignments)
    dates = sorted(set(observed))
    rank = {d: i for i, d in enumerate(dates)}
    days = np.array([(d - _EPOCH).days for d in dates], dtype=np.int64)
    la_pos = np.searchsorted(np.asarray(las), np.asarray(la, dtype=np.int64))
    passed = np.searchsorted(days, np.asarray(index_day, dtype=np.int64), side="right")
    period = np.asarray(period, dtype=np.int64)
    y = np.asarray(y, dtype=float)

    def code(assignment: tuple[dt.date, ...]) -> tuple[np.ndarray, np.ndarray]:
        return (np.array([rank[d] for d in assignment]),
                np.array([step_period[d] for d in assignment], dtype=np.int64))

    index_day = np.asarray(index_day, dtype=np.int64)
    if transition is None:
        full = cell_stats(y, W, la_pos, period, passed, weights)

        def stats_for(assignment: tuple[dt.date, ...]) -> CellStats:
            return full
    else:
        window = transition

        def stats_for(assignment: tuple[dt.date, ...]) -> CellStats:
            step_day = np.array([(d - _EPOCH).days for d in assignment])[la_pos]
            start = np.array([(window[d] - _EPOCH).days for d in assignment])[la_pos]
            keep = ~((index_day >= start) & (index_day < step_day))
            w = None if weights is None else np.asarray(weights)[keep]
            return cell_stats(y[keep], W[keep], la_pos[keep], period[keep], passed[keep], w)

    obs_rank, obs_period = code(observed)
    cs_obs = stats_for(observed)
    fit_obs = fit_cells(cs_obs, obs_rank, obs_period, model, k_max)
    if fit_obs is None:
        raise TrialvaultError(f"outcome '{outcome}': exposure is collinear with the LA and "
                              "period effects")
    beta = fit_obs.statistic_y(cs_obs)
    profile = shift == "profile" and fit_obs.E.shape[1] > 1
    if profile:
        from scipy.linalg import cho_solve

        rhs = fit_obs.E.T @ cs_obs.wy - fit_obs.A.T @ cs_obs.qy
        dev = cho_solve(fit_obs.chol, rhs) - beta      # s_k, Σ_k share_k s_k = 0
        obs_levels = _levels(cs_obs, obs_rank, obs_period, k_max)
    elif shift not in ("constant", "profile"):
        raise TrialvaultError(f"randomisation inference: unknown shift '{shift}'")
    if statistic not in ("estimate", "t"):
        raise TrialvaultError(f"randomisation inference: unknown statistic '{statistic}'")
    studentise = statistic == "t"
    u_raw: list[np.ndarray] = []    # per-LA scores of y, of the shifted y, of the shift
    u_y: list[np.ndarray] = []
    u_v: list[np.ndarray] = []

    raw: list[float] = []       # the statistic itself (the test of no effect at all)
    b_list: list[float] = []
    c_list: list[float] = []
    n_degenerate = 0
    for assignment in distinct_assignments(observed):
        if assignment == observed:
            continue
        cs = stats_for(assignment)
        # The observed exposure (columns) as cell values of this assignment's cells.
        obs_exposed = obs_rank[cs.la_pos] < cs.passed
        fit = fit_cells(cs, *code(assignment), model, k_max)
        if fit is None:
            n_degenerate += 1
            continue
        b = fit.statistic_y(cs)
        raw.append(b)
        if profile:
            # T_a of each observed exposure-time column: the hypothesised effect profile
            # τ + s_k moves this assignment's statistic by Σ_k (τ + s_k) T_a(D_k,obs).
            k_obs = np.clip(cs.period - obs_period[cs.la_pos], 0, k_max)
            cols = (k_obs[:, None] == obs_levels[None, :]) & obs_exposed[:, None]
            t_cols = fit.statistic(cs, cols.astype(float))
            b -= float(dev @ t_cols)
            c = float(np.sum(t_cols))
            if studentise:
                base = fit.scores(cs, None)[:, 0]
                per_col = fit.scores(cs, cols.astype(float))
                u_raw.append(base)
                u_y.append(base - per_col @ dev)
                u_v.append(per_col.sum(axis=1))
        else:
            c = float(fit.statistic(cs, obs_exposed.astype(float)))
            if studentise:
                base = fit.scores(cs, None)[:, 0]
                u_raw.append(base)
                u_y.append(base)
                u_v.append(fit.scores(cs, obs_exposed.astype(float))[:, 0])
        b_list.append(b)
        c_list.append(c)
    b_arr, c_arr = np.asarray(b_list), np.asarray(c_list)
    if studentise:
        s2 = float(np.sum(fit_obs.scores(cs_obs, None) ** 2))
        polys = [_t_poly(b, c, beta, s2, uy, uv) for b, c, uy, uv in zip(
            b_arr, c_arr, u_y, u_v, strict=True)]
        p0 = [_t_poly(b, c, beta, s2, u, np.zeros_like(u)) for b, c, u in zip(
            raw, c_arr, u_raw, strict=True)]
        lo, hi = _invert_poly(polys, beta, alpha)
        p_value = _p_poly(p0, 0.0)
    else:
        lo, hi = _invert(b_arr, c_arr, beta, alpha)
        p_value = _p_value(np.asarray(raw), c_arr, beta, 0.0)
    return RandomisationResult(outcome=outcome, estimate=beta, p_value=p_value, ci_low=lo,
                               ci_high=hi, n_assignments=len(b_arr) + 1,
                               n_degenerate=n_degenerate)


def _t_poly(b: float, c: float, beta: float, s2_obs: float, uy: np.ndarray, uv: np.ndarray
            ) -> np.ndarray:
    """Coefficients (highest first) of f(τ) = (b − cτ)² s²_obs − (β̂ − τ)² ‖u_y − τu_v‖²:
    assignment a is at least as extreme as the observed one at τ iff f(τ) ≥ 0, i.e.
    |t_a(τ)| ≥ |t_obs(τ)| with t = (statistic − τ·shift) / its CR0 cluster-robust SE."""
    lhs = np.array([c * c, -2 * b * c, b * b]) * s2_obs
    q = np.array([float(uv @ uv), -2 * float(uy @ uv), float(uy @ uy)])
    return np.asarray(np.polysub(np.r_[0.0, 0.0, lhs],
                                 np.polymul([1.0, -2 * beta, beta * beta], q)), dtype=float)


def _p_poly(polys: list[np.ndarray], tau: float) -> float:
    scale = max((float(np.max(np.abs(p))) for p in polys), default=1.0)
    extreme = sum(np.polyval(p, tau) >= -_REL_TOL * scale for p in polys)
    return float((extreme + 1) / (len(polys) + 1))


def _invert_poly(polys: list[np.ndarray], beta: float, alpha: float) -> tuple[float, float]:
    """Hull of {τ : p(τ) > alpha}, exact: p only changes at real roots of the f_a."""
    roots: list[float] = [beta]
    for p in polys:
        trimmed = np.trim_zeros(p, "f")
        if len(trimmed) > 1:
            r = np.roots(trimmed)
            roots += [float(x.real) for x in r if abs(x.imag) <= 1e-9 * max(1.0, abs(x))]
    return _accepted_interval(roots, beta, alpha, lambda tau: _p_poly(polys, tau))


def _levels(cs: CellStats, rank: np.ndarray, step_period: np.ndarray, k_max: int) -> np.ndarray:
    exposed = rank[cs.la_pos] < cs.passed
    k = np.clip(cs.period - step_period[cs.la_pos], 0, k_max)
    return np.unique(k[exposed])

