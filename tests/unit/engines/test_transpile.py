"""The DuckDB → Spark rewrites on their own (no Spark needed)."""

from __future__ import annotations

import pytest

from trialvault.engines.base import EngineError
from trialvault.engines.transpile import Macro, flat_name, to_spark


def test_month_interval_with_a_column_amount_becomes_add_months() -> None:
    sql = to_spark("SELECT CAST(d - INTERVAL (p.n) MONTH AS DATE), d + to_years(k) FROM t, p")
    assert "ADD_MONTHS(d, -((p.n)))" in sql
    assert "ADD_MONTHS(d, (k) * 12)" in sql


def test_literal_intervals_are_left_to_spark() -> None:
    assert "INTERVAL '25' YEAR" in to_spark("SELECT d + INTERVAL 25 YEAR FROM t")


def test_macros_are_inlined_with_arguments_bound() -> None:
    macro = Macro("in_codes", ("x", "list_name", "yr"),
                  "(x = ANY(SELECT c.code FROM validation.code_lists AS c "
                  "WHERE c.list = list_name AND (yr IS NULL OR c.valid_from <= yr)))")
    sql = to_spark("SELECT _row FROM header WHERE NOT in_codes(SEX, 'SEX', collection_year)",
                   macros={"in_codes": macro}, default_schema="ssda903")
    assert "(SEX) IN (SELECT c.code FROM validation__code_lists" in sql
    assert "c.list = ('SEX')" in sql and "(collection_year) IS NULL" in sql
    assert "FROM ssda903__header" in sql and "in_codes" not in sql.lower()


def test_schema_names_flatten_but_ctes_and_defaults_are_respected() -> None:
    sql = to_spark("WITH a AS (SELECT * FROM harmonised.referrals) SELECT * FROM a JOIN b ON 1=1",
                   default_schema="s")
    assert "FROM harmonised__referrals" in sql and "FROM a JOIN s__b" in sql
    assert flat_name("validation.code_lists") == "validation__code_lists"


def test_duckdb_only_functions_map_to_spark_equivalents() -> None:
    sql = to_spark("SELECT regexp_full_match(u, '[0-9]{2}'), arg_max_null(a, b), "
                   "list_sum(l), date_diff('day', x, y) FROM t")
    assert "RLIKE '^(?:[0-9]{2})$'" in sql
    assert "MAX_BY(a, b)" in sql
    assert "AGGREGATE(l, CAST(0 AS BIGINT)" in sql
    assert "DATEDIFF(DAY, x, y)" in sql


def test_unparsable_sql_is_an_engine_error() -> None:
    with pytest.raises(EngineError, match="does not parse"):
        to_spark("SELECT FROM WHERE (")
