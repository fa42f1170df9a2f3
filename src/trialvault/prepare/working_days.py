"""Working days for the CIN census rules that count them (e.g. "ReferenceDate minus 45 working
days"): weekdays that are not bank holidays in England, from the `holidays` package (country
GB, subdivision ENG), as the DfE counts them.

The rules read `validation.working_days` (one row per calendar day: `day`, `working`, and
`n`, the number of working days up to and including that day) through the macro
`working_days_before(d, k)`: the k-th working day counting back from d, d itself counting as
the first when it is a working day (the DfE's "d minus k working days", as the public
validator computes it with pandas' CustomBusinessDay(k - 1)).
"""

from __future__ import annotations

import datetime as dt
import functools

import pyarrow as pa

FIRST_YEAR = 1990
LAST_YEAR = 2040


@functools.cache
def working_days_table(first_year: int = FIRST_YEAR, last_year: int = LAST_YEAR) -> pa.Table:
    """One row per day from 1 January `first_year` to 31 December `last_year`."""
    import holidays  # a few hundred ms to import; only validation needs it

    bank = holidays.country_holidays("GB", subdiv="ENG", years=range(first_year, last_year + 1))
    day = dt.date(first_year, 1, 1)
    end = dt.date(last_year, 12, 31)
    days, working, counts = [], [], []
    count = 0
    while day <= end:
        is_working = day.weekday() < 5 and day not in bank
        count += int(is_working)
        days.append(day)
        working.append(is_working)
        counts.append(count)
        day += dt.timedelta(days=1)
    return pa.table({"day": pa.array(days, pa.date32()), "working": working,
                     "n": pa.array(counts, pa.int32())})


# The k-th working day back from d (d counts when it is a working day). For a day that is not a
# working day, n is that of the working day before it, which is then the first one back.
WORKING_DAYS_BEFORE = """
    (SELECT max(w.day) FROM validation.working_days w WHERE w.working AND w.n = (
        SELECT max(x.n) - (k - 1) FROM validation.working_days x WHERE x.day = d))"""
