"""Deadlines: the ICO's worked examples, the named cases, and properties of the rules."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.rights.deadlines import (
    Pause,
    add_months,
    compute_deadline,
    england_and_wales,
)

D = dt.date
CAL = england_and_wales()
dates = st.dates(min_value=D(2019, 1, 1), max_value=D(2035, 12, 31))


# --- the ICO's own examples and the named cases ----------------------------------------

def test_ico_example_day_of_receipt_is_day_one() -> None:
    # ICO: received 1 January → end of 1 February (2024: 1 Feb is a Thursday).
    assert compute_deadline(D(2024, 1, 1)).due == D(2024, 2, 1)
    assert compute_deadline(D(2025, 9, 3)).due == D(2025, 10, 3)


def test_ico_example_christmas() -> None:
    # ICO: received Monday 25 November → Friday 27 December (25 and 26 are bank holidays).
    assert compute_deadline(D(2024, 11, 25)).due == D(2024, 12, 27)


@pytest.mark.parametrize(("received", "due"), [
    (D(2025, 1, 31), D(2025, 2, 28)),   # no 31 Feb: last day; a Friday
    (D(2024, 1, 31), D(2024, 2, 29)),   # leap year; a Thursday
    (D(2024, 1, 30), D(2024, 2, 29)),
    (D(2023, 1, 31), D(2023, 2, 28)),   # a Tuesday
])
def test_received_31_january(received: dt.date, due: dt.date) -> None:
    d = compute_deadline(received)
    assert d.due == due
    assert d.unadjusted_end == due


def test_due_on_saturday_moves_to_monday() -> None:
    d = compute_deadline(D(2025, 2, 15))
    assert d.unadjusted_end == D(2025, 3, 15) and d.unadjusted_end.weekday() == 5
    assert d.due == D(2025, 3, 17)


def test_31_january_to_weekend_february_end() -> None:
    # 28 Feb 2026 is a Saturday: "the deadline is the end of the next Monday".
    assert compute_deadline(D(2026, 1, 31)).due == D(2026, 3, 2)


def test_due_on_christmas_day_moves_past_boxing_day_and_weekend() -> None:
    d = compute_deadline(D(2025, 11, 25))
    assert d.unadjusted_end == D(2025, 12, 25)
    assert CAL.holiday_name(D(2025, 12, 25)) == "Christmas Day"
    assert d.due == D(2025, 12, 29)   # 26 Boxing Day, 27-28 weekend


def test_bank_holiday_monday() -> None:
    # Received 26 April 2025 → 26 May 2025, the Spring bank holiday → Tuesday 27 May.
    assert compute_deadline(D(2025, 4, 26)).due == D(2025, 5, 27)


def test_extension_is_three_months_from_receipt() -> None:
    d = compute_deadline(D(2025, 1, 10), extended=True)
    assert d.unadjusted_end == D(2025, 4, 10) and d.due == D(2025, 4, 10)
    # and the person must be told within the first month
    assert d.tell_extension_by == D(2025, 2, 10)
    # three months from 30 November is the end of February, not 30 Feb → 2 March
    assert compute_deadline(D(2023, 11, 30), extended=True).unadjusted_end == D(2024, 2, 29)


def test_clarification_pause_moves_due_date_by_days_not_counted() -> None:
    # Asked on 10 March, answered on 14 March: 10,11,12,13,14 do not count (5 days).
    d = compute_deadline(D(2025, 3, 3), pauses=[Pause("clarification", D(2025, 3, 10),
                                                       D(2025, 3, 14))])
    assert d.paused_days == 5
    assert d.unadjusted_end == D(2025, 4, 8)
    assert d.due == D(2025, 4, 8)


def test_clarification_answered_same_day_still_stops_one_day() -> None:
    d = compute_deadline(D(2025, 3, 3), pauses=[Pause("clarification", D(2025, 3, 10),
                                                       D(2025, 3, 10))])
    assert d.paused_days == 1 and d.due == D(2025, 4, 4)


def test_pause_then_weekend() -> None:
    # 3 Mar + 1 month = 3 Apr; +2 days = 5 Apr 2025, a Saturday → Monday 7 April.
    d = compute_deadline(D(2025, 3, 3), pauses=[Pause("clarification", D(2025, 3, 4),
                                                       D(2025, 3, 5))])
    assert d.unadjusted_end == D(2025, 4, 5) and d.due == D(2025, 4, 7)


def test_pause_also_moves_the_extension_notice_date() -> None:
    d = compute_deadline(D(2025, 1, 10), extended=True,
                         pauses=[Pause("clarification", D(2025, 1, 13), D(2025, 1, 15))])
    assert d.paused_days == 3
    assert d.unadjusted_end == D(2025, 4, 13)
    assert d.due == D(2025, 4, 14)                # 13 April 2025 is a Sunday
    assert d.tell_extension_by == D(2025, 2, 13)


def test_identity_restarts_a_full_month_from_receipt_of_id() -> None:
    d = compute_deadline(D(2025, 1, 6), pauses=[Pause("identity", D(2025, 1, 7), D(2025, 1, 20))])
    assert d.start == D(2025, 1, 20)
    assert d.due == D(2025, 2, 20)


def test_open_pause_stops_the_clock() -> None:
    waiting = compute_deadline(D(2025, 3, 3), pauses=[Pause("clarification", D(2025, 3, 10))],
                               today=D(2025, 3, 12))
    assert waiting.due is None and waiting.stopped_for == "clarification"
    assert waiting.paused_days == 3
    assert waiting.days_left(D(2025, 3, 12)) is None and not waiting.overdue(D(2026, 1, 1))
    no_id = compute_deadline(D(2025, 3, 3), pauses=[Pause("identity", D(2025, 3, 3))])
    assert no_id.stopped_for == "identity" and no_id.due is None


def test_days_left_and_overdue() -> None:
    d = compute_deadline(D(2025, 3, 3))
    assert d.days_left(D(2025, 4, 1)) == 2
    assert not d.overdue(D(2025, 4, 3))
    assert d.overdue(D(2025, 4, 4)) and d.days_left(D(2025, 4, 4)) == -1


def test_bad_pauses_refused() -> None:
    with pytest.raises(ValueError, match="before it was asked"):
        Pause("clarification", D(2025, 3, 10), D(2025, 3, 9))
    with pytest.raises(ValueError, match="before the request was received"):
        compute_deadline(D(2025, 3, 3), pauses=[Pause("clarification", D(2025, 3, 1),
                                                       D(2025, 3, 5))])


# --- properties ----------------------------------------------------------------------------

def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates, st.integers(min_value=1, max_value=3))
def test_add_months_corresponding_date_or_month_end(start: dt.date, months: int) -> None:
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    if start.day <= _last_day(end.year, end.month):
        assert end.day == start.day
    else:
        assert end.day == _last_day(end.year, end.month)


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates, st.booleans())
def test_due_is_first_working_day_on_or_after_the_month_end(received: dt.date,
                                                            extended: bool) -> None:
    d = compute_deadline(received, extended=extended)
    assert d.unadjusted_end == add_months(received, 3 if extended else 1)
    assert d.due is not None and d.unadjusted_end is not None
    assert CAL.is_working_day(d.due)
    assert d.due >= d.unadjusted_end
    gap = (d.due - d.unadjusted_end).days
    assert all(not CAL.is_working_day(d.unadjusted_end + dt.timedelta(days=i)) for i in range(gap))
    assert gap <= 4  # the longest run of non-working days in England is Christmas + weekend


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(st.integers(min_value=2019, max_value=2035), st.integers(min_value=29, max_value=31))
def test_late_january_goes_to_end_of_february(year: int, day: int) -> None:
    d = compute_deadline(D(year, 1, day))
    feb_end = D(year, 2, 29 if calendar.isleap(year) else 28)
    assert d.unadjusted_end == (feb_end if day >= feb_end.day else D(year, 2, day))
    assert d.due == CAL.on_or_after(d.unadjusted_end)  # type: ignore[arg-type]


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates)
def test_extension_never_earlier_and_notice_within_first_month(received: dt.date) -> None:
    plain = compute_deadline(received)
    ext = compute_deadline(received, extended=True)
    assert ext.due is not None and plain.due is not None
    assert ext.due > plain.due
    assert ext.tell_extension_by == plain.due


@settings(max_examples=200, deadline=None)
@given(dates, st.integers(min_value=0, max_value=25), st.integers(min_value=0, max_value=40),
       st.booleans())
def test_clarification_pause_adds_exactly_its_days(received: dt.date, offset: int, length: int,
                                                   extended: bool) -> None:
    asked = received + dt.timedelta(days=offset)
    answered = asked + dt.timedelta(days=length)
    base = compute_deadline(received, extended=extended)
    paused = compute_deadline(received, extended=extended,
                              pauses=[Pause("clarification", asked, answered)])
    assert paused.paused_days == length + 1
    assert base.unadjusted_end is not None
    assert paused.unadjusted_end == base.unadjusted_end + dt.timedelta(days=length + 1)
    assert paused.due == CAL.on_or_after(paused.unadjusted_end)  # type: ignore[arg-type]
    assert paused.due is not None and base.due is not None and paused.due >= base.due


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates, st.lists(st.tuples(st.integers(0, 30), st.integers(0, 10)), max_size=4))
def test_overlapping_pauses_count_each_day_once(received: dt.date,
                                                spans: list[tuple[int, int]]) -> None:
    pauses = [Pause("clarification", received + dt.timedelta(days=a),
                    received + dt.timedelta(days=a + n)) for a, n in spans]
    covered = {received + dt.timedelta(days=a + i) for a, n in spans for i in range(n + 1)}
    d = compute_deadline(received, pauses=pauses)
    assert d.paused_days == len(covered)


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates, st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=60))
def test_identity_pause_is_a_fresh_start(received: dt.date, asked_after: int, took: int) -> None:
    asked = received + dt.timedelta(days=asked_after)
    got = asked + dt.timedelta(days=took)
    d = compute_deadline(received, pauses=[Pause("identity", asked, got)])
    assert d.start == got
    assert d.due == compute_deadline(got).due


@settings(deadline=None)  # holiday tables are built lazily; CI load varies
@given(dates, st.integers(min_value=0, max_value=20), st.integers(min_value=0, max_value=20))
def test_clarification_before_id_arrives_does_not_count_twice(received: dt.date, a: int,
                                                              b: int) -> None:
    id_got = received + dt.timedelta(days=a + b)
    clar = Pause("clarification", received + dt.timedelta(days=a), id_got)
    d = compute_deadline(received, pauses=[Pause("identity", received, id_got), clar])
    # Only the ID-receipt day itself lies on or after the restart; it is an uncounted day.
    assert d.start == id_got and d.paused_days == 1
