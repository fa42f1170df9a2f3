"""Helpers for the release workflow tests: a trimmed study, toy harmonised rows, users.

Harmonised rows come from a small generator here (referrals, children, care episodes, CP plans
per LA × quarter), written straight into the vault (ingest has its own tests), then
`evaluate_vault` runs a trimmed study (two outcomes, few bootstrap draws) so set-up stays quick.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from trialvault.study import StudyFile, load_study
from trialvault.vault import open_vault

NWD = Path(__file__).resolve().parents[3] / "studies" / "no-wrong-door.toml"
PASSWORDS = {"dm": "dm keeps the vault keys safe", "ana": "ana reads the trial data",
             "ana2": "ana2 reads the trial data too", "oc": "oc checks every output",
             "oc2": "oc2 checks every output too"}
ROLES = {"ana": "analyst", "ana2": "analyst", "oc": "output-checker", "oc2": "output-checker"}


def trimmed_study(**disclosure: object) -> StudyFile:
    """The NWD study with its primary outcome and one rarer binary outcome, 49 bootstrap draws."""
    study = load_study(NWD)
    keep = [o for o in study.analysis.outcomes if o.id in ("entered_care_12m", "cp_plan_12m")]
    analysis = study.analysis.replace(outcomes=keep, wild_bootstrap_draws=49)
    rules = study.disclosure.replace(**disclosure)
    return study.replace(analysis=analysis, disclosure=rules)


def toy_tables(study: StudyFile, seed: int, per_cell: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    last_index = dt.date(study.data_period.last_year - 1, 12, 31)
    quarters = pd.date_range(study.data_period.start, last_index, freq="QS")
    referrals, children, episodes, plans = [], [], [], []
    for k, q in enumerate(quarters):
        for la in study.la_codes:
            n = int(rng.poisson(per_cell))
            when = q + pd.to_timedelta(rng.integers(0, 85, n), unit="D")
            ids = [f"{la}-{k}-{i}" for i in range(n)]
            exposed = (when >= pd.Timestamp(study.step_date(la))).astype(float)
            ages = rng.integers(144, 216, n)
            referrals.append(pd.DataFrame({"la_code": la, "child_id": ids,
                                           "referral_date": when.date, "age_months": ages}))
            children.append(pd.DataFrame({"la_code": la, "child_id": ids,
                                          "sex": rng.choice(["1", "2"], n),
                                          "uasc": rng.random(n) < 0.05,
                                          "disability": rng.random(n) < 0.1}))
            later = when + pd.to_timedelta(rng.integers(1, 330, n), unit="D")
            enters = rng.random(n) < 0.25 - 0.05 * exposed
            episodes.append(pd.DataFrame({
                "la_code": la, "child_id": ids, "episode_start_date": later.date,
                "reason_new_episode": "S", "placement_type": rng.choice(["U1", "K2"], n),
                "age_months": ages})[enters])
            on_plan = rng.random(n) < 0.06
            plans.append(pd.DataFrame({"la_code": la, "child_id": ids,
                                       "cp_plan_start_date": later.date,
                                       "age_months": ages})[on_plan])
    return {"referrals": pd.concat(referrals), "children": pd.concat(children),
            "cla_episodes": pd.concat(episodes), "cp_plans": pd.concat(plans)}


def fill_vault(vault: Path, tables: dict[str, pd.DataFrame]) -> None:
    with open_vault(vault, "dm", PASSWORDS["dm"], command="test-fill", args={}) as s:
        for table, frame in tables.items():
            s.con.register("incoming", frame)
            cols = ", ".join(frame.columns)
            s.con.execute(f"INSERT INTO harmonised.{table} ({cols}) SELECT {cols} FROM incoming")
            s.con.unregister("incoming")
