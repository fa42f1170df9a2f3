"""Which LA signing keys the vault trusts (the secrets domain: only data managers hold it).

An LA makes its key pair (`trialvault la keygen`) and sends the public line; the data manager
checks its fingerprint with the LA by another channel and registers it (`trialvault la trust`).
Ingest then accepts a package only when it is signed by a key registered for the package's LA
(`trialvault.seal.verify_package`). The registry lives in the secrets domain, so an analyst who
can write the child-data files cannot add a key; every registration is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.seal.keys import LaPublicKey, parse_public_key
from trialvault.study import StudyFile
from trialvault.vault.schema import CATALOG_DDL
from trialvault.vault.session import open_vault

TRUST_ROLES = ("data-manager",)
LA_KEYS_DDL = CATALOG_DDL["secrets"][1]


@dataclass(frozen=True)
class TrustedKey:
    la_code: int
    fingerprint: str
    registered_at: str
    registered_by: str
    retired_at: str | None


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'secrets' "
                      "AND table_name = 'la_keys'").fetchone()
    return bool(row and row[0])


def trusted_keys(con: duckdb.DuckDBPyConnection) -> dict[int, list[LaPublicKey]]:
    """LA code → the keys registered (and not retired) for it."""
    if not _has_table(con):
        return {}
    out: dict[int, list[LaPublicKey]] = {}
    for line, in con.execute("SELECT public_key FROM secrets.la_keys WHERE retired_at IS NULL "
                             "ORDER BY registered_at").fetchall():
        key = parse_public_key(str(line), source="secrets.la_keys")
        out.setdefault(key.la_code, []).append(key)
    return out


def trust_la_key(vault_dir: Path, user: str, password: str, la_code: int, key_text: str, *,
                 study: StudyFile) -> LaPublicKey:
    """Register `key_text` (`trialvault-la-ed25519:<la>:<base64>`) as a signing key of LA
    `la_code` (a data manager, audited with the key's fingerprint)."""
    key = parse_public_key(key_text, source="the LA public key")
    if key.la_code != la_code:
        raise InputFileError(f"the key is labelled LA {key.la_code}, not LA {la_code}: ask the "
                             "LA for its own key", rule="la_code")
    if la_code not in study.la_codes:
        raise PolicyRefusal(f"LA {la_code} is not an LA of study {study.study.id!r}")
    with open_vault(vault_dir, user, password, command="la trust",
                    args={"la": la_code, "fingerprint": key.fingerprint()}) as session:
        session.require_role(*TRUST_ROLES)
        session.require_domain("secrets")
        con = session.con
        con.execute(LA_KEYS_DDL)
        for other in trusted_keys(con).values():
            for k in other:
                if k.raw == key.raw:
                    raise PolicyRefusal(f"this key is already registered for LA {k.la_code}")
        con.execute("INSERT INTO secrets.la_keys VALUES (?, ?, ?, ?, ?, NULL)",
                    [key.line(), la_code, key.fingerprint(),
                     dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), session.user])
        session.record(rows_touched={"secrets.la_keys": 1},
                       detail={"la": la_code, "fingerprint": key.fingerprint()})
    return key


def retire_la_key(vault_dir: Path, user: str, password: str, fingerprint: str) -> int:
    """Stop trusting a key (lost or replaced); returns how many keys were retired."""
    with open_vault(vault_dir, user, password, command="la retire",
                    args={"fingerprint": fingerprint}) as session:
        session.require_role(*TRUST_ROLES)
        session.require_domain("secrets")
        if not _has_table(session.con):
            return 0
        retired = session.con.execute(
            "UPDATE secrets.la_keys SET retired_at = ? WHERE fingerprint = ? AND retired_at IS "
            "NULL RETURNING la_code", [dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                       fingerprint.strip()]).fetchall()
        session.record(rows_touched={"secrets.la_keys": len(retired)})
    return len(retired)


def list_la_keys(vault_dir: Path, user: str, password: str) -> list[TrustedKey]:
    with open_vault(vault_dir, user, password, command="la trusted", args={},
                    write=False) as session:
        session.require_domain("secrets")
        if not _has_table(session.con):
            return []
        return [TrustedKey(int(r[0]), str(r[1]), str(r[2]), str(r[3]), r[4]) for r in
                session.con.execute("SELECT la_code, fingerprint, registered_at, registered_by,"
                                    " retired_at FROM secrets.la_keys ORDER BY la_code, "
                                    "registered_at").fetchall()]
