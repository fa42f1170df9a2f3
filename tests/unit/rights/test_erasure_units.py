"""Pure parts of erasure: validation lines naming a child (property-tested), letter claims
from recorded actions, and the retention states."""

from __future__ import annotations

import csv
import datetime as dt
import io

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from trialvault.retention.schedule import RetentionStatus
from trialvault.rights.erasure import Action, validation_lines
from trialvault.rights.letters import erasure_claims

CODE = st.text(alphabet="ABCXYZ019-=+@',\" ", min_size=1, max_size=8)


def _con(blobs: dict[str, bytes]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.packages (package_id VARCHAR, la_code INTEGER, "
                "validation_csv BLOB)")
    for pid, blob in blobs.items():
        con.execute("INSERT INTO meta.packages VALUES (?, 354, ?)", [pid, blob])
    return con


def _csv(rows: list[list[str]], crlf: bool) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n").writerows(
        [["file", "line", "child", "rule"], *rows])
    return buffer.getvalue().encode()


@settings(max_examples=80, deadline=None)
@given(child=CODE, others=st.lists(CODE, max_size=6), crlf=st.booleans(),
       escaped=st.booleans())
def test_exactly_the_lines_naming_the_child_are_removed(child: str, others: list[str],
                                                        crlf: bool, escaped: bool) -> None:
    named = ("'" + child) if escaped else child  # an OWASP-escaped cell names the child too
    rows = [["a.csv", str(i + 2), c, "101"] for i, c in enumerate([named, *others, child])]
    con = _con({"p1": _csv(rows, crlf)})
    found = validation_lines(con, 354, child)
    keep = [r for r in rows if r[2] not in (child, "'" + child)]
    assert len(found) == 1
    package_id, removed, rewritten = found[0]
    assert package_id == "p1" and removed == len(rows) - len(keep)
    assert list(csv.reader(io.StringIO(rewritten.decode(), newline=""))) == [
        ["file", "line", "child", "rule"], *keep]
    assert (b"\r\n" in rewritten) == crlf or not keep


def test_a_code_only_inside_another_cell_is_not_a_line_about_the_child() -> None:
    con = _con({"p1": _csv([["a.csv", "2", "XC1", "101"], ["C1.csv", "3", "D", "102"]],
                           False)})
    assert validation_lines(con, 354, "C1") == []


def test_erasure_claims_count_records_once_and_say_what_each_action_did() -> None:
    acts = [Action("table", "raw.children", "deleted", 2),
            Action("table", "raw.referrals", "deleted", 4),
            Action("table", "harmonised.children", "deleted", 1),
            Action("validation", "meta.packages.validation_csv", "removed lines", 1, "p"),
            Action("package", "a.tvpkg", "destroyed", 1, "p"),
            Action("export", "export-1", "marked to destroy", 1, "e"),
            Action("backup", "b", "marked to destroy", 1, "b"),
            Action("tombstone", "rights.tombstones", "recorded", 1),
            Action("rekey", "every domain", "copied under fresh keys", 4)]
    claims = {c.kind: c for c in erasure_claims(acts)}
    assert claims["table"].count == 6 and claims["table"].text.startswith(
        "We deleted all 6 records about you")
    assert claims["validation"].text.startswith("We deleted 1 note about you")
    assert claims["package"].text.startswith("We deleted 1 file your local authority")
    assert claims["copies"].count == 2 and claims["copies"].text.startswith("2 copies")
    assert "output" not in claims and "close" not in claims
    assert erasure_claims([]) == []


def _status(today: dt.date) -> RetentionStatus:
    return RetentionStatus(study_id="s", rule="r", deletion_label="Autumn 2033",
                           window=(dt.date(2033, 9, 1), dt.date(2033, 11, 30)),
                           due=dt.date(2033, 9, 1), today=today, method="m")


def test_retention_states() -> None:
    assert _status(dt.date(2033, 8, 31)).state == "not due"
    assert _status(dt.date(2033, 9, 1)).state == "due"
    assert _status(dt.date(2033, 11, 30)).state == "due"
    late = _status(dt.date(2034, 1, 10))
    assert late.state == "overdue" and late.days_overdue == 41 and late.is_due
