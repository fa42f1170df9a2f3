"""Every validation rule's table-literal examples give IDENTICAL flagged rows on DuckDB and Spark,
and on both engines every case behaves as the rule file says (fail cases flagged, pass cases
not). One batched query set per format and engine keeps Spark's share of CI small."""

from __future__ import annotations

from typing import Any

import pytest

from trialvault.engines import DuckDBEngine
from trialvault.engines.validation import CaseKey, flag_examples
from trialvault.spec.rules import RULE_FORMATS, RuleSet, load_rules

# PySpark's Arrow collection leaves sockets to the garbage collector (not our leak).
pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning"),
              pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]

_CACHE: dict[tuple[str, str], dict[CaseKey, set[int]]] = {}


def flagged(fmt: str, engine_name: str, spark: Any = None) -> dict[CaseKey, set[int]]:
    if (fmt, engine_name) not in _CACHE:
        if engine_name == "duckdb":
            with DuckDBEngine() as eng:
                _CACHE[(fmt, engine_name)] = flag_examples(eng, load_rules(fmt))
        else:
            from trialvault.engines.spark_engine import SparkEngine

            with SparkEngine(spark) as eng:
                _CACHE[(fmt, engine_name)] = flag_examples(eng, load_rules(fmt))
    return _CACHE[(fmt, engine_name)]


def expectation_problems(ruleset: RuleSet, found: dict[CaseKey, set[int]]) -> list[str]:
    """The rule file's own expectations (as prepare.examples.check_examples reads them)."""
    problems = []
    for rule in ruleset.rules:
        before = len(rule.examples.context.get(rule.table, []))
        for kind, cases in (("fail", rule.examples.fail), ("pass", rule.examples.pass_)):
            for index, case in enumerate(cases):
                rows = [case] if isinstance(case, dict) else list(case)
                own = {before + i for i in range(len(rows))}
                marked = {before + i for i, r in enumerate(rows) if r.get("_flag") is True}
                got = found[(rule.key, kind, index)]
                if kind == "pass" and got:
                    problems.append(f"{rule.code} pass {index}: flagged {sorted(got)}")
                elif kind == "fail" and marked and got & own != marked:
                    problems.append(f"{rule.code} fail {index}: {sorted(got & own)} != {marked}")
                elif kind == "fail" and not got & own:
                    problems.append(f"{rule.code} fail {index}: nothing flagged")
    return problems


@pytest.mark.parametrize("fmt", RULE_FORMATS)
def test_duckdb_engine_meets_every_example(fmt: str) -> None:
    ruleset = load_rules(fmt)
    found = flagged(fmt, "duckdb")
    assert len(found) == sum(len(r.examples.fail) + len(r.examples.pass_) for r in ruleset.rules)
    assert expectation_problems(ruleset, found) == []


@pytest.mark.parametrize("fmt", RULE_FORMATS)
def test_spark_flags_identical_rows_for_every_example(fmt: str, spark: Any) -> None:
    ruleset = load_rules(fmt)
    on_spark = flagged(fmt, "spark", spark)
    on_duckdb = flagged(fmt, "duckdb")
    differ = sorted(k for k in on_duckdb if on_duckdb[k] != on_spark.get(k))
    assert differ == []
    assert set(on_spark) == set(on_duckdb)
    assert expectation_problems(ruleset, on_spark) == []
    # Not vacuous: every fail case flagged rows on Spark.
    fails = sum(len(r.examples.fail) for r in ruleset.rules)
    assert sum(1 for (_, kind, _), rows in on_spark.items() if kind == "fail" and rows) == fails
