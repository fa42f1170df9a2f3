"""Callaway–Sant'Anna staggered-adoption DiD: a thin wrapper over `csdid` (Python port of R `did`).

`callaway_santanna` runs `ATTgt(...).fit(...)` with analytic (influence-function) standard errors
and returns plain tables: ATT(g,t) and the four `aggte` aggregations (simple, group, dynamic,
calendar). `csdid` prints its summaries, so its stdout is captured and dropped here: the library
never prints.

For the trial (`cs_for_cohort`): one row per cohort child, a repeated cross-section (`panel=False`)
with time = the period of the index date and group = the period of the child's LA step date.
Every LA switches eventually, so the comparison group is the study's `did_control_group`
(not-yet-treated by default).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm
from scipy.stats import t as t_dist

from trialvault.errors import TrialvaultError

AGGREGATIONS: tuple[str, ...] = ("simple", "group", "dynamic", "calendar")
ControlGroup = Literal["notyettreated", "nevertreated"]


@dataclass(frozen=True)
class DidResult:
    """ATT(g,t) cells and the aggregations (each a tidy table)."""

    att_gt: pd.DataFrame
    """group, t, att, se, ci_low, ci_high (pointwise, analytic SE)."""
    aggregates: pd.DataFrame
    """type, overall_att, overall_se, ci_low, ci_high: one row per aggregation."""
    by_level: pd.DataFrame
    """type, level (group, event time or calendar period), att, se, ci_low, ci_high."""

    @property
    def event_study(self) -> pd.DataFrame:
        """The dynamic aggregation by event time e = t − g (negative e are pre-trends)."""
        dyn = self.by_level[self.by_level["type"] == "dynamic"]
        return dyn.drop(columns="type").rename(columns={"level": "event_time"}).reset_index(
            drop=True)


def callaway_santanna(
    data: pd.DataFrame,
    *,
    yname: str,
    tname: str,
    gname: str,
    idname: str,
    control_group: ControlGroup = "notyettreated",
    xformla: str | None = None,
    est_method: Literal["dr", "reg", "ipw"] = "dr",
    base_period: Literal["varying", "universal"] = "varying",
    panel: bool = True,
    alpha: float = 0.05,
    clustervar: str | None = None,
) -> DidResult:
    """ATT(g,t) and the simple/group/dynamic/calendar aggregations with analytic SEs.

    `gname` holds the first treated period (0 = never treated), as in R `did`. Settings match
    R `did::att_gt(bstrap=FALSE, cband=FALSE)` so the numbers reproduce R's. With `clustervar`
    the analytic SEs sum the influence functions by cluster (R `did`'s clustered analytic SE)
    and the intervals use t critical values with clusters − 1 degrees of freedom (few clusters).
    """
    from csdid.att_gt import ATTgt  # heavy import: only when a DiD is actually run

    crit = float(norm.ppf(1 - alpha / 2))
    if clustervar is not None:
        n_clusters = int(data[clustervar].nunique())
        crit = float(t_dist.ppf(1 - alpha / 2, max(n_clusters - 1, 1)))
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings():
            # csdid warns about e.g. small groups; the tables carry the consequence (NaN SEs).
            warnings.simplefilter("ignore")
            model = ATTgt(yname=yname, tname=tname, idname=idname, gname=gname, data=data,
                          control_group=control_group, xformla=xformla, panel=panel,
                          alp=alpha, cband=False, clustervar=clustervar)
            model.fit(est_method=est_method, base_period=base_period, bstrap=False)
            res = model.results
            att_gt = pd.DataFrame({
                "group": np.asarray(res["group"], dtype=float),
                "t": np.asarray(res["year"], dtype=float),
                "att": np.asarray(res["att"], dtype=float),
                "se": np.asarray(res["se"], dtype=float),
            })
            agg_rows: list[dict[str, object]] = []
            level_rows: list[dict[str, object]] = []
            for kind in AGGREGATIONS:
                model.aggte(typec=kind, bstrap=False, cband=False, alp=alpha)
                out = model.atte
                agg_rows.append({"type": kind, "overall_att": _num(out["overall_att"]),
                                 "overall_se": _num(out["overall_se"])})
                if kind != "simple":
                    egt = np.asarray(out["egt"], dtype=float).ravel()
                    att = np.asarray(out["att_egt"], dtype=float).ravel()
                    se = np.asarray(out["se_egt"], dtype=float).ravel()
                    level_rows += [{"type": kind, "level": e, "att": a, "se": s}
                                   for e, a, s in zip(egt, att, se, strict=True)]
    except (ValueError, KeyError, IndexError, np.linalg.LinAlgError) as exc:
        # csdid refuses degenerate designs (no usable control group, one period...).
        raise TrialvaultError(f"Callaway–Sant'Anna estimation failed: {exc}") from None

    aggregates = pd.DataFrame(agg_rows)
    aggregates["ci_low"] = aggregates["overall_att"] - crit * aggregates["overall_se"]
    aggregates["ci_high"] = aggregates["overall_att"] + crit * aggregates["overall_se"]
    by_level = pd.DataFrame(level_rows, columns=["type", "level", "att", "se"])
    for table in (att_gt, by_level):
        table["ci_low"] = table["att"] - crit * table["se"]
        table["ci_high"] = table["att"] + crit * table["se"]
    return DidResult(att_gt=att_gt, aggregates=aggregates, by_level=by_level)


def _num(value: object) -> float:
    arr = np.asarray(value, dtype=float).ravel()
    return float(arr[0]) if arr.size else float("nan")


def cs_for_cohort(
    analysis: pd.DataFrame,
    outcome: str,
    *,
    control_group: ControlGroup = "notyettreated",
    alpha: float = 0.05,
    cluster: bool = True,
) -> DidResult:
    """Callaway–Sant'Anna on the child-level analysis table (a repeated cross-section).

    `cluster`: standard errors clustered by LA (the unit of randomisation), t(G − 1) intervals.

    `analysis` needs `period` (0-based index of the index date's period), `step_period` (index
    of the period holding the LA's step date) and the outcome column. Periods are shifted to
    start at 1 because `did` reserves group 0 for never treated.
    """
    frame = analysis.loc[analysis[outcome].notna(), ["la_code", "period", "step_period", outcome]]
    data = pd.DataFrame({
        "y": frame[outcome].astype(float).to_numpy(),
        "t": frame["period"].to_numpy(dtype=np.int64) + 1,
        "g": frame["step_period"].to_numpy(dtype=np.int64) + 1,
        "la": frame["la_code"].to_numpy(dtype=np.int64),
    })
    data["id"] = np.arange(1, len(data) + 1)
    return callaway_santanna(data, yname="y", tname="t", gname="g", idname="id",
                             control_group=control_group, panel=False, alpha=alpha,
                             clustervar="la" if cluster else None)


def dropped_cells(analysis: pd.DataFrame, outcome: str, result: DidResult) -> pd.DataFrame:
    """(group_period, period, reason) of the ATT(g,t) cells the estimator could not form.

    Every LA switches eventually, so from the last step on no LA is a not-yet-treated
    comparison: R `did` (and csdid) then leave those periods out. Periods are 0-based here."""
    frame = analysis.loc[analysis[outcome].notna()]
    groups = sorted(int(g) for g in frame["step_period"].unique())
    periods = sorted(int(p) for p in frame["period"].unique())
    have = result.att_gt.dropna(subset=["att"])
    formed = {(int(g) - 1, int(t) - 1) for g, t in zip(have["group"], have["t"], strict=True)}
    last = max(groups)
    rows = []
    for g in groups:
        for t in periods:
            if (g, t) in formed or t < min(periods) + 1:
                continue
            reason = ("no not-yet-treated LA in this period (every LA has switched)"
                      if t >= last else "no comparison group")
            rows.append({"group_period": g, "period": t, "reason": reason})
    return pd.DataFrame(rows, columns=["group_period", "period", "reason"])
