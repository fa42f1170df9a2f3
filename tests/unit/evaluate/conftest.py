"""A small stepped-wedge analysis table (one row per child) for the model and inference tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

LAS = (101, 202, 303, 404, 505)
FIRST = dt.date(2019, 1, 1)


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """As run_evaluation does: fast and reproducible on a busy two-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def quarter_start(k: int) -> dt.date:
    return dt.date(FIRST.year + k // 4, 3 * (k % 4) + 1, 1)


STEPS = {la: quarter_start(2 + 2 * i) for i, la in enumerate(LAS)}


def make_analysis(seed: int, *, per_cell: int = 40, periods: int = 12, effect: float = 0.0,
                  base: float = 0.3) -> pd.DataFrame:
    """Children with LA and period effects on a binary outcome, plus an additive exposure effect."""
    rng = np.random.default_rng(seed)
    rows = []
    la_eff = dict(zip(LAS, rng.normal(0, 0.05, len(LAS)), strict=True))
    for k in range(periods):
        start, end = quarter_start(k), quarter_start(k + 1)
        p_eff = 0.01 * k
        for la in LAS:
            days = rng.integers(0, (end - start).days, per_cell)
            for d in days:
                index_date = start + dt.timedelta(days=int(d))
                exposed = index_date >= STEPS[la]
                p = base + la_eff[la] + p_eff + effect * exposed
                rows.append({
                    "la_code": la, "child_id": f"c{len(rows)}", "index_date": index_date,
                    "period": k, "step_period": 2 + 2 * LAS.index(la),
                    "exposed": int(exposed),
                    "index_day": (index_date - dt.date(1970, 1, 1)).days,
                    "sex": rng.choice(["1", "2"]),
                    "age_years_at_index": int(rng.integers(12, 18)),
                    "uasc": bool(rng.random() < 0.05),
                    "y": float(rng.random() < p),
                    "count_y": float(rng.poisson(1.0 + exposed * 0.0)),
                })
    return pd.DataFrame(rows)


@pytest.fixture
def analysis_factory() -> Callable[..., pd.DataFrame]:
    return make_analysis


@pytest.fixture
def toy_steps() -> dict[int, dt.date]:
    """The toy schedule of `make_analysis`: one LA every two quarters from the third."""
    return dict(STEPS)
