"""Children's case histories, one chunk of children at a time.

Two kinds of children are simulated per LA:
- *referred* children: their first referral inside the data period is the cohort index date
  (a uniform date over the period). Outcomes inside the follow-up window are drawn first, with the
  planted effects, and the history is then built to realise exactly those outcomes (the
  definitions of docs/architecture.md): care entry, residential placement, placement moves,
  missing spells, CP plan, re-referral. Events before the data period are closed before it
  starts; events after the follow-up are free.
- *long-stay* children: in care since before the data period, with no episode or CIN activity
  starting inside it (so they never make an index), who leave care later or age out.

Everything is drawn from one `Stream` per chunk in a fixed order, so a chunk is reproducible.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trialvault.synth import codes
from trialvault.synth.params import (
    CHUNK,
    DISABILITY_CARE_SHIFT,
    UASC_CARE_SHIFT,
    Stream,
    SynthParams,
    add_months,
    add_working_days,
    age_months,
    collection_year,
    day_of,
    next_weekday,
)
from trialvault.synth.places import places_of, providers_for

NA = -1
K3_FROM = day_of(dt.date(2024, 4, 1))  # K3 exists from collection year 2025
# The last day an H5 or P2 placement may end: from 28 October 2023 supported accommodation is
# registered with Ofsted (an H5 placement then needs its URN, 903 rule 230) and P2 is withdrawn
# (903 rule 217t). Registered H5 placements of the months before K3 are not drawn.
UNREGISTERED_UNTIL = day_of(dt.date(2023, 10, 28))
# (group, weight, min age days, max age days) of the child's age at the first referral.
AGE_GROUPS = ((0.10, 0, 364), (0.20, 365, 5 * 365), (0.22, 5 * 365, 10 * 365),
              (0.10, 10 * 365, 12 * 365), (0.38, 12 * 365 + 3, 17 * 365 + 300))
AGE_CARE_FACTOR = (1.8, 1.0, 0.7, 0.8, 1.0)


@dataclass
class ChunkData:
    """Rows of one chunk, as tuples (columns in `COLUMNS`)."""

    la: int
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)


COLUMNS: dict[str, tuple[str, ...]] = {
    "children": ("child_id", "dob", "sex", "ethnicity", "disabilities", "uasc", "upn",
                 "upn_unknown", "home_post", "mother", "mc_dob", "kind", "index_day",
                 "eligible", "treat", "period", "ever_care", "fsm"),
    "referrals": ("rid", "child_id", "referral_date", "source", "need", "closure", "rfc", "nfa",
                  "icpc"),
    "assessments": ("rid", "ref_rid", "child_id", "start", "auth", "factors"),
    "s47": ("rid", "ref_rid", "child_id", "start", "target", "icpc", "not_required"),
    "cin_plans": ("rid", "ref_rid", "child_id", "start", "end"),
    "cp_plans": ("rid", "ref_rid", "child_id", "start", "end", "initial", "latest", "nprev"),
    "cp_reviews": ("cp_rid", "day"),
    "episodes": ("rid", "child_id", "decom", "rne", "ls", "cin", "place", "provider", "dec",
                 "rec", "rpc", "home_post", "pl_post", "urn"),
    "missing": ("rid", "child_id", "type", "start", "end"),
    "reviews": ("child_id", "day", "code"),
    "adoptions": ("child_id", "date_placed", "date_match", "adopted", "foster_care"),
    "outcomes": ("child_id", "care", "residential", "cp", "reref", "moves", "missing",
                 "care_effect"),
}


def upn_for(la: int, seq: int) -> str:
    """A well-formed UPN (DfE check letter) built from the LA code and a serial number."""
    digits = f"{la:03d}{seq % 10**9:09d}"
    total = sum(int(ch) * w for ch, w in zip(digits, range(2, 14), strict=True))
    return "ABCDEFGHJKLMNPQRTUVWXYZ"[total % 23] + digits


class _Builder:
    """Builds one chunk's histories."""

    def __init__(self, p: SynthParams, la: int, chunk_key: int, s: Stream) -> None:
        self.p, self.la, self.s = p, la, s
        self.out = ChunkData(la)
        self._rid = chunk_key << 24
        self._cp: list[Any] | None = None
        self._host_row: list[Any] = []
        self._next_ls = "C2"
        self._last_close = NA
        self._area = p.area(la)
        self._where = places_of(self._area)
        self._home = ""

    def rid(self) -> int:
        self._rid += 1
        return self._rid

    # --- small draws ------------------------------------------------------------------------
    def postcode(self, near: float = 0.0, far: float = 0.0) -> str:
        """A real postcode: in the LA's area, a neighbouring one (`near`) or far away."""
        r = self.s.u()
        pool = self._where.far if r < far else self._where.near if r < far + near else \
            self._where.home
        return pool[int(self.s.u() * len(pool))]

    def between(self, lo: int, hi: int) -> int:
        return lo if hi <= lo else self.s.integer(lo, hi)

    def distinct_days(self, lo: int, hi: int, k: int) -> list[int]:
        """k distinct days in [lo, hi] (fewer if the range is shorter), sorted."""
        span = hi - lo + 1
        if k <= 0 or span <= 0:
            return []
        k = min(k, span)
        if span <= 4 * k:
            return sorted(lo + d for d in self.s.sample(range(span), k))
        chosen: set[int] = set()
        while len(chosen) < k:
            chosen.add(lo + int(self.s.u() * span))
        return sorted(chosen)

    # --- children ---------------------------------------------------------------------------
    def child(self, seq: int, kind: str, dob: int, uasc: bool, index: int, eligible: bool,
              treat: bool, period: int, ever_care: bool, disabled: bool) -> str:
        s, p = self.s, self.p
        child_id = str(seq)
        sex = "M" if s.bern(0.92 if uasc else 0.52) else "F"
        eth = s.pick(codes.UASC_ETHNICITY if uasc else codes.ETHNICITY)
        disab = "NONE"
        if disabled:
            disab = s.pick(codes.DISABILITY)
            if s.bern(0.3):
                other = s.pick(codes.DISABILITY)
                disab = disab if other == disab else f"{disab},{other}"
        has_upn = dob <= p.data_end - 4 * 365 and not (uasc and s.bern(0.3))
        upn = upn_for(self.la, seq) if has_upn else ""
        upn_unknown = "" if has_upn else ("UN4" if uasc else "UN1")
        mother, mc_dob = "", NA
        if sex == "F" and age_months(dob, p.data_end) >= 11 * 12 + 6 and ever_care:
            mother = "0"
            if s.bern(0.03) and age_months(dob, p.data_end) >= 16 * 12:
                mother, mc_dob = "1", self.between(dob + 16 * 365, p.data_end - 30)
        self._home = self.postcode()
        self.out.add("children", (child_id, dob, sex, eth, disab, uasc, upn, upn_unknown,
                                  self._home, mother, mc_dob, kind, index, eligible, treat,
                                  period, ever_care, s.bern(0.45)))
        return child_id

    # --- referred children ------------------------------------------------------------------
    def referred(self, seq: int) -> None:
        s, p, la = self.s, self.p, self.la
        index = p.data_start + int(s.u() * (p.data_end - p.data_start + 1))
        r, group = s.u(), len(AGE_GROUPS) - 1
        for i, (w, _, _) in enumerate(AGE_GROUPS):
            if r < w:
                group = i
                break
            r -= w
        _, lo, hi = AGE_GROUPS[group]
        dob = index - s.integer(lo, hi)
        am = age_months(dob, index)
        eligible = index <= p.index_end and p.min_age_months <= am <= p.max_age_months
        period = p.period(index)
        exposed = index >= p.step_day[la]
        treat = eligible and exposed
        uasc = am >= 14 * 12 and s.bern(0.05)
        # Outcome probabilities: cell baseline + planted effect (eligible and exposed) +
        # covariate shifts common to both arms; ineligible children get age-scaled baselines.
        cell_period = min(max(period, 0), p.n_periods - 1)

        def cell(name: str) -> float:
            return p.cell(name, la, cell_period)

        def eff(name: str) -> float:
            return p.effect(name) if treat else (0.0 if name in _BIN else 1.0)

        factor = 1.0 if eligible else AGE_CARE_FACTOR[group]
        disabled = s.bern(0.10)
        p_care, care_effect = care_probability(p, la, cell_period, factor, uasc, disabled, treat,
                                               period - p.period(p.step_day[la]))
        p_res = max(0.0, min(p_care, cell("residential_placement_12m")
                             * (1 if group >= 3 else 0.2) + eff("residential_placement_12m")))
        p_cp = min(1.0, cell("cp_plan_12m") * (1 if eligible else 2.0) + eff("cp_plan_12m"))
        p_reref = cell("rereferral_12m") + eff("rereferral_12m")
        mu_moves = cell("placement_moves_12m") * eff("placement_moves_12m")
        mu_miss = cell("missing_episodes_12m") * eff("missing_episodes_12m") * (
            1.0 if group >= 3 else 0.05)
        care = s.bern(p_care)
        res = care and p_care > 0 and s.bern(p_res / p_care)
        cp = s.bern(p_cp)
        reref = s.bern(p_reref)
        moves = s.poisson(mu_moves / max(p_care, 1e-9)) if care else 0
        miss = s.poisson(mu_miss / max(p_care, 1e-9)) if care else 0
        child_id = self.child(seq, "referred", dob, uasc, index, eligible, treat, period, care,
                              disabled)
        if eligible:
            self.out.add("outcomes", (child_id, care, res, cp, reref, moves, miss, care_effect))
        self._history(child_id, dob, index, uasc, care, res, cp, reref, moves, miss)

    def _history(self, child_id: str, dob: int, index: int, uasc: bool, care: bool, res: bool,
                 cp: bool, reref: bool, moves: int, miss: int) -> None:
        s, p = self.s, self.p
        fe = add_months(index, p.follow_up_months)
        bday18 = add_months(dob, 216)
        limit = min(fe, bday18)
        teen = age_months(dob, index) >= 144
        self._last_close = NA
        nprev = self._prior_history(child_id, dob, index)
        host = index
        if reref:
            need = 5 + (40 if cp else 0) + (moves + miss + 10 if care else 0)
            latest = max(index + 2, limit - 1 - need)
            close1 = min(index + s.integer(3, 45), latest - 1)
            nfa = s.bern(0.25)
            self._referral(child_id, dob, index, close1, nfa=nfa, closure_reason=None)
            host = self.between(close1 + 1, latest)
            host = min(host, fe - 1)
        entry = self._host_referral(child_id, dob, host, index, fe, limit, teen, uasc, care,
                                    cp, moves, miss, nprev, direct_ok=not reref)
        if care:
            end = self._care(child_id, dob, entry, fe, limit, bday18, res, moves, miss, uasc,
                             teen)
            self._close_host(end)
        self._later_referrals(child_id, dob, fe, bday18, care)

    def _prior_history(self, child_id: str, dob: int, index: int) -> int:
        """A closed referral before the data period (re-referral realism); returns prior CPPs."""
        s, p = self.s, self.p
        if not s.bern(0.3):
            return 0
        start = index - s.integer(200, 1500)
        end = start + s.integer(60, 400)
        if start <= dob + 30 or end >= p.data_start:
            return 0
        rid = self.rid()
        had_cp = s.bern(0.3)
        self.out.add("referrals", (rid, child_id, start, s.pick(codes.REFERRAL_SOURCE),
                                   s.pick(codes.PRIMARY_NEED), end, "RC7", False, NA))
        self.out.add("assessments", (self.rid(), rid, child_id, start + 2, start + 30,
                                     self._factors(dob, start)))
        if had_cp:
            cat = s.pick(codes.ABUSE)
            cp_start = start + 35
            self.out.add("cp_plans", (self.rid(), rid, child_id, cp_start, end, cat, cat, 0))
        return int(had_cp)

    def _factors(self, dob: int, day: int) -> str:
        s = self.s
        cat = codes.FACTORS_TEEN if age_months(dob, day) >= 144 else codes.FACTORS_YOUNG
        n = 1 + (s.u() < 0.5) + (s.u() < 0.25)
        picked: list[str] = []
        for _ in range(n):
            f = s.pick(cat)
            if f not in picked:
                picked.append(f)
        return ",".join(picked)

    def _referral(self, child_id: str, dob: int, start: int, close: int, *, nfa: bool,
                  closure_reason: str | None) -> int:
        s = self.s
        rid = self.rid()
        if nfa:
            # The decision is taken on the referral: closed that day or the next working day,
            # so the referral is in one census only (CIN 8569Q). No assessment took place, so
            # not RC8/RC9 ("closed after assessment", CIN 8825Q).
            close = start if s.bern(0.8) else add_working_days(start, 1)
            self.out.add("referrals", (rid, child_id, start, s.pick(codes.REFERRAL_SOURCE),
                                       "N9", close, "RC7", True, NA))
            return rid
        a_start = min(start + s.integer(0, 5), close)
        auth = min(add_working_days(a_start, s.integer(5, 35)), close)
        self.out.add("assessments", (self.rid(), rid, child_id, a_start, auth,
                                     self._factors(dob, a_start)))
        reason = closure_reason or ("RC8" if s.bern(0.6) else "RC9")
        if reason in ("RC8", "RC9"):
            close = self._closed_after(auth, close)
        self.out.add("referrals", (rid, child_id, start, s.pick(codes.REFERRAL_SOURCE),
                                   s.pick(codes.PRIMARY_NEED), close, reason, False, NA))
        return rid

    def _closed_after(self, auth: int, close: int) -> int:
        """A case closed after assessment closes when the assessment is signed off or a few
        working days later, in the same census year (CIN 8825Q: RC8/RC9 need the assessment
        in the return)."""
        day = min(close, add_working_days(auth, self.s.integer(0, 3)))
        return day if collection_year(day) == collection_year(auth) else auth

    def _host_referral(self, child_id: str, dob: int, h: int, index: int, fe: int, limit: int,
                       teen: bool, uasc: bool, care: bool, cp: bool, moves: int, miss: int,
                       nprev: int, *, direct_ok: bool) -> int:
        """The referral holding the follow-up's CP plan and care entry; returns the entry day."""
        s = self.s
        rid = self.rid()
        a_start = h + (0 if care and s.bern(0.3) else s.integer(0, 5))
        auth = add_working_days(a_start, s.integer(5, 40))
        factors = self._factors(dob, a_start)
        if uasc:
            factors = "9A" if not factors else f"9A,{factors}"
        a_rid = self.rid()
        close = auth + s.integer(0, 20)
        reason = "RC8" if s.bern(0.65) else "RC9"
        s47_end = NA
        entry = NA
        care_room = moves + miss + 3 if care else 0
        cp_start = NA
        if cp:
            cp_limit = max(h, min(fe, add_months(dob, 216)) - 1 - care_room)
            s47 = min(h + s.integer(0, 14), cp_limit)
            icpc = next_weekday(s47 + s.integer(5, 14))
            while icpc > cp_limit and icpc > s47:
                icpc -= 1
            icpc = max(icpc, s47)
            self.out.add("s47", (self.rid(), rid, child_id, s47, add_working_days(s47, 15),
                                 icpc, False))
            s47_end = icpc
            # The conference is recorded on the S47 that led to it, not again at the CIN
            # details level (CIN 2884).
            cp_start = icpc
            cp_end = cp_start + s.integer(120, 540)
            cat = s.pick(codes.ABUSE)
            latest = cat if s.bern(0.85) else s.pick(codes.ABUSE)
            cp_rid = self.rid()
            self._cp = [cp_rid, rid, child_id, cp_start, cp_end, cat, latest, nprev]
            close = max(close, cp_end + s.integer(0, 60))
            reason = "RC7"
        else:
            self._cp = None
            if s.bern(0.12):
                s47 = h + s.integer(0, 10)
                not_required = s.bern(0.6)
                icpc = NA if not_required else next_weekday(s47 + s.integer(5, 14))
                self.out.add("s47", (self.rid(), rid, child_id, s47, add_working_days(s47, 15),
                                     icpc, not_required))
                s47_end = add_working_days(s47, 15) if icpc == NA else icpc
                close = max(close, s47 + 20)
                reason = "RC7"  # an enquiry followed: not closed after assessment (CIN 2990)
            if not care and s.bern(0.45):
                start = auth + s.integer(0, 10)
                end = start + s.integer(90, 400)
                self.out.add("cin_plans", (self.rid(), rid, child_id, start, end))
                close = max(close, end + s.integer(0, 30))
                reason = "RC7"
        # The assessment runs alongside the enquiry and is signed off once it concludes, so a
        # Section 47 never shows in a census without its assessment (CIN 2991Q).
        auth = max(auth, s47_end)
        self.out.add("assessments", (a_rid, rid, child_id, a_start, auth, factors))
        if reason in ("RC8", "RC9"):
            close = self._closed_after(auth, close)
        close = max(close, auth)
        if care:
            lo = cp_start + 1 if cp else h
            hi = limit - 1 - (moves + miss + 1)
            entry = h if (direct_ok and not cp and h == index and s.bern(0.3)) else \
                self.between(lo, max(lo, hi))
            entry = min(entry, limit - 1)
            if self._cp is not None and entry > self._cp[3]:
                self._cp[4] = min(self._cp[4], entry)
        if self._cp is not None:
            self._write_cp()
        self._host_row = [rid, child_id, h, s.pick(codes.REFERRAL_SOURCE),
                          s.pick(codes.PRIMARY_NEED), close, reason, False, NA]
        if not care:
            self.out.add("referrals", tuple(self._host_row))
            self._last_close = close
        return entry

    def _write_cp(self) -> None:
        if self._cp is None:
            return
        cp_rid, rid, child_id, start, end, cat, latest, nprev = self._cp
        self.out.add("cp_plans", (cp_rid, rid, child_id, start, end, cat, latest, nprev))
        day = add_working_days(start, 65)
        while day < end:
            self.out.add("cp_reviews", (cp_rid, day))
            day += 182

    def _close_host(self, care_end: int) -> None:
        """The referral of a child in care closes after the care period ends."""
        row = self._host_row
        row[5] = max(row[5], care_end + self.s.integer(0, 30))
        row[6] = "RC7"
        self._last_close = row[5]
        self.out.add("referrals", tuple(row))

    # --- care ------------------------------------------------------------------------------
    def _care(self, child_id: str, dob: int, entry: int, fe: int, limit: int, bday18: int,
              res: bool, moves: int, miss: int, uasc: bool, teen: bool) -> int:
        """One period of care from `entry`; returns its end day (NA: still looked after)."""
        s = self.s
        move_days = self.distinct_days(entry + 1, limit - 1, moves)
        legal_day = NA
        ls = s.pick(codes.LS_TEEN if teen else codes.LS_YOUNG)
        if not teen and ls in codes.YOUTH_JUSTICE_LS:
            ls = "V2"
        if ls == "J2" and (moves or res or miss or limit < fe or entry + 2 >= limit):
            ls = "J1"  # a PACE transfer lasts a night or two: a longer stay is a remand
        if ls == "J2":
            end = entry + s.integer(1, 2)
            self._episodes(child_id, dob, entry, ls, [entry], [False], NA, [], end, bday18,
                           uasc, final_rec=s.pick(codes.REC_AFTER_PACE))
            self._reviews(child_id, dob, entry, end)
            return end
        # Legal status changes inside the period: police protection (L1), an EPO (L2) and a
        # child assessment order (L3) end within their legal limits (903 rules 361, 362, 363);
        # an interim order often becomes a full care order months later.
        self._next_ls = "C2"
        if ls in codes.EMERGENCY_LS_DAYS:
            window = range(entry + 1, entry + codes.EMERGENCY_LS_DAYS[ls] + 1)
            free = [d for d in window if d < limit - 1 and d not in move_days]
            if free:
                legal_day = free[s.integer(0, len(free) - 1)]
                self._next_ls = "C1" if ls == "L2" or s.bern(0.5) else "V2"
            else:
                ls = "V2"
        elif ls == "C1" and s.bern(0.6):
            d = entry + s.integer(120, 300)
            if d < limit - 1 and d not in move_days:
                legal_day = d
        last_fu = max([entry, *move_days, legal_day])
        ends_in_fu = limit < fe or s.bern(0.35)
        if limit < fe:
            end = bday18  # ages out inside the follow-up
        elif ends_in_fu:
            end = self.between(max(last_fu + 1, entry + miss + 2), limit - 1)
        else:
            end = NA
        # Follow-up placements: fix which starts are residential (exactly `res` any).
        starts = [entry, *move_days]
        resid = [False] * len(starts)
        if res:
            j = 0 if (len(starts) == 1 or s.bern(0.5)) else s.integer(1, len(starts) - 1)
            resid[j] = True
            for i in range(len(starts)):
                if i != j and s.bern(0.2):
                    resid[i] = True
        # After the follow-up: continuation with moves, then an exit.
        post_moves: list[int] = []
        if end == NA:
            end = fe + s.integer(30, 1600)
            young = age_months(dob, entry) < 60
            if young and s.bern(0.3):
                return self._adoption_route(child_id, dob, entry, ls, starts, resid, move_days,
                                            legal_day, fe, miss, uasc)
            if end >= bday18:
                end = bday18
            post_moves = self.distinct_days(fe, end - 1, s.poisson((end - fe) / 365 * 0.8))
            interlude = self._interlude(fe, end, post_moves)
        else:
            interlude = None
        self._episodes(child_id, dob, entry, ls, starts, resid, legal_day, post_moves, end,
                       bday18, uasc, interlude=interlude)
        self._missing(child_id, entry, end, limit, fe, miss, teen)
        self._reviews(child_id, dob, entry, end)
        return end

    def _interlude(self, fe: int, end: int, moves: list[int]) -> tuple[int, int, str] | None:
        """(first day, day back, code) of a temporary placement after the follow-up, clear of
        the period's other moves and of its end (903 rules 380, 381), or None."""
        s = self.s
        if not s.bern(codes.TEMPORARY_SHARE):
            return None
        code = s.pick(codes.TEMPORARY_PLACE)
        days = s.integer(1, codes.TEMPORARY_MAX_DAYS[code])
        start = self.between(fe + 1, end - days - 2)
        back = start + days
        if start <= fe or back >= end - 1 or any(start - 1 <= m <= back + 1 for m in moves):
            return None
        return start, back, code

    def _place(self, dob: int, day: int, residential: bool, ls: str) -> str:
        s = self.s
        if residential:
            if ls == "J1" and age_months(dob, day) >= 120 and s.bern(0.5):
                return "R5"  # remanded to youth detention accommodation
            if age_months(dob, day) < 12 and s.bern(codes.BABY_WITH_MOTHER):
                return "R3"
            place = s.pick(codes.RESIDENTIAL_PLACE)
            if place == "S1" and age_months(dob, day) < 60:
                place = "K2"
            return place
        if age_months(dob, day) >= 192 and day >= K3_FROM and s.bern(0.3):
            return "K3"
        if age_months(dob, day) >= 192 and s.bern(codes.SEMI_INDEPENDENT_SHARE):
            # Only for a young person who is 18 before the code ended: a period of care ends
            # by the 18th birthday, so the placement does too.
            bday18 = add_months(dob, 216)
            if bday18 <= UNREGISTERED_UNTIL:
                return "P2" if s.bern(codes.INDEPENDENT_SHARE) else "H5"
        place = s.pick(codes.FAMILY_PLACE)
        if place in ("U2", "U5") and age_months(dob, day) >= 24:
            place = "U3" if place == "U2" else "U6"  # fostering for adoption: babies
        if place == "P1" and ls == "V2":
            place = "U6"  # placed with parents needs an order (903 rule 378)
        return place

    def _at(self, place: str, home: str, before: tuple[str, str, str, str] | None = None
            ) -> tuple[str, str, str, str]:
        """(PLACE, PLACE_PROVIDER, URN, PL_POST) of a placement of type `place` with one of
        the LA's providers; a change of placement differs from `before` in one of them."""
        s = self.s
        if place == "P1" and (not home or (before is not None and before[0] == "P1")):
            place = "U6"  # no home to go to, or a move away from it (903 rules 435, 436)
        if place == "P1":
            return place, "PR0", "", home
        options = providers_for(self.p.seed, self.la, self._area, place)
        for _ in range(4):
            code = s.pick(codes.PROVIDER[place])
            if not options:  # NHS, residential care homes, custody: no Ofsted URN
                urn = "XXXXXXX" if place in codes.UNREGISTERED else ""
                # The LA's own provision is in its own area (903 rule 1015).
                where = self.postcode() if code == "PR1" else self.postcode(near=0.5, far=0.2)
                got = (place, code, urn, where)
            else:
                same = [o for o in options if o.code == code] or list(options)
                prov = same[int(s.u() * len(same))]
                # A home's address is the placement's; foster carers and adopters live anywhere.
                pl_post = prov.postcode if place in codes.HOME_PLACES else \
                    self.postcode(near=0.4, far=0.1) if place.startswith("A") else \
                    self.postcode(near=0.25, far=0.05)
                got = (place, prov.code, prov.urn, pl_post)
            # Only placed with parents is at the home address (903 rule 392d): a sample of 30
            # postcodes per area makes a draw of the family's own postcode likely enough.
            if got != before and got[3] != home:
                break
        if got[3] == home and home and place not in codes.HOME_PLACES:
            got = (*got[:3], self.postcode(near=1.0))  # a neighbouring area's postcode
        return got

    def _episodes(self, child_id: str, dob: int, entry: int, ls: str, starts: list[int],
                  resid: list[bool], legal_day: int, post_moves: list[int], end: int,
                  bday18: int, uasc: bool, final_rec: str | None = None,
                  interlude: tuple[int, int, str] | None = None) -> None:
        s = self.s
        cin = "N8" if uasc else s.pick(codes.CIN_903)
        # An unaccompanied asylum-seeking child has no home address in England: no home
        # postcode, so no placement distance (903 rule 406).
        home = "" if uasc else self._home
        plan: list[tuple[int, str, bool | None]] = [(d, "move", r) for d, r in
                                                    zip(starts, resid, strict=True)]
        plan[0] = (entry, "S", resid[0])
        if legal_day != NA:
            plan.append((legal_day, "L", None))
        plan += [(d, "move", s.bern(0.15)) for d in post_moves]
        if interlude is not None:
            plan += [(interlude[0], "away", None), (interlude[1], "back", None)]
        plan.sort(key=lambda t: t[0])
        at: tuple[str, str, str, str] = ("", "", "", "")
        usual = at
        rows: list[list[Any]] = []
        for day, kind, residential in plan:
            temporary = kind in ("away", "back")
            rne = "S" if kind == "S" else "L" if kind == "L" else "P" if temporary else \
                s.pick(codes.MOVE_RNE)
            if kind == "L":
                new_ls = "C1" if self._next_ls == "V2" and at[0] == "P1" else self._next_ls
                if new_ls == ls:
                    continue  # the order came with an earlier move (RNE B or U)
                ls = new_ls
            elif rne in ("B", "U"):
                # The legal status changes with the placement (903 rule 436): an interim care
                # order after section 20, a full order after an interim one; otherwise the
                # move changes the placement only (P or T, 903 rule 435).
                nxt = codes.NEXT_LS.get(ls)
                if nxt is None:
                    rne = "P" if rne == "B" else "T"
                else:
                    ls = nxt
            if kind == "L":
                pass
            elif kind == "away" and interlude is not None:
                # A temporary placement has no provider or URN (903 rules 213, 222); cover for
                # foster carers' holiday only when the child is fostered (else another kind of
                # temporary placement, of the same length).
                code = interlude[2]
                if code == "T3" and not at[0].startswith("U"):
                    code = "T0"
                usual = at
                at = (code, "", "", self.postcode(near=1.0))
            elif kind == "back":
                at = usual  # the usual placement again, as it was (903 rule 383)
            elif rne in ("T", "U") and at[0] in codes.LONG_TERM and not residential:
                # Same carers, new placement: short-term fostering becomes long-term.
                at = (codes.LONG_TERM[at[0]], *at[1:])
            else:
                if rne in ("T", "U"):
                    rne = "P" if rne == "T" else "B"  # same carers only for foster placements
                place = self._place(dob, day, bool(residential), ls)
                at = self._at(place, home, at if rows else None)
            if rows:
                rows[-1][8] = day
                rows[-1][9] = "X1"
                # No reason for a change into or out of a temporary placement (903 rule 226).
                rows[-1][10] = self._place_change(dob, day) if rne in ("P", "B", "T", "U") \
                    and not temporary else ""
            rows.append([self.rid(), child_id, day, rne, ls, cin, at[0], at[1], NA, "", "",
                         home, at[3], at[2]])
        rows[-1][8] = end
        if final_rec is not None:
            rows[-1][9] = final_rec
        elif end == bday18:
            rows[-1][9] = s.pick(codes.REC_AT_18)
        elif ls == "J1" and s.bern(0.5):
            rows[-1][9] = "E14"  # the remand ended
        elif ls in ("J1", "J3") and s.bern(0.2):
            rows[-1][9] = "E9"  # sentenced to custody
        elif uasc and age_months(dob, end) >= 192 and s.bern(0.1):
            rows[-1][9] = "E15"  # an age assessment found the young person to be an adult
        elif not uasc and age_months(dob, end) >= 192 and s.bern(codes.LEAVING_CARE_16_17):
            rows[-1][9] = s.pick(codes.REC_LEAVING_16_17)  # a relevant child leaves care
        else:
            rec = s.pick(codes.REC_HOME)
            if not at[0].startswith("U"):
                rec = codes.SGO_NOT_FROM_FOSTER_CARE.get(rec, rec)
            rows[-1][9] = rec
        for row in rows:
            self.out.add("episodes", tuple(row))

    def _place_change(self, dob: int, day: int) -> str:
        """REASON_PLACE_CHANGE; custody only from age 10 (903 rule 234), realistically 12."""
        reason = self.s.pick(codes.PLACE_CHANGE)
        while reason == "CUSTOD" and age_months(dob, day) < 144:
            reason = self.s.pick(codes.PLACE_CHANGE)
        return reason

    def _adoption_route(self, child_id: str, dob: int, entry: int, ls: str, starts: list[int],
                        resid: list[bool], move_days: list[int], legal_day: int, fe: int,
                        miss: int, uasc: bool) -> int:
        """Young child: placement order, placed for adoption, adopted (after the follow-up)."""
        s = self.s
        order = fe + s.integer(10, 200)
        placed = order + s.integer(30, 200)
        adopted = placed + s.integer(120, 400)
        self._episodes(child_id, dob, entry, ls, starts, resid, legal_day, [], order,
                       add_months(dob, 216), uasc, final_rec="X1")
        last = list(self.out.rows["episodes"][-1])
        rec = "E11" if s.bern(0.8) else "E12"
        agency = providers_for(self.p.seed, self.la, self._area, "A5")
        raa = agency[0] if agency else None
        urn, code = (raa.urn, raa.code) if raa else ("", "PR1")
        with_carers = str(last[6]).startswith("U") and s.bern(0.3)
        if with_carers:
            # Placed for adoption with the current foster carers at the placement order:
            # legal status and placement change together, same carers and home (RNE U, 903
            # rule 217); AD1 FOSTER_CARE 1 (903 rule 335).
            last[10] = "CARPL"
            self.out.rows["episodes"][-1] = tuple(last)
            placed = order
            self.out.add("episodes", (self.rid(), child_id, order, "U", "E1", last[5], "A5", code,
                                      adopted, rec, "", last[11], last[12], urn))
        else:
            self.out.add("episodes", (self.rid(), child_id, order, "L", "E1", last[5], last[6],
                                      last[7], placed, "X1", "CARPL", last[11], last[12],
                                      last[13]))
            self.out.add("episodes", (self.rid(), child_id, placed, "P", "E1", last[5], "A6",
                                      code, adopted, rec, "", last[11],
                                      self.postcode(near=0.4, far=0.1), urn))
        # The decision that the child should be placed for adoption (the placement order here)
        # comes before the match with adopters, and the match before the placement (903 333).
        self.out.add("adoptions", (child_id, order, self.between(order, placed), adopted,
                                   with_carers))
        self._missing(child_id, entry, adopted, min(fe, adopted), fe, miss, False)
        self._reviews(child_id, dob, entry, adopted)
        return adopted

    def _missing(self, child_id: str, entry: int, end: int, limit: int, fe: int, k: int,
                 teen: bool) -> None:
        s = self.s
        fu_last = min(end - 1, limit - 1)
        days = self.distinct_days(entry, fu_last, k)
        if teen and end > fe:
            days += self.distinct_days(fe, end - 1, s.poisson((end - fe) / 365 * 1.2))
        for i, d in enumerate(days):
            stop = d + (s.integer(0, 1) if s.bern(0.6) else s.integer(1, 6))
            if i + 1 < len(days):
                stop = min(stop, days[i + 1] - 1)
            stop = max(d, min(stop, end - 1))  # back before care ends (903 rule 580)
            self.out.add("missing", (self.rid(), child_id, s.pick(codes.MISSING_TYPE), d, stop))

    def _reviews(self, child_id: str, dob: int, entry: int, end: int) -> None:
        s = self.s
        day = add_working_days(entry, 20)
        step = 91
        while day < end and day <= self.p.data_end:
            code = "PN0" if age_months(dob, day) < 48 else s.pick(codes.REVIEW_CODE)
            self.out.add("reviews", (child_id, day, code))
            day += step
            step = 182

    def _later_referrals(self, child_id: str, dob: int, fe: int, bday18: int,
                         care: bool) -> None:
        s = self.s
        # After the follow-up and after the last referral closed (CIN episodes never overlap:
        # CIN rule 8820).
        day = max(fe, self._last_close + 1) + s.integer(0, 400)
        n = s.poisson(0.5)
        for _ in range(n):
            if day >= min(bday18, self.p.data_end + 365) or care:
                return
            close = day + s.integer(10, 200)
            nfa = s.bern(0.15)
            with_plan = not nfa and s.bern(0.3)
            if with_plan:
                close = max(close, day + 90)
            rid = self._referral(child_id, dob, day, close, nfa=nfa,
                                 closure_reason="RC7" if with_plan else None)
            if with_plan:
                start = day + s.integer(20, 40)
                self.out.add("cin_plans", (self.rid(), rid, child_id, start, close))
            day = close + s.integer(30, 700)

    # --- long-stay children ----------------------------------------------------------------
    def long_stay(self, seq: int) -> None:
        s, p = self.s, self.p
        age_at_start = s.integer(400, 17 * 365 + 200)
        dob = p.data_start - age_at_start
        entry = p.data_start - s.integer(120, min(6 * 365, age_at_start - 60))
        bday18 = add_months(dob, 216)
        uasc = age_months(dob, entry) >= 14 * 12 and s.bern(0.08)
        child_id = self.child(seq, "long_stay", dob, uasc, NA, False, False, -1, True,
                              s.bern(0.15))
        teen = age_months(dob, p.data_start) >= 144
        pre_moves = self.distinct_days(entry + 1, p.data_start - 1, s.poisson(1.0))
        end = bday18 if s.bern(0.6) or bday18 <= p.data_end else p.data_start + s.integer(30, 7 * 365)
        end = min(end, bday18)
        starts = [entry, *pre_moves]
        resid = [s.bern(0.15 if teen else 0.02) for _ in starts]
        ls = s.pick(codes.LS_TEEN if age_months(dob, entry) >= 144 else codes.LS_YOUNG)
        if ls in ("C1", "V2", *codes.YOUTH_JUSTICE_LS, *codes.EMERGENCY_LS_DAYS):
            ls = "C2"  # long stays are on full care orders
        # Scenario in_care_moves: placement changes inside the data period (new episodes of
        # the same period of care), and a third of these children assessed while in care.
        rate = p.scenario.get("in_care_moves", 0.0)
        window_moves: list[int] = []
        if rate > 0:
            last = min(end, p.data_end) - 1
            window_moves = self.distinct_days(p.data_start, last,
                                              s.poisson(rate * max(last - p.data_start, 0) / 365))
        self._episodes(child_id, dob, entry, ls, starts, resid, NA, window_moves, end, bday18,
                       uasc)
        rid = self.rid()
        ref = entry - s.integer(0, 60)
        close = end + s.integer(0, 30)
        self.out.add("referrals", (rid, child_id, ref, s.pick(codes.REFERRAL_SOURCE), "N1",
                                   close, "RC7", False, NA))
        self.out.add("assessments", (self.rid(), rid, child_id, ref + 1, ref + 20,
                                     self._factors(dob, ref + 1)))
        if rate > 0 and s.bern(1 / 3):
            day = self.between(p.data_start, min(end, p.data_end) - 30)
            if p.data_start <= day < end - 30:
                self.out.add("assessments", (self.rid(), rid, child_id, day, day + 20,
                                             self._factors(dob, day)))
        if teen:
            k = s.poisson((min(end, p.data_end) - p.data_start) / 365 * 1.0)
            # Spells only while looked after (903 rules 578 and 581).
            for d in self.distinct_days(max(entry, p.data_start - 270),
                                        min(end, p.data_end) - 1, k):
                stop = min(d + s.integer(0, 3), end - 1)
                self.out.add("missing", (self.rid(), child_id, s.pick(codes.MISSING_TYPE), d,
                                         stop))
        self._reviews(child_id, dob, entry, end)


def care_probability(p: SynthParams, la: int, period: int, factor: float, uasc: bool,
                     disabled: bool, treat: bool, exposure_quarters: int
                     ) -> tuple[float, float]:
    """P(entering care in follow-up) and the planted effect on it (p1 − p0 after clipping).

    The one outcome model of the primary outcome, shared with `simulate_cohort`'s fast path:
    cell baseline (LA, quarter, scenario shifts) × age factor + UASC and disability shifts,
    plus the LA's effect (ramped by exposure time) for exposed cohort members; clipped to
    [0, 1] per child."""
    p0 = min(1.0, max(0.0, p.care_cell(la, period) * factor + UASC_CARE_SHIFT * uasc
                      + DISABILITY_CARE_SHIFT * disabled))
    if not treat:
        return p0, 0.0
    p1 = min(1.0, max(0.0, p0 + p.care_effect(la, max(exposure_quarters, 0))))
    return p1, p1 - p0


_BIN = ("entered_care_12m", "residential_placement_12m", "cp_plan_12m", "rereferral_12m",
        "neet_16_17")


def chunk_seed(seed: int, la: int, kind: int, chunk: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, la, kind, chunk])


def simulate_chunk(p: SynthParams, la: int, kind: str, chunk: int) -> ChunkData:
    """Histories of one chunk of `CHUNK` (or fewer) children of one kind in one LA."""
    kind_code = 0 if kind == "referred" else 1
    total = p.referred[la] if kind == "referred" else p.long_stay[la]
    n = min(CHUNK, total - chunk * CHUNK)
    stream = Stream(np.random.default_rng(chunk_seed(p.seed, la, kind_code, chunk)))
    b = _Builder(p, la, (la * 2 + kind_code) * 100_000 + chunk, stream)
    base = 10_000_000 + kind_code * 5_000_000 + chunk * CHUNK
    for i in range(max(n, 0)):
        if kind == "referred":
            b.referred(base + i)
        else:
            b.long_stay(base + i)
    return b.out


def n_chunks(p: SynthParams, la: int, kind: str) -> int:
    total = p.referred[la] if kind == "referred" else p.long_stay[la]
    return -(-total // CHUNK)
