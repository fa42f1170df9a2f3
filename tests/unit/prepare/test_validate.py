"""The rule engine: typing, batching, and errors that name the rule but never a value."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialvault.errors import InputFileError
from trialvault.formats import SourceTables
from trialvault.formats.cin_census import table_schema as cin_schema
from trialvault.formats.ssda903 import table_schema as ssda_schema
from trialvault.prepare.validate import connect, issues_table, load_tables, run_rules
from trialvault.spec.rules import Examples, Rule, RuleSet, load_rules


def table(schema: pa.Schema, rows: list[dict[str, object]]) -> pa.Table:
    defaults = {"collection_year": 2023, "source_file": "f.csv", "reference_date": "2023-03-31"}
    return pa.Table.from_pydict({f.name: [r.get(f.name, defaults.get(f.name)) for r in rows]
                                 for f in schema}, schema=schema)


def header(rows: list[dict[str, object]]) -> SourceTables:
    return SourceTables("ssda903", {"header": table(ssda_schema("header"), rows)}, ("f.csv",))


def test_typing_keeps_raw_text_and_nulls_bad_values() -> None:
    con = connect()
    load_tables(con, header([{"CHILD": " 1 ", "DOB": "31/02/2010", "source_line": 2},
                             {"CHILD": "2", "DOB": "1/2/2010", "source_line": 3}]),
                only={"header"})
    rows = con.execute("SELECT CHILD, DOB, raw_DOB, collection_start, collection_end "
                       "FROM ssda903.header ORDER BY _row").fetchall()
    assert rows[0][:3] == ("1", None, "31/02/2010")
    assert str(rows[1][1]) == "2010-02-01"
    assert (str(rows[0][3]), str(rows[0][4])) == ("2022-04-01", "2023-03-31")


def _rule(code: str, where: str | None = None, query: str | None = None) -> Rule:
    return Rule(code=code, message="m", table="header", fields=["CHILD"], severity="warn",
                where=where, query=query,
                examples=Examples(fail=[{"CHILD": "1"}], pass_=[{"CHILD": "2"}]))


def test_a_rule_failing_on_data_names_the_rule_not_the_value() -> None:
    con = connect()
    columns = load_tables(con, header([{"CHILD": "SECRET-CODE-77", "source_line": 2}]),
                          only={"header"})
    bad = RuleSet(format="ssda903", source="s",
                  rules=[_rule("X1", where="CAST(CHILD AS INTEGER) > 0"),
                         _rule("X2", where="CHILD IS NULL")])
    with pytest.raises(InputFileError) as err:
        run_rules(con, bad, tables=columns)
    assert err.value.rule == "X1" and "SECRET" not in str(err.value)


def test_a_broken_rule_sql_is_named_with_its_error() -> None:
    con = connect()
    columns = load_tables(con, header([{"CHILD": "1", "source_line": 2}]), only={"header"})
    bad = RuleSet(format="ssda903", source="s", rules=[_rule("X3", query="SELECT _row FROM nope")])
    with pytest.raises(InputFileError, match=r"rule X3 cannot run .*nope"):
        run_rules(con, bad, tables=columns)


def test_batched_and_single_rules_find_the_same() -> None:
    ruleset = load_rules("ssda903")
    rows = [{"CHILD": str(i), "SEX": s, "DOB": d, "ETHNIC": e, "UPN": u, "source_line": i + 2}
            for i, (s, d, e, u) in enumerate([("3", "01/01/2010", "WBRI", "A123456789012"),
                                               ("1", "bad", "XXXX", "I1"),
                                               ("2", "01/01/2030", None, "UN1")])]
    found = []
    for one_by_one in (False, True):
        con = connect()
        columns = load_tables(con, header(rows), only=ruleset.base_tables(
            t for r in ruleset.rules if r.table == "header" for t in (r.table, *r.tables)))
        if one_by_one:
            for rule in ruleset.rules:
                if rule.table == "header":
                    run_rules(con, ruleset, [rule.code], tables=columns)
        else:
            run_rules(con, ruleset, [r.code for r in ruleset.rules if r.table == "header"],
                      tables=columns)
        issues = issues_table(con)
        found.append(sorted(zip(issues["rule"].to_pylist(), issues["line"].to_pylist(),
                                strict=True)))
    assert found[0] == found[1]
    assert ("101", 2) in found[0] and ("102", 3) in found[0] and ("103", 3) in found[0]
    assert ("168", 3) in found[0] and ("301", 4) in found[0]


text = st.one_of(st.none(), st.text(max_size=14),
                 st.sampled_from(["01/01/2010", "2010-01-01", "A123456789012", "UN1", "-1",
                                  "99999999999", "N1", "true", "0"]))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: text for c in (
    "LAchildID", "UPN", "FormerUPN", "PersonBirthDate", "ExpectedPersonBirthDate",
    "GenderCurrent", "Sex", "PersonDeathDate")}), min_size=1, max_size=6))
def test_every_cin_child_rule_survives_any_text(rows: list[dict[str, object]]) -> None:
    """Whatever the LA's file holds, the rules report findings; they never crash."""
    source = SourceTables("cin_census", {"child_identifiers": table(
        cin_schema("child_identifiers"),
        [{**r, "child_key": i, "source_line": i + 2} for i, r in enumerate(rows)])}, ("f",))
    con = connect(threads=1)
    columns = load_tables(con, source)
    run_rules(con, load_rules("cin_census"), tables=columns)
    con.close()


def test_bank_holidays_are_englands_and_working_days_count_back() -> None:
    import datetime as dt

    import holidays

    from trialvault.prepare.working_days import FIRST_YEAR, LAST_YEAR, bank_holidays

    years = range(FIRST_YEAR, LAST_YEAR + 1)
    assert set(bank_holidays()) == set(holidays.country_holidays("GB", subdiv="ENG",
                                                                 years=years))
    con = connect(threads=1)
    try:
        def back(day: str, k: int) -> dt.date:
            row = con.execute(f"SELECT working_days_before(DATE '{day}', {k})").fetchone()
            assert row is not None
            return row[0]

        # Friday 31 March 2023 is day 1; 5 working days back is Monday 27 March.
        assert back("2023-03-31", 1) == dt.date(2023, 3, 31)
        assert back("2023-03-31", 5) == dt.date(2023, 3, 27)
        # Easter 2023: Good Friday 7 April and Easter Monday 10 April are not working days.
        assert back("2023-04-11", 2) == dt.date(2023, 4, 6)
        # A Sunday counts back from the Friday before.
        assert back("2023-04-02", 1) == dt.date(2023, 3, 31)
    finally:
        con.close()
