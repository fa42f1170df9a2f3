"""Minimisation pieces: age in months, the study's allow-list, the dropped-column list."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.errors import PolicyRefusal
from trialvault.formats import read_ssda903
from trialvault.prepare import link, minimise, validate
from trialvault.study.model import StudyFile


@pytest.fixture(scope="module")
def con():  # type: ignore[no-untyped-def]
    connection = validate.connect()
    link.install_helpers(connection)
    yield connection
    connection.close()


def test_age_months_examples(con) -> None:  # type: ignore[no-untyped-def]
    cases = [(dt.date(2010, 1, 15), dt.date(2010, 2, 14), 0),
             (dt.date(2010, 1, 15), dt.date(2010, 2, 15), 1),
             (dt.date(2010, 1, 31), dt.date(2010, 2, 28), 0),
             (dt.date(2008, 2, 29), dt.date(2009, 2, 28), 11),
             (dt.date(2010, 6, 1), dt.date(2010, 5, 1), -1)]
    for born, on, months in cases:
        assert con.execute("SELECT age_months(?, ?)", [born, on]).fetchone()[0] == months


@settings(max_examples=200, deadline=None)
@given(born=st.dates(dt.date(1990, 1, 1), dt.date(2025, 12, 31)),
       on=st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)))
def test_age_months_is_whole_months_like_relativedelta(con, born: dt.date,  # type: ignore[no-untyped-def]
                                                       on: dt.date) -> None:
    got = con.execute("SELECT age_months(?, ?)", [born, on]).fetchone()[0]
    if on >= born:
        delta = relativedelta(on, born)
        # The documented convention: a month counts once its day-of-month is reached, so a
        # child born on the 31st is not a month older on 28 February, where relativedelta
        # clamps the birthday to the month's end (the only case where the two differ).
        clamped = on.day < born.day and (on + dt.timedelta(days=1)).month != on.month
        assert got == delta.years * 12 + delta.months - (1 if clamped else 0)
        if not clamped:
            assert born + relativedelta(months=got) <= on < born + relativedelta(months=got + 1)
    else:
        assert got < 0


def test_every_package_column_is_declared_by_the_nwd_study(nwd_study: StudyFile) -> None:
    minimise.check_allowed(nwd_study, minimise.PACKAGE_TABLES)


def test_undeclared_field_is_refused_by_name(nwd_study: StudyFile) -> None:
    categories = [c.replace(fields=[f for f in c.fields if f != "neet"])
                  for c in nwd_study.categories]
    narrowed = nwd_study.replace(categories=categories)
    minimise.check_allowed(narrowed, ["children", "cla_episodes"])  # no NEET asked for
    with pytest.raises(PolicyRefusal, match=r"table neet: \['neet'\]"):
        minimise.check_allowed(narrowed, minimise.tables_for(["ssda903", "neet"]))


def test_columns_follow_the_architecture() -> None:
    assert minimise.columns_of("cla_episodes")[:2] == ("la_code", "child_id")
    assert minimise.columns_of("neet")[-2:] == ("source_file", "source_line")
    assert "upn" not in {c.lower() for t in minimise.PACKAGE_TABLES
                         for c in minimise.columns_of(t)}


def test_dropped_columns_name_identifiers_and_unused_tables(fake_903: Path) -> None:
    source = read_ssda903([fake_903], year=2023)
    dropped = minimise.dropped_columns({"ssda903": source})
    for column in ("ssda903.header.UPN", "ssda903.header.DOB", "ssda903.header.MC_DOB",
                   "ssda903.episodes.HOME_POST", "ssda903.episodes.PL_POST",
                   "ssda903.episodes.URN", "ssda903.sw_episodes.SW_ID"):
        assert column in dropped.columns
    assert {"ssda903.reviews", "ssda903.oc2", "ssda903.oc3", "ssda903.ad1",
            "ssda903.placed_for_adoption", "ssda903.previous_permanence",
            "ssda903.sw_episodes", "ssda903.dolo"} <= set(dropped.tables)
    assert "ssda903.episodes.DECOM" not in dropped.columns
