"""Spec tests for sql/cohort.sql and sql/outcomes.sql: table literals in → expected rows out.

Each test loads a few rows into an in-memory DuckDB under schema `harmonised` (the architecture
tables) and checks one derivation of docs/architecture.md "Cohort and outcome definitions".
The study is the NWD file: data 2019-01-01..2025-12-31, 12 months' follow-up (index dates up to
2024-12-31), quarters, ages 12-17 (144..215 months), LA 354 steps on 2020-10-01, 807 on
2021-04-01.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pandas as pd
import pytest

from trialvault.errors import StudyFileError, TrialvaultError
from trialvault.evaluate.cohort import build_analysis_table, code_group
from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table
from trialvault.study.model import StudyFile
from trialvault.vault.schema import TABLE_COLUMNS

D = dt.date
Rows = dict[str, list[dict[str, Any]]]


def harmonised(rows: Rows) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with every harmonised table (empty unless given rows)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA harmonised")
    for table, columns in TABLE_COLUMNS.items():
        cols = [("la_code", "INTEGER"), ("child_id", "VARCHAR"), *columns,
                ("source_file", "VARCHAR"), ("source_line", "INTEGER")]
        con.execute(f"CREATE TABLE harmonised.{table} ("
                    + ", ".join(f"{n} {k}" for n, k in cols) + ")")
        names = [n for n, _ in cols]
        for row in rows.get(table, []):
            unknown = set(row) - set(names)
            assert not unknown, f"test row has unknown columns {unknown}"
            con.execute(f"INSERT INTO harmonised.{table} VALUES ({', '.join('?' * len(names))})",
                        [row.get(n) for n in names])
    return con


def ref(child: str, date: dt.date, age: int | None = 180, la: int = 354) -> dict[str, Any]:
    return {"la_code": la, "child_id": child, "referral_date": date, "age_months": age}


def episode(child: str, start: dt.date, end: dt.date | None = None, *, rne: str = "S",
            place: str = "U1", age: int = 180, la: int = 354) -> dict[str, Any]:
    return {"la_code": la, "child_id": child, "episode_start_date": start,
            "episode_end_date": end, "reason_new_episode": rne, "placement_type": place,
            "age_months": age}


def run(rows: Rows, study: StudyFile) -> pd.DataFrame:
    out = build_analysis_table(harmonised(rows), study).analysis
    return out.set_index(["la_code", "child_id"])


# --- cohort: index date, window, ages, clusters -------------------------------------------

def test_index_is_the_earliest_qualifying_event_in_the_window(nwd_study: StudyFile) -> None:
    rows: Rows = {
        "referrals": [ref("a", D(2018, 6, 1)), ref("a", D(2020, 5, 1)),  # 2018: before data
                      ref("b", D(2019, 1, 1)),                            # first data day
                      ref("c", D(2024, 12, 31)),                          # last index day
                      ref("d", D(2025, 1, 1))],                           # < 12 months left
        "assessments": [{"la_code": 354, "child_id": "a",
                         "assessment_start_date": D(2020, 3, 1), "age_months": 180}],
    }
    out = run(rows, nwd_study)
    assert sorted(out.index.get_level_values("child_id")) == ["a", "b", "c"]
    assert out.loc[(354, "a"), "index_date"] == D(2020, 3, 1)
    assert out.loc[(354, "a"), "index_event"] == "assessment"
    assert out.loc[(354, "b"), "index_date"] == D(2019, 1, 1)
    assert out.loc[(354, "c"), "follow_up_end"] == pd.Timestamp(2025, 12, 31)


@pytest.mark.parametrize(("age", "in_cohort"), [
    (143, False), (144, True), (215, True), (216, False), (None, False)])
def test_age_at_index_limits_in_whole_months(nwd_study: StudyFile, age: int | None,
                                             in_cohort: bool) -> None:
    out = run({"referrals": [ref("a", D(2020, 1, 1), age=age)]}, nwd_study)
    assert (len(out) == 1) is in_cohort
    if in_cohort:
        assert out["age_years_at_index"].iloc[0] == age // 12  # type: ignore[operator]


def test_age_is_taken_at_the_index_event_only(nwd_study: StudyFile) -> None:
    # 11 years 11 months at the first event: not in the cohort, even though 12 later.
    rows: Rows = {"referrals": [ref("a", D(2020, 1, 1), age=143), ref("a", D(2020, 2, 1), age=144)]}
    assert run(rows, nwd_study).empty


def test_same_day_events_pick_the_earlier_stage(nwd_study: StudyFile) -> None:
    rows: Rows = {"referrals": [ref("a", D(2020, 1, 1), age=150)],
                  "cla_episodes": [episode("a", D(2020, 1, 1), age=151)]}
    out = run(rows, nwd_study)
    assert out["index_event"].iloc[0] == "referral"
    assert out["age_months_at_index"].iloc[0] == 150


def test_same_child_code_in_two_las_is_two_children(nwd_study: StudyFile) -> None:
    rows: Rows = {"referrals": [ref("a", D(2020, 12, 1), la=354), ref("a", D(2021, 2, 1), la=807)]}
    out = run(rows, nwd_study)
    assert len(out) == 2
    assert out.loc[(354, "a"), "exposed"] == 1   # after 354's step 2020-10-01
    assert out.loc[(807, "a"), "exposed"] == 0   # before 807's step 2021-04-01


@pytest.mark.parametrize(("day", "exposed", "period"), [
    (D(2020, 9, 30), 0, 6), (D(2020, 10, 1), 1, 7), (D(2020, 12, 31), 1, 7)])
def test_exposure_and_period_at_boundaries(nwd_study: StudyFile, day: dt.date, exposed: int,
                                           period: int) -> None:
    out = run({"referrals": [ref("a", day)]}, nwd_study)
    assert out["exposed"].iloc[0] == exposed
    assert out["period"].iloc[0] == period           # quarters from 2019Q1 = 0
    assert out["step_period"].iloc[0] == 7           # 354's step is in 2020Q4
    assert out["period_start"].iloc[0] == D(2020, 3 * ((period - 4) % 4) + 1, 1)


def test_only_the_studys_qualifying_events_count(nwd_study: StudyFile) -> None:
    cohort = nwd_study.cohort.replace(qualifying_events=["referral"])
    study = nwd_study.replace(cohort=cohort)
    rows: Rows = {"referrals": [ref("a", D(2021, 1, 1))],
                  "cla_episodes": [episode("a", D(2020, 1, 1)), episode("b", D(2020, 1, 1))]}
    out = run(rows, study)
    assert list(out.index.get_level_values("child_id")) == ["a"]
    assert out["index_date"].iloc[0] == D(2021, 1, 1)


def test_covariates_come_from_the_latest_children_row(nwd_study: StudyFile) -> None:
    rows: Rows = {
        "referrals": [ref("a", D(2020, 1, 1)), ref("b", D(2020, 1, 1))],
        "children": [
            {"la_code": 354, "child_id": "a", "sex": "1", "uasc": False, "disability": True,
             "reference_date": D(2020, 3, 31)},
            {"la_code": 354, "child_id": "a", "sex": "2", "uasc": True, "disability": False,
             "reference_date": D(2021, 3, 31)}],
    }
    out = run(rows, nwd_study)
    # Sex comes from the latest row; the SSDA903 UASC flag counts only for a child looked after
    # by the index date (a later care entry must not change a covariate at the index date).
    assert (out.loc[(354, "a"), "sex"], bool(out.loc[(354, "a"), "uasc"])) == ("2", False)
    rows["cla_episodes"] = [episode("a", D(2019, 12, 1), D(2019, 12, 20))]
    assert bool(run(rows, nwd_study).loc[(354, "a"), "uasc"])
    assert pd.isna(out.loc[(354, "b"), "sex"])  # no characteristics row: missing, kept


def test_unknown_la_code_is_refused(nwd_study: StudyFile) -> None:
    with pytest.raises(TrialvaultError, match=r"LA code\(s\) \[999\]"):
        run({"referrals": [ref("a", D(2020, 1, 1), la=999)]}, nwd_study)


def test_unknown_outcome_id_names_the_study_key(nwd_study: StudyFile) -> None:
    extra = nwd_study.analysis.outcomes[0].replace(id="happiness", primary=False)
    analysis = nwd_study.analysis.replace(outcomes=[*nwd_study.analysis.outcomes, extra])
    with pytest.raises(StudyFileError, match=r"analysis\.outcomes.*happiness"):
        run({}, nwd_study.replace(analysis=analysis))


def test_flagged_children_are_removed_first_and_counted(nwd_study: StudyFile) -> None:
    con = harmonised({"referrals": [ref("a", D(2020, 1, 1)), ref("b", D(2020, 1, 1)),
                                    ref("a", D(2020, 1, 1), la=807)],
                      "cla_episodes": [episode("a", D(2020, 2, 1))]})
    ensure_flags_table(con)
    con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, set_at, "
                "set_by) VALUES (1, 354, 'a', 'restriction', 'active', now(), 'dpo'), "
                "(2, 354, 'b', 'objection', 'lifted', now(), 'dpo')")
    built = build_analysis_table(con, nwd_study)
    assert built.excluded_children == 1
    keys = set(zip(built.analysis["la_code"], built.analysis["child_id"], strict=True))
    assert keys == {(354, "b"), (807, "a")}  # 354/a removed; 807/a is another child
    # Nothing of the evaluation's scaffolding is left on the connection.
    left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE 'tv_%'")
    assert left.fetchone() == (0,)


# --- outcomes -------------------------------------------------------------------------------

def test_entered_care_counts_care_starts_in_follow_up(nwd_study: StudyFile) -> None:
    idx = D(2020, 1, 31)  # follow-up ends before 2021-01-31 (month arithmetic)
    rows: Rows = {
        "referrals": [ref(c, idx) for c in "abcdef"],
        "cla_episodes": [
            episode("a", D(2021, 1, 30)),                  # last day of follow-up
            episode("b", D(2021, 1, 31)),                  # first day after
            # (episodes starting before the data period: they cannot be index events)
            episode("c", D(2018, 6, 1), None),             # open-ended, started before index
            episode("d", D(2020, 6, 1), None),             # open-ended, started in follow-up
            episode("e", D(2018, 6, 1), D(2020, 3, 1)),    # overlaps the index, started before
        ],
    }
    out = run(rows, nwd_study)
    care = out["entered_care_12m"]
    assert care.dropna().to_dict() == {(354, "a"): 1, (354, "b"): 0, (354, "d"): 1,
                                       (354, "f"): 0}
    # c and e were already looked after at the index date: the outcome does not apply to them.
    assert out.loc[[(354, "c"), (354, "e")], "cohort_group"].tolist() == ["looked_after"] * 2
    assert care[[(354, "c"), (354, "e")]].isna().all()


def test_looked_after_index_counts_as_entering_care(nwd_study: StudyFile) -> None:
    rows: Rows = {"cla_episodes": [episode("a", D(2020, 5, 5), rne="P", place="K2")]}
    out = run(rows, nwd_study).iloc[0]
    assert (out["index_event"], out["entered_care_12m"]) == ("looked_after", 1)
    assert out["residential_placement_12m"] == 1
    assert out["placement_moves_12m"] == 0  # a move must start strictly after the index date


def test_leap_day_index_follow_up_ends_at_month_end(nwd_study: StudyFile) -> None:
    rows: Rows = {"referrals": [ref("a", D(2020, 2, 29)), ref("b", D(2020, 2, 29))],
                  "cla_episodes": [episode("a", D(2021, 2, 27)), episode("b", D(2021, 2, 28))]}
    out = run(rows, nwd_study)
    assert out.loc[(354, "a"), "follow_up_end"] == pd.Timestamp(2021, 2, 28)
    assert out["entered_care_12m"].to_dict() == {(354, "a"): 1, (354, "b"): 0}


def test_residential_and_moves_with_overlapping_episodes(nwd_study: StudyFile) -> None:
    idx = D(2020, 1, 1)
    rows: Rows = {
        "referrals": [ref("a", idx), ref("b", idx)],
        "cla_episodes": [
            # a: overlapping episodes (a data fault kept as is): each start is counted
            episode("a", D(2020, 2, 1), D(2020, 8, 1), rne="S", place="U1"),
            episode("a", D(2020, 5, 1), None, rne="P", place="K2"),
            episode("a", D(2020, 6, 1), D(2020, 7, 1), rne="T", place="U3"),
            episode("a", D(2020, 7, 1), None, rne="L", place="U3"),          # not a move
            episode("a", D(2021, 2, 1), None, rne="B", place="R1"),          # after follow-up
            # b: a residential placement open at the index date (started before it)
            episode("b", D(2018, 3, 1), D(2020, 2, 1), rne="S", place="K2"),
            # c: a residential placement that ended the day before the index date
            episode("c", D(2018, 3, 1), D(2019, 12, 31), rne="S", place="K2", age=150),
        ],
    }
    rows["referrals"].append(ref("c", idx))
    out = run(rows, nwd_study)
    assert out.loc[(354, "a"), "placement_moves_12m"] == 2
    assert out.loc[(354, "a"), "residential_placement_12m"] == 1
    assert out.loc[(354, "b"), "cohort_group"] == "looked_after"
    assert out.loc[(354, "b"), ["residential_placement_12m", "placement_moves_12m"]].tolist() \
        == [1, 0]
    assert out.loc[(354, "c"), "cohort_group"] == "edge_of_care"
    assert out.loc[(354, "c"), ["entered_care_12m", "residential_placement_12m",
                                 "placement_moves_12m"]].tolist() == [0, 0, 0]


def test_code_groups_match_the_contract() -> None:
    assert code_group("placement_move_reasons") == {"P", "B", "T", "U"}
    assert {"K1", "K2"} <= code_group("residential_placements")
    assert not code_group("residential_placements") & {"U1", "U3", "P1"}


def test_missing_cp_plan_and_rereferral(nwd_study: StudyFile) -> None:
    idx = D(2020, 4, 15)
    rows: Rows = {
        "referrals": [ref("a", idx), ref("a", idx),              # same-day duplicate: not a re-
                      ref("b", idx), ref("b", D(2020, 4, 16)),   # next day: re-referral
                      ref("c", idx), ref("c", D(2021, 4, 15))],  # on follow_up_end: outside
        "missing": [{"la_code": 354, "child_id": "a", "missing_start_date": d,
                     "missing_type": "M", "age_months": 180}
                    for d in (D(2020, 4, 14), idx, D(2020, 9, 1), D(2021, 4, 15))],
        "cp_plans": [{"la_code": 354, "child_id": "b", "cp_plan_start_date": D(2021, 4, 14),
                      "age_months": 180},
                     {"la_code": 354, "child_id": "c", "cp_plan_start_date": D(2021, 4, 15),
                      "age_months": 180}],
    }
    out = run(rows, nwd_study)
    assert out["missing_episodes_12m"].to_dict() == {(354, "a"): 2, (354, "b"): 0, (354, "c"): 0}
    assert out["rereferral_12m"].to_dict() == {(354, "a"): 0, (354, "b"): 1, (354, "c"): 0}
    assert out["cp_plan_12m"].to_dict() == {(354, "a"): 0, (354, "b"): 1, (354, "c"): 0}


def test_cp_plan_index_counts(nwd_study: StudyFile) -> None:
    rows: Rows = {"cp_plans": [{"la_code": 354, "child_id": "a",
                                "cp_plan_start_date": D(2020, 1, 1), "age_months": 170}]}
    assert run(rows, nwd_study)["cp_plan_12m"].tolist() == [1]


def test_neet_at_16_17_is_null_without_a_record_at_those_ages(nwd_study: StudyFile) -> None:
    idx = D(2022, 3, 10)

    def neet(child: str, month: dt.date, flag: bool | None, age: int) -> dict[str, Any]:
        return {"la_code": 354, "child_id": child, "activity_month": month, "neet": flag,
                "activity_code": "540", "age_months": age}

    rows: Rows = {
        "referrals": [ref(c, idx, age=190) for c in "abcde"],
        "neet": [
            neet("a", D(2022, 4, 1), True, 191),     # 15y 11m: not an age the outcome uses
            neet("b", D(2022, 4, 1), False, 192), neet("b", D(2022, 5, 1), None, 193),
            neet("c", D(2022, 4, 1), False, 192), neet("c", D(2022, 6, 1), True, 194),
            neet("d", D(2022, 3, 1), True, 192),     # month starts before the index date
            neet("e", D(2023, 4, 1), True, 203),     # month starts after follow-up
        ],
    }
    out = run(rows, nwd_study)["neet_16_17"]
    assert pd.isna(out[(354, "a")]) and pd.isna(out[(354, "d")]) and pd.isna(out[(354, "e")])
    assert (out[(354, "b")], out[(354, "c")]) == (0, 1)


def test_unauthorised_absence_rate_over_terms_starting_in_follow_up(
        nwd_study: StudyFile) -> None:
    idx = D(2020, 6, 15)  # follow-up to 2021-06-14: autumn 2020/21 and spring 2020/21 start in it

    def term(child: str, year: str, name: str, possible: int, unauth: int) -> dict[str, Any]:
        return {"la_code": 354, "child_id": child, "academic_year": year, "term": name,
                "sessions_possible": possible, "sessions_unauthorised_absence": unauth,
                "sessions_authorised_absence": 0, "age_months": 180}

    rows: Rows = {
        "referrals": [ref(c, idx) for c in "abc"],
        "attendance": [
            term("a", "2019/20", "summer", 100, 50),   # starts 2020-04-01: before index
            term("a", "2020/21", "autumn", 140, 14),
            term("a", "2020/21", "spring", 100, 6),
            term("a", "2020/21", "summer", 120, 60),   # starts 2021-04-01: inside
            term("a", "2021/22", "autumn", 140, 70),   # starts 2021-09-01: after
            term("b", "2020/21", "autumn", 0, 0),      # no possible sessions: undefined
        ],
    }
    out = run(rows, nwd_study)["unauthorised_absence_rate"]
    assert out[(354, "a")] == pytest.approx((14 + 6 + 60) / (140 + 100 + 120))
    assert pd.isna(out[(354, "b")]) and pd.isna(out[(354, "c")])


def test_absent_tables_read_as_empty(nwd_study: StudyFile) -> None:
    con = harmonised({"referrals": [ref("a", D(2020, 1, 1))]})
    for table in ("neet", "attendance", "missing", "children"):
        con.execute(f"DROP TABLE harmonised.{table}")
    built = build_analysis_table(con, nwd_study)
    assert set(built.missing_tables) == {"neet", "attendance", "missing", "children"}
    row = built.analysis.iloc[0]
    assert row["missing_episodes_12m"] == 0 and pd.isna(row["neet_16_17"])


def test_a_table_without_a_contract_column_is_named(nwd_study: StudyFile) -> None:
    con = harmonised({})
    con.execute("ALTER TABLE harmonised.referrals DROP COLUMN age_months")
    with pytest.raises(TrialvaultError, match=r"harmonised\.referrals lacks column\(s\) "
                                              r"\['age_months'\]"):
        build_analysis_table(con, nwd_study)


def test_malformed_academic_year_counts_in_no_window(nwd_study: StudyFile) -> None:
    rows: Rows = {"referrals": [ref("a", D(2020, 6, 15))],
                  "attendance": [{"la_code": 354, "child_id": "a", "academic_year": "20X0/21",
                                  "term": "autumn", "sessions_possible": 100,
                                  "sessions_unauthorised_absence": 5, "age_months": 180}]}
    assert pd.isna(run(rows, nwd_study)["unauthorised_absence_rate"].iloc[0])


def test_follow_up_length_comes_from_the_study(nwd_study: StudyFile) -> None:
    analysis = nwd_study.analysis.replace(follow_up_months=6)
    study = nwd_study.replace(analysis=analysis)
    rows: Rows = {"referrals": [ref("a", D(2025, 6, 30)), ref("b", D(2025, 7, 1)),
                                ref("c", D(2020, 1, 10))],
                  "cla_episodes": [episode("c", D(2020, 7, 9)), episode("c", D(2020, 7, 10))]}
    out = run(rows, study)
    assert sorted(out.index.get_level_values("child_id")) == ["a", "c"]  # index up to Jun 30
    assert out.loc[(354, "c"), "follow_up_end"] == pd.Timestamp(2020, 7, 10)
    assert out.loc[(354, "c"), "entered_care_12m"] == 1


@pytest.mark.parametrize("name", ["cohort", "outcomes"])
def test_sql_transpiles_to_spark(nwd_study: StudyFile, name: str) -> None:
    """The definitions must be able to move to Spark later: SQLGlot accepts them as is."""
    sqlglot = pytest.importorskip("sqlglot")
    from trialvault.evaluate.cohort import sql_text

    text = sql_text(name, nwd_study)
    assert "{{" not in text
    (spark,) = sqlglot.transpile(text, read="duckdb", write="spark",
                                 unsupported_level=sqlglot.ErrorLevel.RAISE)
    assert "INTERVAL '12' MONTH" in spark or name == "outcomes"


# --- realistic SSDA903 histories -----------------------------------------------------------
# Periods of care as real returns hold them: one episode per placement or legal status, a
# placement change is a new episode (RNE P/B/T/U), a return home ends the period (REC E4A) and a
# later entry starts a new one (RNE S).

def _long_stay(child: str, *, la: int = 354) -> list[dict[str, Any]]:
    """In care since 2015, placement changes in the data window, still looked after."""
    return [episode(child, D(2015, 3, 1), D(2017, 6, 1), rne="S", place="U4", age=110, la=la),
            episode(child, D(2017, 6, 1), D(2019, 5, 10), rne="P", place="U6", age=137, la=la),
            episode(child, D(2019, 5, 10), D(2020, 2, 3), rne="P", place="K2", age=160, la=la),
            episode(child, D(2020, 2, 3), D(2020, 8, 1), rne="P", place="U6", age=169, la=la),
            episode(child, D(2020, 8, 1), None, rne="T", place="U4", age=175, la=la)]


def test_placement_changes_of_a_child_in_care_for_years_are_no_care_entry(
        nwd_study: StudyFile) -> None:
    # Only episodes: the placement changes in 2019-2020 are not qualifying events.
    assert run({"cla_episodes": _long_stay("a")}, nwd_study).empty
    # An assessment while in care indexes the child in the named subgroup 'looked_after'.
    rows: Rows = {"cla_episodes": _long_stay("a"),
                  "assessments": [{"la_code": 354, "child_id": "a", "referral_date": D(2014, 12, 1),
                                   "assessment_start_date": D(2020, 1, 15), "age_months": 168}]}
    row = run(rows, nwd_study).loc[(354, "a")]
    assert (row["index_event"], row["index_date"], row["cohort_group"]) == (
        "assessment", D(2020, 1, 15), "looked_after")
    assert pd.isna(row["entered_care_12m"])          # cannot become looked after
    assert row["residential_placement_12m"] == 1      # K2 open at the index date
    assert row["placement_moves_12m"] == 2            # P on 2020-02-03, T on 2020-08-01


def test_return_home_and_re_entry(nwd_study: StudyFile) -> None:
    rows: Rows = {
        "referrals": [ref("home", D(2020, 3, 1), age=170), ref("open", D(2020, 2, 1), age=170),
                      ref("late", D(2020, 3, 1), age=170)],
        "cla_episodes": [
            # home: a period of care ended before the index (returned home), re-entry after it
            episode("home", D(2018, 1, 1), D(2019, 6, 30), rne="S", age=144),
            {**episode("home", D(2020, 9, 1), None, rne="S", age=176)},
            # open: in care at the index date, home in April, back in October
            episode("open", D(2018, 10, 1), D(2020, 4, 1), rne="S", age=154),
            episode("open", D(2020, 10, 1), None, rne="S", age=178),
            # late: the first episode the data hold is a placement change (no earlier episode):
            # it starts the child's period of care
            episode("late", D(2020, 7, 1), None, rne="P", age=174),
        ],
    }
    out = run(rows, nwd_study)
    assert out.loc[(354, "home"), ["cohort_group", "entered_care_12m"]].tolist() == [
        "edge_of_care", 1]
    assert out.loc[(354, "open"), "cohort_group"] == "looked_after"
    assert pd.isna(out.loc[(354, "open"), "entered_care_12m"])
    assert out.loc[(354, "late"), "entered_care_12m"] == 1
    # A re-entry after the follow-up is not an entry in it.
    rows["cla_episodes"][1] = episode("home", D(2021, 3, 2), None, rne="S", age=182)
    assert run(rows, nwd_study).loc[(354, "home"), "entered_care_12m"] == 0


def test_a_care_leaver_is_indexed_when_the_period_of_care_ends(nwd_study: StudyFile) -> None:
    def leaver(child: str, end: dt.date, rec: str) -> list[dict[str, Any]]:
        return [episode(child, D(2016, 5, 1), D(2019, 3, 10), rne="S", age=150),
                {**episode(child, D(2019, 3, 10), end, rne="P", age=184),
                 "reason_episode_ceased": rec}]

    first = leaver("a", D(2021, 11, 15), "E5")
    first[0]["reason_episode_ceased"] = "X1"
    rows: Rows = {"cla_episodes": [
        *first,                                                   # leaves at 18: a care leaver
        {**episode("young", D(2017, 1, 1), D(2019, 6, 1), age=150),  # leaves at 14: no event
         "reason_episode_ceased": "E4A"},
        *leaver("cont", D(2021, 11, 15), "X1"),                   # X1: the period continues
        episode("cont", D(2021, 11, 15), None, rne="L", age=216)]}
    out = run(rows, nwd_study)
    assert list(out.index.get_level_values("child_id")) == ["a"]
    row = out.loc[(354, "a")]
    assert (row["index_event"], row["cohort_group"], row["index_date"]) == (
        "care_leaver", "care_leaver", D(2021, 11, 15))
    assert row["age_months_at_index"] == 184 + 24 + 8          # 18 years 0 months
    # The outcomes of children in care or at school do not apply to a care leaver.
    assert row[["entered_care_12m", "placement_moves_12m", "cp_plan_12m"]].isna().all()
    # Without the event type in the study, no care leaver is indexed.
    cohort = nwd_study.cohort.replace(qualifying_events=["referral",
                                                                       "looked_after"])
    assert run(rows, nwd_study.replace(cohort=cohort)).empty


def test_children_looked_after_at_index_can_be_left_out(nwd_study: StudyFile) -> None:
    rows: Rows = {"referrals": [ref("in", D(2020, 3, 1)), ref("out", D(2020, 3, 1))],
                  "cla_episodes": [episode("in", D(2018, 1, 1), None)]}
    assert run(rows, nwd_study)["cohort_group"].to_dict() == {
        (354, "in"): "looked_after", (354, "out"): "edge_of_care"}
    cohort = nwd_study.cohort.replace(looked_after_at_index="exclude")
    out = run(rows, nwd_study.replace(cohort=cohort))
    assert list(out.index.get_level_values("child_id")) == ["out"]


def test_uasc_at_index_from_the_cin_assessment_factor(nwd_study: StudyFile) -> None:
    def assessment(child: str, referral: dt.date, factors: str) -> dict[str, Any]:
        return {"la_code": 354, "child_id": child, "referral_date": referral,
                "assessment_start_date": referral, "assessment_factors": factors,
                "age_months": 180}

    rows: Rows = {"referrals": [ref(c, D(2020, 3, 1)) for c in ("now", "later", "none")],
                  "assessments": [assessment("now", D(2020, 3, 1), "3B,9A"),
                                  assessment("later", D(2020, 9, 1), "9A"),
                                  assessment("none", D(2020, 3, 1), "19A")]}
    out = run(rows, nwd_study)["uasc"]
    # "later": nothing known at the index date and no characteristics row: unknown.
    assert out.to_dict() == {(354, "now"): True, (354, "later"): None,
                             (354, "none"): False}


@pytest.mark.parametrize(("age", "neet_expected", "school_expected"), [
    (170, 0, 1), (181, 1, 1), (186, 1, 0), (215, 1, 0)])
def test_who_should_have_neet_and_attendance_records(
        nwd_study: StudyFile, age: int, neet_expected: int, school_expected: int) -> None:
    row = run({"referrals": [ref("a", D(2020, 3, 1), age=age)]}, nwd_study).iloc[0]
    assert row["neet_16_17_expected"] == neet_expected
    assert row["unauthorised_absence_rate_expected"] == school_expected
