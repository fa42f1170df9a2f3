"""The register of data-subject requests, kept inside the encrypted vault (schema `rights`).

A request moves through these states; every move is a row in `rights.events`:

    received ──► awaiting_identity / awaiting_clarification ──► in_progress ──► completed
        │                       (resume on receipt)                  │    ▲
        │                                      (erasure) erasing ◄───┘────┘ (after the re-key)
        └──────────────────────────────────────────────────────────► refused (with reason)
    any open request of a child whose erasure completes ───────────► closed

`completed` is reached only by executing the request (`rights.actions`, `rights.erasure`: an
erasure stays `erasing` until its re-key has completed); `refused` by a refusal with reasons, or
by a research-exemption assessment that concluded the exemption applies; `closed` when the child
was erased meanwhile (nothing is left to act on; the letter says so).

A request of the same type, LA and child received within `DUPLICATE_DAYS` of an earlier one is
registered, flagged and linked to it (`duplicate_of`): the two are answered together.
Deadlines are computed from the stored facts (received date, pauses, extension) by
`rights.deadlines`, never stored, so a corrected fact corrects the deadline.

Child codes are stored only here, inside the encrypted database; they are never put in an error
message, an event detail or the audit log. After erasure the request keeps only the keyed hash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal, get_args

import duckdb

from trialvault.errors import InputFileError, NotFound, PolicyRefusal
from trialvault.rights.deadlines import Deadline, Pause, PauseKind, compute_deadline
from trialvault.rights.flags import RIGHTS_SCHEMA

RequestType = Literal["access", "rectification", "erasure", "restriction", "objection"]
Channel = Literal["email", "post", "phone"]
State = Literal["received", "awaiting_identity", "awaiting_clarification", "in_progress",
                "erasing", "completed", "refused", "closed"]
REQUEST_TYPES: tuple[RequestType, ...] = get_args(RequestType)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
OPEN_STATES: frozenset[State] = frozenset({"received", "awaiting_identity",
                                           "awaiting_clarification", "in_progress", "erasing"})
DUPLICATE_DAYS = 30
# Free text the desk types about a case; erasure replaces it (it may identify the person).
REMOVED_TEXT = "(removed when the person's information was erased)"
AWAITING: dict[PauseKind, State] = {"identity": "awaiting_identity",
                                    "clarification": "awaiting_clarification"}

# The legal basis of a research exemption, by right (see DOMAIN primer and the ICO guidance on
# research exemptions): para 27 disapplies Arts 15, 16, 18 and 21 to the extent complying would
# prevent or seriously impair the research; erasure has its own exception in Art. 17(3)(d).
EXEMPTION_BASIS: dict[RequestType, str] = {
    "access": "DPA 2018 Schedule 2 Part 6 paragraph 27 (UK GDPR Art. 15), with Art. 89(1) "
              "safeguards",
    "rectification": "DPA 2018 Schedule 2 Part 6 paragraph 27 (UK GDPR Art. 16), with "
                     "Art. 89(1) safeguards",
    "restriction": "DPA 2018 Schedule 2 Part 6 paragraph 27 (UK GDPR Art. 18), with "
                   "Art. 89(1) safeguards",
    "objection": "DPA 2018 Schedule 2 Part 6 paragraph 27 (UK GDPR Art. 21), with Art. 89(1) "
                 "safeguards",
    "erasure": "UK GDPR Art. 17(3)(d) (erasure likely to render impossible or seriously impair "
               "the research), with Art. 89(1) safeguards",
}
MIN_REASON_CHARS = 20  # a reason is a sentence, not "n/a": the ICO expects reasons per case

REGISTER_DDL = f"""
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.requests (
    request_id INTEGER PRIMARY KEY,
    type VARCHAR NOT NULL,
    la_code INTEGER NOT NULL,
    child_id VARCHAR,              -- NULL once the child is erased
    child_hash VARCHAR,            -- keyed hash, kept after erasure
    received DATE NOT NULL,
    channel VARCHAR NOT NULL,
    note VARCHAR,
    state VARCHAR NOT NULL,
    extended BOOLEAN NOT NULL DEFAULT false,
    extension_reason VARCHAR,
    outcome VARCHAR,
    closed_on DATE,
    created_at TIMESTAMP NOT NULL,
    created_by VARCHAR NOT NULL,
    duplicate_of INTEGER
);
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.pauses (
    request_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    asked DATE NOT NULL,
    answered DATE
);
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.events (
    event_id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL,
    happened_at TIMESTAMP NOT NULL,
    by_user VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    from_state VARCHAR,
    to_state VARCHAR NOT NULL,
    detail VARCHAR
);
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.exemptions (
    request_id INTEGER NOT NULL,
    right_name VARCHAR NOT NULL,
    basis VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    decided_by VARCHAR NOT NULL,
    decided_on DATE NOT NULL,
    recorded_by VARCHAR NOT NULL
);
"""


class UnknownRequest(NotFound):
    """No request with that id in this vault (exit code 8, like every "not found")."""


@dataclass(frozen=True)
class Exemption:
    right: str
    basis: str
    reason: str
    decided_by: str
    decided_on: dt.date


@dataclass(frozen=True)
class RightsRequest:
    """One request as stored, with its pauses; `deadline()` applies the ICO rules."""

    request_id: int
    type: RequestType
    la_code: int
    child_id: str | None
    received: dt.date
    channel: Channel
    note: str | None
    state: State
    extended: bool
    extension_reason: str | None
    outcome: str | None
    closed_on: dt.date | None
    pauses: tuple[Pause, ...]
    exemption: Exemption | None
    duplicate_of: int | None = None
    child_hash: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def deadline(self, today: dt.date) -> Deadline:
        return compute_deadline(self.received, pauses=self.pauses, extended=self.extended,
                                today=today)

    def overdue_at_pause(self) -> int | None:
        """Days the request was already overdue when the clock was last stopped (ID or
        clarification asked after the due date), else None. Asking late does not cure the
        delay: the request is shown as overdue at the pause."""
        for i in range(len(self.pauses) - 1, -1, -1):
            pause = self.pauses[i]
            before = compute_deadline(self.received, pauses=self.pauses[:i],
                                      extended=self.extended, today=pause.asked)
            if before.due is not None and pause.asked > before.due:
                return (pause.asked - before.due).days
        return None


def ensure_register(con: duckdb.DuckDBPyConnection) -> None:
    """Create the register's tables (in the `rights` catalog) on first use; add the columns
    later versions need to a register made before them."""
    con.execute(REGISTER_DDL)
    con.execute(f"ALTER TABLE {RIGHTS_SCHEMA}.requests ADD COLUMN IF NOT EXISTS duplicate_of "
                "INTEGER")


def register_exists(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND "
                      "table_name = 'requests'", [RIGHTS_SCHEMA]).fetchone()
    return bool(row and row[0])


def check_text(value: str, what: str, *, min_chars: int = 1, max_chars: int = 2000) -> str:
    value = value.strip()
    if len(value) < min_chars:
        raise PolicyRefusal(f"{what} must be at least {min_chars} characters: give the reason "
                            "for this case")
    if len(value) > max_chars:
        raise PolicyRefusal(f"{what} is longer than {max_chars} characters")
    return value


def check_child_code(child_id: str) -> str:
    """A child code is 1-64 printable characters (the message never repeats it)."""
    code = child_id.strip()
    if not code or len(code) > 64 or not code.isprintable():
        raise InputFileError("the child code must be 1-64 printable characters", rule="child")
    return code


def new_request(con: duckdb.DuckDBPyConnection, *, type: str, la_code: int, child_id: str,
                child_hash: str | None, received: dt.date, channel: str, note: str | None,
                user: str, valid_las: Collection[int], today: dt.date,
                not_before: dt.date | None = None, force: bool = False) -> int:
    """Register a request; returns its id. Refuses unknown types, LAs, channels, future dates
    and (unless `force`) dates before `not_before` (the study's data period). A request of the
    same type, LA and child within `DUPLICATE_DAYS` of another is linked to the earliest."""
    if type not in REQUEST_TYPES:
        raise InputFileError(f"unknown request type {type!r}: one of {', '.join(REQUEST_TYPES)}",
                             rule="type")
    if channel not in CHANNELS:
        raise InputFileError(f"unknown channel {channel!r}: one of {', '.join(CHANNELS)}",
                             rule="channel")
    if la_code not in valid_las:
        raise InputFileError(f"LA {la_code} is not a local authority of this study", rule="la")
    if received > today:
        raise InputFileError(f"received date {received} is in the future", rule="received")
    if not_before is not None and received < not_before and not force:
        raise InputFileError(f"received date {received} is before the study's data period "
                             f"(from {not_before}): check the date, or register it with --force "
                             "if it really arrived then", rule="received")
    code = check_child_code(child_id)
    ensure_register(con)
    duplicate = find_duplicate(con, type=type, la_code=la_code, child_id=code,
                               child_hash=child_hash, received=received)
    request_id = _next_id(con, "requests", "request_id")
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.requests (request_id, type, la_code, child_id, "
                "child_hash, received, channel, note, state, created_at, created_by, "
                "duplicate_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?, ?, ?)",
                [request_id, type, la_code, code, child_hash, received, channel,
                 note.strip() if note else None, _now(), user, duplicate])
    add_event(con, request_id, user, "new", None, "received", f"{type} by {channel}" + (
        f"; duplicate of request {duplicate}" if duplicate else ""))
    return request_id


def find_duplicate(con: duckdb.DuckDBPyConnection, *, type: str, la_code: int, child_id: str,
                   child_hash: str | None, received: dt.date) -> int | None:
    """The earliest request of the same type, LA and child received within DUPLICATE_DAYS
    (matched by code, or by keyed hash once the code is gone), or None."""
    row = con.execute(
        f"SELECT min(request_id) FROM {RIGHTS_SCHEMA}.requests WHERE type = ? AND la_code = ? "
        "AND (child_id = ? OR (child_hash IS NOT NULL AND child_hash = ?)) AND "
        "abs(date_diff('day', received, ?)) <= ?",
        [type, la_code, child_id, child_hash, received, DUPLICATE_DAYS]).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def get_request(con: duckdb.DuckDBPyConnection, request_id: int) -> RightsRequest:
    if not register_exists(con):
        raise UnknownRequest(f"no rights request {request_id}: the register is empty")
    row = con.execute(f"SELECT {_REQUEST_COLUMNS} "
                      f"FROM {RIGHTS_SCHEMA}.requests WHERE request_id = ?",
                      [request_id]).fetchone()
    if row is None:
        raise UnknownRequest(f"no rights request {request_id} in this vault")
    return _build(con, row)


def list_requests(con: duckdb.DuckDBPyConnection, *, open_only: bool = False
                  ) -> list[RightsRequest]:
    if not register_exists(con):
        return []
    where = f" WHERE state IN ({', '.join(repr(s) for s in sorted(OPEN_STATES))})" \
        if open_only else ""
    rows = con.execute(f"SELECT {_REQUEST_COLUMNS} "
                       f"FROM {RIGHTS_SCHEMA}.requests{where} ORDER BY request_id").fetchall()
    return [_build(con, r) for r in rows]


_REQUEST_COLUMNS = ("request_id, type, la_code, child_id, received, channel, note, state, "
                    "extended, extension_reason, outcome, closed_on, duplicate_of, child_hash")


def _build(con: duckdb.DuckDBPyConnection, row: tuple[object, ...]) -> RightsRequest:
    request_id = int(row[0])  # type: ignore[call-overload]
    pauses = tuple(Pause(kind, asked, answered) for kind, asked, answered in con.execute(
        f"SELECT kind, asked, answered FROM {RIGHTS_SCHEMA}.pauses WHERE request_id = ? "
        "ORDER BY asked", [request_id]).fetchall())
    ex = con.execute(f"SELECT right_name, basis, reason, decided_by, decided_on FROM "
                     f"{RIGHTS_SCHEMA}.exemptions WHERE request_id = ?", [request_id]).fetchone()
    return RightsRequest(
        request_id=request_id, type=row[1], la_code=int(row[2]),  # type: ignore[arg-type, call-overload]
        child_id=row[3], received=row[4], channel=row[5], note=row[6],  # type: ignore[arg-type]
        state=row[7], extended=bool(row[8]), extension_reason=row[9],  # type: ignore[arg-type]
        outcome=row[10], closed_on=row[11], pauses=pauses,  # type: ignore[arg-type]
        exemption=Exemption(*ex) if ex else None,
        duplicate_of=int(row[12]) if row[12] is not None else None,  # type: ignore[call-overload]
        child_hash=row[13])  # type: ignore[arg-type]


def events(con: duckdb.DuckDBPyConnection, request_id: int
           ) -> list[tuple[dt.datetime, str, str, str | None, str, str | None]]:
    """(happened_at, by_user, action, from_state, to_state, detail) in order."""
    return con.execute(f"SELECT happened_at, by_user, action, from_state, to_state, detail FROM "
                       f"{RIGHTS_SCHEMA}.events WHERE request_id = ? ORDER BY event_id",
                       [request_id]).fetchall()


# --- transitions ----------------------------------------------------------------------------

def await_information(con: duckdb.DuckDBPyConnection, request_id: int, kind: PauseKind, *,
                      asked: dt.date, user: str, today: dt.date) -> RightsRequest:
    """Stop the clock: we asked the person (through the LA) for ID or clarification."""
    req = _open(con, request_id, allowed={"received", "in_progress"}, action=f"await {kind}")
    if kind == "clarification" and req.type != "access":
        # Art. 12A stops the clock for clarification of what an *access* request (Art. 15)
        # covers; identity (Art. 12(6)) can be asked for any right.
        raise PolicyRefusal(f"request {request_id} is a {req.type} request: the clock stops "
                            "for clarification only on access requests (UK GDPR Art. 12A); "
                            "ask for clarification without stopping the clock")
    if asked > today or asked < req.received:
        raise InputFileError(f"the date we asked ({asked}) must be between the date received "
                             f"({req.received}) and today", rule="date")
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.pauses VALUES (?, ?, ?, NULL)",
                [request_id, kind, asked])
    _move(con, req, AWAITING[kind], user, f"await-{kind}", f"asked on {asked}")
    return get_request(con, request_id)


def resume(con: duckdb.DuckDBPyConnection, request_id: int, *, answered: dt.date, user: str,
           today: dt.date) -> RightsRequest:
    """Restart the clock: the awaited ID or clarification arrived on `answered`."""
    req = _open(con, request_id, allowed={"awaiting_identity", "awaiting_clarification"},
                action="resume")
    pause = next(p for p in req.pauses if p.received is None)
    if answered > today or answered < pause.asked:
        raise InputFileError(f"the date the answer arrived ({answered}) must be between the "
                             f"date we asked ({pause.asked}) and today", rule="date")
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.pauses SET answered = ? WHERE request_id = ? AND "
                "answered IS NULL", [answered, request_id])
    _move(con, req, "in_progress", user, "resume", f"{pause.kind} received on {answered}")
    return get_request(con, request_id)


def start(con: duckdb.DuckDBPyConnection, request_id: int, *, user: str) -> RightsRequest:
    """received → in_progress (work began; no information was needed)."""
    req = _open(con, request_id, allowed={"received"}, action="start")
    _move(con, req, "in_progress", user, "start", None)
    return get_request(con, request_id)


def extend(con: duckdb.DuckDBPyConnection, request_id: int, *, reason: str, user: str,
           today: dt.date) -> RightsRequest:
    """Extend to three months (complex or numerous requests); only within the first month,
    because the person must be told, with the reasons, before the first month ends."""
    req = _open(con, request_id, allowed=set(OPEN_STATES), action="extend")
    if req.extended:
        raise PolicyRefusal(f"request {request_id} is already extended (the law allows one "
                            "extension of two further months)")
    why = check_text(reason, "the extension reason", min_chars=MIN_REASON_CHARS)
    tell_by = compute_deadline(req.received, pauses=req.pauses, extended=True,
                               today=today).tell_extension_by
    if tell_by is not None and today > tell_by:
        raise PolicyRefusal(f"request {request_id}: the first month ended on {tell_by}; an "
                            "extension must be notified within it")
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.requests SET extended = true, extension_reason = ? "
                "WHERE request_id = ?", [why, request_id])
    add_event(con, request_id, user, "extend", req.state, req.state,
           f"tell the person by {tell_by}" if tell_by else "tell the person within the first "
           "month once the clock restarts")
    return get_request(con, request_id)


def refuse(con: duckdb.DuckDBPyConnection, request_id: int, *, reason: str, user: str,
           today: dt.date) -> RightsRequest:
    req = _open(con, request_id, allowed=set(OPEN_STATES), action="refuse")
    why = check_text(reason, "the refusal reason", min_chars=MIN_REASON_CHARS)
    _close(con, req, "refused", why, user, "refuse", today)
    return get_request(con, request_id)


def record_exemption(con: duckdb.DuckDBPyConnection, request_id: int, *, right: str,
                     reason: str, decided_by: str, user: str, today: dt.date) -> RightsRequest:
    """Record a case-by-case research-exemption assessment that concluded the exemption applies;
    the request is then closed as refused, citing the basis and the reasons."""
    req = _open(con, request_id, allowed=set(OPEN_STATES), action="exempt")
    if right != req.type:
        raise PolicyRefusal(f"request {request_id} is a {req.type} request: the assessment must "
                            f"be about that right, not {right!r}")
    why = check_text(reason, "the exemption reason (why complying would prevent or seriously "
                      "impair the research)", min_chars=MIN_REASON_CHARS)
    who = check_text(decided_by, "decided-by", min_chars=2, max_chars=200)
    basis = EXEMPTION_BASIS[req.type]
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.exemptions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [request_id, right, basis, why, who, today, user])
    _close(con, req, "refused", f"research exemption: {basis}. {why}", user, "exempt", today)
    return get_request(con, request_id)


def complete(con: duckdb.DuckDBPyConnection, request_id: int, *, outcome: str, user: str,
             today: dt.date) -> RightsRequest:
    """Close an executed request (called by `rights.actions`, in the action's transaction)."""
    req = _open(con, request_id, allowed={"received", "in_progress"}, action="execute")
    _close(con, req, "completed", outcome, user, "execute", today)
    return get_request(con, request_id)


def check_executable(con: duckdb.DuckDBPyConnection, request_id: int) -> RightsRequest:
    req = _open(con, request_id, allowed={"received", "in_progress", "erasing"},
                action="execute")
    if req.state in ("awaiting_identity", "awaiting_clarification"):  # pragma: no cover
        raise PolicyRefusal(f"request {request_id} is waiting for information")
    return req


def begin_erasure(con: duckdb.DuckDBPyConnection, request_id: int, *, user: str
                  ) -> RightsRequest:
    """received / in progress → erasing (the work started; completed only after the re-key)."""
    req = _open(con, request_id, allowed={"received", "in_progress", "erasing"},
                action="erase")
    if req.state != "erasing":
        _move(con, req, "erasing", user, "erase", "erasure started")
    return get_request(con, request_id)


def finish_erasure(con: duckdb.DuckDBPyConnection, request_id: int, *, outcome: str, user: str,
                   today: dt.date) -> RightsRequest:
    req = _open(con, request_id, allowed={"erasing"}, action="complete the erasure of")
    _close(con, req, "completed", outcome, user, "execute", today)
    return get_request(con, request_id)


def close_as_erased(con: duckdb.DuckDBPyConnection, request_id: int, *, erasure_id: int,
                    user: str, today: dt.date) -> None:
    """Close another open request of a child whose erasure completed: nothing is left to act
    on; its letter explains that (and points to the erasure letter)."""
    req = get_request(con, request_id)
    if req.is_open:
        _close(con, req, "closed", f"erased under request {erasure_id}", user, "close", today)


def forget_child(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str, digest: str
                 ) -> list[int]:
    """Remove the child's code and the free text typed about the case (note, extension
    reason, refusal and exemption reasons) from every request about the child; keep the keyed
    hash (so a later duplicate is still recognised). Returns the ids of those requests."""
    ids = [int(r[0]) for r in con.execute(
        f"SELECT request_id FROM {RIGHTS_SCHEMA}.requests WHERE la_code = ? AND "
        "(child_id = ? OR child_hash = ?) ORDER BY request_id",
        [la_code, child_id, digest]).fetchall()]
    if not ids:
        return []
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.requests SET child_id = NULL, child_hash = ?, "
                "note = CASE WHEN note IS NULL THEN NULL ELSE ? END, "
                "extension_reason = CASE WHEN extension_reason IS NULL THEN NULL ELSE ? END, "
                "outcome = CASE WHEN state = 'refused' THEN ? ELSE outcome END "
                "WHERE list_contains(?, request_id)",
                [digest, REMOVED_TEXT, REMOVED_TEXT, REMOVED_TEXT, ids])
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.exemptions SET reason = ? WHERE "
                "list_contains(?, request_id)", [REMOVED_TEXT, ids])
    return ids


# --- helpers --------------------------------------------------------------------------------

def _open(con: duckdb.DuckDBPyConnection, request_id: int, *, allowed: set[State] | frozenset[State],
          action: str) -> RightsRequest:
    req = get_request(con, request_id)
    if req.state not in allowed:
        raise PolicyRefusal(f"request {request_id} is {req.state.replace('_', ' ')}: cannot "
                            f"{action} it (allowed from: "
                            f"{', '.join(sorted(s.replace('_', ' ') for s in allowed))})")
    return req


def _close(con: duckdb.DuckDBPyConnection, req: RightsRequest, state: State, outcome: str,
           user: str, action: str, today: dt.date) -> None:
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.requests SET outcome = ?, closed_on = ? "
                "WHERE request_id = ?", [outcome, today, req.request_id])
    _move(con, req, state, user, action, None)


def _move(con: duckdb.DuckDBPyConnection, req: RightsRequest, to: State, user: str, action: str,
          detail: str | None) -> None:
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.requests SET state = ? WHERE request_id = ?",
                [to, req.request_id])
    add_event(con, req.request_id, user, action, req.state, to, detail)


def add_event(con: duckdb.DuckDBPyConnection, request_id: int, user: str, action: str,
           from_state: str | None, to_state: str, detail: str | None) -> None:
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [_next_id(con, "events", "event_id"), request_id, _now(), user, action,
                 from_state, to_state, detail])


def _next_id(con: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
    row = con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {RIGHTS_SCHEMA}.{table}"
                      ).fetchone()
    return int(row[0]) if row else 1


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
