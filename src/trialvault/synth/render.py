"""Writers: render chunks of the synthetic world to the statutory files of one LA, streaming.

- SSDA903: `ssda903/<year>/<table>.csv` with the DfE column names and dd/mm/yyyy dates;
- CIN census: `cin_census/<year>.xml`, one element per line (so lines are stable);
- education: `education.csv`; NEET: `neet.csv` (ISO dates, 0/1 flags).
(`files.generate_files` adds each LA's provider register, `providers.csv`; see `places.py`.)
Files are opened once per LA, each chunk appends its rows, and `close()` finishes them, so memory
holds one chunk at a time. Faults (see `faults.py`) are planted while writing and recorded with
the file, line and child they concern.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialvault import __version__
from trialvault.spec import load_layout
from trialvault.synth import codes
from trialvault.synth.faults import FaultLog, plant_cin, plant_csv
from trialvault.synth.params import SynthParams, add_months, age_months_vec, day_of
from trialvault.synth.world import care_leavers, header_years, spans, year_cutoff

_BASE = day_of(dt.date(1950, 1, 1))
_SPAN = day_of(dt.date(2060, 1, 1)) - _BASE
_DAYS = (np.arange(_SPAN) + _BASE).astype("datetime64[D]").astype(str)
ISO = np.array(_DAYS, dtype=object)
DMY = np.array([f"{d[8:10]}/{d[5:7]}/{d[0:4]}" for d in _DAYS], dtype=object)


SCHOOL_AGE_DAYS = 4 * 365 + 1
_LATE_MARCH = [f"{day}/03" for day in range(24, 32)]  # dd/mm of 24 to 31 March


def shown_upn(kids: pd.DataFrame, ye: int) -> np.ndarray:
    """The UPN field as a return of a year ending `ye` shows it: under-4s have none yet (UN1)."""
    upn = kids["upn"].to_numpy()
    young = (ye - kids["dob"].to_numpy(np.int64)) < SCHOOL_AGE_DAYS
    return np.where(young & (upn != ""), "UN1", np.where(upn != "", upn, kids["upn_unknown"]))


def fmt(days: Any, table: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Format int days with a lookup table; negative (NA) or not kept -> ''."""
    days = np.asarray(days, dtype=np.int64)
    ok = (days >= 0) & (days < _BASE + _SPAN)  # negative days are the NA marker
    if keep is not None:
        ok &= keep
    out = np.full(len(days), "", dtype=object)
    out[ok] = table[days[ok] - _BASE]
    return out


class _NullFile:
    """A sink that keeps nothing: rendering only to learn line numbers (lineage)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return len(text)

    def close(self) -> None:
        return None


class _CsvFile:
    def __init__(self, path: Path, columns: list[str], null: bool = False) -> None:
        if null:
            self.fh: Any = _NullFile(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.fh = path.open("w", encoding="utf-8", newline="")
        self.fh.write(",".join(columns) + "\n")
        self.line = 1  # lines written so far (the header is line 1)
        self.rows = 0

    def write(self, df: pd.DataFrame) -> None:
        if len(df):
            df.to_csv(self.fh, header=False, index=False, lineterminator="\n")
            self.line += len(df)
            self.rows += len(df)

    def close(self) -> None:
        self.fh.close()


class LAWriter:
    """All files of one LA."""

    def __init__(self, p: SynthParams, la: int, out: Path | None, faults: FaultLog,
                 lineage: dict[str, dict[Any, int]] | None = None) -> None:
        # out=None renders to nowhere, only recording `lineage` (record key -> file line).
        self.null = out is None
        self.lineage = lineage
        self.p, self.la, self.faults = p, la, faults
        self.root = (out or Path("/nonexistent")) / str(la)
        self.layout = load_layout("ssda903")
        self.csv: dict[tuple[str, int], _CsvFile] = {}
        self.pending_dups: dict[tuple[str, int], list[pd.DataFrame]] = {}
        self.xml: dict[int, tuple[Any, list[int]]] = {}
        self.rows = 0
        self.died: set[str] = set()  # care leavers reported as having died (OC3 IN_TOUCH)

    # --- helpers ---------------------------------------------------------------------------
    def _file(self, table: str, year: int) -> _CsvFile:
        key = (table, year)
        if key not in self.csv:
            if table in ("education", "neet"):
                path = self.root / f"{table}.csv"
                cols = load_layout(table).tables["attendance" if table == "education"
                                                    else "activity"].column_names
            else:
                t = self.layout.tables[table]
                path = self.root / "ssda903" / str(year) / (t.file or f"{table}.csv")
                cols = t.column_names
            self.csv[key] = _CsvFile(path, cols, self.null)
        return self.csv[key]

    def _rel(self, f: _CsvFile) -> str:
        return str(Path(f.fh.name).relative_to(self.root.parent))

    def _emit(self, table: str, year: int, df: pd.DataFrame, fmt_name: str,
              rng: np.random.Generator, child_col: str, keys: Any = None) -> dict[str, int]:
        """Plant faults, write; returns child -> line of its first row in this write.

        `keys` (one per row) name the records for lineage: their line in this file is kept
        (a later collection year overwrites an earlier one, as the harmonised view keeps the
        latest version)."""
        f = self._file(table, year)
        if self.lineage is not None and keys is not None:
            lines_of = self.lineage.setdefault(table, {})
            for i, key in enumerate(keys):
                lines_of[key] = f.line + 1 + i
        df, dups = plant_csv(df, fmt_name, table, rng, self.p.error_rate, f.line + 1,
                             self._rel(f), child_col, self.faults)
        lines = {}
        if len(df) and child_col:
            first = ~df[child_col].duplicated().to_numpy()
            lines = dict(zip(df[child_col].to_numpy()[first],
                             f.line + 1 + np.flatnonzero(first), strict=True))
        f.write(df)
        self.rows += len(df)
        if len(dups):
            self.pending_dups.setdefault((table, year), []).append(dups)
        return lines

    # --- one chunk -------------------------------------------------------------------------
    def write_chunk(self, frames: dict[str, pd.DataFrame], chunk_id: int, last: bool) -> None:
        p = self.p
        hdr = header_years(p, frames)
        leavers = care_leavers(p, frames)
        cin = self._cin_index(frames)
        for year in p.years:
            rng = np.random.default_rng(np.random.SeedSequence([p.seed, self.la, year, chunk_id,
                                                                 2]))
            self._ssda903_year(frames, hdr, leavers, year, rng, last)
            self._cin_year(cin, year, rng)
        rng = np.random.default_rng(np.random.SeedSequence([p.seed, self.la, chunk_id, 3]))
        self._pupils(frames, rng)

    def _ssda903_year(self, f: dict[str, pd.DataFrame], hdr: pd.DataFrame,
                      leavers: pd.DataFrame, year: int, rng: np.random.Generator,
                      last: bool) -> None:
        p = self.p
        ys, ye = year_cutoff(p, year)
        kids = f["children"]
        ep = f["episodes"]
        first, last_y, vis = spans(p, ep["decom"].to_numpy(), ep["dec"].to_numpy())
        e = ep[vis & (first <= year) & (last_y >= year)]
        dec = e["dec"].to_numpy()
        closed = (dec >= 0) & (dec <= ye)
        episodes = pd.DataFrame({
            "CHILD": e["child_id"].to_numpy(), "DECOM": fmt(e["decom"], DMY),
            "RNE": e["rne"].to_numpy(), "LS": e["ls"].to_numpy(), "CIN": e["cin"].to_numpy(),
            "PLACE": e["place"].to_numpy(), "PLACE_PROVIDER": e["provider"].to_numpy(),
            "DEC": fmt(dec, DMY, closed), "REC": np.where(closed, e["rec"], ""),
            "REASON_PLACE_CHANGE": np.where(closed, e["rpc"], ""),
            "HOME_POST": e["home_post"].to_numpy(), "PL_POST": e["pl_post"].to_numpy(),
            "URN": e["urn"].to_numpy()})
        episode_lines = self._emit("episodes", year, episodes, "ssda903", rng, "CHILD",
                                   e["rid"].to_numpy())
        in_year = set(hdr.loc[hdr["year"] == year, "child_id"])
        h = kids[kids["child_id"].isin(in_year)]
        sex = h["sex"].to_numpy()
        if year <= 2024:
            sex = np.where(sex == "M", "1", "2")
        # MOTHER is given for every girl looked after in the year (0 or 1) and for no one else
        # (not for a care leaver listed only for OC3: 903 rules 165, 393, 607, 628).
        mc_dob = h["mc_dob"].to_numpy()
        # A first child born after the mother's latest episode ended this year is not reported
        # (903 rule 625 compares with that end date).
        latest_end = pd.Series(dec[closed], index=e["child_id"].to_numpy()[closed])
        latest_end = latest_end.groupby(level=0).max()
        until = latest_end.reindex(h["child_id"].to_numpy()).fillna(ye).to_numpy()
        is_mother = (h["mother"].to_numpy() == "1") & (mc_dob >= 0) & (mc_dob <= until)
        mother = np.where(h["child_id"].isin(set(e["child_id"])).to_numpy()
                          & (h["sex"].to_numpy() == "F"), np.where(is_mother, "1", "0"), "")
        # A UASC child without a UPN shows UN4 (a new arrival) unless an episode of theirs
        # starts from 24 March of a collection year: the DfE's coding of 903 rule 210 flags UN4
        # there. Such a child shows UN2 in every return (rule 208 refuses UN4 <-> UN2 changes).
        starts = pd.Series(fmt(ep["decom"], DMY)).str[:5]
        late_march = set(ep["child_id"].to_numpy()[starts.isin(_LATE_MARCH).to_numpy()])
        upn = shown_upn(h, ye)
        upn = np.where((upn == "UN4") & h["child_id"].isin(late_march).to_numpy(), "UN2", upn)
        header = pd.DataFrame({
            "CHILD": h["child_id"].to_numpy(), "SEX": sex, "DOB": fmt(h["dob"], DMY),
            "ETHNIC": h["ethnicity"].to_numpy(),
            "UPN": upn,
            "MOTHER": mother,
            "MC_DOB": fmt(mc_dob, DMY, mother == "1")})
        if last and self.p.error_rate > 0 and len(header):
            header = self._drop_from_header(header, set(e["child_id"]), episode_lines, year, rng)
        self._emit("header", year, header, "ssda903", rng, "CHILD", header["CHILD"].to_numpy())
        # UASC status ceases at 18 (DUC); only children still UASC in the year are listed
        # (903 rule 104: DUC not before the collection start).
        is_uasc = h["uasc"].to_numpy(bool) & (h["dob"].to_numpy(np.int64) + 6574 >= ys)
        u = h[is_uasc]
        duc = np.array([add_months(int(d), 216) for d in u["dob"]], dtype=np.int64)
        self._emit("uasc", year, pd.DataFrame({
            "CHILD": u["child_id"].to_numpy(), "SEX": sex[is_uasc],
            "DOB": fmt(u["dob"], DMY), "DUC": fmt(duc, DMY)}),
            "ssda903", rng, "CHILD")
        dob_of = kids.set_index("child_id")["dob"]
        rv = f["reviews"]
        rv = rv[(rv["day"] >= ys) & (rv["day"] <= ye)]
        self._emit("reviews", year, pd.DataFrame({
            "CHILD": rv["child_id"].to_numpy(), "DOB": fmt(dob_of.loc[rv["child_id"]], DMY),
            "REVIEW": fmt(rv["day"], DMY), "REVIEW_CODE": rv["code"].to_numpy()}),
            "ssda903", rng, "CHILD")
        ms = f["missing"]
        mf, ml, mv = spans(p, ms["start"].to_numpy(), ms["end"].to_numpy())
        m = ms[mv & (mf <= year) & (ml >= year)]
        m_end = m["end"].to_numpy()
        self._emit("missing", year, pd.DataFrame({
            "CHILD": m["child_id"].to_numpy(), "DOB": fmt(dob_of.loc[m["child_id"]], DMY),
            "MISSING": m["type"].to_numpy(), "MIS_START": fmt(m["start"], DMY),
            "MIS_END": fmt(m_end, DMY, (m_end >= 0) & (m_end <= ye))}),
            "ssda903", rng, "CHILD", m["rid"].to_numpy())
        self._other_903(f, e, h, leavers, year, ys, ye, rng)

    def _drop_from_header(self, header: pd.DataFrame, with_episodes: set[str],
                          episode_lines: dict[str, int], year: int,
                          rng: np.random.Generator) -> pd.DataFrame:
        """Fault: a child with episodes this year left out of the header (last rows only)."""
        tail = header.tail(10)
        candidates = [i for i, c in zip(tail.index, tail["CHILD"], strict=True)
                      if c in with_episodes and c in episode_lines]
        k = int(rng.binomial(len(header), self.p.error_rate / 8))
        if year == self.p.years[-1]:
            k = max(k, 1)  # at least one per LA: a small last chunk may draw none
        k = min(len(candidates), k, 3)
        drop = candidates[-k:] if k else []
        f = self._file("episodes", year)
        for i in drop:
            child = header.at[i, "CHILD"]
            self.faults.add(file=self._rel(f), line=episode_lines[child], child=child,
                            kind="child_missing_from_header", table="header", column="CHILD",
                            rule=None, fmt="ssda903",
                            detail="episodes name a child that header.csv does not list")
        return header.drop(index=drop)

    def _other_903(self, f: dict[str, pd.DataFrame], e: pd.DataFrame, h: pd.DataFrame,
                   leavers: pd.DataFrame, year: int, ys: int, ye: int,
                   rng: np.random.Generator) -> None:
        # Looked after for 12 months at 31 March: in care since 1 April of the year before or
        # earlier and still on 31 March (a period ending that day counts, as in the DfE's
        # expression and rule 191); in an in-year extract (the last year, known up to
        # data_period.end) the children in care at the extract who will have been by then, as
        # a case management system reports them.
        march = day_of(dt.date(year, 3, 31))
        per = _care_periods(f)
        in_care = h[h["child_id"].isin(set(e["child_id"]))]
        pc = per.loc[in_care["child_id"]]
        stop = pc["stop"].to_numpy()
        still_in_care = stop >= march if ye == march else stop > ye
        long_enough = (pc["start"].to_numpy() <= ys) & (pc["open_"].to_numpy() | still_in_care)
        oc2_kids = in_care[long_enough]
        self._emit("oc2", year, _oc2(oc2_kids, ys, march, rng), "ssda903", rng, "CHILD")
        lv = h[h["child_id"].isin(set(leavers.loc[leavers["year"] == year, "child_id"]))]
        k = len(lv)
        in_touch = _draw(rng, codes.IN_TOUCH, k)
        # A young person reported as having died stays so in later years (903 rule 348).
        children = lv["child_id"].to_numpy()
        in_touch = np.where(np.isin(children, list(self.died)), "DIED", in_touch)
        self.died.update(children[in_touch == "DIED"].tolist())
        # Activity and accommodation are known only for young people the LA is in touch with;
        # otherwise (died, returned home, not in touch, refused) both are 0 (903 rule 344).
        known = np.isin(in_touch, ("YES", "NREQ"))
        under_18 = lv["dob"].to_numpy(np.int64) > add_months(ys, -12 * 18)
        accom = np.where(under_18, _draw(rng, codes.ACCOM_UNDER_18, k),
                         _draw(rng, codes.ACCOM, k))
        self._emit("oc3", year, pd.DataFrame({
            "CHILD": children, "DOB": fmt(lv["dob"], DMY),
            "IN_TOUCH": in_touch, "ACTIV": np.where(known, _draw(rng, codes.ACTIV, k), "0"),
            "ACCOM": np.where(known, accom, "0")}), "ssda903", rng, "CHILD")
        ad = f["adoptions"]
        dob_of = f["children"].set_index("child_id")["dob"]
        done = ad[(ad["adopted"] >= ys) & (ad["adopted"] <= ye)]
        j = len(done)
        self._emit("ad1", year, pd.DataFrame({
            "CHILD": done["child_id"].to_numpy(), "DOB": fmt(dob_of.loc[done["child_id"]], DMY),
            "DATE_INT": fmt(done["date_placed"], DMY), "DATE_MATCH": fmt(done["date_match"], DMY),
            # Adopted by the current foster carers exactly when placed with them (A5, rule 335).
            "FOSTER_CARE": np.where(done["foster_care"].to_numpy(bool), "1", "0"),
            "NB_ADOPTR": np.full(j, "2"),
            "SEX_ADOPTR": np.full(j, "MF"), "LS_ADOPTR": np.full(j, "L11")}),
            "ssda903", rng, "CHILD")
        placed = ad[(ad["date_placed"] <= ye) & (ad["adopted"] >= ys)]
        self._emit("placed_for_adoption", year, pd.DataFrame({
            "CHILD": placed["child_id"].to_numpy(),
            "DOB": fmt(dob_of.loc[placed["child_id"]], DMY),
            "DATE_PLACED": fmt(placed["date_placed"], DMY), "DATE_PLACED_CEASED": "",
            "REASON_PLACED_CEASED": ""}), "ssda903", rng, "CHILD")
        starters = set(e.loc[(e["rne"] == "S") & (e["decom"] >= ys), "child_id"])
        pp = h[h["child_id"].isin(starters)]
        q = len(pp)
        # A previous permanence order names the LA that made it and its date, between birth and
        # the start of care (903 rule 630): most often this LA, sometimes another.
        first = pd.Series(e.loc[e["rne"] == "S"].groupby("child_id")["decom"].min())
        start = first.reindex(pp["child_id"]).fillna(ye).to_numpy(np.int64)
        dob = pp["dob"].to_numpy(np.int64)
        prev = _draw(rng, codes.PREV_PERM, q)
        prev[start - dob < 400] = "Z1"
        has = prev != "Z1"
        when = dob + 180 + (rng.random(q) * np.maximum(start - dob - 210, 1)).astype(np.int64)
        other = rng.choice(np.array(codes.OTHER_LAS, dtype=object), size=q)
        self._emit("previous_permanence", year, pd.DataFrame({
            "CHILD": pp["child_id"].to_numpy(), "DOB": fmt(pp["dob"], DMY), "PREV_PERM": prev,
            "LA_PERM": np.where(has, np.where(rng.random(q) < 0.7, str(self.la), other), ""),
            "DATE_PERM": fmt(when, DMY, has)}), "ssda903", rng, "CHILD")
        if year >= 2024:
            self._emit("sw_episodes", year, _sw_episodes(in_care, pc, ys, ye, rng),
                       "ssda903", rng, "CHILD")

    # --- CIN census --------------------------------------------------------------------------
    def _xml(self, year: int) -> tuple[Any, list[int]]:
        if year not in self.xml:
            path = self.root / "cin_census" / f"{year}.xml"
            fh: Any
            if self.null:
                fh = _NullFile(str(path))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                fh = path.open("w", encoding="utf-8", newline="\n")
            made = ISO[year_cutoff(self.p, year)[1] - _BASE]
            head = [
                '<?xml version="1.0" encoding="utf-8"?>', "<Message>", "  <Header>",
                "    <CollectionDetails>", "      <Collection>CIN</Collection>",
                f"      <Year>{year}</Year>",
                f"      <ReferenceDate>{year}-03-31</ReferenceDate>",
                "    </CollectionDetails>", "    <Source>", "      <SourceLevel>L</SourceLevel>",
                f"      <LEA>{self.la}</LEA>", "      <SoftwareCode>trialvault synth</SoftwareCode>",
                f"      <Release>{__version__}</Release>", "      <SerialNo>001</SerialNo>",
                f"      <DateTime>{made}T09:00:00</DateTime>",
                "    </Source>", "  </Header>", "  <Children>"]
            fh.write("\n".join(head) + "\n")
            self.xml[year] = (fh, [len(head)])
        return self.xml[year]

    def _cin_index(self, f: dict[str, pd.DataFrame]) -> dict[str, Any]:
        """Plain-Python views of a chunk's CIN tables (row access in pandas is too slow)."""
        p = self.p

        def rows(df: pd.DataFrame, start: str, stop: np.ndarray) -> list[tuple[Any, ...]]:
            first, last, vis = spans(p, df[start].to_numpy(), stop)
            recs = list(df.itertuples(index=False, name=None))
            return [(*r, int(a), int(b)) for r, a, b, v in zip(recs, first, last, vis,
                                                                strict=True) if v]

        ref = f["referrals"]
        by_child: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows(ref, "referral_date", ref["closure"].to_numpy()):
            by_child.setdefault(r[1], []).append(r)
        nested: dict[str, dict[int, list[tuple[Any, ...]]]] = {}
        for name, stop in (("assessments", "auth"), ("cin_plans", "end"), ("s47", "icpc"),
                           ("cp_plans", "end")):
            t = f[name]
            end = t[stop].to_numpy()
            if name == "s47":
                end = np.where(end >= 0, end, t["target"].to_numpy())
            group: dict[int, list[tuple[Any, ...]]] = {}
            for r in rows(t, "start", end):
                group.setdefault(r[1], []).append(r)
            nested[name] = group
        reviews: dict[int, list[int]] = {}
        for cp_rid, day in f["cp_reviews"].itertuples(index=False, name=None):
            reviews.setdefault(cp_rid, []).append(day)
        kids = {r[0]: r for r in f["children"].itertuples(index=False, name=None)}
        return {"by_child": by_child, "nested": nested, "reviews": reviews, "kids": kids}

    def _cin_year(self, ix: dict[str, Any], year: int, rng: np.random.Generator) -> None:
        p = self.p
        _, ye = year_cutoff(p, year)
        lines: list[str] = []
        rate = p.error_rate
        n_refs = 0
        line0 = -1
        for child_id, refs in ix["by_child"].items():
            shown = [r for r in refs if r[-2] <= year <= r[-1]]
            if not shown:
                continue
            if line0 < 0:
                line0 = self._xml(year)[1][0]
            (_, dob, sex, eth, disab, _, upn, upn_unknown, *_rest) = ix["kids"][child_id]
            if upn and ye - dob < SCHOOL_AGE_DAYS:
                upn, upn_unknown = "", "UN1"
            if self.lineage is not None:
                self.lineage.setdefault("cin_children", {})[child_id] = line0 + len(lines) + 2
            lines += ["    <Child>", "      <ChildIdentifiers>",
                      f"        <LAchildID>{child_id}</LAchildID>",
                      f"        <UPN>{upn}</UPN>" if upn else
                      f"        <UPNunknown>{upn_unknown}</UPNunknown>",
                      f"        <PersonBirthDate>{ISO[dob - _BASE]}</PersonBirthDate>",
                      f"        <GenderCurrent>{'1' if sex == 'M' else '2'}</GenderCurrent>"
                      if year <= 2024 else f"        <Sex>{sex}</Sex>"]
            if rate and rng.random() < rate:
                eth = self.faults.cin(self._xml_rel(year), line0 + len(lines) + 3, child_id,
                                      "invalid_code", "child_characteristics", "Ethnicity",
                                      "4220", "XXXX")
            lines += ["      </ChildIdentifiers>", "      <ChildCharacteristics>",
                      f"        <Ethnicity>{eth}</Ethnicity>", "        <Disabilities>"]
            lines += [f"          <Disability>{d}</Disability>" for d in disab.split(",")]
            lines += ["        </Disabilities>", "      </ChildCharacteristics>"]
            for r in shown:
                block, blocks = _cin_details(r, ix["nested"], ix["reviews"], year, ye)
                if self.lineage is not None:
                    for table, rid, offset in blocks:
                        self.lineage.setdefault(table, {})[rid] = line0 + len(lines) + 1 + offset
                if rate and rng.random() < rate:
                    plant_cin(block, rng, self._xml_rel(year), line0 + len(lines) + 1,
                              child_id, self.faults)
                lines += block
            lines.append("    </Child>")
            n_refs += len(shown)
        if lines:
            fh, counter = self._xml(year)
            fh.write("\n".join(lines) + "\n")
            counter[0] += len(lines)
            self.rows += n_refs

    def _xml_rel(self, year: int) -> str:
        return f"{self.la}/cin_census/{year}.xml"

    # --- education and NEET -------------------------------------------------------------------
    def _pupils(self, f: dict[str, pd.DataFrame], rng: np.random.Generator) -> None:
        a = f["attendance"]
        self._emit("education", 0, pd.DataFrame({
            "UPN": a["upn"].to_numpy(), "DOB": fmt(a["dob"], ISO),
            "POSTCODE": a["home_post"].to_numpy(), "ACADEMIC_YEAR": a["academic_year"].to_numpy(),
            "TERM": a["term"].to_numpy(), "SESSIONS_POSSIBLE": a["sessions_possible"].to_numpy(),
            "SESSIONS_AUTHORISED": a["sessions_authorised_absence"].to_numpy(),
            "SESSIONS_UNAUTHORISED": a["sessions_unauthorised_absence"].to_numpy(),
            "FSM_ELIGIBLE": a["fsm_eligible"].to_numpy(int),
            "PUPIL_PREMIUM": a["pupil_premium"].to_numpy(int)}), "education", rng, "UPN",
            list(zip(a["child_id"], a["academic_year"], a["term"], strict=True)))
        n = f["neet"]
        self._emit("neet", 0, pd.DataFrame({
            "UPN": n["upn"].to_numpy(), "DOB": fmt(n["dob"], ISO),
            "POSTCODE": n["home_post"].to_numpy(), "ACTIVITY_MONTH": fmt(n["activity_month"], ISO),
            "ACTIVITY_CODE": n["activity_code"].to_numpy()}), "neet", rng, "UPN",
            list(zip(n["child_id"], n["activity_month"], strict=True)))

    def close(self) -> None:
        for key, dups in sorted(self.pending_dups.items()):
            f = self.csv[key]
            df = pd.concat(dups, ignore_index=True)
            for i, child in enumerate(df["CHILD"]):
                self.faults.add(file=self._rel(f), line=f.line + 1 + i, child=str(child),
                                kind="duplicate_episode", table="episodes", column=None,
                                rule="501", fmt="ssda903",
                                detail="an exact copy of an earlier episode row")
            f.write(df)
            self.rows += len(df)
        for f in self.csv.values():
            f.close()
        for fh, _ in self.xml.values():
            fh.write("  </Children>\n</Message>\n")
            fh.close()


def _cin_details(r: tuple[Any, ...], nested: dict[str, dict[int, list[tuple[Any, ...]]]],
                 reviews: dict[int, list[int]], year: int, ye: int
                 ) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Lines of one CINdetails block as the file of `year` (known up to `ye`) shows it, and
    (table, record id, line offset) of each record block in it."""
    rid, _, ref_date, source, need, closure, rfc, nfa, icpc = r[:9]

    def d(day: int) -> str:
        return str(ISO[day - _BASE])

    def known(day: int) -> bool:
        return 0 <= day <= ye

    def shown(name: str) -> list[tuple[Any, ...]]:
        return [x for x in nested[name].get(rid, ()) if x[-2] <= year <= x[-1]]

    blocks: list[tuple[str, int, int]] = [("referrals", rid, 0)]
    out = ["      <CINdetails>", f"        <CINreferralDate>{d(ref_date)}</CINreferralDate>",
           f"        <ReferralSource>{source}</ReferralSource>",
           f"        <PrimaryNeedCode>{need}</PrimaryNeedCode>"]
    if known(closure):
        out += [f"        <CINclosureDate>{d(closure)}</CINclosureDate>",
                f"        <ReasonForClosure>{rfc}</ReasonForClosure>"]
    if known(icpc):
        out.append(f"        <DateOfInitialCPC>{d(icpc)}</DateOfInitialCPC>")
    for a_rid, _, _, start, auth, factors, *_ in shown("assessments"):
        blocks.append(("assessments", a_rid, len(out)))
        out += ["        <Assessments>",
                f"          <AssessmentActualStartDate>{d(start)}</AssessmentActualStartDate>"]
        if known(auth):
            out.append(f"          <AssessmentAuthorisationDate>{d(auth)}"
                       "</AssessmentAuthorisationDate>")
            out.append("          <FactorsIdentifiedAtAssessment>")
            out += [f"            <AssessmentFactors>{code}</AssessmentFactors>"
                    for code in factors.split(",") if code]
            out.append("          </FactorsIdentifiedAtAssessment>")
        out.append("        </Assessments>")
    for c_rid, _, _, start, end, *_ in shown("cin_plans"):
        blocks.append(("cin_plans", c_rid, len(out)))
        out += ["        <CINPlanDates>", f"          <CINPlanStartDate>{d(start)}</CINPlanStartDate>"]
        if known(end):
            out.append(f"          <CINPlanEndDate>{d(end)}</CINPlanEndDate>")
        out.append("        </CINPlanDates>")
    for s_rid, _, _, start, target, s_icpc, not_required, *_ in shown("s47"):
        blocks.append(("s47", s_rid, len(out)))
        out += ["        <Section47>", f"          <S47ActualStartDate>{d(start)}</S47ActualStartDate>",
                f"          <InitialCPCtarget>{d(target)}</InitialCPCtarget>"]
        if known(s_icpc):
            out.append(f"          <DateOfInitialCPC>{d(s_icpc)}</DateOfInitialCPC>")
        out += [f"          <ICPCnotRequired>{'true' if not_required else 'false'}"
                "</ICPCnotRequired>", "        </Section47>"]
    out.append(f"        <ReferralNFA>{'true' if nfa else 'false'}</ReferralNFA>")
    for cp_rid, _, _, start, end, initial, latest, nprev, *_ in shown("cp_plans"):
        blocks.append(("cp_plans", cp_rid, len(out)))
        out += ["        <ChildProtectionPlans>", f"          <CPPstartDate>{d(start)}</CPPstartDate>"]
        if known(end):
            out.append(f"          <CPPendDate>{d(end)}</CPPendDate>")
        out += [f"          <InitialCategoryOfAbuse>{initial}</InitialCategoryOfAbuse>",
                f"          <LatestCategoryOfAbuse>{latest}</LatestCategoryOfAbuse>",
                f"          <NumberOfPreviousCPP>{nprev}</NumberOfPreviousCPP>"]
        days = [v for v in reviews.get(cp_rid, ()) if v <= ye]
        if days:
            out.append("          <Reviews>")
            out += [f"            <CPPreviewDate>{d(v)}</CPPreviewDate>" for v in days]
            out.append("          </Reviews>")
        out.append("        </ChildProtectionPlans>")
    out.append("      </CINdetails>")
    return out, blocks


def _care_periods(f: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per child: first episode start, last episode end, and whether an episode is open."""
    cached = f.get("_care_periods")
    if cached is None:
        ep = f["episodes"]
        cached = ep.assign(open_=ep["dec"] < 0).groupby("child_id").agg(
            start=("decom", "min"), stop=("dec", "max"), open_=("open_", "any"))
        f["_care_periods"] = cached
    return cached


def _oc2(kids: pd.DataFrame, ys: int, ye: int, rng: np.random.Generator) -> pd.DataFrame:
    """OC2 rows of children looked after for 12 months, coherent as the DfE's rules ask: an SDQ
    score or a reason (not 'under 4 or over 17') for those 4 or over at 31 March who turn 17
    on or after 1 April (903 rule 197B counts a 17th birthday on 1 April); conviction data
    from age 10, health promotion (HEALTH_CHECK) under 5 only; the two intervention items only
    for a substance misuse problem, and whether one was offered only when none was received."""
    n = len(kids)
    dob = kids["dob"].to_numpy()
    age_end = age_months_vec(dob, np.full(n, ye)) // 12
    age_start = age_months_vec(dob, np.full(n, ys - 1)) // 12  # age the day before 1 April

    def flag(p: float, applies: np.ndarray | bool = True) -> np.ndarray:
        return np.where(applies, np.where(rng.random(n) < p, "1", "0"), "")

    needs_sdq = (age_end >= 4) & (age_start < 17)
    scored = needs_sdq & (rng.random(n) < 0.75)
    substance = flag(0.04)
    received = flag(0.6, substance == "1")
    return pd.DataFrame({
        "CHILD": kids["child_id"].to_numpy(), "DOB": fmt(kids["dob"], DMY),
        "SDQ_SCORE": np.where(scored, rng.integers(0, 41, size=n).astype(str), ""),
        "SDQ_REASON": np.where(needs_sdq & ~scored, _draw(rng, codes.SDQ_REASON, n), ""),
        "CONVICTED": flag(0.04, age_end >= 10), "HEALTH_CHECK": flag(0.9, age_end < 5),
        "IMMUNISATIONS": flag(0.85), "TEETH_CHECK": flag(0.85),
        "HEALTH_ASSESSMENT": flag(0.9), "SUBSTANCE_MISUSE": substance,
        "INTERVENTION_RECEIVED": received,
        "INTERVENTION_OFFERED": flag(0.5, received == "0")})


def _sw_episodes(kids: pd.DataFrame, pc: pd.DataFrame, ys: int, ye: int,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Social worker episodes of the children looked after in the year: a chain from the start
    of the year or of care, a change of worker now and then (each starting the day the last
    ended, 903 SW10a), the latest still open at the year's end, also after care ended, since
    the child keeps a social worker (SW11b, SW17). Changes fall while the child is looked after
    (SW12)."""
    rows: list[tuple[Any, ...]] = []
    starts = pc["start"].to_numpy()
    stops = np.where(pc["open_"].to_numpy() | (pc["stop"].to_numpy() > ye), ye,
                     pc["stop"].to_numpy())
    changes = rng.poisson(0.5, size=len(kids))
    for child, dob, start, stop, k in zip(kids["child_id"], kids["dob"], starts, stops, changes,
                                          strict=True):
        day = max(int(start), ys)
        reason = "FCONTA" if start >= ys else str(_draw(rng, codes.SW_REASON, 1)[0])
        drawn = sorted(rng.integers(day + 7, stop, size=k).tolist()) if stop > day + 14 else []
        cuts = [c for i, c in enumerate(drawn) if i == 0 or c >= drawn[i - 1] + 7]
        for cut in [*cuts, -1]:
            rows.append((child, int(dob), f"SW{int(rng.integers(0, 99999)):05d}", day, cut,
                         reason))
            day, reason = cut + 1, str(_draw(rng, codes.SW_REASON, 1)[0])
    sw = pd.DataFrame(rows, columns=["CHILD", "dob", "SW_ID", "start", "end", "SW_REASON"])
    return pd.DataFrame({
        "CHILD": sw["CHILD"].to_numpy(), "DOB": fmt(sw["dob"], DMY), "SW_ID": sw["SW_ID"],
        "SW_DECOM": fmt(sw["start"], DMY), "SW_DEC": fmt(sw["end"], DMY),
        "SW_REASON": sw["SW_REASON"]})


def _draw(rng: np.random.Generator, cat: codes.Cat, n: int) -> np.ndarray:
    weights = np.diff(np.array((0.0, *cat.cum)))
    return rng.choice(np.array(cat.items, dtype=object), size=n, p=weights / weights.sum())
