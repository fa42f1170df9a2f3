"""An independent pandas reading of docs/architecture.md's cohort and outcome definitions."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from trialvault.spec import code_list_group
from trialvault.study import StudyFile


def _df(t: pa.Table) -> pd.DataFrame:
    df = t.to_pandas(date_as_object=False)
    for col in df.columns:
        if str(df[col].dtype).startswith("datetime64"):
            df[col] = df[col].astype("datetime64[ns]")
    return df


def cohort_outcomes(study: StudyFile, h: dict[str, pa.Table]) -> pd.DataFrame:
    fu = study.analysis.follow_up_months
    start = pd.Timestamp(study.data_period.start)
    end = pd.Timestamp(study.data_period.end)
    index_end = end - pd.DateOffset(months=fu)
    sources = (("referrals", "referral_date", 1), ("assessments", "assessment_start_date", 2),
               ("s47", "s47_start_date", 3), ("cin_plans", "cin_plan_start_date", 4),
               ("cp_plans", "cp_plan_start_date", 5), ("cla_episodes", "episode_start_date", 6))
    ev = pd.concat([_df(h[t])[["la_code", "child_id", c, "age_months"]]
                    .rename(columns={c: "d"}).assign(rank=r) for t, c, r in sources])
    ev = ev[(ev["d"] >= start) & (ev["d"] <= index_end)]
    ev = ev.sort_values(["la_code", "child_id", "d", "rank", "age_months"])
    idx = ev.groupby(["la_code", "child_id"], as_index=False).first()
    lo, hi = 12 * study.cohort.min_age_years, 12 * study.cohort.max_age_years + 11
    c = idx[(idx["age_months"] >= lo) & (idx["age_months"] <= hi)].rename(
        columns={"d": "index_date"})[["la_code", "child_id", "index_date"]]
    c["fe"] = c["index_date"] + pd.DateOffset(months=fu)
    key = ["la_code", "child_id"]

    def within(table: str, col: str) -> pd.DataFrame:
        df = _df(h[table]).merge(c, on=key)
        return df[(df[col] >= df["index_date"]) & (df[col] < df["fe"])]

    ep = within("cla_episodes", "episode_start_date")
    residential = code_list_group("residential_placements")
    moves = code_list_group("placement_move_reasons")
    out = c.set_index(key)
    out["entered_care_12m"] = ep.groupby(key).size().reindex(out.index).notna().astype(int)
    out["residential_placement_12m"] = ep[ep["placement_type"].isin(residential)].groupby(
        key).size().reindex(out.index).notna().astype(int)
    mv = ep[(ep["episode_start_date"] > ep["index_date"]) & ep["reason_new_episode"].isin(moves)]
    out["placement_moves_12m"] = mv.groupby(key).size().reindex(out.index).fillna(0).astype(int)
    out["missing_episodes_12m"] = within("missing", "missing_start_date").groupby(
        key).size().reindex(out.index).fillna(0).astype(int)
    out["cp_plan_12m"] = within("cp_plans", "cp_plan_start_date").groupby(key).size().reindex(
        out.index).notna().astype(int)
    rr = within("referrals", "referral_date")
    rr = rr[rr["referral_date"] > rr["index_date"]]
    out["rereferral_12m"] = rr.groupby(key).size().reindex(out.index).notna().astype(int)
    nt = within("neet", "activity_month")
    nt = nt[(nt["age_months"] >= 192) & (nt["age_months"] <= 215)]
    out["neet_16_17"] = nt.groupby(key)["neet"].any().reindex(out.index).astype("float")
    att = _df(h["attendance"]).merge(c, on=key)
    year = att["academic_year"].str[:4].astype(int)
    month = att["term"].map({"autumn": 9, "spring": 1, "summer": 4})
    att["term_start"] = pd.to_datetime(pd.DataFrame({
        "year": year + (att["term"] != "autumn"), "month": month, "day": 1}))
    att = att[(att["term_start"] >= att["index_date"]) & (att["term_start"] < att["fe"])]
    sums = att.groupby(key)[["sessions_unauthorised_absence", "sessions_possible"]].sum()
    out["unauthorised_absence_rate"] = (sums["sessions_unauthorised_absence"]
                                        / sums["sessions_possible"]).reindex(out.index)
    return out.reset_index()
