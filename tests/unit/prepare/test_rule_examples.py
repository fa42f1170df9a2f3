"""Every validation rule passes its own table-literal examples, run through the real engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from trialvault.errors import InputFileError
from trialvault.prepare.examples import check_examples
from trialvault.prepare.validate import connect
from trialvault.spec.rules import RULE_FORMATS, RULES_DIR, load_rules, parse_rules

CASES = [(fmt, rule.key) for fmt in RULE_FORMATS for rule in load_rules(fmt).rules]


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect()
    yield connection
    connection.close()


@pytest.mark.parametrize(("fmt", "code"), CASES, ids=[f"{f}:{c}" for f, c in CASES])
def test_rule_examples(fmt: str, code: str, con: duckdb.DuckDBPyConnection) -> None:
    ruleset = load_rules(fmt)
    assert check_examples(ruleset, ruleset.rule(code), con) == []


def test_rule_counts_meet_the_brief() -> None:
    assert len(load_rules("ssda903").rules) >= 60
    assert len(load_rules("cin_census").rules) >= 40


def test_every_rule_has_failing_and_passing_examples() -> None:
    for fmt in RULE_FORMATS:
        for rule in load_rules(fmt).rules:
            assert rule.examples.fail and rule.examples.pass_, rule.code


def test_a_wrong_example_is_caught(con: duckdb.DuckDBPyConnection) -> None:
    ruleset = load_rules("ssda903")
    rule = ruleset.rule("101")
    broken = rule.replace(examples=rule.examples.replace(pass_=[{"SEX": "7"}]))
    assert check_examples(ruleset, broken, con) == ["rule 101 pass case 0: rows [0] flagged, "
                                                   "expected none"]


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "ssda903.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _rule(**over: object) -> dict[str, object]:
    base: dict[str, object] = {"code": "101", "message": "m", "table": "header",
                               "fields": ["SEX"], "severity": "warn", "where": "SEX IS NULL",
                               "examples": {"fail": [{"SEX": None}], "pass": [{"SEX": "1"}]}}
    return base | over


def test_duplicate_rule_code_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, {"format": "ssda903", "source": "s", "rules": [_rule(), _rule()]})
    with pytest.raises(InputFileError, match="given twice"):
        parse_rules(path)


def test_unknown_field_or_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="unknown field"):
        parse_rules(_write(tmp_path, {"format": "ssda903", "source": "s",
                                      "rules": [_rule(fields=["NOPE"])]}))
    with pytest.raises(InputFileError, match="unknown table"):
        parse_rules(_write(tmp_path, {"format": "ssda903", "source": "s",
                                      "rules": [_rule(table="nope")]}))


def test_rule_needs_exactly_one_check(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="exactly one"):
        parse_rules(_write(tmp_path, {"format": "ssda903", "source": "s",
                                      "rules": [_rule(query="SELECT 1")]}))


def test_rule_files_are_where_the_loader_looks() -> None:
    # One file per small format, one folder of files (by table) per DfE return.
    found = {p.stem for p in RULES_DIR.glob("*.yaml")} | {p.name for p in RULES_DIR.iterdir()
                                                         if p.is_dir()}
    assert found == set(RULE_FORMATS)
    for folder in (p for p in RULES_DIR.iterdir() if p.is_dir()):
        assert all(f.suffix == ".yaml" for f in folder.iterdir()), folder
