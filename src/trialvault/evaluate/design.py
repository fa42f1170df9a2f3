"""The Hussey & Hughes design matrix: exposure, LA and period fixed effects, the plan's covariates.

Every analysis of one outcome (the GLM/linear fits, randomisation inference, the wild cluster
bootstrap) starts from the same `Design`: rows with a non-missing outcome, the exposure column `x`
and the other regressors `W` (intercept, LA dummies, period dummies, covariates). Keeping `W`
separate lets the few-cluster methods work with the exposure partialled out (Frisch–Waugh–Lovell).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trialvault.errors import StudyFileError, TrialvaultError

# Columns of the analysis table the design reads besides the outcome and the covariates.
KEY_COLUMNS = ("la_code", "period", "exposed", "index_day")
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class Design:
    """Numeric arrays of one outcome's analysis (rows with the outcome observed)."""

    outcome: str
    y: np.ndarray
    x: np.ndarray
    """Exposure (0/1) as observed."""
    W: np.ndarray
    """Intercept, LA dummies, period dummies and covariates (full column rank)."""
    w_names: list[str]
    cluster: np.ndarray
    """Cluster index 0..G-1 per row (position of the row's LA in `clusters`)."""
    clusters: list[int]
    index_day: np.ndarray
    """Index date as days since 1970-01-01: exposure under another assignment is recomputed
    from it."""
    _q: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    @property
    def n_params(self) -> int:
        """Columns of the full model [x, W]."""
        return int(self.W.shape[1]) + 1

    @property
    def q(self) -> np.ndarray:
        """Orthonormal basis of W's column space (computed once, then cached)."""
        if not self._q:
            q, _ = np.linalg.qr(self.W)
            self._q.append(q)
        return self._q[0]

    def partial_out(self, v: np.ndarray) -> np.ndarray:
        """Residual of v (n,) or (n, m) after least squares on W: M_W v."""
        q = self.q
        return v - q @ (q.T @ v)

    def frame(self) -> pd.DataFrame:
        """[exposed, W] as a DataFrame for statsmodels (named columns)."""
        cols = np.column_stack([self.x, self.W])
        return pd.DataFrame(cols, columns=["exposed", *self.w_names])


def build_design(analysis: pd.DataFrame, outcome: str, covariates: list[str]) -> Design:
    """Design of `outcome` on exposure with LA and period fixed effects and `covariates`.

    Categorical covariates become dummies (a missing value is its own level); numeric ones enter
    linearly (missing → mean plus a missing indicator). Columns that are constant, or that
    duplicate earlier columns, are dropped so W has full column rank.
    """
    unknown = [c for c in covariates if c not in analysis.columns]
    if unknown:
        raise StudyFileError(
            f"analysis.covariates: {unknown} are not columns of the analysis table "
            f"(available: {sorted(set(analysis.columns) - set(KEY_COLUMNS))})")
    if outcome not in analysis.columns:
        raise TrialvaultError(f"outcome '{outcome}' is not a column of the analysis table")
    rows = analysis.loc[analysis[outcome].notna()].reset_index(drop=True)
    if rows.empty:
        raise TrialvaultError(f"outcome '{outcome}': no cohort member has this outcome")

    clusters = sorted(int(c) for c in rows["la_code"].unique())
    cluster = np.searchsorted(np.asarray(clusters), rows["la_code"].to_numpy(dtype=np.int64))
    blocks: list[pd.DataFrame] = [pd.DataFrame({"intercept": np.ones(len(rows))})]
    blocks.append(_dummies(rows["la_code"].astype("int64").astype(str), "la"))
    blocks.append(_dummies(rows["period"].astype("int64").map(lambda p: f"{p:03d}"), "period"))
    for name in covariates:
        blocks.append(_encode(rows[name], name))
    W_frame = _full_rank(pd.concat(blocks, axis=1))
    return Design(
        outcome=outcome,
        y=rows[outcome].to_numpy(dtype=float),
        x=rows["exposed"].to_numpy(dtype=float),
        W=W_frame.to_numpy(dtype=float),
        w_names=list(W_frame.columns),
        cluster=cluster.astype(np.int64),
        clusters=clusters,
        index_day=rows["index_day"].to_numpy(dtype=np.int64),
    )


def _dummies(values: pd.Series, prefix: str) -> pd.DataFrame:
    # drop_first: the intercept carries the reference level (the lowest code / first period).
    out = pd.get_dummies(values, prefix=prefix, drop_first=True, dtype=float)
    return out


def _encode(values: pd.Series, name: str) -> pd.DataFrame:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.astype(float)
        missing = num.isna()
        out = pd.DataFrame({name: num.fillna(num.mean() if (~missing).any() else 0.0)})
        if missing.any():
            out[f"{name}_missing"] = missing.astype(float)
        return out
    # Plain object strings: Arrow-backed strings are iterated one Python object at a time by
    # set() and Categorical (seconds on a cohort; this is inside every simulated trial).
    labels = values.astype(str).to_numpy(dtype=object)
    labels[values.isna().to_numpy()] = MISSING_LEVEL
    # The reference level is the lowest observed code, never "(missing)".
    levels = [*sorted(set(np.unique(labels).tolist()) - {MISSING_LEVEL}), MISSING_LEVEL]
    return _dummies(pd.Series(pd.Categorical(labels, categories=levels)), name)


def _full_rank(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep columns greedily while they add rank (drops constants and exact duplicates)."""
    frame = frame.loc[:, (frame != 0).any(axis=0)]
    keep: list[str] = []
    basis = np.empty((len(frame), 0))
    for col in frame.columns:
        v = frame[col].to_numpy(dtype=float)
        resid = v
        for _ in range(2):  # twice: classical Gram–Schmidt loses orthogonality otherwise
            if basis.shape[1]:
                resid = resid - basis @ (basis.T @ resid)
        norm = float(np.linalg.norm(resid))
        if norm > 1e-8 * max(1.0, float(np.linalg.norm(v))):
            keep.append(col)
            basis = np.column_stack([basis, resid / norm])
    return frame[keep]
