"""Cluster-robust CR2 standard errors with Bell–McCaffrey (Satterthwaite) degrees of freedom.

Bell & McCaffrey (2002, *Survey Methodology* 28:169–181); Pustejovsky & Tipton (2018, *J Bus
Econ Stat* 36:672–683), whose R package clubSandwich (`vcovCR(type = "CR2")` with
`coef_test(test = "Satterthwaite")` / `linear_contrast`) is the reference these numbers are
checked against (tests/reference/). No maintained Python library offers CR2 with these degrees
of freedom, so it is written here, in the closed forms of the papers:

- CR2 adjusts each cluster's residuals by A_g = (I − H_gg)^{-1/2} (a Moore–Penrose inverse
  square root: with cluster fixed effects I − H_gg is singular, and the pseudo-inverse gives
  the same variance as absorbing them, Pustejovsky & Tipton's Theorem 2);
- for a contrast c'β: V = Σ_g (p_g'e_g)² with p_g = A_g X_g (X'X)^{-1} c, and the degrees of
  freedom (Σ_g G_gg)² / Σ_gh G_gh² with G_gh = p_g'(I − H)_gh p_h (working model: independent
  errors of equal variance).

H_gg has rank at most k (the columns of X), so A_g is applied through the thin SVD of the
cluster's rows of an orthonormal basis of X: O(n·k²) work, never an n_g × n_g matrix. Weighted
least squares is ordinary least squares on √w-scaled rows (clubSandwich's inverse-variance
working model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

_TOL = 1e-10


@dataclass(frozen=True)
class ContrastTest:
    """Estimate, CR2 standard error, Bell–McCaffrey df, t-based CI and p-value of c'β."""

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float


def cr2_contrast(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, c: np.ndarray, *,
                 alpha: float = 0.05, weights: np.ndarray | None = None,
                 null: float = 0.0) -> ContrastTest:
    """OLS (or WLS with `weights`) of y on X; CR2 test of c'β = null, clusters `cluster`."""
    return cluster_robust_contrast(X, y, cluster, c, alpha=alpha, weights=weights, null=null)


def cluster_robust_contrast(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, c: np.ndarray,
                            *, alpha: float = 0.05, weights: np.ndarray | None = None,
                            null: float = 0.0, adjustment: str = "CR2",
                            reference: str = "bell_mccaffrey") -> ContrastTest:
    """As `cr2_contrast`, with the alternatives the benchmark compares: `adjustment` "CR2"
    (A_g = (I − H_gg)^{-1/2}) or "CR3" (A_g = (I − H_gg)^{-1}, the cluster jackknife's
    variance up to (G − 1)/G); `reference` "bell_mccaffrey" (CR2's Satterthwaite df, whichever
    adjustment) or "clusters_minus_1" (t with G − 1 df)."""
    if adjustment not in ("CR2", "CR3") or reference not in ("bell_mccaffrey",
                                                                 "clusters_minus_1"):
        raise ValueError(f"unknown adjustment {adjustment!r} or reference {reference!r}")
    power = 0.5 if adjustment == "CR2" else 1.0
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if weights is not None:
        root = np.sqrt(np.asarray(weights, dtype=float))
        X, y = X * root[:, None], y * root
    q, r = np.linalg.qr(X)
    keep = np.abs(np.diag(r)) > _TOL * max(1.0, float(np.abs(np.diag(r)).max()))
    if not keep.all():
        raise np.linalg.LinAlgError("design matrix is rank deficient")
    coef = np.linalg.solve(r, q.T @ y)
    resid = y - X @ coef
    # (X'X)^{-1} c = R^{-1} R^{-T} c
    mc = np.linalg.solve(r, np.linalg.solve(r.T, np.asarray(c, dtype=float)))
    groups = np.unique(cluster)
    scores, P_norm2, Qp = [], [], []
    for g in groups:
        rows = cluster == g
        qg = q[rows]
        # Thin SVD through the k × k Gram matrix (faster than an SVD of the n_g × k rows);
        # directions with no variation in the cluster (s = 0) leave A_g untouched.
        s2, vecs = np.linalg.eigh(qg.T @ qg)
        live = s2 > 1e-12
        s = np.sqrt(s2[live])
        u = (qg @ vecs[:, live]) / s
        one_minus = 1.0 - s * s
        live_dir = one_minus > 1e-8
        f = np.where(live_dir, 1.0 / np.sqrt(np.clip(one_minus, 1e-300, None)), 0.0)
        v = X[rows] @ mc                      # X_g (X'X)^{-1} c
        uv = u.T @ v
        p = v + u @ ((f - 1.0) * uv)           # A_g v, A_g = I + U(f − 1)U'
        if power == 0.5:
            scores.append(float(p @ resid[rows]))
        else:
            f3 = np.where(live_dir, 1.0 / np.clip(one_minus, 1e-300, None), 0.0)
            scores.append(float((v + u @ ((f3 - 1.0) * uv)) @ resid[rows]))
        P_norm2.append(float(p @ p))
        Qp.append(qg.T @ p)
    Qm = np.asarray(Qp)
    G = np.diag(P_norm2) - Qm @ Qm.T
    var = float(np.sum(np.square(scores)))
    se = float(np.sqrt(var))
    df = float(np.trace(G) ** 2 / np.sum(G * G)) if np.sum(G * G) > 0 else float("nan")
    if reference == "clusters_minus_1":
        df = float(len(groups) - 1)
    est = float(np.asarray(c, dtype=float) @ coef)
    crit = float(stats.t.ppf(1 - alpha / 2, df)) if np.isfinite(df) else float("nan")
    t = (est - null) / se if se > 0 else float("nan")
    p_value = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) and np.isfinite(df) else \
        float("nan")
    return ContrastTest(estimate=est, se=se, df=df, ci_low=est - crit * se,
                        ci_high=est + crit * se, p_value=p_value)


def hc1_contrast(X: np.ndarray, y: np.ndarray, c: np.ndarray, *, alpha: float = 0.05
                 ) -> ContrastTest:
    """Child-level heteroskedasticity-robust (HC1) test of c'β with normal critical values:
    the analysis that ignores clustering, kept only as a sensitivity."""
    X = np.asarray(X, dtype=float)
    n, k = X.shape
    q, r = np.linalg.qr(X)
    coef = np.linalg.solve(r, q.T @ y)
    resid = y - X @ coef
    mc = np.linalg.solve(r, np.linalg.solve(r.T, np.asarray(c, dtype=float)))
    v = X @ mc
    se = float(np.sqrt(n / (n - k) * np.sum((v * resid) ** 2)))
    est = float(np.asarray(c, dtype=float) @ coef)
    z = float(stats.norm.ppf(1 - alpha / 2))
    p_value = float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan")
    return ContrastTest(estimate=est, se=se, df=float("inf"), ci_low=est - z * se,
                        ci_high=est + z * se, p_value=p_value)
