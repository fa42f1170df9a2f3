"""The holdings page shows a package's validation summary as tables, never as Python text."""

from __future__ import annotations

from trialvault.console.pages_holdings import flatten, record_tables

SUMMARY = {"by_kind": {"error": 520, "query": 65}, "rejected_rows": 31,
           "by_rule": [{"format": "cin_census", "kind": "query", "rows": 9, "rule": "8670Q",
                        "table": "assessments"},
                       {"format": "ssda903", "rows": 2, "rule": "103", "kind": "error",
                        "severity": "reject", "table": "header"}],
           "years": [2024, 2025]}


def test_counts_flatten_and_lists_of_records_become_tables() -> None:
    assert flatten(SUMMARY) == [("by_kind.error", 520), ("by_kind.query", 65),
                                ("rejected_rows", 31), ("years", "2024, 2025")]
    [table] = record_tables(SUMMARY)
    assert table.title == "by rule"
    assert table.columns == ["format", "kind", "rule", "table", "severity", "rows"]
    assert table.rows == [["cin_census", "query", "8670Q", "assessments", "", 9],
                          ["ssda903", "error", "103", "header", "reject", 2]]
    rendered = repr(flatten(SUMMARY)) + repr(table.rows)
    assert "{" not in rendered and "'rule':" not in rendered
