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
A period of care becomes 903 episodes in `synth.episodes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trialvault.synth import codes
from trialvault.synth.episodes import NA, CareEpisodes, ChunkData
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
    next_weekday,
)

# (group, weight, min age days, max age days) of the child's age at the first referral.
AGE_GROUPS = ((0.10, 0, 364), (0.20, 365, 5 * 365), (0.22, 5 * 365, 10 * 365),
              (0.10, 10 * 365, 12 * 365), (0.38, 12 * 365 + 3, 17 * 365 + 300))
AGE_CARE_FACTOR = (1.8, 1.0, 0.7, 0.8, 1.0)


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


class _Builder(CareEpisodes):
    """Builds one chunk's histories: children, referrals, periods of care."""

    def __init__(self, p: SynthParams, la: int, chunk_key: int, s: Stream) -> None:
        super().__init__(p, la, chunk_key, s)
        self._cp: list[Any] | None = None  # the CP plan of the referral being built
        self._host_row: list[Any] = []  # the referral of a child who goes into care
        self._last_close = NA  # when the child's latest referral closed

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
        # A plan with no enquiry in this referral starts on the day of the initial conference
        # the CIN details record (CIN rules 2883, 2885).
        icpc = start + 35 if had_cp else NA
        self.out.add("referrals", (rid, child_id, start, s.pick(codes.REFERRAL_SOURCE),
                                   s.pick(codes.PRIMARY_NEED), end, "RC7", False, icpc))
        self.out.add("assessments", (self.rid(), rid, child_id, start + 2, start + 30,
                                     self._factors(dob, start)))
        if had_cp:
            cat = s.pick(codes.ABUSE)
            self.out.add("cp_plans", (self.rid(), rid, child_id, icpc, end, cat, cat, 0))
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
            days = self.distinct_days(max(entry, p.data_start - 270), min(end, p.data_end) - 1, k)
            self._spells(child_id, days, end, lambda: s.integer(0, 3))
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
