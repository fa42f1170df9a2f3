"""The XML readers' row buffer: every value comes back as appended, repeats share one copy."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.formats.base import ColumnTable, Fields, RowBuffer

FIELDS = Fields((("code", "string"), ("key", "int64")))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.fixed_dictionaries({}, optional={"code": st.none() | st.text(max_size=3),
                                                     "key": st.integers(0, 10**12)}),
                max_size=60))
def test_every_value_comes_back_in_order(rows: list[dict[str, object]]) -> None:
    buffer = RowBuffer(FIELDS)
    for row in rows:
        buffer.append(row)
    table = buffer.table()
    assert len(buffer) == table.num_rows == len(rows)
    assert table.to_pylist() == [{"code": r.get("code"), "key": r.get("key")} for r in rows]
    assert table.to_arrow().to_pylist() == table.to_pylist()


def test_repeated_texts_share_one_copy_until_a_column_is_mostly_distinct() -> None:
    buffer = RowBuffer(FIELDS)
    for i in range(3):
        buffer.append({"code": "".join(["N", "1"]), "key": i})  # a new str object each time
    codes = buffer.table().column("code")
    assert codes[0] is codes[1] is codes[2]
    many = RowBuffer(FIELDS)
    for i in range(5000):
        many.append({"code": f"C{i}", "key": i})
    many.append({"code": "".join(["C", "1"]), "key": 0})
    assert many.table().column("code")[-1] == "C1"
    assert many.table().column("code")[-1] is not many.table().column("code")[1]


def test_an_empty_table_has_its_columns() -> None:
    empty = FIELDS.empty_table()
    assert isinstance(empty, ColumnTable) and empty.num_rows == 0
    assert empty.to_arrow().schema.names == ["code", "key"]
    assert FIELDS.sql_fields() == [("code", "VARCHAR"), ("key", "BIGINT")]
