"""School attendance (per term) and NEET activity (per month), vectorised per chunk of children.

The planted effects follow docs/architecture.md: unauthorised absence is a rate, so exposed
cohort members' per-session probability is multiplied by the effect from their index date on;
NEET at 16-17 is binary, so among children with a NEET-file month inside the follow-up at 16-17,
P(any NEET month there) = baseline + effect for exposed cohort members. Rows for pupils no
social-care file knows (no matching UPN) are added too, as an LA export would hold them.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from trialvault.synth import codes
from trialvault.synth.histories import upn_for
from trialvault.synth.params import (
    UASC_NEET_SHIFT,
    SynthParams,
    add_months,
    age_months_vec,
    day_of,
    ymd,
)

TERMS = (("AUT", 9, 0, 140), ("SPR", 1, 1, 118), ("SUM", 4, 1, 128))  # code, month, +year, sessions
AUTHORISED_RATE = 0.045
UNLINKED_SHARE = 0.03
UNLINKED_SEQ = 900_000_000


def _month_index(days: np.ndarray) -> np.ndarray:
    y, m, _ = ymd(days)
    return y * 12 + m - 1


def _first_of_month(month_index: np.ndarray) -> np.ndarray:
    # datetime64[M] counts months from 1970-01; its first day is the month's first day.
    return (np.asarray(month_index, dtype=np.int64) - 1970 * 12).astype(
        "datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _cells(p: SynthParams, name: str, la: int, period: np.ndarray) -> np.ndarray:
    table = np.array([p.cell(name, la, q) for q in range(p.n_periods)])
    base = p.base[name] * p.la_factor[la]
    return np.where(period >= 0, table[np.clip(period, 0, p.n_periods - 1)], base)


def _pick(rng: np.random.Generator, cat: codes.Cat, n: int) -> np.ndarray:
    weights = np.diff(np.array((0.0, *cat.cum)))
    return rng.choice(np.array(cat.items, dtype=object), size=n, p=weights / weights.sum())


def attendance(p: SynthParams, la: int, children: pd.DataFrame,
               rng: np.random.Generator) -> pd.DataFrame:
    """Rows: child_id, upn, dob, home_post, academic_year, term, term_start, sessions..."""
    kids = children[children["upn"] != ""]
    n = len(kids)
    first_ay = ymd(np.array([p.data_start]))[0][0] - 1  # academic year starting the autumn before
    last_ay = ymd(np.array([p.data_end]))[0][0]
    years = np.arange(first_ay, last_ay + 1)
    dob = kids["dob"].to_numpy(np.int64)
    # Age on 31 August before the academic year: reception (4) to year 11 (15).
    aug31 = np.array([day_of(dt.date(int(y), 8, 31)) for y in years], dtype=np.int64)
    age_aug = age_months_vec(np.repeat(dob, len(years)), np.tile(aug31, n)) // 12
    ci = np.repeat(np.arange(n), len(years))
    ay = np.tile(years, n)
    keep = (age_aug >= 4) & (age_aug <= 15)
    ci, ay = ci[keep], ay[keep]
    ci = np.repeat(ci, 3)
    ay = np.repeat(ay, 3)
    term_no = np.tile(np.arange(3), len(ci) // 3)
    starts = np.array([[day_of(dt.date(int(y) + t[2], t[1], 1)) for t in TERMS]
                       for y in years], dtype=np.int64)
    start = starts[ay - first_ay, term_no]
    keep = start <= p.data_end
    ci, ay, term_no, start = ci[keep], ay[keep], term_no[keep], start[keep]
    m = len(ci)
    possible = np.array([t[3] for t in TERMS])[term_no] - rng.integers(0, 7, size=m)
    frailty = 2.0 * rng.beta(2.0, 2.0, size=n)  # mean 1, bounded: per-child absence level
    frailty_auth = 2.0 * rng.beta(2.0, 2.0, size=n)
    period = kids["period"].to_numpy(np.int64)
    base = _cells(p, "unauthorised_absence_rate", la, period)
    treat = kids["treat"].to_numpy(bool)
    index = kids["index_day"].to_numpy(np.int64)
    pi = base[ci] * frailty[ci]
    exposed_term = treat[ci] & (start >= index[ci])
    pi = np.where(exposed_term, pi * p.effect("unauthorised_absence_rate"), pi)
    unauth = rng.binomial(possible, np.clip(pi, 0.0, 1.0))
    auth = rng.binomial(possible - unauth, np.clip(AUTHORISED_RATE * frailty_auth[ci], 0, 1))
    fsm = kids["fsm"].to_numpy(bool)
    pp = fsm | kids["ever_care"].to_numpy(bool) | (rng.random(n) < 0.05)
    out = pd.DataFrame({
        "child_id": kids["child_id"].to_numpy()[ci], "upn": kids["upn"].to_numpy()[ci],
        "dob": dob[ci], "home_post": kids["home_post"].to_numpy()[ci],
        "academic_year": np.array([f"{y}/{(y + 1) % 100:02d}" for y in years],
                                  dtype=object)[ay - first_ay],
        "term": np.array([t[0] for t in TERMS], dtype=object)[term_no], "term_start": start,
        "sessions_possible": possible, "sessions_authorised_absence": auth,
        "sessions_unauthorised_absence": unauth, "fsm_eligible": fsm[ci],
        "pupil_premium": pp[ci], "linked": True})
    return pd.concat([out, _unlinked_attendance(p, la, out, rng)], ignore_index=True)


def _unlinked_attendance(p: SynthParams, la: int, linked: pd.DataFrame,
                         rng: np.random.Generator) -> pd.DataFrame:
    n = round(len(linked) / 3 * UNLINKED_SHARE)
    if n == 0 or linked.empty:
        return linked.iloc[0:0]
    rows = linked.sample(n=n, random_state=rng).reset_index(drop=True)
    seqs = UNLINKED_SEQ + rng.integers(0, 90_000_000, size=n)
    rows["upn"] = [upn_for(la, int(s)) for s in seqs]
    rows["child_id"] = ""
    rows["dob"] = rows["dob"] + rng.integers(-150, 150, size=n)
    rows["linked"] = False
    return rows


def neet(p: SynthParams, la: int, children: pd.DataFrame,
         rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Monthly activity rows at ages 16-17, and the drawn neet_16_17 per measured child."""
    kids = children[children["upn"] != ""]
    dob = kids["dob"].to_numpy(np.int64)
    _, _, dom = ymd(dob)
    first = _month_index(dob) + 192 + (dom > 1)
    start_m, end_m = _month_index(np.array([p.data_start]))[0], _month_index(
        np.array([p.data_end]))[0]
    lo = np.maximum(first, start_m)
    hi = np.minimum(first + 23, end_m)
    count = np.clip(hi - lo + 1, 0, None)
    ci = np.repeat(np.arange(len(kids)), count)
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    month = lo[ci] + offsets
    day = _first_of_month(month)
    index = kids["index_day"].to_numpy(np.int64)
    fe = np.array([add_months(int(d), p.follow_up_months) if d >= 0 else -1 for d in index],
                  dtype=np.int64)
    qualifying = (index[ci] >= 0) & (day >= index[ci]) & (day < fe[ci])
    n_rows = len(ci)
    neet_flag = np.zeros(n_rows, dtype=bool)
    # Children measured by the outcome: at least one qualifying month.
    q_count = np.bincount(ci[qualifying], minlength=len(kids))
    measured = q_count > 0
    period = kids["period"].to_numpy(np.int64)
    treat = kids["treat"].to_numpy(bool)
    prob = _cells(p, "neet_16_17", la, period) + np.where(treat, p.effect("neet_16_17"), 0.0)
    strength = p.scenario.get("missing_neet", 0.0)
    uasc = kids["uasc"].to_numpy(bool)
    if strength > 0:
        prob = prob + UASC_NEET_SHIFT * uasc
    y = measured & (rng.random(len(kids)) < np.clip(prob, 0.0, 1.0))
    if strength > 0:
        # Informative missingness: NWD hubs keep better track of young people... or worse: here
        # exposed and UASC children (more often NEET) lose their NCCIS record more often.
        miss_p = np.clip(strength * np.where(treat, 1.6, 0.4) * np.where(uasc, 1.5, 1.0), 0, 0.95)
        lost = measured & (rng.random(len(kids)) < miss_p)
    else:
        lost = np.zeros(len(kids), dtype=bool)
    # A NEET spell starting at a random qualifying month of each child with y = 1.
    row_start = np.cumsum(count) - count
    q_pos = np.flatnonzero(qualifying)
    q_first = _first_index(ci[q_pos], q_pos, len(kids))
    spell_start = q_first + np.floor(rng.random(len(kids)) * np.maximum(q_count, 1)).astype(int)
    spell_len = 1 + rng.poisson(2.0, size=len(kids))
    for_spell = np.flatnonzero(y)
    _mark(neet_flag, spell_start[for_spell], spell_len[for_spell],
          (row_start + count)[for_spell], None)
    # Background NEET spells only on months outside the outcome window.
    bg = np.flatnonzero((rng.random(len(kids)) < 0.2) & (count > 0))
    bg_start = row_start[bg] + np.floor(rng.random(len(bg)) * count[bg]).astype(int)
    _mark(neet_flag, bg_start, 1 + rng.poisson(1.5, size=len(bg)), (row_start + count)[bg],
          qualifying)
    codes_out = np.where(neet_flag, _pick(rng, codes.ACTIVITY_NEET, n_rows),
                         _pick(rng, codes.ACTIVITY_EET, n_rows))
    rows = pd.DataFrame({
        "child_id": kids["child_id"].to_numpy()[ci], "upn": kids["upn"].to_numpy()[ci],
        "dob": dob[ci], "home_post": kids["home_post"].to_numpy()[ci], "activity_month": day,
        "activity_code": codes_out, "neet": neet_flag, "linked": True})
    rows = rows[~lost[ci]].reset_index(drop=True)
    kept = measured & ~lost
    drawn = pd.DataFrame({"child_id": kids["child_id"].to_numpy()[kept],
                          "neet_16_17": y[kept]})
    n_unlinked = round(len(kids[count > 0]) * UNLINKED_SHARE)
    if n_unlinked and len(rows):
        extra = rows.sample(n=n_unlinked, random_state=rng).reset_index(drop=True)
        seqs = UNLINKED_SEQ + 90_000_000 + rng.integers(0, 9_000_000, size=n_unlinked)
        extra["upn"] = [upn_for(la, int(s)) for s in seqs]
        extra["child_id"] = ""
        extra["linked"] = False
        rows = pd.concat([rows, extra], ignore_index=True)
    return rows, drawn


def _first_index(groups: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    first = np.full(n, -1, dtype=np.int64)
    if len(groups):
        # positions are ascending within the row order, so the first occurrence is the minimum.
        order = np.unique(groups, return_index=True)
        first[order[0]] = positions[order[1]]
    return first


def _mark(flags: np.ndarray, starts: np.ndarray, lengths: np.ndarray, stops: np.ndarray,
          forbidden: np.ndarray | None) -> None:
    """Set flags[start:start+len] (not past stop, skipping forbidden rows)."""
    if not len(starts):
        return
    lengths = np.minimum(lengths, stops - starts)
    idx = np.repeat(starts, lengths) + (np.arange(lengths.sum())
                                        - np.repeat(np.cumsum(lengths) - lengths, lengths))
    if forbidden is not None:
        idx = idx[~forbidden[idx]]
    flags[idx] = True
