"""Generator parameters and calendar arithmetic: the rules the evaluation uses."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest

from trialvault.spec import load_code_lists
from trialvault.study import StudyFile
from trialvault.synth import SynthError, codes
from trialvault.synth.histories import upn_for
from trialvault.synth.params import (
    Cat,
    add_months,
    add_working_days,
    age_months,
    age_months_vec,
    collection_year,
    date_of,
    day_of,
    resolve,
    weekday,
)


def test_add_months_matches_sql_interval() -> None:
    days = list(range(day_of(dt.date(2019, 12, 25)), day_of(dt.date(2021, 3, 5))))
    con = duckdb.connect()
    rows = con.execute(
        "SELECT CAST(d + INTERVAL 12 MONTH AS DATE) FROM "
        "(SELECT UNNEST(?::DATE[]) AS d)", [[date_of(d) for d in days]]).fetchall()
    assert [day_of(r[0]) for r in rows] == [add_months(d, 12) for d in days]
    assert date_of(add_months(day_of(dt.date(2020, 2, 29)), 12)) == dt.date(2021, 2, 28)


def test_age_in_whole_months() -> None:
    dob = day_of(dt.date(2008, 5, 31))
    assert age_months(dob, day_of(dt.date(2020, 5, 30))) == 143
    assert age_months(dob, day_of(dt.date(2020, 5, 31))) == 144
    assert age_months(dob, day_of(dt.date(2020, 6, 30))) == 144
    rng = np.random.default_rng(3)
    dobs = rng.integers(day_of(dt.date(2000, 1, 1)), day_of(dt.date(2015, 1, 1)), size=500)
    days = dobs + rng.integers(0, 7000, size=500)
    assert list(age_months_vec(dobs, days)) == [age_months(int(b), int(d))
                                                for b, d in zip(dobs, days, strict=True)]


def test_collection_year_and_working_days() -> None:
    assert collection_year(day_of(dt.date(2023, 3, 31))) == 2023
    assert collection_year(day_of(dt.date(2023, 4, 1))) == 2024
    start = day_of(dt.date(2024, 6, 7))  # a Friday
    assert date_of(add_working_days(start, 1)) == dt.date(2024, 6, 10)
    assert date_of(add_working_days(start, 15)) == dt.date(2024, 6, 28)
    assert all(weekday(add_working_days(start + k, n)) < 5 for k in range(7) for n in range(1, 9))


def test_upn_check_letter() -> None:
    upn = upn_for(354, 10_000_123)
    assert len(upn) == 13 and upn[1:4] == "354" and upn[1:].isdigit()
    total = sum(int(upn[i]) * (i + 1) for i in range(1, 13))
    assert upn[0] == "ABCDEFGHJKLMNPQRTUVWXYZ"[total % 23]


def test_every_drawn_code_is_a_dfe_code() -> None:
    lists = load_code_lists()
    pairs: list[tuple[Cat, str]] = [
        (codes.ETHNICITY, "ETHNIC"), (codes.UASC_ETHNICITY, "ETHNIC"),
        (codes.DISABILITY, "DISABILITY"), (codes.REFERRAL_SOURCE, "REFERRAL_SOURCE"),
        (codes.PRIMARY_NEED, "PRIMARY_NEED"), (codes.FACTORS_TEEN, "ASSESSMENT_FACTORS"),
        (codes.FACTORS_YOUNG, "ASSESSMENT_FACTORS"), (codes.ABUSE, "CATEGORY_OF_ABUSE"),
        (codes.CIN_903, "CIN_903"), (codes.LS_TEEN, "LS"), (codes.LS_YOUNG, "LS"),
        (codes.FAMILY_PLACE, "PLACE"), (codes.RESIDENTIAL_PLACE, "PLACE"),
        (codes.MOVE_RNE, "RNE"), (codes.PLACE_CHANGE, "REASON_PLACE_CHANGE"),
        (codes.REC_HOME, "REC"), (codes.REC_AT_18, "REC"), (codes.REVIEW_CODE, "REVIEW_CODE"),
        (codes.MISSING_TYPE, "MISSING"), (codes.IN_TOUCH, "IN_TOUCH"), (codes.ACTIV, "ACTIV"),
        (codes.ACCOM, "ACCOM"), (codes.SDQ_REASON, "SDQ_REASON"), (codes.SW_REASON, "SW_REASON"),
        (codes.ACTIVITY_EET, "NCCIS_ACTIVITY"), (codes.ACTIVITY_NEET, "NCCIS_ACTIVITY")]
    for cat, name in pairs:
        # Social worker episodes exist from collection year 2024 only.
        for year in range(2024 if name == "SW_REASON" else 2019, 2027):
            assert set(cat.items) <= lists[name].valid_in(year), (name, year)


def test_refuses_impossible_parameters(nwd_study: StudyFile) -> None:
    with pytest.raises(SynthError, match="unknown effect"):
        resolve(nwd_study, seed=1, scale=1, effects={"happiness": 0.1}, error_rate=0)
    with pytest.raises(SynthError, match="entered_care_12m"):
        resolve(nwd_study, seed=1, scale=1, effects={"entered_care_12m": 0.5}, error_rate=0)
    with pytest.raises(SynthError, match="residential_placement_12m"):
        resolve(nwd_study, seed=1, scale=1, effects={"residential_placement_12m": -0.2},
                error_rate=0)
    with pytest.raises(SynthError, match="unknown scenario"):
        resolve(nwd_study, seed=1, scale=1, effects={}, error_rate=0, scenario={"chaos": 1.0})
    with pytest.raises(SynthError, match="la_period_sd"):
        resolve(nwd_study, seed=1, scale=1, effects={}, error_rate=0,
                scenario={"la_period_sd": 0.5})
    with pytest.raises(SynthError, match="ratio effect must be positive"):
        resolve(nwd_study, seed=1, scale=1, effects={"placement_moves_12m": 0}, error_rate=0)
    with pytest.raises(SynthError, match="error rate"):
        resolve(nwd_study, seed=1, scale=1, effects={}, error_rate=0.9)
    no_synth = nwd_study.replace(synth=None)
    with pytest.raises(SynthError, match=r"\[synth\]"):
        resolve(no_synth, seed=1, scale=1, effects={}, error_rate=0)


def test_sizes_follow_the_study_statistic(nwd_study: StudyFile) -> None:
    p = resolve(nwd_study, seed=1, scale=2.0, effects={}, error_rate=0)
    assert nwd_study.synth is not None
    sizes = {s.la: s.value for s in nwd_study.synth.la_sizes}
    total = sum(sizes.values())
    for la, n in p.referred.items():
        expected = 2.0 * nwd_study.synth.referred_children * sizes[la] / total
        assert abs(n - expected) <= 1
    assert p.years == tuple(range(2019, 2027))


@pytest.mark.parametrize("seed", range(1, 21))
@pytest.mark.parametrize("effect", [-0.10, -0.04, 0.10])
def test_effects_up_to_a_tenth_can_be_planted_for_every_seed(nwd_study: StudyFile, seed: int,
                                                             effect: float) -> None:
    p = resolve(nwd_study, seed=seed, scale=1, effects={"entered_care_12m": effect},
                error_rate=0)
    assert p.care_effect(354, 0) == effect


def test_scenarios_shape_the_care_model(nwd_study: StudyFile) -> None:
    plain = resolve(nwd_study, seed=3, scale=1, effects={"entered_care_12m": -0.06},
                    error_rate=0)
    ramp = resolve(nwd_study, seed=3, scale=1, effects={"entered_care_12m": -0.06},
                   error_rate=0, scenario={"effect_ramp_quarters": 8})
    assert [round(ramp.care_effect(354, k), 4) for k in (0, 3, 7, 12)] == [
        -0.0075, -0.03, -0.06, -0.06]
    noisy = resolve(nwd_study, seed=3, scale=1, effects={}, error_rate=0,
                    scenario={"la_period_sd": 0.04, "effect_la_sd": 0.02})
    shifts = np.array(list(noisy.care_shift.values()))
    assert len(shifts) == 5 * noisy.n_periods and 0.03 < shifts.std() < 0.05
    assert len({round(v, 6) for v in noisy.care_effect_la.values()}) == 5
    # Turning a scenario on leaves the other draws (LA factors) unchanged.
    assert noisy.la_factor == plain.la_factor
