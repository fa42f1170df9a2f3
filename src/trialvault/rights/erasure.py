"""Erasure (UK GDPR Art. 17) as a resumable sequence of steps. Handles child codes; never logs them.

DuckDB lets one transaction write one database file, and the child's data (child domain) and
the register (register domain) are two files; the re-key that makes deleted rows unrecoverable
is a third operation. So an erasure is a small state machine kept in the register
(`rights.erasures.step`), each step one audited vault session, each safe to run again:

    (open request) ──start──► started ──erase data──► (child rows gone) ──settle──► data_erased
        ──re-key──► (keys rotated) ──complete──► completed

1. **start** (register): refuses when nothing is held; records the outputs that counted the
   child; writes the tombstone (from now on no ingest loads the child); request → `erasing`.
2. **erase data** (child domain): deletes the child's rows from every table with
   (la_code, child_id) and its lines from every package's validation CSV, logging the counts in
   `meta.erasure_log` *in the same transaction* (so the counts are exactly what was deleted,
   even if the next step is interrupted). Run again, it deletes nothing more.
3. **settle** (register): copies those counts into `rights.erasure_actions`; acts on the
   inventory (`vault.inventory`): kept packages and access responses holding the child are
   destroyed (files overwritten and removed), exports and backups are marked *to destroy*;
   deletes the child's inventory rows and corrections; removes the code and the free text of
   every request about the child (keeping the keyed hash); records the key fingerprints.
4. **re-key** (`vault.admin.rekey`): every domain the actor holds is copied under fresh keys,
   so the deleted rows are in no live file and old copies open with no slot's key.
5. **complete** (register): only when the key fingerprints differ from those recorded in step
   3 — the request is `completed` (its outcome text generated from the recorded actions), and
   the child's other open requests are closed with their own letter.

`run` resumes from the recorded step: an interrupted erasure is finished by running
`rights execute ID` again, and is never reported complete before its re-key.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from trialvault.errors import IntegrityError, PolicyRefusal
from trialvault.progress import ProgressCallback, no_progress
from trialvault.rights import actions, letters
from trialvault.rights import register as reg
from trialvault.rights.flags import RIGHTS_SCHEMA
from trialvault.trust import Keyring
from trialvault.vault import add_tombstones, child_hash, inventory, overlay
from trialvault.vault.admin import RekeyReport, rekey
from trialvault.vault.session import VaultSession, open_vault

ERASURE_DDL = f"""
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.erasures (
    request_id INTEGER PRIMARY KEY,
    la_code INTEGER NOT NULL,
    child_hash VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    started_at TIMESTAMP NOT NULL,
    fingerprints VARCHAR,
    completed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS {RIGHTS_SCHEMA}.erasure_actions (
    request_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    place VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    count INTEGER NOT NULL,
    ref VARCHAR,
    detail VARCHAR
);
"""
LOG_DDL = """
CREATE TABLE IF NOT EXISTS meta.erasure_log (
    request_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    place VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    count INTEGER NOT NULL,
    ref VARCHAR,
    done_at TIMESTAMP NOT NULL
);
"""
VALIDATION_PLACE = "meta.packages.validation_csv"
# Domains whose files hold the erased rows or the code; the re-key must have rotated them.
MUST_ROTATE = ("child", "register")


@dataclass(frozen=True)
class Action:
    """One thing an erasure did (or, in a preview, will do) to one place. No code, no value."""

    kind: str      # table | validation | package | access_response | export | backup |
    #                register | inventory | corrections | tombstone | output | rekey | close
    place: str
    action: str
    count: int
    ref: str | None = None
    detail: str | None = None


@dataclass
class Plan:
    """What an erasure would do, per place (the `--dry-run` preview)."""

    request_id: int
    actions: list[Action] = field(default_factory=list)

    @property
    def records(self) -> int:
        """Records as received (raw) — each counted once, not again for the current view."""
        return sum(a.count for a in self.actions if a.kind == "table"
                   and a.place.startswith("raw."))

    @property
    def holds_anything(self) -> bool:
        return any(a.count for a in self.actions
                   if a.kind in ("table", "validation", *inventory.KINDS))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _session(path: Any, user: str, password: str, request_id: int, step: str, *,
             write: bool = True) -> Any:
    return open_vault(path, user, password, command="rights execute",
                      args={"request_id": request_id, "type": "erasure", "step": step},
                      write=write)


# --- what is held ---------------------------------------------------------------------------

def validation_lines(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str
                     ) -> list[tuple[str, int, bytes]]:
    """(package id, lines naming the child, the CSV without them) for every package of the LA
    whose validation CSV names the child (in its `child` column, or any cell when the CSV has
    no such column; an OWASP-escaped cell `'code` counts too)."""
    out = []
    for package_id, blob in con.execute(
            "SELECT package_id, validation_csv FROM meta.packages WHERE la_code = ? "
            "ORDER BY package_id", [la_code]).fetchall():
        data = bytes(blob or b"")
        # A quick test before parsing: the code as written, or quoted CSV-style ("" for ").
        if not any(form.encode() in data for form in (child_id, child_id.replace('"', '""'))):
            continue
        text = data.decode("utf-8", errors="surrogateescape")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            continue
        header = rows[0]
        col = header.index("child") if "child" in header else None
        kept = [header] + [r for r in rows[1:] if not _names(r, col, child_id)]
        removed = len(rows) - len(kept)
        if removed:
            buffer = io.StringIO(newline="")
            csv.writer(buffer, lineterminator="\r\n" if b"\r\n" in data else "\n"
                       ).writerows(kept)
            out.append((str(package_id), removed,
                        buffer.getvalue().encode("utf-8", errors="surrogateescape")))
    return out


def _names(row: list[str], col: int | None, child_id: str) -> bool:
    cells = [row[col]] if col is not None and col < len(row) else row
    return any(c in (child_id, "'" + child_id) for c in cells)


def plan(con: duckdb.DuckDBPyConnection, req: reg.RightsRequest) -> Plan:
    """Counts per place of everything the erasure of the request's child would act on."""
    child = actions.child_of(req)
    result = Plan(req.request_id)
    add = result.actions.append
    for t in actions.child_tables(con):
        n = actions._count(con, t.qualified, req.la_code, child)
        if n:
            add(Action("table", t.qualified, "delete rows", n))
    for package_id, removed, _ in validation_lines(con, req.la_code, child):
        add(Action("validation", VALIDATION_PLACE, "remove lines", removed, package_id))
    for art in inventory.holding(con, req.la_code, child):
        verb = ("destroy the file" if art.kind in inventory.SELF_DESTROYED
                else "mark to destroy (the DPO closes it)")
        add(Action(art.kind, art.name, verb, 1, art.artefact_id))
    for o in actions.outputs_using(con, req.la_code, child):
        add(Action("output", o["output"], "name in the letter (statistics only)", 1,
                   f"{o.get('kind')} {o.get('id')}", o.get("basis")))
    others = [r for r in reg.list_requests(con) if r.la_code == req.la_code
              and r.child_id == child and r.request_id != req.request_id]
    n_open = sum(1 for r in others if r.is_open)
    add(Action("register", "rights.requests", "remove the code and free text", len(others) + 1))
    if n_open:
        add(Action("close", "rights.requests", "close with a letter", n_open))
    add(Action("tombstone", "rights.tombstones", "record a one-way code", 1))
    add(Action("rekey", "every domain you hold", "copy under fresh keys", 1))
    return result


def preview(path: Any, user: str, password: str, request_id: int) -> Plan:
    """The `--dry-run`: what the erasure would do (nothing is changed)."""
    with open_vault(path, user, password, command="rights execute",
                    args={"request_id": request_id, "type": "erasure", "dry_run": True},
                    write=False) as s:
        s.require_role("dpo", "data-manager")
        req = reg.check_executable(s.con, request_id)
        _only_erasure(req)
        if req.state == "erasing":
            return Plan(request_id, _recorded(s.con, request_id))
        return plan(s.con, req)


def _only_erasure(req: reg.RightsRequest) -> None:
    if req.type != "erasure":
        raise PolicyRefusal(f"request {req.request_id} is a {req.type} request, not an erasure")


# --- the steps ------------------------------------------------------------------------------

def _step(con: duckdb.DuckDBPyConnection, request_id: int) -> tuple[str, dict[str, str]] | None:
    row = con.execute(f"SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                      f"'{RIGHTS_SCHEMA}' AND table_name = 'erasures'").fetchone()
    if not row or not row[0]:
        return None
    found = con.execute(f"SELECT step, fingerprints FROM {RIGHTS_SCHEMA}.erasures WHERE "
                        "request_id = ?", [request_id]).fetchone()
    if found is None:
        return None
    return str(found[0]), json.loads(found[1]) if found[1] else {}


def _start(s: VaultSession, request_id: int) -> str:
    con = s.con
    req = reg.check_executable(con, request_id)
    _only_erasure(req)
    con.execute(ERASURE_DDL)
    state = _step(con, request_id)
    if state is not None:
        return state[0]
    child = actions.child_of(req)
    p = plan(con, req)
    if not p.holds_anything:
        raise PolicyRefusal(f"request {request_id}: nothing is held about this child in any "
                            "table, validation report or stored file, so there is nothing to "
                            "erase and nothing was changed. Tell the person we hold nothing: "
                            f"trialvault rights refuse {request_id} --reason \"We hold no "
                            "information about you in this research.\"")
    digest = child_hash(con, req.la_code, child)
    add_tombstones(con, [(req.la_code, child)])
    reg.begin_erasure(con, request_id, user=s.user)
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.erasures VALUES (?, ?, ?, 'started', ?, NULL, "
                "NULL)", [request_id, req.la_code, digest, _now()])
    for a in p.actions:
        if a.kind == "output":
            _insert(con, request_id, Action("output", a.place, "named", 1, a.ref, a.detail))
    _insert(con, request_id, Action("tombstone", "rights.tombstones", "recorded", 1))
    s.record(rows_touched={"rights.tombstones": 1},
             detail={"request_id": request_id, "places": len(p.actions)})
    return "started"


def _insert(con: duckdb.DuckDBPyConnection, request_id: int, a: Action) -> None:
    con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.erasure_actions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [request_id, a.kind, a.place, a.action, a.count, a.ref, a.detail])


def _erase_data(s: VaultSession, request_id: int) -> list[Action]:
    """Step 2, on `s.con` writing the child domain only (the register is read). Returns what
    it deleted in this run (also logged in `meta.erasure_log`, same transaction)."""
    con = s.con
    req = reg.get_request(con, request_id)
    if req.child_id is None:  # step 3 already ran (its commit is what removes the code)
        return []
    child = req.child_id
    con.execute(LOG_DDL)
    now = _now()
    done: list[Action] = []
    for t in actions.child_tables(con):
        n = len(con.execute(f"DELETE FROM {t.qualified} WHERE la_code = ? AND child_id = ? "
                            "RETURNING 1", [req.la_code, child]).fetchall())
        if n:
            done.append(Action("table", t.qualified, "deleted", n))
    for package_id, removed, rewritten in validation_lines(con, req.la_code, child):
        con.execute("UPDATE meta.packages SET validation_csv = ? WHERE package_id = ?",
                    [rewritten, package_id])
        done.append(Action("validation", VALIDATION_PLACE, "removed lines", removed,
                           package_id))
    for a in done:
        con.execute("INSERT INTO meta.erasure_log VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [request_id, a.kind, a.place, a.action, a.count, a.ref, now])
    s.record(rows_touched={a.place: a.count for a in done if a.kind == "table"},
             detail={"request_id": request_id, "step": "erase data",
                     "validation_lines": sum(a.count for a in done if a.kind == "validation")})
    return done


def _settle(s: VaultSession, con: duckdb.DuckDBPyConnection, request_id: int,
            this_run: list[Action]) -> None:
    """Step 3, on `con` writing the register only (the session's `writer("rights")`, committed
    after step 2's child-domain transaction). `this_run`: what step 2 deleted in this session
    (not yet committed, so not visible here); earlier runs' deletions come from the log."""
    req = reg.get_request(con, request_id)
    row = con.execute(f"SELECT child_hash FROM {RIGHTS_SCHEMA}.erasures WHERE request_id = ?",
                      [request_id]).fetchone()
    assert row is not None
    digest = str(row[0])
    con.execute(f"DELETE FROM {RIGHTS_SCHEMA}.erasure_actions WHERE request_id = ? AND "
                "kind IN ('table', 'validation')", [request_id])
    if _table(con, "vault", "erasure_log"):
        con.execute(f"INSERT INTO {RIGHTS_SCHEMA}.erasure_actions SELECT request_id, kind, "
                    "place, action, sum(count), ref, NULL FROM vault.meta.erasure_log WHERE "
                    "request_id = ? GROUP BY ALL", [request_id])
    for a in this_run:
        _insert(con, request_id, a)
    child = req.child_id
    if child is not None:
        for art in inventory.holding(con, req.la_code, child):
            if art.kind in inventory.SELF_DESTROYED:
                outcome = inventory.destroy_path(art)
                if outcome == "changed: not touched":
                    inventory.mark_to_destroy(con, art.artefact_id, request_id)
                    verb = "marked to destroy (changed since made)"
                else:
                    inventory.close(con, art.artefact_id, "destroyed", user=s.user,
                                    note=f"erasure request {request_id}: {outcome}")
                    verb = outcome
            else:
                inventory.mark_to_destroy(con, art.artefact_id, request_id)
                verb = "marked to destroy"
            _insert(con, request_id, Action(art.kind, art.name, verb, 1, art.artefact_id))
        n = inventory.forget_child(con, req.la_code, child)
        if n:
            _insert(con, request_id, Action("inventory", "rights.artefact_children",
                                            "deleted", n))
        n = overlay.forget_child(con, req.la_code, child)
        if n:
            _insert(con, request_id, Action("corrections", "rights.overlay", "deleted", n))
        n = _sweep_register(con, req.la_code, child)
        if n:
            _insert(con, request_id, Action("register", "other register tables", "deleted", n))
        ids = reg.forget_child(con, req.la_code, child, digest)
        others = [i for i in ids if i != request_id]
        _insert(con, request_id, Action("register", "rights.requests",
                                        "removed the code and free text", len(ids)))
        still_open = [i for i in others if reg.get_request(con, i).is_open]
        for i in still_open:
            _insert(con, request_id, Action("close", "rights.requests", "to close", 1, str(i)))
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.erasures SET step = 'data_erased', fingerprints = ? "
                "WHERE request_id = ?", [json.dumps(s.key_fingerprints), request_id])
    s.record(detail={"request_id": request_id, "step": "settle"})


def _sweep_register(con: duckdb.DuckDBPyConnection, la_code: int, child_id: str) -> int:
    """Rows naming the child in any other register table with (la_code, child_id) columns
    (the requests keep their row without the code; the inventory and overlay are done)."""
    done = {"requests", "artefact_children", "overlay"}
    total = 0
    for (table,) in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE database_name = ? GROUP BY "
            "table_name HAVING list_contains(list(column_name), 'la_code') AND "
            "list_contains(list(column_name), 'child_id') ORDER BY 1",
            [RIGHTS_SCHEMA]).fetchall():
        if table in done:
            continue
        total += len(con.execute(f'DELETE FROM {RIGHTS_SCHEMA}."{table}" WHERE la_code = ? '
                                 "AND child_id = ? RETURNING 1", [la_code, child_id]
                                 ).fetchall())
    return total


def _complete(s: VaultSession, request_id: int, today: dt.date,
              rotated: list[str] | None) -> reg.RightsRequest:
    """Step 5, on the register only: refuses unless the keys changed since step 3."""
    con = s.con
    state = _step(con, request_id)
    assert state is not None
    step, recorded = state
    if step == "completed":
        return reg.get_request(con, request_id)
    stale = [d for d in MUST_ROTATE if recorded.get(d) == s.key_fingerprints.get(d)]
    if stale:
        raise IntegrityError(f"request {request_id}: the re-key after the erasure has not "
                             f"completed ({', '.join(stale)} key unchanged); run `trialvault "
                             f"rights execute {request_id}` again to finish it")
    if not any(a.kind == "rekey" for a in _recorded(con, request_id)):
        _insert(con, request_id, Action(
            "rekey", "every domain", "copied under fresh keys",
            len([d for d in s.key_fingerprints if recorded.get(d) != s.key_fingerprints[d]]),
            None, ",".join(rotated or sorted(d for d in s.key_fingerprints
                                              if recorded.get(d) != s.key_fingerprints[d]))))
    done = _recorded(con, request_id)
    for a in done:
        if a.kind == "close" and a.ref:
            reg.close_as_erased(con, int(a.ref), erasure_id=request_id, user=s.user,
                                today=today)
    outcome = letters.erasure_outcome(done)
    finished = reg.finish_erasure(con, request_id, outcome=outcome, user=s.user, today=today)
    con.execute(f"UPDATE {RIGHTS_SCHEMA}.erasures SET step = 'completed', completed_at = ? "
                "WHERE request_id = ?", [_now(), request_id])
    s.record(detail={"request_id": request_id, "step": "complete"})
    return finished


def _recorded(con: duckdb.DuckDBPyConnection, request_id: int) -> list[Action]:
    if not _table(con, RIGHTS_SCHEMA, "erasure_actions"):
        return []
    return [Action(*r) for r in con.execute(
        f"SELECT kind, place, action, count, ref, detail FROM {RIGHTS_SCHEMA}.erasure_actions "
        "WHERE request_id = ? ORDER BY rowid", [request_id]).fetchall()]


def recorded_actions(con: duckdb.DuckDBPyConnection, request_id: int) -> list[Action]:
    """What the erasure of `request_id` did, as recorded (for letters and their tests)."""
    return _recorded(con, request_id)


def _table(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND "
                      "table_name = ?", [catalog, table]).fetchone()
    return bool(row and row[0])


@dataclass
class ErasureResult:
    request: reg.RightsRequest
    actions: list[Action]
    rekey: RekeyReport | None


def start(s: VaultSession, request_id: int) -> tuple[str, dict[str, str]]:
    """Step 1 inside the caller's session (`s.con` must write only the register): the step
    reached and the key fingerprints recorded at step 3 (empty before it)."""
    s.require_role("dpo", "data-manager")
    step = _start(s, request_id)
    return step, (_step(s.con, request_id) or ("", {}))[1]


def run(path: Any, user: str, password: str, request_id: int, *, today: dt.date,
        started: tuple[str, dict[str, str]] | None = None,
        progress: ProgressCallback | None = None) -> ErasureResult:
    """Carry out (or resume) the erasure of `request_id`; see the module docstring.
    `started`: what `start` returned when the caller already ran step 1 in its session.
    `progress(done, 4, step)` is told as each step starts."""
    tell = progress or no_progress
    tell(0, 4, "recording the start")
    if started is None:
        with _session(path, user, password, request_id, "start") as s:
            started = start(s, request_id)
    step, recorded = started
    tell(1, 4, "deleting the child's data")
    if step == "started":
        # Steps 2 and 3 in one session: the child domain on s.con (committed first), the
        # register on its writer (committed right after). A crash between the two commits
        # leaves step 'started'; running again deletes nothing more and settles from the log.
        with _session(path, user, password, request_id, "erase data") as s:
            s.require_role("dpo", "data-manager")
            deleted = _erase_data(s, request_id)
            _settle(s, s.writer(RIGHTS_SCHEMA), request_id, deleted)
            recorded = dict(s.key_fingerprints)
        step = "data_erased"
    report = None
    tell(2, 4, "re-keying the vault")
    if step == "data_erased":
        current = Keyring.load(path).domain_fingerprints()
        if any(recorded.get(d) == current.get(d) for d in MUST_ROTATE):
            report = rekey(path, user, password)
    tell(3, 4, "completing the request")
    with _session(path, user, password, request_id, "complete") as s:
        s.require_role("dpo", "data-manager")
        done = _complete(s, request_id, today, report.domains if report else None)
        acts = _recorded(s.con, request_id)
    tell(4, 4, "done")
    return ErasureResult(done, acts, report)
