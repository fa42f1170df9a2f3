"""The synthetic world: detail tables per LA, the harmonised view, and the truth.

`simulate()` keeps everything in memory (fast at scale 1: the evaluation's coverage tests call
it directly); `trialvault.synth.files` walks the same chunks one at a time and streams them to
disk, so both give identical data for a seed.

Which rows a file shows follows the statutory collections: a record appears in every collection
year (1 April - 31 March) it overlaps, with end dates blank while still open at that year's end
(or at the extract date, `data_period.end`). The harmonised view keeps, per record, the version
of the latest collection year holding it, as the spec's layout descriptions state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from trialvault.spec import code_list_group, load_code_lists
from trialvault.study.model import StudyFile
from trialvault.synth import codes
from trialvault.synth.histories import COLUMNS, n_chunks, simulate_chunk
from trialvault.synth.params import (
    BINARY,
    OUTCOMES,
    SynthParams,
    add_months,
    age_months_vec,
    day_of,
    resolve,
    ymd,
)
from trialvault.synth.pupils import attendance, neet

KINDS = ("referred", "long_stay")
OC3_BIRTHDAYS = (17, 18, 19, 20, 21)
INT_COLUMNS = {"dob", "index_day", "period", "mc_dob", "rid", "ref_rid", "referral_date",
               "closure", "icpc", "start", "auth", "target", "end", "nprev", "cp_rid", "day",
               "decom", "dec", "date_placed", "date_match", "adopted", "moves", "missing"}


def chunk_frames(p: SynthParams, la: int, kind: str, chunk: int) -> dict[str, pd.DataFrame]:
    """Detail tables of one chunk (histories, then attendance and NEET for its children)."""
    data = simulate_chunk(p, la, kind, chunk)
    frames = {t: _frame(data.rows.get(t, []), cols) for t, cols in COLUMNS.items()}
    rng = np.random.default_rng(np.random.SeedSequence(
        [p.seed, la, KINDS.index(kind), chunk, 1]))
    frames["attendance"] = attendance(p, la, frames["children"], rng)
    frames["neet"], frames["neet_drawn"] = neet(p, la, frames["children"], rng)
    return frames


def _frame(rows: list[tuple[Any, ...]], cols: tuple[str, ...]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(cols))
    if not rows:
        for c in cols:
            if c in INT_COLUMNS:
                df[c] = df[c].astype(np.int64)
    return df


def iter_chunks(p: SynthParams, la: int) -> Iterator[tuple[str, int, bool]]:
    """(kind, chunk, is_last) in file order for one LA."""
    plan = [(k, c) for k in KINDS for c in range(n_chunks(p, la, k))]
    for i, (kind, chunk) in enumerate(plan):
        yield kind, chunk, i == len(plan) - 1


# --- collection-year arithmetic (vectorised) ---------------------------------------------------

def cy(days: np.ndarray) -> np.ndarray:
    y, m, _ = ymd(days)
    return y + (m >= 4)


def spans(p: SynthParams, start: np.ndarray, end: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last collection year a record shows in, and whether it shows at all."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    if not len(start):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=bool)
    seen_end = np.where(end < 0, p.data_end, np.minimum(end, p.data_end))
    first = np.maximum(cy(np.minimum(start, p.data_end)), p.years[0])
    last = np.minimum(cy(np.maximum(seen_end, start)), p.years[-1])
    visible = (start <= p.data_end) & (last >= first)
    return first, last, visible


def year_cutoff(p: SynthParams, year: int) -> tuple[int, int]:
    """First day of collection year `year` and the last day its file can know about."""
    return day_of(dt.date(year - 1, 4, 1)), min(day_of(dt.date(year, 3, 31)), p.data_end)


def care_leavers(p: SynthParams, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(child_id, year) of care leavers' OC3 returns, for relevant and former relevant children
    (looked after 13 weeks or more since their 14th birthday and at least a day since their
    16th, short breaks not counted: 903 rule 1001) who left care at 16 or over to live
    independently or otherwise: the years of their 17th and 18th birthdays when they had left
    care before it (903 rules 1007, 1016), and of their 19th to 21st."""
    ep = frames["episodes"]
    left = ep[ep["rec"].isin(codes.REC_AT_18.items + codes.REC_LEAVING_16_17.items)]
    left_on = left.groupby("child_id")["dec"].max()
    kids = frames["children"].set_index("child_id").loc[left_on.index]
    at16 = np.array([add_months(int(d), 12 * 16) for d in kids["dob"]], dtype=np.int64)
    kids = kids[(left_on.to_numpy() >= at16) & _relevant(p, ep, kids)]
    rows = []
    for child_id, dob in zip(kids.index, kids["dob"], strict=True):
        for age in OC3_BIRTHDAYS:
            bday = add_months(int(dob), 12 * age)
            year = int(cy(np.array([bday]))[0])
            still_in_care = age < 19 and left_on[child_id] >= bday
            if bday <= p.data_end and year in p.years and not still_in_care:
                rows.append((child_id, year))
    return pd.DataFrame(rows, columns=["child_id", "year"])


def _relevant(p: SynthParams, ep: pd.DataFrame, kids: pd.DataFrame) -> np.ndarray:
    """Which of `kids` (indexed by child_id, with dob) were looked after 91 days or more since
    their 14th birthday and a day or more since their 16th (V3/V4 short breaks left out)."""
    mine = ep[ep["child_id"].isin(kids.index) & ~ep["ls"].isin(("V3", "V4"))]
    dob = mine["child_id"].map(kids["dob"]).to_numpy(dtype=np.int64)
    decom = mine["decom"].to_numpy(dtype=np.int64)
    dec = mine["dec"].to_numpy(dtype=np.int64)
    dec = np.where(dec < 0, p.data_end, dec)
    at14 = np.array([add_months(int(d), 12 * 14) for d in dob], dtype=np.int64)
    at16 = np.array([add_months(int(d), 12 * 16) for d in dob], dtype=np.int64)
    days = pd.DataFrame({"child_id": mine["child_id"].to_numpy(),
                         "after14": np.clip(dec - np.maximum(decom, at14), 0, None),
                         "after16": np.clip(dec - np.maximum(decom, at16), 0, None)})
    totals = days.groupby("child_id")[["after14", "after16"]].sum().reindex(kids.index,
                                                                          fill_value=0)
    return ((totals["after14"] >= 91) & (totals["after16"] >= 1)).to_numpy()


def header_years(p: SynthParams, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(child_id, year) pairs of the 903 header: looked after in the year, or an OC3 care leaver."""
    ep = frames["episodes"]
    first, last, vis = spans(p, ep["decom"].to_numpy(), ep["dec"].to_numpy())
    ids = ep["child_id"].to_numpy()[vis]
    first, last = first[vis], last[vis]
    n = last - first + 1
    pairs = pd.DataFrame({"child_id": np.repeat(ids, n),
                          "year": np.repeat(first, n) + _ramp(n)})
    pairs = pd.concat([pairs, care_leavers(p, frames)], ignore_index=True)
    return pairs.drop_duplicates().reset_index(drop=True)


def _ramp(n: np.ndarray) -> np.ndarray:
    return np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)


# --- the world ----------------------------------------------------------------------------------

@dataclass
class SyntheticWorld:
    """Synthetic children's histories per LA, their harmonised view and the truth."""

    study: StudyFile
    params: SynthParams
    tables: dict[int, dict[str, pd.DataFrame]] = field(default_factory=dict)

    def harmonised(self, lineage: bool = False) -> dict[str, pa.Table]:
        """The harmonised tables of docs/architecture.md (pyarrow, DATE columns as date32), as a
        perfect prepare + ingest of the fault-free files would give them: per record the
        version of the latest collection year holding it. Lineage: `source_file` names the
        file (e.g. `episodes.csv`, `2023.xml`); `source_line` is the record's line in that file
        with `lineage=True` (the files are rendered to nowhere to count lines: slower), else
        NULL."""
        parts: dict[str, list[pa.Table]] = {}
        for la, frames in self.tables.items():
            lines = self._lines(la, frames) if lineage else None
            for name, table in harmonise(self.params, la, frames, lines).items():
                parts.setdefault(name, []).append(table)
        return {name: pa.concat_tables(tables) for name, tables in parts.items()}

    def _lines(self, la: int, frames: dict[str, pd.DataFrame]) -> dict[str, dict[Any, int]]:
        from trialvault.synth.faults import FaultLog  # render imports this module
        from trialvault.synth.render import LAWriter

        lines: dict[str, dict[Any, int]] = {}
        clean = dataclasses.replace(self.params, error_rate=0.0)
        writer = LAWriter(clean, la, None, FaultLog(), lineage=lines)
        writer.write_chunk(dict(frames), 0, True)
        writer.close()
        return lines

    def drawn_outcomes(self) -> pd.DataFrame:
        """Outcomes as planted per eligible child (the generator's own record, for checks)."""
        rows = []
        for la, frames in self.tables.items():
            o = frames["outcomes"].copy()
            o["la_code"] = la
            neet_drawn = frames["neet_drawn"].set_index("child_id")["neet_16_17"]
            o["neet_16_17"] = o["child_id"].map(neet_drawn)
            rows.append(o)
        return pd.concat(rows, ignore_index=True)

    def truth(self) -> dict[str, Any]:
        acc = TruthAccumulator(self.params)
        for la, frames in self.tables.items():
            acc.add(la, frames)
        return acc.result()


def simulate(study: StudyFile, *, seed: int, scale: float = 1.0,
             effects: dict[str, float] | None = None, error_rate: float = 0.0,
             scenario: dict[str, float] | None = None) -> SyntheticWorld:
    """Simulate every LA's children in memory (no files). Faults are only planted by writers.

    `scenario`: named departures from the model (`trialvault.synth.params.SCENARIOS`)."""
    p = resolve(study, seed=seed, scale=scale, effects=effects or {}, error_rate=error_rate,
                scenario=scenario)
    world = SyntheticWorld(study=study, params=p)
    for la in p.la_codes:
        parts: dict[str, list[pd.DataFrame]] = {}
        for kind, chunk, _ in iter_chunks(p, la):
            for name, df in chunk_frames(p, la, kind, chunk).items():
                parts.setdefault(name, []).append(df)
        world.tables[la] = {n: pd.concat(dfs, ignore_index=True) for n, dfs in parts.items()}
    return world


# --- harmonised view ----------------------------------------------------------------------------

def _dates(days: np.ndarray, keep: np.ndarray | None = None) -> pa.Array:
    days = np.asarray(days, dtype=np.int64)
    mask = days < 0 if keep is None else (days < 0) | ~keep
    return pa.array(np.where(mask, 0, days).astype(np.int32), type=pa.int32(),
                     mask=mask).cast(pa.date32())


def _codes(values: Any) -> pa.Array:
    arr = pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=True)
    # Empty codes are absent values (NULL), as a reader of the files would see them.
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _ints(values: Any) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64).astype(np.int32), type=pa.int32())


def _table(la: int, child_ids: Any, cols: dict[str, pa.Array], source_file: Any,
           lines: dict[Any, int] | None = None, keys: Any = None) -> pa.Table:
    n = len(child_ids)
    if lines is None or keys is None:
        source_line = pa.nulls(n, type=pa.int32())
    else:
        found = [lines.get(k) for k in keys]
        source_line = pa.array(found, type=pa.int32())
    files = np.asarray(source_file, dtype=object) if not isinstance(source_file, str) else \
        np.full(n, source_file, dtype=object)
    data = {"la_code": pa.array(np.full(n, la, dtype=np.int32)),
            "child_id": pa.array(np.asarray(child_ids, dtype=object), type=pa.string()),
            **cols,
            "source_file": pa.array(files, type=pa.string()),
            "source_line": source_line}
    return pa.table(data)


def harmonise(p: SynthParams, la: int, f: dict[str, pd.DataFrame],
              lines: dict[str, dict[Any, int]] | None = None) -> dict[str, pa.Table]:
    """One LA's harmonised tables from its detail tables (`lines`: lineage from a render)."""
    lines = lines or {}
    kids = f["children"].set_index("child_id")
    dob_of = kids["dob"]
    end = p.data_end
    out: dict[str, pa.Table] = {}

    def known(days: np.ndarray) -> np.ndarray:
        return (days >= 0) & (days <= end)

    ref = f["referrals"]
    r_first, r_last, r_vis = spans(p, ref["referral_date"].to_numpy(), ref["closure"].to_numpy())
    ref = ref.assign(first=r_first, last=r_last)[r_vis]
    ref_date = ref.set_index("rid")["referral_date"]
    ref_last = ref.set_index("rid")["last"]
    closure = ref["closure"].to_numpy()
    out["referrals"] = _table(la, ref["child_id"], {
        "collection_year": _ints(ref["last"]),
        "referral_date": _dates(ref["referral_date"]),
        "referral_source": _codes(ref["source"]),
        "primary_need_code": _codes(ref["need"]),
        "cin_closure_date": _dates(closure, known(closure)),
        "reason_for_closure": _codes(np.where(known(closure), ref["rfc"], "")),
        "referral_nfa": pa.array(ref["nfa"].to_numpy(bool)),
        "age_months": _ints(age_months_vec(dob_of.loc[ref["child_id"]].to_numpy(),
                                           ref["referral_date"].to_numpy())),
    }, [f"{y}.xml" for y in ref["last"]], lines.get("referrals"), ref["rid"])

    def nested(table: str, start: str, stop: np.ndarray) -> pd.DataFrame:
        df = f[table]
        df = df[df["ref_rid"].isin(ref_date.index)]
        _, last, vis = spans(p, df[start].to_numpy(), stop[df.index.to_numpy()])
        df = df.assign(last=np.minimum(last, ref_last.loc[df["ref_rid"]].to_numpy()))[vis]
        return df.assign(referral_date=ref_date.loc[df["ref_rid"]].to_numpy())

    def age(df: pd.DataFrame, col: str) -> pa.Array:
        return _ints(age_months_vec(dob_of.loc[df["child_id"]].to_numpy(), df[col].to_numpy()))

    a = f["assessments"]
    a = nested("assessments", "start", a["auth"].to_numpy())
    auth = a["auth"].to_numpy()
    out["assessments"] = _table(la, a["child_id"], {
        "collection_year": _ints(a["last"]), "referral_date": _dates(a["referral_date"]),
        "assessment_start_date": _dates(a["start"]),
        "assessment_authorised_date": _dates(auth, known(auth)),
        "assessment_factors": _codes(np.where(known(auth), a["factors"], "")),
        "age_months": age(a, "start")}, [f"{y}.xml" for y in a["last"]],
        lines.get("assessments"), a["rid"])
    s = f["s47"]
    s = nested("s47", "start", np.where(s["icpc"] >= 0, s["icpc"], s["target"]))
    icpc = s["icpc"].to_numpy()
    out["s47"] = _table(la, s["child_id"], {
        "collection_year": _ints(s["last"]), "referral_date": _dates(s["referral_date"]),
        "s47_start_date": _dates(s["start"]), "icpc_target_date": _dates(s["target"]),
        "icpc_date": _dates(icpc, known(icpc)),
        "icpc_not_required": pa.array(s["not_required"].to_numpy(bool)),
        "age_months": age(s, "start")}, [f"{y}.xml" for y in s["last"]],
        lines.get("s47"), s["rid"])
    c = nested("cin_plans", "start", f["cin_plans"]["end"].to_numpy())
    out["cin_plans"] = _table(la, c["child_id"], {
        "collection_year": _ints(c["last"]), "referral_date": _dates(c["referral_date"]),
        "cin_plan_start_date": _dates(c["start"]),
        "cin_plan_end_date": _dates(c["end"].to_numpy(), known(c["end"].to_numpy())),
        "age_months": age(c, "start")}, [f"{y}.xml" for y in c["last"]],
        lines.get("cin_plans"), c["rid"])
    cp = nested("cp_plans", "start", f["cp_plans"]["end"].to_numpy())
    out["cp_plans"] = _table(la, cp["child_id"], {
        "collection_year": _ints(cp["last"]), "referral_date": _dates(cp["referral_date"]),
        "cp_plan_start_date": _dates(cp["start"]),
        "cp_plan_end_date": _dates(cp["end"].to_numpy(), known(cp["end"].to_numpy())),
        "initial_category_of_abuse": _codes(cp["initial"]),
        "latest_category_of_abuse": _codes(cp["latest"]),
        "number_of_previous_cpp": _ints(cp["nprev"]),
        "age_months": age(cp, "start")}, [f"{y}.xml" for y in cp["last"]],
        lines.get("cp_plans"), cp["rid"])
    ep = f["episodes"]
    _e_first, e_last, e_vis = spans(p, ep["decom"].to_numpy(), ep["dec"].to_numpy())
    ep = ep.assign(last=e_last)[e_vis]
    dec = ep["dec"].to_numpy()
    ended = known(dec)
    out["cla_episodes"] = _table(la, ep["child_id"], {
        "collection_year": _ints(ep["last"]), "episode_start_date": _dates(ep["decom"]),
        "episode_end_date": _dates(dec, ended), "reason_new_episode": _codes(ep["rne"]),
        "legal_status": _codes(ep["ls"]), "category_of_need": _codes(ep["cin"]),
        "placement_type": _codes(ep["place"]), "placement_provider": _codes(ep["provider"]),
        "reason_episode_ceased": _codes(np.where(ended, ep["rec"], "")),
        "reason_place_change": _codes(np.where(ended, ep["rpc"], "")),
        "age_months": age(ep, "decom")}, "episodes.csv", lines.get("episodes"), ep["rid"])
    ms = f["missing"]
    _m_first, m_last, m_vis = spans(p, ms["start"].to_numpy(), ms["end"].to_numpy())
    ms = ms.assign(last=m_last)[m_vis]
    m_end = ms["end"].to_numpy()
    out["missing"] = _table(la, ms["child_id"], {
        "collection_year": _ints(ms["last"]), "missing_type": _codes(ms["type"]),
        "missing_start_date": _dates(ms["start"]),
        "missing_end_date": _dates(m_end, known(m_end)),
        "age_months": age(ms, "start")}, "missing.csv", lines.get("missing"), ms["rid"])
    out["children"] = _children(p, la, f, ref, lines)
    att = f["attendance"][f["attendance"]["linked"]]
    out["attendance"] = _table(la, att["child_id"], {
        "academic_year": _codes(att["academic_year"]),
        "term": _codes(att["term"].map({"AUT": "autumn", "SPR": "spring", "SUM": "summer"})),
        "sessions_possible": _ints(att["sessions_possible"]),
        "sessions_authorised_absence": _ints(att["sessions_authorised_absence"]),
        "sessions_unauthorised_absence": _ints(att["sessions_unauthorised_absence"]),
        "fsm_eligible": pa.array(att["fsm_eligible"].to_numpy(bool)),
        "pupil_premium": pa.array(att["pupil_premium"].to_numpy(bool)),
        "age_months": _ints(age_months_vec(att["dob"].to_numpy(), att["term_start"].to_numpy())),
    }, "education.csv", lines.get("education"),
        list(zip(att["child_id"], att["academic_year"], att["term"], strict=True)))
    nt = f["neet"][f["neet"]["linked"]]
    neet_codes = code_list_group("neet_activity_codes")
    out["neet"] = _table(la, nt["child_id"], {
        "activity_month": _dates(nt["activity_month"]),
        "activity_code": _codes(nt["activity_code"]),
        "neet": pa.array(nt["activity_code"].isin(neet_codes).to_numpy(bool)),
        "age_months": _ints(age_months_vec(nt["dob"].to_numpy(),
                                           nt["activity_month"].to_numpy())),
    }, "neet.csv", lines.get("neet"),
        list(zip(nt["child_id"], nt["activity_month"], strict=True)))
    return out


def _children(p: SynthParams, la: int, f: dict[str, pd.DataFrame], ref: pd.DataFrame,
              lines: dict[str, dict[Any, int]]) -> pa.Table:
    cin_last = ref.groupby("child_id")["last"].max()
    hdr = header_years(p, f)
    hdr_last = hdr.groupby("child_id")["year"].max()
    # UASC as the 903 UASC table shows it: listed in a year whose start is before the 18th
    # birthday (the render's rule for that table).
    dob_all = f["children"].set_index("child_id")["dob"]
    year_start = np.array([day_of(dt.date(int(y) - 1, 4, 1)) for y in hdr["year"]],
                          dtype=np.int64)
    under18 = dob_all.loc[hdr["child_id"]].to_numpy(np.int64) + 6574 >= year_start
    uasc_903 = hdr["child_id"].to_numpy()[under18]
    both = pd.concat([cin_last.rename("cin"), hdr_last.rename("hdr")], axis=1)
    latest = both.max(axis=1).astype(np.int64)
    from_cin = both["cin"].fillna(-1).to_numpy() >= latest.to_numpy()
    kids = f["children"].set_index("child_id").loc[latest.index]
    ref_day = np.array([day_of(dt.date(int(y), 3, 31)) for y in latest], dtype=np.int64)
    sex = kids["sex"].to_numpy()
    return _table(la, latest.index.to_numpy(), {
        "sex": _codes(sex), "ethnicity": _codes(kids["ethnicity"]),
        "disability": pa.array((kids["disabilities"] != "NONE").to_numpy(bool)),
        "uasc": pa.array(kids["uasc"].to_numpy(bool)
                          & np.isin(latest.index.to_numpy(), list(uasc_903))),
        "age_months_at_reference": _ints(age_months_vec(kids["dob"].to_numpy(), ref_day)),
        "reference_date": _dates(ref_day),
    }, np.where(from_cin, [f"{y}.xml" for y in latest], "header.csv"),
        _merge_lines(lines, latest.index.to_numpy(), from_cin), latest.index.to_numpy())


def _merge_lines(lines: dict[str, dict[Any, int]], ids: np.ndarray, from_cin: np.ndarray
                 ) -> dict[Any, int] | None:
    """Children's lineage: the CIN ChildIdentifiers line, else the 903 header line."""
    if not lines:
        return None
    cin, header = lines.get("cin_children", {}), lines.get("header", {})
    out: dict[Any, int] = {}
    for child, use_cin in zip(ids, from_cin, strict=True):
        line = (cin if use_cin else header).get(child)
        if line is not None:
            out[child] = line
    return out


# --- truth -------------------------------------------------------------------------------------

class TruthAccumulator:
    """Planted parameters, cell baselines and realised cohort counts, gathered chunk by chunk."""

    def __init__(self, p: SynthParams) -> None:
        self.p = p
        self.cells: dict[tuple[int, int, int], dict[str, float]] = {}
        self.effect_sum = 0.0
        self.exposed = 0
        self.in_care_indexed = 0

    def add(self, la: int, f: dict[str, pd.DataFrame]) -> None:
        kids = f["children"]
        elig = kids[kids["eligible"].astype(bool)]
        if elig.empty:
            return
        o = f["outcomes"].set_index("child_id").loc[elig["child_id"]]
        treat = elig["treat"].to_numpy(bool)
        self.effect_sum += float(o["care_effect"].to_numpy(float)[treat].sum())
        self.exposed += int(treat.sum())
        neet_drawn = f["neet_drawn"].set_index("child_id")["neet_16_17"]
        rate = _absence_rates(self.p, elig, f["attendance"])
        frame = pd.DataFrame({
            "period": elig["period"].to_numpy(), "exposed": elig["treat"].to_numpy(int),
            "entered_care_12m": o["care"].to_numpy(float),
            "residential_placement_12m": o["residential"].to_numpy(float),
            "cp_plan_12m": o["cp"].to_numpy(float), "rereferral_12m": o["reref"].to_numpy(float),
            "placement_moves_12m": o["moves"].to_numpy(float),
            "missing_episodes_12m": o["missing"].to_numpy(float),
            "neet_16_17": elig["child_id"].map(neet_drawn).astype(float).to_numpy(),
            "unauthorised_absence_rate": elig["child_id"].map(rate).astype(float).to_numpy(),
        })
        for (period, exposed), g in frame.groupby(["period", "exposed"]):
            cell = self.cells.setdefault((la, int(period), int(exposed)), {"n": 0.0})
            cell["n"] += len(g)
            for name in OUTCOMES:
                vals = g[name].dropna()
                cell[f"{name}:sum"] = cell.get(f"{name}:sum", 0.0) + float(vals.sum())
                cell[f"{name}:n"] = cell.get(f"{name}:n", 0.0) + len(vals)

    def result(self) -> dict[str, Any]:
        p = self.p
        cells = []
        totals = {e: {"n": 0.0} for e in (0, 1)}
        for (la, period, exposed), c in sorted(self.cells.items()):
            row: dict[str, Any] = {"la_code": la, "period": period, "exposed": bool(exposed),
                                   "n": int(c["n"])}
            for name in OUTCOMES:
                n = c.get(f"{name}:n", 0.0)
                row[name] = c[f"{name}:sum"] / n if n else None
                tot = totals[exposed]
                tot[f"{name}:sum"] = tot.get(f"{name}:sum", 0.0) + c.get(f"{name}:sum", 0.0)
                tot[f"{name}:n"] = tot.get(f"{name}:n", 0.0) + n
            totals[exposed]["n"] += c["n"]
            cells.append(row)
        realised = {name: {arm: (totals[e][f"{name}:sum"] / totals[e][f"{name}:n"]
                                 if totals[e].get(f"{name}:n") else None)
                           for arm, e in (("unexposed", 0), ("exposed", 1))}
                    for name in OUTCOMES}
        return {
            "effects": {name: {"value": p.effect(name),
                               "kind": "risk_difference" if name in BINARY else "ratio"}
                        for name in OUTCOMES},
            "baseline": {name: {str(la): [round(p.cell(name, la, q), 6)
                                          for q in range(p.n_periods)]
                                for la in p.la_codes} for name in OUTCOMES},
            "baseline_note": (
                "Unexposed baseline per LA and calendar quarter of the index date (period 0 = "
                "first quarter of data_period.first_year), before covariate shifts: the care "
                "probability is raised by uasc_care_shift for UASC and disability_care_shift "
                "for disabled children in both arms, so each cell's risk difference is exactly "
                "the planted effect."),
            "cohort": {"n": int(totals[0]["n"] + totals[1]["n"]),
                       "n_exposed": int(totals[1]["n"]), "n_unexposed": int(totals[0]["n"]),
                       "by_cell": cells},
            "realised": realised,
            "estimand": {
                "name": "mean_effect_among_exposed", "outcome": "entered_care_12m",
                "value": self.effect_sum / self.exposed if self.exposed else None,
                "nominal": p.effect("entered_care_12m"),
                "note": ("Mean over exposed cohort members (indexed on or after their LA's "
                         "step) of P(care | exposed) − P(care | not exposed) for that child: "
                         "the planted effect after per-child clipping to [0, 1], the LA's "
                         "deviation (effect_la_sd) and the ramp (effect_ramp_quarters)."),
            },
            "scenario": dict(p.scenario),
        }


def _absence_rates(p: SynthParams, elig: pd.DataFrame, att: pd.DataFrame) -> pd.Series:
    att = att[att["linked"]]
    idx = elig.set_index("child_id")["index_day"]
    joined = att[att["child_id"].isin(idx.index)]
    index = idx.loc[joined["child_id"]].to_numpy()
    fe = np.array([add_months(int(d), p.follow_up_months) for d in index], dtype=np.int64)
    start = joined["term_start"].to_numpy()
    inside = joined[(start >= index) & (start < fe)]
    sums = inside.groupby("child_id")[["sessions_unauthorised_absence",
                                       "sessions_possible"]].sum()
    return sums["sessions_unauthorised_absence"] / sums["sessions_possible"].replace(0, np.nan)


def code_list_check(p: SynthParams, frames: dict[str, pd.DataFrame]) -> dict[str, set[str]]:
    """Codes drawn that are not valid in some collection year they show in (for tests)."""
    lists = load_code_lists()
    bad: dict[str, set[str]] = {}
    ep = frames["episodes"]
    first, last, vis = spans(p, ep["decom"].to_numpy(), ep["dec"].to_numpy())
    for col, name in (("place", "PLACE"), ("ls", "LS"), ("rne", "RNE"), ("cin", "CIN_903"),
                      ("provider", "PLACE_PROVIDER")):
        for year in p.years:
            shown = vis & (first <= year) & (last >= year)
            # (A blank is a code not given: a temporary placement has no provider.)
            invalid = set(ep[col].to_numpy()[shown]) - lists[name].valid_in(year) - {""}
            if invalid:
                bad.setdefault(name, set()).update(invalid)
    return bad
