"""Primary disclosure rules: which cells are unsafe on their own.

Thresholds are named and come only from the study file's `[disclosure]` section (the `Disclosure`
model); the semantics follow ACRO/SACRO (`acro` package, `sdcchecks.py`) so our primary checks
flag every cell ACRO flags:

- threshold: a frequency cell is unsafe when `value < threshold` (ACRO `MinimumThresholdCheck`);
  a zero is unsafe only when `zeros_disclosive` (ACRO `PresenceOfZeroCheck`). Because rounding
  follows suppression, a cell whose *rounded* value would fall in (0, threshold) is unsafe too.
- dominance (n, k): the `dominance_n` largest contributions make up at least `dominance_k` of the
  cell total (ACRO `NKCheck`: `top_n_sum / sum >= k`).
- p-ratio: `(sum - top1 - top2) / top1 < p` (ACRO `PPercentCheck`).
- residual degrees of freedom: a model with `dof < min_residual_dof` fails (ACRO
  `MinimumDoFCheck`).
- all values the same: every contributor to a magnitude cell has the same value (ACRO
  `AllSameValuesCheck`, a class disclosure).
- non-zero contributors (beyond ACRO): a mean, rate or proportion is published only when at
  least `threshold` contributors have a non-zero value, since mean × n is the total.
- residual degrees of freedom at the cluster level: LA × period cells minus parameters, and at
  least `min_clusters` LAs behind every estimate (children are not independent units).
Magnitude cells with negative contributions get `review` (dominance is undefined), as in ACRO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from trialvault.study.model import Disclosure

# Rule codes: the only vocabulary the checking report uses to say why a cell changed.
THRESHOLD = "threshold"
ZERO = "zero"
DOMINANCE = "dominance"
P_RATIO = "p_ratio"
ALL_SAME = "all_same"
NEGATIVE = "negative"
RESIDUAL_DOF = "residual_dof"
SECONDARY = "secondary"
ROUNDING = "rounding"
MISSING = "missing"
NONZERO = "nonzero"
MIN_CLUSTERS = "min_clusters"
ACROSS = "across_releases"

Status = Literal["pass", "review", "fail"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def describe(rule: str, rules: Disclosure) -> str:
    """A one-line statement of a rule with its threshold, for the checking report."""
    texts = {
        THRESHOLD: f"cell counts below {rules.threshold} are suppressed (also when rounding to "
                   f"{rules.rounding_base} would show a value below {rules.threshold})",
        ZERO: "zero counts are disclosive (class disclosure) and are suppressed"
              if rules.zeros_disclosive else "zero counts are not treated as disclosive",
        DOMINANCE: f"the {rules.dominance_n} largest contributions must make up less than "
                   f"{rules.dominance_k:.0%} of a cell total",
        P_RATIO: f"the contributions beyond the two largest must be at least {rules.p_ratio:.0%} "
                 "of the largest",
        ALL_SAME: "a cell where every contributor has the same value is suppressed",
        NEGATIVE: "dominance is undefined with negative contributions: a reviewer must look",
        RESIDUAL_DOF: f"models need at least {rules.min_residual_dof} residual degrees of freedom, "
                      "counted on local authority × period cells (the level the trial "
                      "randomises at), not on children",
        NONZERO: f"a mean, rate or proportion is published only when at least "
                 f"{rules.threshold} children contribute a non-zero value (otherwise the mean "
                 "times the number of children would reveal a small total)",
        MIN_CLUSTERS: f"every estimate must rest on at least {rules.min_clusters} local "
                      "authorities (an event-study point from fewer is suppressed)",
        ACROSS: "checked together with every earlier release of the study: no suppressed "
                f"quantity of either narrows below {rules.threshold}; cells suppressed "
                "before stay suppressed",
        SECONDARY: "suppressed so that no suppressed cell can be recovered from totals or from "
                   f"linked tables (every unsafe quantity keeps a feasible range of at least "
                   f"{rules.threshold})",
        ROUNDING: f"published counts are rounded to the nearest {rules.rounding_base}; totals are "
                  "recomputed from the underlying counts, then rounded",
        MISSING: "a value the evaluation could not compute is shown as missing",
    }
    return texts[rule]


def round_to_base(values: npt.ArrayLike, base: int) -> IntArray:
    """Round half up to the nearest multiple of `base` (counts are non-negative)."""
    arr = np.asarray(values, dtype=np.int64)
    if base <= 1:
        return arr.copy()
    # floor(x / base + 1/2) * base in exact integer arithmetic.
    return ((2 * arr + base) // (2 * base) * base).astype(np.int64)


def rounding_interval(published: int, base: int) -> tuple[int, int]:
    """Every non-negative integer that rounds (as `round_to_base`) to `published`."""
    if base <= 1:
        return published, published
    # round_to_base(x) == r  <=>  r - base/2 <= x < r + base/2
    lo = int(np.ceil(published - base / 2))
    hi = int(np.ceil(published + base / 2)) - 1
    return max(lo, 0), hi


def frequency_unsafe(values: npt.ArrayLike, rules: Disclosure, *, rounding: bool = True
                     ) -> tuple[BoolArray, BoolArray]:
    """(small, zero) masks of count cells that are unsafe on their own."""
    arr = np.asarray(values, dtype=np.int64)
    small = (arr > 0) & (arr < rules.threshold)
    if rounding:
        shown = round_to_base(arr, rules.rounding_base)
        small |= (arr > 0) & (shown < rules.threshold)
    zero = (arr == 0) if rules.zeros_disclosive else np.zeros(arr.shape, dtype=bool)
    return small, zero


@dataclass(frozen=True)
class MagnitudeEvidence:
    """Per-cell aggregates a magnitude check needs (never the contributions themselves).

    `top_n` is the sum of the `dominance_n` largest contributions; `top1`/`top2` the largest and
    second largest; `negatives` the number of negative contributions.
    """

    n: IntArray
    total: FloatArray
    top1: FloatArray
    top2: FloatArray
    top_n: FloatArray
    minimum: FloatArray
    maximum: FloatArray
    negatives: IntArray
    nonzero: IntArray | None = None  # contributors with a non-zero value


def magnitude_unsafe(ev: MagnitudeEvidence, rules: Disclosure) -> dict[str, BoolArray]:
    """Masks of magnitude cells that are unsafe on their own, by rule code."""
    n = np.asarray(ev.n, dtype=np.int64)
    total = np.asarray(ev.total, dtype=float)
    top1 = np.asarray(ev.top1, dtype=float)
    top2 = np.asarray(ev.top2, dtype=float)
    top_n = np.asarray(ev.top_n, dtype=float)
    negatives = np.asarray(ev.negatives, dtype=np.int64) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # ACRO: proportion = top_n_sum / sum >= k. A zero total has no dominant contributor.
        share = np.where(total > 0, top_n / np.where(total > 0, total, 1.0), 0.0)
        # ACRO: p = (sum - top1 - top2) / top1, and where top1 == 0 it keeps sum - top1 - top2
        # undivided: a cell whose contributions are all zero fails (everyone has the same 0).
        rest = total - (top1 + top2)
        p_val = np.where(top1 > 0, rest / np.where(top1 > 0, top1, 1.0), rest)
    return {
        # ACRO counts an empty cell as below the threshold too.
        THRESHOLD: n < rules.threshold,
        DOMINANCE: ~negatives & (share >= rules.dominance_k) & (n > 0),
        P_RATIO: ~negatives & (p_val < rules.p_ratio) & (n > 0),
        ALL_SAME: (n > 1) & (np.asarray(ev.minimum) == np.asarray(ev.maximum)),
        NEGATIVE: negatives,
        # Beyond ACRO: mean x n is the total, so the non-zero contributors must pass the
        # threshold too (a mean of 0.02 over 150 children is 3 children with one event).
        NONZERO: (np.asarray(ev.nonzero, dtype=np.int64) < rules.threshold
                  if ev.nonzero is not None else np.zeros(n.shape, dtype=bool)),
    }


def model_dof_status(dof: float | None, rules: Disclosure) -> Status:
    """`fail` below the residual-dof threshold, `review` when the dof is unknown."""
    if dof is None or not np.isfinite(dof):
        return "review"
    return "pass" if dof >= rules.min_residual_dof else "fail"
