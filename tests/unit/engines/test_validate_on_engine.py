"""The engine path of validation gives exactly the prepare stage's findings (DuckDB engine,
on the public fake SSDA903 return), so the engine layer cannot drift from the stage it mirrors."""

from __future__ import annotations

from pathlib import Path

from trialvault.engines import DuckDBEngine
from trialvault.engines.validation import validate_on_engine
from trialvault.formats import read_ssda903
from trialvault.prepare.validate import connect, validate_sources
from trialvault.spec.rules import load_rules


def test_engine_findings_equal_the_prepare_stage(fake_903: Path) -> None:
    source = read_ssda903([fake_903], year=2017)
    rulesets = {"ssda903": load_rules("ssda903")}
    con = connect()
    try:
        staged = validate_sources(con, [source], rulesets)
    finally:
        con.close()
    with DuckDBEngine() as engine:
        on_engine = validate_on_engine(engine, [source], rulesets)
    assert on_engine.issue_count > 100
    assert on_engine.counts() == staged.counts()
    assert on_engine.issues.to_pylist() == staged.issues.cast(on_engine.issues.schema).to_pylist()
