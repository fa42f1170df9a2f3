"""What disclosure control checks: aggregate results, never rows.

`ResultsInput` is the only shape the checks and the report read. It is built inside the vault
from the evaluation's `results` schema (`trialvault.disclose.from_vault`), or by hand in tests.
Every frame holds aggregates (counts, sums, largest contributions); none holds a child's row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

COHORT_COLUMNS = ["la_code", "period", "n"]
BINARY_COLUMNS = ["outcome", "la_code", "period", "n", "events"]
MAGNITUDE_COLUMNS = ["outcome", "la_code", "period", "n", "total", "top1", "top2", "top_n",
                     "minimum", "maximum", "negatives"]
FLOW_COLUMNS = ["step", "label", "n"]
ESTIMATE_COLUMNS = ["outcome", "analysis", "estimate", "ci_low", "ci_high", "p_value",
                    "ri_p_value", "dof"]
EVENT_STUDY_COLUMNS = ["outcome", "event_time", "estimate", "ci_low", "ci_high", "n"]


@dataclass(frozen=True)
class Period:
    """One column of the LA × period tables: a label and the first day it covers."""

    label: str
    start: dt.date


@dataclass(frozen=True)
class ResultsInput:
    """Aggregate results of one evaluation run, in the shape disclosure control checks.

    - `cohort`: children in the cohort per LA × period (`n`).
    - `binary`: per binary outcome × LA × period, `n` children with the outcome defined and
      `events` with outcome 1 (`n` equals the cohort count unless the outcome can be undefined).
    - `magnitude`: per count/rate outcome × LA × period, the evidence the magnitude rules need:
      `n` contributors, `total`, the largest (`top1`), second largest (`top2`) and the sum of
      the `dominance_n` largest (`top_n`) contributions, `minimum`, `maximum`, `negatives`.
    - `flow`: the cohort flow; the first row is the start, the middle rows are children removed
      at each step, the last row is the cohort (= start - removed = the cohort total).
    - `estimates`: one row per outcome × analysis (model) with residual `dof`.
    - `event_study`: event-time series with the number of children `n` behind each point.
    """

    la_codes: list[int]
    periods: list[Period]
    cohort: pd.DataFrame
    binary: pd.DataFrame
    magnitude: pd.DataFrame
    flow: pd.DataFrame
    estimates: pd.DataFrame
    event_study: pd.DataFrame
    provenance: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, frame, cols in (
            ("cohort", self.cohort, COHORT_COLUMNS), ("binary", self.binary, BINARY_COLUMNS),
            ("magnitude", self.magnitude, MAGNITUDE_COLUMNS), ("flow", self.flow, FLOW_COLUMNS),
            ("estimates", self.estimates, ESTIMATE_COLUMNS),
            ("event_study", self.event_study, EVENT_STUDY_COLUMNS),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"results input '{name}' lacks columns {missing}")
        labels = [p.label for p in self.periods]
        if len(set(labels)) != len(labels):
            raise ValueError("results input: a period label is listed twice")

    @property
    def period_labels(self) -> list[str]:
        return [p.label for p in self.periods]
