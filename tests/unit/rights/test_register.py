"""The request register: states, transitions, refusals, deadlines from stored facts."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.rights import register as reg

D = dt.date
LAS = (354, 807)
TODAY = D(2025, 3, 20)
RECEIVED = D(2025, 3, 3)


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("ATTACH ':memory:' AS rights")  # the register's catalog, as in a vault session
    return con


def _new(con: duckdb.DuckDBPyConnection, type: str = "access", received: dt.date = RECEIVED,
         child: str = "CHILD-A") -> int:
    return reg.new_request(con, type=type, la_code=354, child_id=child, child_hash="h",
                           received=received, channel="email", note=None, user="dpo1",
                           valid_las=LAS, today=TODAY)


def test_new_and_show(con: duckdb.DuckDBPyConnection) -> None:
    assert reg.list_requests(con) == []
    rid = _new(con)
    req = reg.get_request(con, rid)
    assert (req.request_id, req.type, req.state, req.child_id) == (1, "access", "received",
                                                                     "CHILD-A")
    assert req.deadline(TODAY).due == D(2025, 4, 3)
    assert _new(con, "erasure") == 2
    assert [r.request_id for r in reg.list_requests(con, open_only=True)] == [1, 2]


@pytest.mark.parametrize(("kwargs", "rule"), [
    ({"type": "portability"}, "type"),
    ({"channel": "fax"}, "channel"),
    ({"la_code": 999}, "la"),
    ({"received": D(2025, 3, 21)}, "received"),
    ({"child_id": " "}, "child"),
])
def test_new_refuses_bad_input(con: duckdb.DuckDBPyConnection, kwargs: dict[str, object],
                               rule: str) -> None:
    args: dict[str, object] = {"type": "access", "la_code": 354, "child_id": "SECRET-CODE-9",
                               "child_hash": None, "received": D(2025, 3, 3), "channel": "post",
                               "note": None, "user": "u", "valid_las": LAS, "today": TODAY}
    args.update(kwargs)
    with pytest.raises(InputFileError) as err:
        reg.new_request(con, **args)  # type: ignore[arg-type]
    assert f"rule {rule}" in str(err.value)
    assert "SECRET-CODE-9" not in str(err.value)


def test_pause_and_resume_move_the_deadline(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con)
    req = reg.await_information(con, rid, "clarification", asked=D(2025, 3, 10), user="dpo1",
                                today=TODAY)
    assert req.state == "awaiting_clarification"
    assert req.deadline(TODAY).due is None
    req = reg.resume(con, rid, answered=D(2025, 3, 14), user="dpo1", today=TODAY)
    assert req.state == "in_progress"
    assert req.deadline(TODAY).due == D(2025, 4, 8)
    actions = [e[2] for e in reg.events(con, rid)]
    assert actions == ["new", "await-clarification", "resume"]


def test_clarification_stops_the_clock_only_for_access(con: duckdb.DuckDBPyConnection
                                                      ) -> None:
    rid = _new(con, "erasure")
    with pytest.raises(PolicyRefusal, match="only on access requests"):
        reg.await_information(con, rid, "clarification", asked=D(2025, 3, 10), user="u",
                              today=TODAY)
    req = reg.await_information(con, rid, "identity", asked=D(2025, 3, 10), user="u",
                                today=TODAY)
    assert req.state == "awaiting_identity"


def test_identity_restarts_the_month(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con)
    reg.await_information(con, rid, "identity", asked=D(2025, 3, 4), user="u", today=TODAY)
    req = reg.resume(con, rid, answered=D(2025, 3, 18), user="u", today=TODAY)
    # 18 April 2025 is Good Friday and 21 April Easter Monday: next working day is the 22nd.
    assert req.deadline(TODAY).due == D(2025, 4, 22)


def test_resume_refuses_dates_out_of_order(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con)
    reg.await_information(con, rid, "identity", asked=D(2025, 3, 10), user="u", today=TODAY)
    with pytest.raises(InputFileError, match="must be between"):
        reg.resume(con, rid, answered=D(2025, 3, 9), user="u", today=TODAY)
    with pytest.raises(PolicyRefusal, match="awaiting identity"):
        reg.start(con, rid, user="u")


def test_extension_once_with_reason_within_first_month(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con)
    with pytest.raises(PolicyRefusal, match="at least"):
        reg.extend(con, rid, reason="busy", user="u", today=TODAY)
    req = reg.extend(con, rid, reason="Records span five collection years and two formats.",
                     user="u", today=TODAY)
    assert req.extended and req.deadline(TODAY).due == D(2025, 6, 3)
    with pytest.raises(PolicyRefusal, match="already extended"):
        reg.extend(con, rid, reason="Records span five collection years and two formats.",
                   user="u", today=TODAY)
    late = _new(con, received=D(2025, 1, 2))
    with pytest.raises(PolicyRefusal, match="first month ended"):
        reg.extend(con, late, reason="Records span five collection years and two formats.",
                   user="u", today=TODAY)


def test_refuse_and_closed_requests_cannot_move(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con)
    req = reg.refuse(con, rid, reason="The LA confirmed the code belongs to no trial child.",
                     user="u", today=TODAY)
    assert req.state == "refused" and req.closed_on == TODAY and not req.is_open
    with pytest.raises(PolicyRefusal, match="is refused"):
        reg.start(con, rid, user="u")


def test_exemption_is_case_by_case_and_matches_the_right(con: duckdb.DuckDBPyConnection) -> None:
    rid = _new(con, "erasure")
    with pytest.raises(PolicyRefusal, match="erasure request"):
        reg.record_exemption(con, rid, right="access", reason="x" * 40, decided_by="DPO",
                             user="u", today=TODAY)
    with pytest.raises(PolicyRefusal, match="at least"):
        reg.record_exemption(con, rid, right="erasure", reason="research", decided_by="DPO",
                             user="u", today=TODAY)
    req = reg.record_exemption(
        con, rid, right="erasure", decided_by="L. Eastwood (DPO)", user="u", today=TODAY,
        reason="Analysis is locked and erasure now would invalidate the published primary result.")
    assert req.state == "refused"
    assert req.exemption is not None and "17(3)(d)" in req.exemption.basis
    assert req.outcome is not None and "17(3)(d)" in req.outcome
    acc = reg.record_exemption(con, _new(con, "access"), right="access", decided_by="DPO",
                               user="u", today=TODAY, reason="y" * 30)
    assert acc.exemption is not None and "paragraph 27" in acc.exemption.basis


def test_unknown_request(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(reg.UnknownRequest):
        reg.get_request(con, 3)
    _new(con)
    with pytest.raises(reg.UnknownRequest, match="no rights request 3"):
        reg.get_request(con, 3)
