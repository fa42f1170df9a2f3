"""What disclosure control checks: aggregate results, never rows.

`ResultsInput` is the only shape the checks and the report read. It is built inside the vault
from an evaluation run (`trialvault.disclose.from_vault`, through `aggregate.aggregate_cohort`),
or from a made-up cohort in tests (`example`). Every frame holds aggregates (counts, sums,
largest contributions); none holds a child's row.

The count frames describe the **main analysis population** (the children the effect models
use: edge of care and care leavers outside the transition window) split into *strata*: local
authority × table period × exposed. Strata that the design rules out (exposed before the LA's
step, unexposed after it) never appear: everyone knows they are empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

STRATA_COLUMNS = ["la_code", "period", "exposed", "n"]
# Per outcome × stratum: measured (value known), of which events (binary: value 1), missing
# (expected but not measured: NEET, attendance) and undefined (the outcome does not apply, or
# is not expected); measured + missing + undefined = the stratum's n.
OUTCOME_COLUMNS = ["outcome", "la_code", "period", "exposed", "measured", "events", "missing",
                   "undefined"]
# Per count/rate outcome × exposed (main population): the evidence the magnitude rules need.
MAGNITUDE_COLUMNS = ["outcome", "exposed", "n", "nonzero", "total", "top1", "top2", "top_n",
                     "minimum", "maximum", "negatives"]
BASELINE_COLUMNS = ["characteristic", "title", "category", "exposed", "n"]
# Children outside the main analysis, in CONSORT order. stage "before_cohort": removed before
# the cohort was built; "in_cohort": in the cohort but not in the main analysis.
FLOW_COLUMNS = ["step", "label", "stage", "n"]
ESTIMATE_COLUMNS = ["outcome", "role", "population", "model", "method", "measure", "estimate",
                    "se", "df", "ci_low", "ci_high", "p_value", "p_adjusted", "multiplicity",
                    "primary", "n", "clusters", "cells", "params", "note"]
EVENT_STUDY_COLUMNS = ["outcome", "event_time", "estimate", "ci_low", "ci_high", "n",
                       "clusters"]
VARIANCE_COLUMNS = ["outcome", "icc", "cac", "clusters", "n"]
STAGES = ("before_cohort", "in_cohort")
ORIGINS = ("synthetic", "real", "unknown")


@dataclass(frozen=True)
class Period:
    """One column of the LA × period tables: a label and the first day it covers."""

    label: str
    start: dt.date


@dataclass(frozen=True)
class ResultsInput:
    """Aggregate results of one evaluation run, in the shape disclosure control checks.

    - `strata`: children of the main analysis per LA × table period × exposed (`n`).
    - `outcomes`: per outcome × stratum, the children in each outcome state (see above).
    - `magnitude`: per count/rate outcome × exposed, magnitude evidence of its values.
    - `baseline`: per characteristic × category × exposed, children (main population).
    - `flow`: children outside the main analysis by reason (CONSORT order).
    - `estimates`: one row per outcome × population × model × method, with the cluster-level
      evidence (`clusters`; `cells` = LA × analysis period cells with data; `params`).
    - `event_study`: event-time series with the children `n` and LAs `clusters` behind points.
    - `variance`: intra-cluster and cluster-autocorrelation coefficients per outcome.
    - `data_origin`: where the vault's data came from (package manifests): synthetic, real
      or unknown.
    """

    la_codes: list[int]
    periods: list[Period]
    strata: pd.DataFrame
    outcomes: pd.DataFrame
    magnitude: pd.DataFrame
    baseline: pd.DataFrame
    flow: pd.DataFrame
    estimates: pd.DataFrame
    event_study: pd.DataFrame
    variance: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=VARIANCE_COLUMNS))
    provenance: dict[str, str] = field(default_factory=dict)
    data_origin: str = "unknown"

    def __post_init__(self) -> None:
        for name, frame, cols in (
            ("strata", self.strata, STRATA_COLUMNS), ("outcomes", self.outcomes, OUTCOME_COLUMNS),
            ("magnitude", self.magnitude, MAGNITUDE_COLUMNS),
            ("baseline", self.baseline, BASELINE_COLUMNS), ("flow", self.flow, FLOW_COLUMNS),
            ("estimates", self.estimates, ESTIMATE_COLUMNS),
            ("event_study", self.event_study, EVENT_STUDY_COLUMNS),
            ("variance", self.variance, VARIANCE_COLUMNS),
        ):
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise ValueError(f"results input '{name}' lacks columns {missing}")
        labels = [p.label for p in self.periods]
        if len(set(labels)) != len(labels):
            raise ValueError("results input: a period label is listed twice")
        if self.data_origin not in ORIGINS:
            raise ValueError(f"results input: data origin must be one of {ORIGINS}")
        bad = set(self.flow["stage"]) - set(STAGES)
        if bad:
            raise ValueError(f"results input: unknown flow stage(s) {sorted(bad)}")

    @property
    def period_labels(self) -> list[str]:
        return [p.label for p in self.periods]
