"""Write the small synthetic stepped-wedge datasets the R reference script reads.

    python tests/reference/make_datasets.py   # then: Rscript tests/reference/small_sample.R

Five LAs × twelve quarters × 30 children, steps every two quarters from the third, a binary
outcome with LA, LA×period and child-level variation and a covariate; one dataset per seed.
The shipped CSVs are the input of the shipped reference results: regenerate both together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEEDS = (1, 2, 3)


def dataset(seed: int, *, per_cell: int = 30, periods: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    la_eff = rng.normal(0, 0.05, 5)
    rows = []
    for la in range(5):
        step = 2 + 2 * la
        for t in range(periods):
            cell = rng.normal(0, 0.04)
            for _ in range(per_cell):
                exposed = int(t >= step)
                x1 = float(rng.normal())
                p = 0.25 + la_eff[la] + 0.01 * t + cell + 0.05 * x1 - 0.06 * exposed
                rows.append({"la": la + 1, "period": t + 1, "exposed": exposed,
                             "ket": min(t - step, 3) + 1 if exposed else 0, "x1": round(x1, 6),
                             "y": int(rng.random() < np.clip(p, 0, 1)),
                             "w": round(float(rng.uniform(0.5, 2.0)), 6)})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    for seed in SEEDS:
        dataset(seed).to_csv(HERE / "data" / f"sw_seed{seed}.csv", index=False)
