"""A small stand-alone generator of harmonised tables with a planted effect on entering care.

Independent of `trialvault.synth` on purpose: the evaluation's end-to-end tests must not depend
on the generator whose output they help check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import duckdb
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from trialvault.study.model import StudyFile
from trialvault.vault.schema import TABLE_COLUMNS


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """As run_evaluation does: fast and reproducible on a busy two-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def toy_tables(study: StudyFile, seed: int, *, per_cell: int = 30,
               effect: float = 0.0, base: float = 0.2) -> dict[str, pd.DataFrame]:
    """Referrals (the index events), children and care episodes for every LA × quarter."""
    rng = np.random.default_rng(seed)
    last_index = dt.date(study.data_period.last_year - 1, 12, 31)
    quarters = pd.date_range(study.data_period.start, last_index, freq="QS")
    la_effect = {la: rng.normal(0, 0.04) for la in study.la_codes}
    referrals, children, episodes = [], [], []
    for k, q in enumerate(quarters):
        days = (q + pd.offsets.QuarterBegin(startingMonth=1) - q).days
        for la in study.la_codes:
            step = pd.Timestamp(study.step_date(la))
            when = q + pd.to_timedelta(rng.integers(0, days, per_cell), unit="D")
            ids = [f"{la}-{k}-{i}" for i in range(per_cell)]
            exposed = (when >= step).astype(float)
            p = base + la_effect[la] + 0.002 * k + effect * exposed
            enters = rng.random(per_cell) < p
            ages = rng.integers(144, 216, per_cell)
            referrals.append(pd.DataFrame({"la_code": la, "child_id": ids,
                                           "referral_date": when.date, "age_months": ages}))
            children.append(pd.DataFrame({
                "la_code": la, "child_id": ids, "sex": rng.choice(["1", "2"], per_cell),
                "uasc": rng.random(per_cell) < 0.05, "disability": rng.random(per_cell) < 0.1}))
            start = when + pd.to_timedelta(rng.integers(1, 330, per_cell), unit="D")
            episodes.append(pd.DataFrame({
                "la_code": la, "child_id": ids, "episode_start_date": start.date,
                "reason_new_episode": "S", "placement_type": rng.choice(["U1", "K2"], per_cell),
                "age_months": ages})[enters])
    return {"referrals": pd.concat(referrals), "children": pd.concat(children),
            "cla_episodes": pd.concat(episodes)}


def load_harmonised(con: duckdb.DuckDBPyConnection, tables: dict[str, pd.DataFrame]) -> None:
    """Create every harmonised table (architecture columns) and fill the given ones."""
    con.execute("CREATE SCHEMA IF NOT EXISTS harmonised")
    for table, columns in TABLE_COLUMNS.items():
        cols = [("la_code", "INTEGER"), ("child_id", "VARCHAR"), *columns]
        con.execute(f"CREATE TABLE harmonised.{table} ("
                    + ", ".join(f"{n} {k}" for n, k in cols) + ")")
        if table in tables:
            con.register("incoming", tables[table].reindex(columns=[n for n, _ in cols]))
            con.execute(f"INSERT INTO harmonised.{table} SELECT * FROM incoming")
            con.unregister("incoming")


@pytest.fixture(scope="session")
def toy_vault_con() -> Callable[..., duckdb.DuckDBPyConnection]:
    def make(study: StudyFile, seed: int, **kwargs: float) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        load_harmonised(con, toy_tables(study, seed, **kwargs))  # type: ignore[arg-type]
        return con
    return make


@pytest.fixture(scope="session")
def toy_tables_factory() -> Callable[..., dict[str, pd.DataFrame]]:
    return toy_tables
