"""Response deadlines for data-subject requests, exactly as the ICO states them.

Sources (read 2026; quoted in our words):

- ICO, *Right of access — What should we consider when responding to a request?* (updated
  08 December 2025),
  https://ico.org.uk/for-organisations/uk-gdpr-guidance-and-resources/individual-rights/right-of-access/what-should-we-consider-when-responding-to-a-request/
  * the month runs from the day the request (or requested ID, or fee) is received — that day
    counts, even if it is not a working day — to the same date in the next month
    (received 1 January → 1 February; received 3 September → 3 October);
  * when that date does not exist, the last day of that month (31 January → 28/29 February);
  * when the date is a weekend or public holiday, the end of the next working day
    (received Monday 25 November 2024 → Friday 27 December 2024, as 25 and 26 are holidays);
  * an extension for complex or numerous requests is *three months from the original start
    date*, and the person must be told within the first month, with the reasons;
  * the time limit runs from receipt of any information requested to confirm identity.
- UK GDPR Art. 12A (inserted by the Data (Use and Access) Act 2025; in force 5 February 2026
  under SI 2026/82): the "applicable time period" begins at the *relevant time* — the latest of
  receipt of the request, of information requested to confirm identity, and of any fee; and
  where the controller reasonably requires further information to identify what a request
  relates to ("clarification"), *the period beginning with the day on which the controller asks
  and ending with the day on which it receives the information does not count* towards the time
  period, nor towards the one month in which an extension must be notified. The same words are
  in DPA 2018 s. 54(3C) (https://www.legislation.gov.uk/ukpga/2018/12/section/54).

How the remaining time is counted when the clock restarts (the rule implemented here):

- **Identity** — the clock has not started while ID is awaited; on receipt a *fresh* one-month
  (or three-month) period starts on the day the ID is received (that day is day 1).
- **Clarification** (access requests only: Art. 12A speaks of identifying what a request
  under Art. 15 relates to) — the days from the day we ask to the day the answer arrives, *both
  inclusive*, are left out: the unadjusted end date moves later by exactly that many days, and
  only then is it moved to the next working day. Several pauses add up (overlaps count once).

Working days: not Saturday or Sunday and not a bank holiday in England and Wales (the
`holidays` package, country GB, subdivision ENG, which includes substitute days).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import holidays

PauseKind = Literal["identity", "clarification"]

STANDARD_MONTHS = 1
EXTENDED_MONTHS = 3  # the ICO: "three months from the original start date"
DEFAULT_COUNTRY = "GB"
DEFAULT_SUBDIVISION = "ENG"  # England; Wales has the same bank holidays


def add_months(start: dt.date, months: int) -> dt.date:
    """The same calendar date `months` later, or that month's last day if the date is missing."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


class WorkingCalendar:
    """Weekends and public holidays of one UK nation (default England & Wales)."""

    def __init__(self, country: str = DEFAULT_COUNTRY, subdiv: str = DEFAULT_SUBDIVISION) -> None:
        self._holidays = holidays.country_holidays(country, subdiv=subdiv)

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays

    def holiday_name(self, day: dt.date) -> str | None:
        name = self._holidays.get(day)
        return str(name) if name else None

    def on_or_after(self, day: dt.date) -> dt.date:
        """`day` if it is a working day, else the next working day."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day


@functools.cache
def england_and_wales() -> WorkingCalendar:
    return WorkingCalendar()


@dataclass(frozen=True)
class Pause:
    """A stop of the clock: we asked for ID or clarification on `asked`; it came on `received`.

    `received` is None while we are still waiting.
    """

    kind: PauseKind
    asked: dt.date
    received: dt.date | None = None

    def __post_init__(self) -> None:
        if self.received is not None and self.received < self.asked:
            raise ValueError(f"{self.kind} pause: answer received before it was asked for")


@dataclass(frozen=True)
class Deadline:
    """The response deadline of one request on a given set of facts.

    `due` is None while the clock is stopped (`stopped_for` says why); the days paused so far
    are then already in `paused_days`.
    """

    received: dt.date
    start: dt.date                 # the "relevant time": receipt, or receipt of the ID
    extended: bool
    paused_days: int               # clarification days that do not count
    unadjusted_end: dt.date | None  # before moving to a working day
    due: dt.date | None
    tell_extension_by: dt.date | None  # end of the first month: the person must be told by then
    stopped_for: PauseKind | None

    def days_left(self, today: dt.date) -> int | None:
        """Calendar days from `today` to the due date (negative when overdue)."""
        return None if self.due is None else (self.due - today).days

    def overdue(self, today: dt.date) -> bool:
        return self.due is not None and today > self.due


def compute_deadline(received: dt.date, *, pauses: Sequence[Pause] = (), extended: bool = False,
                     today: dt.date | None = None,
                     working: WorkingCalendar | None = None) -> Deadline:
    """Apply the ICO rules (module docstring) to a request received on `received`.

    `today` bounds an open clarification pause: days up to and including today are already
    uncounted (so `paused_days` is meaningful while waiting); without it, an open pause counts
    nothing yet. An open pause of either kind leaves `due` as None.
    """
    cal = working or england_and_wales()
    for p in pauses:
        if p.asked < received:
            raise ValueError(f"{p.kind} pause asked for before the request was received")
    start = received
    stopped: PauseKind | None = None
    for p in pauses:
        if p.kind != "identity":
            continue
        if p.received is None:
            stopped = "identity"
        else:
            start = max(start, p.received)
    intervals: list[tuple[dt.date, dt.date]] = []
    for p in pauses:
        if p.kind != "clarification":
            continue
        if p.received is None:
            stopped = stopped or "clarification"
            if today is None or today < p.asked:
                continue
            intervals.append((p.asked, today))
        else:
            intervals.append((p.asked, p.received))
    paused = _days_covered(intervals, not_before=start)
    months = EXTENDED_MONTHS if extended else STANDARD_MONTHS
    first_month_end = add_months(start, STANDARD_MONTHS) + dt.timedelta(days=paused)
    tell_by = cal.on_or_after(first_month_end) if extended and stopped != "identity" else None
    if stopped is not None:
        return Deadline(received, start, extended, paused, None, None, tell_by, stopped)
    end = add_months(start, months) + dt.timedelta(days=paused)
    return Deadline(received, start, extended, paused, end, cal.on_or_after(end), tell_by, None)


def _days_covered(intervals: Iterable[tuple[dt.date, dt.date]], *, not_before: dt.date) -> int:
    """Number of distinct days in the inclusive intervals, counting only days >= not_before.

    Days before the clock (re)started do not stop anything: for identity the whole month starts
    afresh on receipt of the ID.
    """
    total = 0
    current_end: dt.date | None = None
    for lo, hi in sorted(intervals):
        lo = max(lo, not_before)
        if hi < lo:
            continue
        if current_end is not None and lo <= current_end:
            if hi > current_end:
                total += (hi - current_end).days
                current_end = hi
            continue
        total += (hi - lo).days + 1
        current_end = hi
    return total
