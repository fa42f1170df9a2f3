"""Periods of care as SSDA903 episodes: placements, legal statuses, moves and how they end.

`CareEpisodes` turns a period of care planned by `histories` (entry, moves, legal changes, end)
into episode rows that the DfE's rules accept: placement types for the child's age and the
year, providers from the LA's register, temporary placements, adoption, missing spells and
reviews. Everything is drawn from the chunk's one `Stream`, in a fixed order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trialvault.synth import codes
from trialvault.synth.params import (
    Stream,
    SynthParams,
    add_months,
    add_working_days,
    age_months,
    day_of,
)
from trialvault.synth.places import places_of, providers_for

NA = -1
K3_FROM = day_of(dt.date(2024, 4, 1))  # K3 exists from collection year 2025
# The last day an H5 or P2 placement may end: from 28 October 2023 supported accommodation is
# registered with Ofsted (an H5 placement then needs its URN, 903 rule 230) and P2 is withdrawn
# (903 rule 217t). Registered H5 placements of the months before K3 are not drawn.
UNREGISTERED_UNTIL = day_of(dt.date(2023, 10, 28))
# Z1 is a code up to the 2024-25 return and Z11-Z14 from 2025-26 (903 rule 146): a placement
# is Z1 only when it ends by 31 March 2025 and one of Z11-Z14 only when it starts after.
Z1_UNTIL = day_of(dt.date(2025, 3, 31))


@dataclass
class ChunkData:
    """Rows of one chunk, as tuples (columns in `COLUMNS`)."""

    la: int
    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        self.rows.setdefault(table, []).append(row)


class Draws:
    """A chunk's state and its small draws (record ids, postcodes, days)."""

    def __init__(self, p: SynthParams, la: int, chunk_key: int, s: Stream) -> None:
        self.p, self.la, self.s = p, la, s
        self.out = ChunkData(la)
        self._rid = chunk_key << 24
        self._next_ls = "C2"  # the legal status a period's planned legal change brings
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


class CareEpisodes(Draws):
    """Episodes, missing spells and reviews of a period of care."""

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
        placed_on = [d for d, kind, _ in plan if kind in ("S", "move")]
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
                until = min((d for d in placed_on if d > day), default=end)
                other = self._other_placement(dob, day, until, bool(residential))
                if other is not None:
                    at = (other, "", "", self.postcode(near=1.0))
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

    def _other_placement(self, dob: int, day: int, until: int, residential: bool) -> str | None:
        """Z1 (or Z11-Z14 from 2025-26) for a few teenagers' placements from `day` to `until`,
        or None."""
        s = self.s
        if residential or age_months(dob, day) < 144 or not s.bern(codes.OTHER_PLACEMENT_SHARE):
            return None
        if until <= Z1_UNTIL:
            return "Z1"
        return s.pick(codes.OTHER_PLACE_SPLIT) if day > Z1_UNTIL else None

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
            adopters = self.postcode(near=0.4, far=0.1)
            if adopters == last[11]:
                adopters = self.postcode(near=1.0)  # not the birth family's (903 rule 392d)
            self.out.add("episodes", (self.rid(), child_id, placed, "P", "E1", last[5], "A6",
                                      code, adopted, rec, "", last[11], adopters, urn))
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
        self._spells(child_id, days, end,
                     lambda: s.integer(0, 1) if s.bern(0.6) else s.integer(1, 6))

    def _spells(self, child_id: str, days: list[int], end: int,
                length: Callable[[], int]) -> None:
        """Missing spells from `days`, each over before the next starts (903 rule 574) and
        back before care ends (rule 580)."""
        for i, d in enumerate(days):
            stop = d + length()
            if i + 1 < len(days):
                stop = min(stop, days[i + 1] - 1)
            stop = max(d, min(stop, end - 1))
            self.out.add("missing", (self.rid(), child_id, self.s.pick(codes.MISSING_TYPE), d,
                                     stop))

    def _reviews(self, child_id: str, dob: int, entry: int, end: int) -> None:
        s = self.s
        day = add_working_days(entry, 20)
        step = 91
        while day < end and day <= self.p.data_end:
            code = "PN0" if age_months(dob, day) < 48 else s.pick(codes.REVIEW_CODE)
            self.out.add("reviews", (child_id, day, code))
            day += step
            step = 182
