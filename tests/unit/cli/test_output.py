"""Tables never cut a value; CSV and JSON carry every value; JSON matches the listing's schema."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialvault.output import Column, Listing, OutputFormat, emit, render_table, to_csv

REQUESTS = Listing("test-requests", "Requests (a test listing)", (
    Column("id", "id", "integer"),
    Column("request", "request"),
    Column("due", "due", "date"),
    Column("days_left", "days left", "integer", nullable=True),
    Column("overdue", "overdue", "boolean"),
    Column("note", "note", wrap=True),
))
ROWS = [
    {"id": 1, "request": "3f2a9c1e-77b0-4c52-9a63-0c6f8f7b1d2e", "due": dt.date(2026, 12, 31),
     "days_left": 12, "overdue": False, "note": "waiting for the LA to confirm the child's code"},
    {"id": 22, "request": "0b9d1c44-1f6a-4a55-8d1e-2b2c9a6f4e10", "due": dt.date(2027, 1, 4),
     "days_left": None, "overdue": True, "note": ""},
]


def _cells(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.mark.parametrize("terminal", [False, True])
@pytest.mark.parametrize("width", [40, 80, 200])
def test_a_table_never_cuts_a_value(terminal: bool, width: int) -> None:
    text = render_table(REQUESTS, REQUESTS.records(ROWS), terminal=terminal, width=width)
    assert "…" not in text
    flat = _cells(re.sub(r"\x1b\[[0-9;]*m", "", text))
    for row in ROWS:
        for key in ("request", "due"):
            assert str(row[key]) in flat, (key, text)  # fixed values stay on one line
        for word in str(row["note"]).split():
            assert word in flat


def test_piped_tables_have_one_line_per_row_and_no_escape_codes() -> None:
    text = render_table(REQUESTS, REQUESTS.records(ROWS), terminal=False, width=40)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == 1 + len(ROWS), text
    assert "\x1b[" not in text and "─" not in text
    assert lines[0].split() == ["id", "request", "due", "days", "left", "overdue", "note"]


def test_csv_and_json_carry_every_value() -> None:
    records = REQUESTS.records(ROWS)
    parsed = list(csv.DictReader(io.StringIO(to_csv(REQUESTS, records))))
    assert parsed[0]["due"] == "2026-12-31" and parsed[1]["days_left"] == ""
    assert parsed[1]["overdue"] == "true" and parsed[0]["note"] == ROWS[0]["note"]
    out = io.StringIO()
    emit(REQUESTS, ROWS, OutputFormat.json, file=out)
    document = json.loads(out.getvalue())
    jsonschema.Draft202012Validator(
        REQUESTS.json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)
    assert document[1] == {"id": 22, "request": ROWS[1]["request"], "due": "2027-01-04",
                           "days_left": None, "overdue": True, "note": ""}


def test_the_generated_schema_refuses_a_wrong_row() -> None:
    validator = jsonschema.Draft202012Validator(REQUESTS.json_schema())
    good = REQUESTS.records(ROWS)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate([{**good[0], "id": "1"}])
    with pytest.raises(jsonschema.ValidationError):
        validator.validate([{**good[0], "stray": 1}])


def test_duplicate_column_titles_are_refused() -> None:
    with pytest.raises(ValueError, match="titles used twice"):
        Listing("test-dup", "", (Column("a", "children"), Column("b", "children")))


def test_a_row_with_other_keys_than_the_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="not the columns"):
        REQUESTS.records([{"id": 1}])


@given(st.lists(st.tuples(st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs",
                                                                                   "Zl", "Zp")),
                                  max_size=30),
                          st.integers(-10**9, 10**9)), max_size=5))
def test_csv_round_trips_any_text(rows: list[tuple[str, int]]) -> None:
    listing = Listing("test-any", "", (Column("text", "text", wrap=True),
                                       Column("n", "n", "integer")))
    records = listing.records([{"text": t, "n": n} for t, n in rows])
    parsed = list(csv.reader(io.StringIO(to_csv(listing, records))))[1:]
    assert parsed == [[t, str(n)] for t, n in rows]
