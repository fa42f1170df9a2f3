"""`trialvault status`: what the vault holds, per LA, with counts only."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialvault.trust import Slot
from trialvault.vault import audit
from trialvault.vault.ingest import describe_current
from trialvault.vault.schema import TABLES
from trialvault.vault.session import open_vault


@dataclass(frozen=True)
class PackageHolding:
    package_id: str
    file_name: str
    extract_date: dt.date
    ingest_batch: int
    ingested_at: str
    current: bool
    rows: dict[str, int]            # per table, as declared in the manifest
    tombstoned_rows: int
    validation_summary: dict[str, Any]


@dataclass(frozen=True)
class LaHolding:
    la_code: int
    packages: list[PackageHolding]
    harmonised_rows: dict[str, int]
    children: int

    @property
    def current(self) -> PackageHolding | None:
        return next((p for p in self.packages if p.current), None)


@dataclass(frozen=True)
class VaultStatus:
    vault_dir: Path
    vault_id: str
    study_id: str | None
    key_fingerprints: dict[str, str]
    users: list[Slot]
    holdings: list[LaHolding]
    bytes_on_disk: dict[str, int]
    audit_entries: int
    audit_head: str
    tombstones: int | None = None
    domains: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def vault_status(vault_dir: Path, user: str, password: str, *, audit_read: bool = True
                 ) -> VaultStatus:
    """Holdings per LA, users, sizes and the audit head (a read-only, audited command)."""
    with open_vault(vault_dir, user, password, command="status", args={}, write=False,
                    audit_read=audit_read) as s:
        con = s.con
        vault_id, study_id = con.execute(  # type: ignore[misc]
            "SELECT vault_id, study_id FROM audit.vault_info").fetchone()
        packages: list[dict[str, Any]] = []
        per_la: dict[int, dict[str, int]] = {}
        children: dict[int, int] = {}
        notes: list[str] = []
        if s.holds("child"):
            packages = describe_current(con)
            for table in TABLES:
                for la, n in con.execute(f"SELECT la_code, count(*) FROM harmonised.{table} "
                                         "GROUP BY la_code").fetchall():
                    per_la.setdefault(int(la), {})[table] = int(n)
            union = " UNION ".join(f"SELECT la_code, child_id FROM harmonised.{t}"
                                   for t in TABLES)
            for la, n in con.execute(f"SELECT la_code, count(*) FROM ({union}) GROUP BY "
                                     "la_code").fetchall():
                children[int(la)] = int(n)
        else:
            notes.append(f"{s.role} holds no key to child-level data: holdings not shown")
        seq, head = audit.head(con)
        tombstones = None
        if s.holds("register"):
            tombstones = int(con.execute(  # type: ignore[index]
                "SELECT count(*) FROM rights.tombstones").fetchone()[0])
        users = s._keyring.slots
        fingerprints = dict(s.key_fingerprints)
        domains = sorted(s.domains)
    holdings: dict[int, list[PackageHolding]] = {}
    for p in packages:
        m = p["manifest"]
        holdings.setdefault(int(p["la_code"]), []).append(PackageHolding(
            package_id=p["package_id"], file_name=p["file_name"],
            extract_date=p["extract_date"], ingest_batch=int(p["ingest_batch"]),
            ingested_at=p["ingested_at"], current=bool(p["current"]),
            rows={t: int(v["rows"]) for t, v in m.get("tables", {}).items()},
            tombstoned_rows=int(p["tombstoned_rows"]),
            validation_summary=m.get("validation_summary") or {}))
    return VaultStatus(
        vault_dir=vault_dir, vault_id=str(vault_id), study_id=study_id,
        key_fingerprints=fingerprints, users=users, domains=domains, notes=notes,
        holdings=[LaHolding(la, pk, per_la.get(la, {}), children.get(la, 0))
                  for la, pk in sorted(holdings.items())],
        bytes_on_disk={f.name: f.stat().st_size for f in sorted(vault_dir.iterdir())
                       if f.is_file() and not f.name.startswith(".")},
        audit_entries=seq, audit_head=head, tombstones=tombstones)
