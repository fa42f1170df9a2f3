"""Record-level agreement with the public DfE validators on the public fake returns (fast).

`peer_records.json` holds, for every rule code the public validators share with us, the rows
they flag on each fake file (recorded by `benchmarks/peer_crosscheck.py --record`, which runs
them). Here our rules run on the same files and must flag exactly the same rows, code by code;
a code where they differ must be explained in `benchmarks/peer_differences.yaml` (with the
cause). The full cross-check (shifted years, fuzzed copies, synthetic data, the rules that need
reference data) is the benchmark's; this keeps the suite honest in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from trialvault.formats import read_cin_census, read_ssda903
from trialvault.prepare.validate import connect, load_tables, run_rules
from trialvault.spec.rules import load_rules

HERE = Path(__file__).resolve().parent
RECORDS = HERE / "peer_records.json"
DIFFERENCES = HERE.parents[2] / "benchmarks" / "peer_differences.yaml"
# The files the 903 validator's run-offline reads (its adoption table is the _errors file).
PEER_903 = ("ad1", "episodes", "header", "missing", "oc2", "oc3", "placed_for_adoption_errors",
            "previous_permanence", "reviews", "uasc", "sw_episodes")


def _ours(fmt: str, source: Any, year: int) -> dict[str, dict[str, set[int]]]:
    """{code: {table: row index in its file}} from our engine."""
    con = connect(threads=1)
    try:
        load_tables(con, source)
        run_rules(con, load_rules(fmt))
        index = "t.source_line - 2" if fmt == "ssda903" else "t._row"
        found: dict[str, dict[str, set[int]]] = {}
        for table in {t for (t,) in con.execute(
                "SELECT DISTINCT table_name FROM validation.issues").fetchall()}:
            for code, row in con.execute(
                    f"SELECT i.rule, {index} FROM validation.issues i "
                    f"JOIN {fmt}.\"{table}\" t ON t._row = i.row_id "
                    "WHERE i.table_name = ? AND (t.collection_year = ? OR ? = 'cin_census')",
                    [table, year, fmt]).fetchall():
                found.setdefault(code, {}).setdefault(table, set()).add(int(row))
    finally:
        con.close()
    return found


@pytest.fixture(scope="module")
def records() -> dict[str, Any]:
    return dict(json.loads(RECORDS.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def explained() -> dict[str, Any]:
    return dict(yaml.safe_load(DIFFERENCES.read_text(encoding="utf-8")))


def _source(shared_external: Path, tmp_path: Path, name: str, fmt: str, year: int) -> Any:
    if fmt == "ssda903":
        folder = tmp_path / "903"
        folder.mkdir(parents=True)
        for stem in PEER_903:
            (folder / f"{stem}.csv").symlink_to(shared_external / "ssda903" / f"{stem}.csv")
        return read_ssda903([folder], year=year)
    return read_cin_census([shared_external / "cin_census" / name.removeprefix("CIN fake ")])


def test_every_shared_code_agrees_row_by_row_or_is_explained(
        shared_external: Path, tmp_path: Path, records: dict[str, Any],
        explained: dict[str, Any]) -> None:
    assert records["datasets"], "no recorded datasets"
    unexplained: list[str] = []
    agreed = compared = 0
    for name, data in records["datasets"].items():
        fmt, year = data["format"], data["year"]
        ruleset = load_rules(fmt)
        ours = _ours(fmt, _source(shared_external, tmp_path / name.replace(" ", "_"), name,
                                  fmt, year), year)
        for code, peer_rows in data["peer"].items():
            rule = ruleset.rule(code, year)
            mine = ours.get(code, {}).get(rule.table, set())
            compared += 1
            if mine == set(peer_rows):
                agreed += 1
            elif code not in explained.get(fmt, {}):
                unexplained.append(f"{name} {code}: ours-only {sorted(mine - set(peer_rows))[:5]}"
                                   f", peer-only {sorted(set(peer_rows) - mine)[:5]}")
    assert unexplained == []
    assert compared > 1000 and agreed / compared > 0.95, (agreed, compared)
