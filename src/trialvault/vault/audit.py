"""The audit chain: one hash-chained entry per command that opens the vault.

Entries live inside the encrypted database (`meta.audit_log`). Each entry's hash is SHA-256
over the canonical JSON of the entry, which includes the previous entry's hash, so an edited,
removed or reordered entry breaks every later link. Each new head hash is also appended to the
plaintext `audit.chain` beside the vault (hashes only, one per line): a witness outside the
database that can be copied off the machine, so rewriting the whole chain inside the database
is caught as well.

Arguments are recorded without secrets (any key naming a password, secret, identity, token or
key is dropped) and an error is recorded by class; its text only for trialvault's own errors,
which by rule carry no row values.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import duckdb

from trialvault.errors import TrialvaultError

CHAIN_NAME = "audit.chain"
GENESIS = "0" * 64
AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS meta.audit_log (
    seq BIGINT PRIMARY KEY,
    logged_at VARCHAR NOT NULL,
    user_name VARCHAR NOT NULL,
    slot_id VARCHAR NOT NULL,
    command VARCHAR NOT NULL,
    args VARCHAR NOT NULL,
    rows_touched VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    result VARCHAR NOT NULL,
    error VARCHAR,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
)
"""
_SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|identity|token|(^|_)key$", re.IGNORECASE)
_COLUMNS = ("seq", "logged_at", "user_name", "slot_id", "command", "args", "rows_touched", "detail",
            "result", "error", "prev_hash", "hash")


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    user: str
    slot_id: str
    command: str
    args: dict[str, Any]
    rows_touched: dict[str, int]
    detail: dict[str, Any]
    result: str
    error: str | None
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash itself."""
        return {"seq": self.seq, "at": self.at, "user": self.user, "slot_id": self.slot_id,
                "command": self.command, "args": self.args, "rows_touched": self.rows_touched,
                "detail": self.detail, "result": self.result, "error": self.error,
                "prev_hash": self.prev_hash}


@dataclass
class AuditVerification:
    entries: int
    head: str
    chain_lines: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def _plain(value: Any) -> Any:
    """A JSON-safe copy of an argument value."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def sanitize_args(args: dict[str, Any]) -> dict[str, Any]:
    """Arguments fit for the audit log: JSON values, and no secret-named keys."""
    return cast(dict[str, Any], _plain(args))


def describe_error(exc: BaseException) -> str:
    """Our errors by message (no values by rule); anything else by class only."""
    if isinstance(exc, TrialvaultError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = con.execute("SELECT seq, hash FROM meta.audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_entry(con: duckdb.DuckDBPyConnection, *, user: str, slot_id: str, command: str,
                 args: dict[str, Any], rows_touched: dict[str, int], detail: dict[str, Any],
                 result: str, error: str | None) -> AuditEntry:
    """Insert the next entry in the current transaction (the caller commits)."""
    seq, prev = head(con)
    body = {"seq": seq + 1, "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "user": user, "slot_id": slot_id, "command": command,
            "args": sanitize_args(args), "rows_touched": {k: int(v) for k, v in
                                                           rows_touched.items()},
            "detail": _plain(detail), "result": result, "error": error, "prev_hash": prev}
    digest = entry_hash(body)
    con.execute(
        f"INSERT INTO meta.audit_log ({', '.join(_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(_COLUMNS))})",
        [body["seq"], body["at"], user, slot_id, command, canonical(body["args"]).decode(),
         canonical(body["rows_touched"]).decode(), canonical(body["detail"]).decode(), result,
         error, prev, digest])
    return _entry(body, digest)


def _entry(body: dict[str, Any], digest: str) -> AuditEntry:
    return AuditEntry(seq=body["seq"], at=body["at"], user=body["user"],
                      slot_id=body["slot_id"], command=body["command"], args=body["args"],
                      rows_touched=body["rows_touched"], detail=body["detail"],
                      result=body["result"], error=body["error"], prev_hash=body["prev_hash"],
                      hash=digest)


def read_entries(con: duckdb.DuckDBPyConnection, *, last: int | None = None
                 ) -> list[AuditEntry]:
    """Entries in seq order (the last `last` of them when given)."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM meta.audit_log ORDER BY seq"
    rows = con.execute(sql).fetchall()
    if last is not None:
        rows = rows[-last:] if last > 0 else []
    return [AuditEntry(seq=r[0], at=r[1], user=r[2], slot_id=r[3], command=r[4],
                       args=json.loads(r[5]), rows_touched=json.loads(r[6]),
                       detail=json.loads(r[7]), result=r[8], error=r[9], prev_hash=r[10],
                       hash=r[11]) for r in rows]


def append_chain(vault_dir: Path, digest: str) -> None:
    with open(vault_dir / CHAIN_NAME, "a", encoding="ascii") as handle:
        handle.write(digest + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def remove_last_chain_line(vault_dir: Path, digest: str) -> None:
    """Undo `append_chain(digest)` (an interrupted re-key); a no-op when it is not the last."""
    lines = read_chain(vault_dir)
    if lines and lines[-1] == digest:
        path = vault_dir / CHAIN_NAME
        tmp = path.with_name(f".{CHAIN_NAME}.tmp")
        tmp.write_text("".join(f"{h}\n" for h in lines[:-1]), encoding="ascii")
        os.replace(tmp, path)


def read_chain(vault_dir: Path) -> list[str]:
    path = vault_dir / CHAIN_NAME
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="ascii",
                                                    errors="replace").splitlines()]


def verify(con: duckdb.DuckDBPyConnection, vault_dir: Path) -> AuditVerification:
    """Recompute every link; compare with audit.chain. Problems name entry numbers only."""
    entries = read_entries(con)
    chain = read_chain(vault_dir)
    problems: list[str] = []
    prev = GENESIS
    for position, entry in enumerate(entries, start=1):
        if entry.seq != position:
            problems.append(f"entry {entry.seq}: found at position {position} (an entry was "
                            "removed or reordered)")
        if entry.prev_hash != prev:
            problems.append(f"entry {entry.seq}: does not link to the entry before it")
        if entry_hash(entry.body()) != entry.hash:
            problems.append(f"entry {entry.seq}: content does not match its hash (edited)")
        prev = entry.hash
    for position, (entry, line) in enumerate(zip(entries, chain, strict=False), start=1):
        if entry.hash != line:
            problems.append(f"audit.chain line {position}: differs from entry {entry.seq}")
    if len(chain) > len(entries):
        problems.append(f"audit.chain has {len(chain)} hashes but the vault {len(entries)} "
                        "entries (entries were removed from the vault)")
    elif len(chain) < len(entries):
        problems.append(f"audit.chain has {len(chain)} hashes but the vault {len(entries)} "
                        "entries (audit.chain truncated or not written)")
    return AuditVerification(entries=len(entries), head=prev, chain_lines=len(chain),
                             problems=problems)
