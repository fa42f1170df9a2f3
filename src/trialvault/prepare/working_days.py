"""Working days for the CIN census rules that count them (e.g. "ReferenceDate minus 45 working
days"): weekdays that are not bank holidays in England, as the DfE counts them.

The bank holidays are data (`spec/bank_holidays_england.txt`, 1990 to 2040, written from the
`holidays` package, country GB, subdivision ENG; `python -m trialvault.prepare.working_days`
rewrites it and a test checks the two agree), so validation does not import that package.
The rules read `validation.working_days` (one row per calendar day: `day`, `working`, and `n`,
the number of working days up to and including that day) through the macro
`working_days_before(d, k)`: the k-th working day counting back from d, d itself counting as
the first when it is a working day (the DfE's "d minus k working days", as the public
validator computes it with pandas' CustomBusinessDay(k - 1)).
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

FIRST_YEAR = 1990
LAST_YEAR = 2040
BANK_HOLIDAYS = Path(__file__).resolve().parents[1] / "spec" / "bank_holidays_england.txt"
TABLE = "validation.working_days"


@functools.cache
def bank_holidays() -> tuple[dt.date, ...]:
    """England's bank holidays from the spec file."""
    lines = BANK_HOLIDAYS.read_text(encoding="utf-8").splitlines()
    return tuple(dt.date.fromisoformat(line.strip()) for line in lines
                 if line.strip() and not line.startswith("#"))


def create_working_days(con: duckdb.DuckDBPyConnection) -> None:
    """`validation.working_days` from 1 January FIRST_YEAR to 31 December LAST_YEAR."""
    # The holidays are written into the SQL as ISO date literals (our data file, dates only):
    # a query parameter would make DuckDB's client import numpy, pandas and pyarrow.
    holidays = ", ".join(f"DATE '{day.isoformat()}'" for day in bank_holidays())
    con.execute(f"""
        CREATE OR REPLACE TABLE {TABLE} AS
        SELECT day, working,
               CAST(sum(CASE WHEN working THEN 1 ELSE 0 END) OVER (ORDER BY day) AS INTEGER)
                 AS n
        FROM (SELECT CAST(g.d AS DATE) AS day,
                     isodow(g.d) < 6 AND NOT list_contains([{holidays}]::DATE[], CAST(g.d AS DATE))
                       AS working
              FROM generate_series(DATE '{FIRST_YEAR}-01-01', DATE '{LAST_YEAR}-12-31',
                                   INTERVAL 1 DAY) AS g(d))
        ORDER BY day""")


# The k-th working day back from d (d counts when it is a working day). For a day that is not a
# working day, n is that of the working day before it, which is then the first one back.
# One level of correlation only (a self-join, not a subquery inside the subquery): Spark cannot
# resolve an outer column two subqueries deep, and the rule must run the same on both engines.
WORKING_DAYS_BEFORE = """
    (SELECT max(w.day) FROM validation.working_days w
     JOIN validation.working_days x ON w.n = x.n - (k - 1)
     WHERE w.working AND x.day = d)"""


def _write_bank_holidays() -> None:
    import holidays  # only to rewrite the data file

    days = sorted(holidays.country_holidays("GB", subdiv="ENG",
                                            years=range(FIRST_YEAR, LAST_YEAR + 1)))
    head = [f"# Bank holidays in England, {FIRST_YEAR} to {LAST_YEAR} (the days the DfE's "
            "working-day counts skip),",
            "# from the `holidays` package (country GB, subdivision ENG), one ISO date per line.",
            "# Regenerate with: python -m trialvault.prepare.working_days (a test checks they "
            "agree)."]
    BANK_HOLIDAYS.write_text("\n".join([*head, *(d.isoformat() for d in days)]) + "\n",
                             encoding="utf-8")


if __name__ == "__main__":
    _write_bank_holidays()
