"""The stepped-wedge mixed model with a nested exchangeable correlation, fitted by REML.

y = Xβ + u_LA + v_LA×period + ε, u ~ N(0, σ²_c), v ~ N(0, σ²_cp), ε ~ N(0, σ²_e), with X the
exposure (or exposure-time) columns, fixed period effects and the plan's covariates (Hooper et
al. 2016, *Stat Med* 35:4718; Hemming et al. 2015, *BMJ* 350:h391). From it:

- the intra-cluster correlation ICC = (σ²_c + σ²_cp) / (σ²_c + σ²_cp + σ²_e) (two children of
  the same LA and period) and the cluster autocorrelation CAC = σ²_c / (σ²_c + σ²_cp) (how
  alike one LA's periods are), the quantities a stepped-wedge design is planned with;
- a test of a contrast c'β with Satterthwaite degrees of freedom, as R lmerTest computes them
  (Kuznetsova et al. 2017, *J Stat Softw* 82(13)): df = 2 (c'Φc)² / (g'Ag), g the gradient of
  c'Φ(θ)c in the variance parameters and A their asymptotic covariance (twice the inverse
  Hessian of the REML deviance), both by central differences.

Why not statsmodels' MixedLM: it gives no Satterthwaite or Kenward–Roger degrees of freedom,
and at 18,000 children it is too slow for the operating-characteristics benchmark's thousands
of fits. Here everything runs on per-LA sufficient statistics (X'X, Z'X, Z'Z, Z'y with Z the LA
and LA×period indicators) through the Woodbury identity, so a fit costs O(n·k²) once and then
only k×k algebra. The estimates equal MixedLM's and R lme4's REML fit (tests/reference/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats


@dataclass(frozen=True)
class MixedFit:
    beta: np.ndarray
    cov_beta: np.ndarray
    sigma2: tuple[float, float, float]
    """(σ²_cluster, σ²_cluster×period, σ²_residual)."""
    deviance: float
    theta_hessian: np.ndarray
    _stats: list[tuple[np.ndarray, ...]]
    n: int

    @property
    def icc(self) -> float:
        c, cp, e = self.sigma2
        total = c + cp + e
        return (c + cp) / total if total > 0 else float("nan")

    @property
    def cac(self) -> float:
        c, cp, _ = self.sigma2
        return c / (c + cp) if c + cp > 0 else float("nan")


@dataclass(frozen=True)
class MixedTest:
    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float


def _cluster_stats(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, period: np.ndarray
                   ) -> list[tuple[np.ndarray, ...]]:
    out: list[tuple[np.ndarray, ...]] = []
    for g in np.unique(cluster):
        rows = cluster == g
        Xg, yg, pg = X[rows], y[rows], period[rows]
        cells, inverse = np.unique(pg, return_inverse=True)
        Z = np.zeros((len(yg), len(cells) + 1))
        Z[:, 0] = 1.0
        Z[np.arange(len(yg)), inverse + 1] = 1.0
        out.append((Xg.T @ Xg, Z.T @ Xg, Z.T @ Z, Xg.T @ yg, Z.T @ yg, np.array(yg @ yg),
                    np.array(float(len(yg)))))
    return out


def _pieces(st: list[tuple[np.ndarray, ...]], theta: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """X'V^{-1}X, X'V^{-1}y, y'V^{-1}y and log|V| for variances theta = (c, cp, e)."""
    c, cp, e = theta
    k = st[0][0].shape[0]
    XVX = np.zeros((k, k))
    XVy = np.zeros(k)
    yVy = 0.0
    logdet = 0.0
    for XX, ZX, ZZ, Xy, Zy, yy, n in st:
        m = ZZ.shape[0]
        gdiag = np.full(m, cp)
        gdiag[0] = c
        # V = eI + Z G Z'. V^{-1} = (1/e)(I − Z (e G^{-1} + Z'Z)^{-1} Z'); a zero variance is
        # handled by leaving its column out of Z.
        live = gdiag > 0
        if live.any():
            Zl = ZZ[np.ix_(live, live)]
            inner = np.diag(e / gdiag[live]) + Zl
            chol = np.linalg.cholesky(inner)
            ZXl, Zyl = ZX[live], Zy[live]
            a = np.linalg.solve(chol, ZXl)
            b = np.linalg.solve(chol, Zyl)
            XVX += (XX - a.T @ a) / e
            XVy += (Xy - a.T @ b) / e
            yVy += (float(yy) - float(b @ b)) / e
            logdet += (float(n) * np.log(e) + np.sum(np.log(gdiag[live] / e))
                       + 2 * np.sum(np.log(np.diag(chol))))
        else:
            XVX += XX / e
            XVy += Xy / e
            yVy += float(yy) / e
            logdet += float(n) * np.log(e)
    return XVX, XVy, yVy, logdet


def _deviance(st: list[tuple[np.ndarray, ...]], theta: np.ndarray) -> float:
    XVX, XVy, yVy, logdet = _pieces(st, theta)
    chol = np.linalg.cholesky(XVX)
    w = np.linalg.solve(chol, XVy)
    return float(logdet + 2 * np.sum(np.log(np.diag(chol))) + yVy - w @ w)


def fit_mixed(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, period: np.ndarray
              ) -> MixedFit:
    """REML fit of the nested exchangeable model (variances on the log scale, bounded below)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    st = _cluster_stats(X, y, np.asarray(cluster), np.asarray(period))
    var_y = float(np.var(y)) or 1.0
    floor = 1e-10 * var_y

    def objective(log_theta: np.ndarray) -> float:
        return _deviance(st, np.exp(log_theta))

    start = np.log(np.array([0.05, 0.05, 0.9]) * var_y)
    bounds = [(np.log(floor), np.log(10 * var_y))] * 3
    res = optimize.minimize(objective, start, method="L-BFGS-B", bounds=bounds)
    theta = np.exp(res.x)
    theta = np.where(theta <= floor * 1.01, 0.0, theta)
    theta[2] = max(theta[2], floor)
    XVX, XVy, _, _ = _pieces(st, theta)
    cov = np.linalg.inv(XVX)
    beta = cov @ XVy
    hess = _hessian(lambda t: _deviance(st, t), theta, floor)
    return MixedFit(beta=beta, cov_beta=cov, sigma2=(float(theta[0]), float(theta[1]),
                                                       float(theta[2])),
                    deviance=float(res.fun), theta_hessian=hess, _stats=st, n=len(y))


def _steps(theta: np.ndarray, floor: float) -> np.ndarray:
    return np.maximum(1e-4 * np.maximum(theta, floor * 1e4), 1e-12)


def _hessian(fun: Callable[[np.ndarray], float], theta: np.ndarray, floor: float
             ) -> np.ndarray:
    """Central-difference Hessian in the variances (only of the parameters off the bound)."""
    h = _steps(theta, floor)
    k = len(theta)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            def at(di: float, dj: float, i: int = i, j: int = j) -> float:
                t = theta.copy()
                t[i] += di * h[i]
                t[j] += dj * h[j]
                return float(fun(np.maximum(t, 0.0)))
            H[i, j] = H[j, i] = (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (
                4 * h[i] * h[j])
    return H


def satterthwaite(fit: MixedFit, c: np.ndarray, *, alpha: float = 0.05) -> MixedTest:
    """Test of c'β with Satterthwaite degrees of freedom (lmerTest's method)."""
    c = np.asarray(c, dtype=float)
    theta = np.array(fit.sigma2)
    live = theta > 0
    live[2] = True

    def var_c(t: np.ndarray) -> float:
        XVX, _, _, _ = _pieces(fit._stats, t)
        return float(c @ np.linalg.solve(XVX, c))

    v = var_c(theta)
    h = _steps(theta, 1e-12)
    grad = np.zeros(3)
    for i in np.flatnonzero(live):
        up, down = theta.copy(), theta.copy()
        up[i] += h[i]
        down[i] = max(down[i] - h[i], 0.0)
        grad[i] = (var_c(up) - var_c(down)) / (up[i] - down[i])
    Hl = fit.theta_hessian[np.ix_(live, live)]
    A = 2 * np.linalg.pinv(Hl)
    gl = grad[live]
    denom = float(gl @ A @ gl)
    df = 2 * v * v / denom if denom > 0 else float("inf")
    return _t_test(float(c @ fit.beta), float(np.sqrt(v)), df, alpha)


def _t_test(est: float, se: float, df: float, alpha: float) -> MixedTest:
    """Wald t test and interval of one contrast with `df` denominator degrees of freedom."""
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    p_value = float(2 * stats.t.sf(abs(est / se), df)) if se > 0 else float("nan")
    return MixedTest(estimate=est, se=se, df=float(df), ci_low=est - crit * se,
                     ci_high=est + crit * se, p_value=p_value)



_Form = tuple[float, np.ndarray]
"""(α, K): the within-LA operator αI + Z K Z'."""


def kenward_roger(fit: MixedFit, c: np.ndarray, *, alpha: float = 0.05) -> MixedTest:
    """Test of c'β with the Kenward–Roger (1997, *Biometrics* 53:983) adjusted covariance and
    degrees of freedom, as R pbkrtest computes them (`vcovAdj`, `Lb_ddf`; lmerTest's
    `contest(ddf = "Kenward-Roger")`).

    V = Σ_i θ_i G_i with G = (LA indicator products, LA×period indicator products, I). The
    pieces P_i = −X'V⁻¹G_iV⁻¹X, Q_ij = X'V⁻¹G_iV⁻¹G_jV⁻¹X and tr(V⁻¹G_iV⁻¹G_j) are sums over
    LAs of small matrices: within an LA every operator met here has the form αI + Z K Z'
    (Z = [LA column, LA×period columns]), and such forms multiply as
    (α₁, K₁)(α₂, K₂) = (α₁α₂, α₁K₂ + α₂K₁ + K₁ Z'Z K₂), so nothing n × n is ever built.
    Every variance parameter takes part, also one estimated at zero (as in pbkrtest).
    """
    c = np.asarray(c, dtype=float)
    theta = np.array(fit.sigma2, dtype=float)
    phi = fit.cov_beta
    k = phi.shape[0]
    P = [np.zeros((k, k)) for _ in range(3)]
    Q = {(i, j): np.zeros((k, k)) for i in range(3) for j in range(i, 3)}
    trace = np.zeros((3, 3))
    for XX, ZX, ZZ, _, _, _, n in fit._stats:
        m = ZZ.shape[0]
        g = np.full(m, theta[1])
        g[0] = theta[0]
        e = theta[2]
        # V⁻¹ = (1/e)(I − Z M Z'), M = G (eI + Z'Z G)⁻¹ (Woodbury; G may be singular).
        M = np.linalg.solve((e * np.eye(m) + ZZ * g[None, :]).T, np.diag(g)).T
        v_inv: _Form = (1.0 / e, -M / e)
        sel = np.zeros(m)
        sel[0] = 1.0
        derivs: list[_Form] = [(0.0, np.diag(sel)), (0.0, np.diag(1.0 - sel)),
                               (1.0, np.zeros((m, m)))]

        def mul(a: _Form, b: _Form, ZZ: np.ndarray = ZZ) -> _Form:
            return a[0] * b[0], a[0] * b[1] + b[0] * a[1] + a[1] @ ZZ @ b[1]

        def sandwich(op: _Form, XX: np.ndarray = XX, ZX: np.ndarray = ZX) -> np.ndarray:
            return op[0] * XX + ZX.T @ op[1] @ ZX

        vg = [mul(v_inv, d) for d in derivs]               # V⁻¹G_i
        for i in range(3):
            P[i] -= sandwich(mul(vg[i], v_inv))
            for j in range(i, 3):
                both = mul(vg[i], vg[j])
                Q[i, j] += sandwich(mul(both, v_inv))
                trace[i, j] += both[0] * float(n) + float(np.sum(both[1] * ZZ.T))
    info = np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            info[i, j] = info[j, i] = (trace[i, j] - 2 * float(np.sum(phi * Q[i, j]))
                                       + float(np.sum((phi @ P[i]) * (P[j] @ phi))))
    eig = np.linalg.eigvalsh(info)
    W = 2 * (np.linalg.inv(info) if np.min(np.abs(eig)) > 1e-10 else np.linalg.pinv(info))
    U = np.zeros((k, k))
    for i in range(3):
        for j in range(i, 3):
            term = W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
            U += term if i == j else term + term.T
    phi_adj = phi + 2 * phi @ U @ phi
    df = _kr_df(c, phi, P, W)
    return _t_test(float(c @ fit.beta), float(np.sqrt(float(c @ phi_adj @ c))), df, alpha)


def _kr_df(c: np.ndarray, phi: np.ndarray, P: list[np.ndarray], W: np.ndarray) -> float:
    """Kenward–Roger denominator df of one contrast (pbkrtest's `Lb_ddf`, q = 1)."""
    theta = np.outer(c, c) / float(c @ phi @ c)
    a1 = a2 = 0.0
    u = [theta @ phi @ P[i] @ phi for i in range(len(P))]
    for i in range(len(P)):
        for j in range(i, len(P)):
            e = 1.0 if i == j else 2.0
            a1 += e * W[i, j] * float(np.trace(u[i])) * float(np.trace(u[j]))
            a2 += e * W[i, j] * float(np.sum(u[i] * u[j].T))
    b = (a1 + 6 * a2) / 2
    g = (2 * a1 - 5 * a2) / (3 * a2)
    c1 = g / (3 + 2 * (1 - g))
    c2 = (1 - g) / (3 + 2 * (1 - g))
    c3 = (3 - g) / (3 + 2 * (1 - g))
    v0 = 1 + c1 * b
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1 = 1 - c2 * b
    v2 = 1 - c3 * b
    ratio = 1.0 if abs(1 - a2) < 1e-14 and abs(v1) < 1e-14 else (1 - a2) / v1
    rho = ratio ** 2 * v0 / v2
    return float(4 + 3 / (rho - 1))
