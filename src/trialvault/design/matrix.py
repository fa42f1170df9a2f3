"""The trial's design as a matrix: clusters × periods, 1 = exposed, 0 = not, NaN = not observed.

It comes from the study file (rollout step dates over the analysis periods of the index window)
or from a CSV of 0/1 rows (`--design-matrix`: one row per cluster, one column per period, an
empty cell for a cluster-period that is not observed). Bad input is refused naming the file,
the row and the rule: a value that is not 0/1, a row that switches back from 1 to 0 (a stepped
wedge only ever switches on), a cluster that is never observed, never exposed, or exposed in
every observed period (every cluster of a stepped wedge crosses over while observed).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trialvault.errors import InputFileError, UsageError
from trialvault.study.model import StudyFile

PERIOD_MONTHS = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
RULE_VALUES = "D1 values"
RULE_MONOTONE = "D2 stepped wedge rows never switch back"
RULE_CROSSOVER = "D3 every cluster crosses over"
RULE_SHAPE = "D4 rectangular"


@dataclass(frozen=True)
class DesignMatrix:
    """Exposure of each cluster in each period, with the names of both."""

    exposure: np.ndarray  # float (clusters × periods): 1.0, 0.0 or NaN (not observed)
    clusters: tuple[str, ...]
    periods: tuple[str, ...]
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.exposure.shape[0]), int(self.exposure.shape[1]))

    @property
    def observed(self) -> np.ndarray:
        return ~np.isnan(self.exposure)


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    return dt.date(year, month + 1, 1)


def period_starts(study: StudyFile) -> list[dt.date]:
    """First day of each analysis period whose children can be indexed (the index window:
    data_period.start .. data_period.end − follow_up_months)."""
    step = PERIOD_MONTHS[study.analysis.period]
    start = study.data_period.start
    last_index = _add_months(dt.date(study.data_period.end.year, study.data_period.end.month, 1),
                             1 - study.analysis.follow_up_months) - dt.timedelta(days=1)
    starts = []
    day = start
    while day <= last_index:
        starts.append(day)
        day = _add_months(day, step)
    return starts


def _period_label(day: dt.date, period: str) -> str:
    if period == "quarter":
        return f"{day.year}Q{(day.month - 1) // 3 + 1}"
    if period == "half-year":
        return f"{day.year}H{(day.month - 1) // 6 + 1}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    return str(day.year)


def from_study(study: StudyFile) -> DesignMatrix:
    """The design the study's rollout implies over its analysis periods.

    A cluster-period is exposed when the period starts on or after the LA's step date; a step
    date inside a period counts that period as unexposed (noted). Periods that start within
    `analysis.transition_months` before the step are not observed (the evaluation leaves those
    children out)."""
    starts = period_starts(study)
    step = PERIOD_MONTHS[study.analysis.period]
    ends = [_add_months(s, step) for s in starts]
    transition = study.analysis.transition_months
    rows, names, notes = [], [], []
    for rollout in sorted(study.design.rollout, key=lambda r: (r.step_date, r.la)):
        row = np.array([1.0 if s >= rollout.step_date else 0.0 for s in starts])
        if transition:
            window = _add_months(dt.date(rollout.step_date.year, rollout.step_date.month, 1),
                                 -transition)
            row[[window <= s < rollout.step_date for s in starts]] = np.nan
        inside = [i for i, (s, e) in enumerate(zip(starts, ends, strict=True))
                  if s < rollout.step_date < e]
        if inside:
            notes.append(f"LA {rollout.la}: step date {rollout.step_date} falls inside period "
                         f"{_period_label(starts[inside[0]], study.analysis.period)}, counted "
                         "as unexposed")
        rows.append(row)
        names.append(str(rollout.la))
    matrix = DesignMatrix(np.vstack(rows), tuple(names),
                          tuple(_period_label(s, study.analysis.period) for s in starts),
                          source="study rollout", notes=tuple(notes))
    check_stepped_wedge(matrix)
    return matrix


def read_csv(path: Path) -> DesignMatrix:
    """A design matrix from a CSV of 0/1 rows (no header; empty cell = not observed)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the design matrix ({type(exc).__name__})",
                             file=str(path)) from None
    rows: list[list[float]] = []
    lines: list[int] = []
    width = None
    for line_no, cells in enumerate(csv.reader(text.splitlines()), 1):
        if not cells or all(not c.strip() for c in cells):
            continue
        values = []
        for col, cell in enumerate(cells, 1):
            token = cell.strip()
            if token == "":
                values.append(np.nan)
            elif token in ("0", "1"):
                values.append(float(token))
            else:
                raise InputFileError(f"row {len(rows) + 1}, column {col}: exposure must be 0 or "
                                     "1 (empty = not observed)", file=str(path), line=line_no,
                                     rule=RULE_VALUES)
        if width is not None and len(values) != width:
            raise InputFileError(f"row {len(rows) + 1} has {len(values)} periods, the first row "
                                 f"has {width}", file=str(path), line=line_no, rule=RULE_SHAPE)
        width = len(values)
        rows.append(values)
        lines.append(line_no)
    if len(rows) < 2 or not width or width < 2:
        raise InputFileError("a design matrix needs at least 2 clusters (rows) and 2 periods "
                             "(columns)", file=str(path), rule=RULE_SHAPE)
    matrix = DesignMatrix(np.array(rows), tuple(f"row {i}" for i in range(1, len(rows) + 1)),
                          tuple(f"period {j}" for j in range(1, width + 1)), source=str(path))
    check_stepped_wedge(matrix, path=path, lines=lines)
    return matrix


def check_stepped_wedge(matrix: DesignMatrix, *, path: Path | None = None,
                        lines: list[int] | None = None) -> None:
    """Refuse a matrix a stepped wedge cannot have, naming the row (and the file and line)."""
    where = str(path) if path else None
    for i, row in enumerate(matrix.exposure):
        seen = row[~np.isnan(row)]
        name = matrix.clusters[i]
        line = lines[i] if lines else None
        if seen.size == 0:
            raise InputFileError(f"{name}: the cluster is never observed", file=where, line=line,
                                 rule=RULE_CROSSOVER)
        if np.any(np.diff(seen) < 0):
            raise InputFileError(f"{name}: exposure goes from 1 back to 0 (a stepped wedge only "
                                 "switches on)", file=where, line=line, rule=RULE_MONOTONE)
        if not np.any(seen == 1):
            raise InputFileError(f"{name}: the cluster is never exposed (every cluster of a "
                                 "stepped wedge crosses over)", file=where, line=line,
                                 rule=RULE_CROSSOVER)
        if not np.any(seen == 0):
            raise InputFileError(f"{name}: the cluster is exposed in every observed period (it "
                                 "gives no before-after contrast)", file=where, line=line,
                                 rule=RULE_CROSSOVER)


def volumes(matrix: DesignMatrix, study: StudyFile | None, per_cluster_period: float | None
            ) -> np.ndarray:
    """Expected cohort members per cluster-period (clusters × periods)."""
    shape = matrix.shape
    if per_cluster_period is not None:
        if per_cluster_period <= 0:
            raise UsageError("--per-cluster-period must be positive")
        return np.full(shape, float(per_cluster_period))
    power = study.design.power if study is not None else None
    if power is None or matrix.source != "study rollout":
        raise UsageError("give --per-cluster-period M (expected cohort members per cluster and "
                         "period), or use the study's rollout with [design.power].expected")
    per_la = {str(v.la): v.per_period for v in power.expected}
    missing = [c for c in matrix.clusters if c not in per_la]
    if missing:
        raise UsageError(f"design.power.expected: no volume for LA {', '.join(missing)}")
    return np.array([[per_la[c]] * shape[1] for c in matrix.clusters], dtype=float)
