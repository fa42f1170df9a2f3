"""The audit log: signed, hash-chained entries, two per command (begin and end).

Entries live in the audit domain (`audit.entries`). Each entry's hash is SHA-256 over the
canonical JSON of its body, which includes the previous entry's hash and the hash of the key
ring's certified slot list; the acting user signs that hash with their Ed25519 key (from their
key slot). So:
- an edited, removed or reordered entry breaks every later link, and re-computing the links
  means re-signing every later entry with the keys of everyone who made them;
- a cut tail (the last entries removed) is caught by a *witness*: a signed chain head kept
  outside the vault (`audit witness`, and the receipt every LA gets at ingest);
- the begin entry is committed before the command touches any data, so no command run with the
  shipped tools reads the vault unrecorded; the end entry records the outcome and row counts.

Signers are known from the log itself: the `init`, `migrate` and `users add` entries carry the
certificates they created (public keys only), signed by a data manager.

Entries migrated from a 0.1.0 vault keep their old hash chain (phase `legacy`, unsigned); the
signed `migrate` entry after them commits to their head.

Arguments are recorded without secrets (keys naming a password, secret, identity, token or key
are dropped) and an error by class; its text only for trialvault's own errors, which by rule
carry no row values. Each head hash is also appended to `audit.chain` beside the vault.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import duckdb

from trialvault.errors import IntegrityError, TrialvaultError
from trialvault.trust import Signer, canonical, digest
from trialvault.trust import verify as verify_signature

CHAIN_NAME = "audit.chain"
GENESIS = "0" * 64
ENTRY_PURPOSE = "audit-entry"
WITNESS_PURPOSE = "audit-witness"
WITNESS_FORMAT = "trialvault-audit-witness/1"
RECEIPT_FORMAT = "trialvault-ingest-receipt/1"
# Commands whose entries introduce key-slot certificates (args["certs"]).
CERT_COMMANDS = ("init", "migrate", "users add", "users remove")
AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS audit.entries (
    seq BIGINT PRIMARY KEY,
    logged_at VARCHAR NOT NULL,
    phase VARCHAR NOT NULL,
    begin_seq BIGINT,
    user_name VARCHAR NOT NULL,
    slot_id VARCHAR NOT NULL,
    command VARCHAR NOT NULL,
    args VARCHAR NOT NULL,
    rows_touched VARCHAR NOT NULL,
    detail VARCHAR NOT NULL,
    result VARCHAR NOT NULL,
    error VARCHAR,
    ring_hash VARCHAR,
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL,
    signature VARCHAR
)
"""
_SECRET_KEY = re.compile(r"pass(word|phrase)?|secret|identity|token|(^|_)key$", re.IGNORECASE)
_COLUMNS = ("seq", "logged_at", "phase", "begin_seq", "user_name", "slot_id", "command", "args",
            "rows_touched", "detail", "result", "error", "ring_hash", "prev_hash", "hash",
            "signature")


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
    phase: str = "end"
    begin_seq: int | None = None
    ring_hash: str | None = None
    signature: str | None = None

    def body(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash and the signature."""
        base = {"seq": self.seq, "at": self.at, "user": self.user, "slot_id": self.slot_id,
                "command": self.command, "args": self.args, "rows_touched": self.rows_touched,
                "detail": self.detail, "result": self.result, "error": self.error,
                "prev_hash": self.prev_hash}
        if self.phase == "legacy":  # 0.1.0's body, kept as it was hashed then
            return base
        return {**base, "phase": self.phase, "begin_seq": self.begin_seq,
                "ring_hash": self.ring_hash}


@dataclass
class AuditVerification:
    entries: int
    head: str
    chain_lines: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    witnesses: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def entry_hash(body: dict[str, Any]) -> str:
    return digest(body)


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
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return type(exc).__name__


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str]:
    row = con.execute("SELECT seq, hash FROM audit.entries ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


def append_entry(con: duckdb.DuckDBPyConnection, signer: Signer, *, user: str, slot_id: str,
                 command: str, args: dict[str, Any], rows_touched: dict[str, int],
                 detail: dict[str, Any], result: str, error: str | None, phase: str,
                 ring_hash: str, begin_seq: int | None = None) -> AuditEntry:
    """Insert the next signed entry in the current transaction (the caller commits)."""
    seq, prev = head(con)
    entry = AuditEntry(
        seq=seq + 1, at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        user=user, slot_id=slot_id, command=command, args=sanitize_args(args),
        rows_touched={k: int(v) for k, v in rows_touched.items()},
        detail=cast(dict[str, Any], _plain(detail)), result=result, error=error,
        prev_hash=prev, hash="", phase=phase, begin_seq=begin_seq, ring_hash=ring_hash)
    digest_ = entry_hash(entry.body())
    signature = signer.sign(ENTRY_PURPOSE, {"hash": digest_})
    _insert(con, entry, digest_, signature)
    return _with(entry, digest_, signature)


def _with(entry: AuditEntry, digest_: str, signature: str | None) -> AuditEntry:
    return AuditEntry(**{**entry.__dict__, "hash": digest_, "signature": signature})


def _insert(con: duckdb.DuckDBPyConnection, e: AuditEntry, digest_: str,
            signature: str | None) -> None:
    con.execute(
        f"INSERT INTO audit.entries ({', '.join(_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(_COLUMNS))})",
        [e.seq, e.at, e.phase, e.begin_seq, e.user, e.slot_id, e.command,
         canonical(e.args).decode(), canonical(e.rows_touched).decode(),
         canonical(e.detail).decode(), e.result, e.error, e.ring_hash, e.prev_hash, digest_,
         signature])


def insert_legacy(con: duckdb.DuckDBPyConnection, rows: Iterable[tuple[Any, ...]]) -> int:
    """Copy 0.1.0 entries (seq, logged_at, user, slot, command, args, rows, detail, result,
    error, prev_hash, hash) as they were; returns how many."""
    count = 0
    for r in rows:
        entry = AuditEntry(seq=int(r[0]), at=r[1], user=r[2], slot_id=r[3], command=r[4],
                           args=json.loads(r[5]), rows_touched=json.loads(r[6]),
                           detail=json.loads(r[7]), result=r[8], error=r[9], prev_hash=r[10],
                           hash=r[11], phase="legacy")
        _insert(con, entry, entry.hash, None)
        count += 1
    return count


def read_entries(con: duckdb.DuckDBPyConnection, *, last: int | None = None,
                 command: str | None = None) -> list[AuditEntry]:
    """Entries in seq order (the last `last` of them when given; only `command`'s if named)."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM audit.entries"
    params: list[Any] = []
    if command is not None:
        sql += " WHERE command = ?"
        params.append(command)
    rows = con.execute(sql + " ORDER BY seq", params).fetchall()
    if last is not None:
        rows = rows[-last:] if last > 0 else []
    return [AuditEntry(seq=r[0], at=r[1], phase=r[2], begin_seq=r[3], user=r[4], slot_id=r[5],
                       command=r[6], args=json.loads(r[7]), rows_touched=json.loads(r[8]),
                       detail=json.loads(r[9]), result=r[10], error=r[11], ring_hash=r[12],
                       prev_hash=r[13], hash=r[14], signature=r[15]) for r in rows]


def append_chain(vault_dir: Path, digest_: str) -> None:
    with open(vault_dir / CHAIN_NAME, "a", encoding="ascii") as handle:
        handle.write(digest_ + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_chain(vault_dir: Path) -> list[str]:
    path = vault_dir / CHAIN_NAME
    if not path.exists():
        return []
    return [line.strip() for line in path.read_text(encoding="ascii",
                                                    errors="replace").splitlines()]


# --- witnesses: a signed chain head kept elsewhere ------------------------------------------------
def make_witness(signer: Signer, *, vault_id: str, user: str, slot_id: str, seq: int,
                 digest_: str, fmt: str = WITNESS_FORMAT, extra: dict[str, Any] | None = None
                 ) -> dict[str, Any]:
    body = {"format": fmt, "vault_id": vault_id, "seq": seq, "hash": digest_,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "user": user,
            "slot_id": slot_id, "sign_pub": signer.public, **(extra or {})}
    return {**body, "signature": signer.sign(WITNESS_PURPOSE, body)}


def load_witness(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{path}: not a readable witness ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") not in (WITNESS_FORMAT, RECEIPT_FORMAT):
        raise IntegrityError(f"{path}: not an audit witness or ingest receipt")
    for key, kind in (("seq", int), ("hash", str), ("signature", str), ("sign_pub", str),
                      ("vault_id", str)):
        if not isinstance(doc.get(key), kind):
            raise IntegrityError(f"{path}: witness field {key!r} missing or malformed")
    return doc


# --- verification -----------------------------------------------------------------------------
def verify(con: duckdb.DuckDBPyConnection, vault_dir: Path, *, vault_id: str,
           witnesses: list[tuple[str, dict[str, Any]]] | None = None,
           running: int | None = None) -> AuditVerification:
    """Recompute every link and signature, compare with audit.chain and the witnesses.
    Problems name entry numbers and what is wrong, never values."""
    entries = read_entries(con)
    chain = read_chain(vault_dir)
    problems: list[str] = []
    warnings: list[str] = []
    signers: dict[str, tuple[str, str]] = {}  # slot_id → (sign_pub, role)
    prev = GENESIS
    open_begins: dict[int, AuditEntry] = {}
    for position, entry in enumerate(entries, start=1):
        where = f"entry {entry.seq} ({entry.command} by {entry.user})"
        if entry.seq != position:
            problems.append(f"entry {entry.seq}: found at position {position} (an entry was "
                            "removed or reordered)")
        if entry.prev_hash != prev:
            problems.append(f"{where}: does not link to the entry before it (an entry before "
                            "it was removed, inserted or rewritten)")
        if entry_hash(entry.body()) != entry.hash:
            problems.append(f"{where}: content does not match its hash (edited)")
        if entry.phase != "legacy":
            problems.extend(_check_signature(entry, where, signers))
            _learn_signers(entry, signers)
        if entry.phase == "begin":
            open_begins[entry.seq] = entry
        elif entry.phase == "end" and entry.begin_seq is not None \
                and open_begins.pop(entry.begin_seq, None) is None:
            problems.append(f"{where}: closes entry {entry.begin_seq}, which is not an open "
                            "begin entry")
        prev = entry.hash
    for begin in open_begins.values():
        if begin.seq == running:  # the verifying command's own begin entry
            continue
        warnings.append(f"entry {begin.seq} ({begin.command} by {begin.user}) has no outcome "
                        "entry (the process was killed, or it is the command running now)")
    for position, (entry, line) in enumerate(zip(entries, chain, strict=False), start=1):
        if entry.hash != line:
            problems.append(f"audit.chain line {position}: differs from entry {entry.seq}")
    if len(chain) > len(entries):
        problems.append(f"audit.chain has {len(chain)} hashes but the log {len(entries)} "
                        f"entries (entries {len(entries) + 1}-{len(chain)} were removed)")
    elif len(chain) < len(entries):
        warnings.append(f"audit.chain has {len(chain)} hashes but the log {len(entries)} "
                        "entries (audit.chain truncated or not written)")
    by_seq = {e.seq: e for e in entries}
    for name, witness in witnesses or []:
        problems.extend(_check_witness(name, witness, by_seq, signers, vault_id))
    return AuditVerification(entries=len(entries), head=prev, chain_lines=len(chain),
                             problems=problems, warnings=warnings,
                             witnesses=len(witnesses or []))


def _check_signature(entry: AuditEntry, where: str, signers: dict[str, tuple[str, str]]
                     ) -> list[str]:
    known = signers.get(entry.slot_id)
    if entry.command in ("init", "migrate") and entry.phase == "begin" and known is None:
        # The first signed entry introduces the root certificate it is signed with.
        certs = entry.args.get("certs") or []
        own = next((c for c in certs if c.get("slot_id") == entry.slot_id), None)
        known = (own["sign_pub"], own["role"]) if own else None
    if known is None:
        return [f"{where}: signed by a slot that no earlier entry introduced"]
    if not entry.signature or not verify_signature(known[0], ENTRY_PURPOSE, {"hash": entry.hash},
                                         entry.signature):
        return [f"{where}: signature does not verify (forged or re-written)"]
    return []


def _learn_signers(entry: AuditEntry, signers: dict[str, tuple[str, str]]) -> None:
    """Certificates come in `args["certs"]` of a begin entry (init, migrate) or
    `detail["certs"]` of a successful end entry (users add, users remove)."""
    if entry.command not in CERT_COMMANDS:
        return
    certs = entry.args.get("certs") if entry.phase == "begin" else (
        entry.detail.get("certs") if entry.result == "ok" else None)
    if not certs:
        return
    known = signers.get(entry.slot_id)
    is_root_entry = entry.command in ("init", "migrate")
    if not is_root_entry and (known is None or known[1] != "data-manager"):
        return  # only a data manager's entry can introduce certificates
    for cert in certs:
        if isinstance(cert, dict) and isinstance(cert.get("sign_pub"), str):
            signers[str(cert.get("slot_id"))] = (cert["sign_pub"], str(cert.get("role")))


def _check_witness(name: str, witness: dict[str, Any], by_seq: dict[int, AuditEntry],
                   signers: dict[str, tuple[str, str]], vault_id: str) -> list[str]:
    body = {k: v for k, v in witness.items() if k != "signature"}
    if witness.get("vault_id") != vault_id:
        return [f"witness {name}: is for another vault"]
    known = signers.get(str(witness.get("slot_id")))
    if known is None or known[0] != witness.get("sign_pub") or not verify_signature(
            witness["sign_pub"], WITNESS_PURPOSE, body, witness["signature"]):
        return [f"witness {name}: its signature does not verify against a user of this vault"]
    seq = int(witness["seq"])
    entry = by_seq.get(seq)
    if entry is None:
        last = max(by_seq) if by_seq else 0
        return [f"witness {name}: names entry {seq}, but the log ends at entry {last} "
                f"(entries {last + 1}-{seq} or more were cut from the log)"]
    if entry.hash != witness["hash"]:
        return [f"witness {name}: entry {seq} differs from the witnessed one (the log was "
                "rewritten at or before that entry)"]
    return []
