"""Purge at the end of retention: crypto-shred the vault, delete its files, certify it.

Order of work (each step only after the one before succeeded):

1. Refuse before the study's deletion date unless an early purge is asked for with a reason.
2. Open the vault once as a data-manager or dpo: this proves the caller may destroy it,
   gathers counts (never values) for the certificate, and writes the final audit entry.
3. Under the vault lock, hash every file to be destroyed (SHA-256, for the certificate).
4. Crypto-shred: `keyslots.json` — the only place the domain keys exist, sealed per user — is
   overwritten with random bytes, flushed and deleted. From this moment the databases and any
   copy or backup of them are unreadable: every domain key is gone. Key files given by the caller
   (e.g. age identities) are shredded the same way.
5. Delete the vault folder, the packages and keys named by the caller, and every stored copy
   the inventory lists (kept packages, access responses, exports, backups: `vault.inventory`)
   that is not yet destroyed. A copy that cannot be reached unchanged stops the purge *before
   anything is destroyed*: the DPO destroys it and records that (`rights destroy ID
   --elsewhere ...`), then purges.
6. Write the destruction certificate (JSON + Markdown) outside everything destroyed. It holds
   what was destroyed, when, by whom, the file hashes taken before destruction, every stored
   copy (destroyed now, or destroyed earlier — by the tool or elsewhere, with the DPO's note)
   and the audit head — and no personal data (no child code, no row value; counts and names).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialvault import __version__
from trialvault.errors import PolicyRefusal
from trialvault.retention.schedule import FileItem, inventory
from trialvault.sql import quote_qualified
from trialvault.study.model import StudyFile
from trialvault.trust import KEYRING_NAME as KEYSLOTS_NAME
from trialvault.vault import audit
from trialvault.vault import inventory as inv
from trialvault.vault.session import open_vault, vault_lock

PURGE_ROLES = ("data-manager", "dpo")
MIN_REASON_CHARS = 20
CERTIFICATE_FORMAT = "trialvault-destruction-certificate/1"


@dataclass
class PurgeResult:
    certificate_json: Path
    certificate_md: Path
    certificate: dict[str, Any]
    failures: list[str] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _shred(path: Path) -> None:
    """Overwrite a small secret file with random bytes, flush it to disk, then delete it.

    On copy-on-write or flash storage an overwrite may not reach the old blocks; that is why
    the key slots (the data key) are destroyed, not the database blocks: without the key the
    ciphertext is useless wherever copies of it remain.
    """
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(secrets.token_bytes(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def check_due(study: StudyFile, *, today: dt.date, early_reason: str | None) -> str | None:
    """Refuse a purge before the deletion date unless an early purge has a real reason."""
    due = study.retention.deletion_due
    if early_reason is None:
        if today < due:
            raise PolicyRefusal(f"retention: deletion is due on {due} "
                                f"({study.retention.deletion_label}), {(due - today).days} "
                                "day(s) from now; use --early --reason to purge before then")
        return None
    reason = early_reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise PolicyRefusal(f"an early purge needs a reason of at least {MIN_REASON_CHARS} "
                            "characters")
    return reason


def purge(vault_dir: Path, user: str, password: str, study: StudyFile, *, today: dt.date,
          certificate_dir: Path, early_reason: str | None = None,
          packages: list[Path] | None = None, keys: list[Path] | None = None) -> PurgeResult:
    """Destroy the vault (and the given packages and keys); return the certificate."""
    reason = check_due(study, today=today, early_reason=early_reason)
    items = inventory(vault_dir, packages, keys)
    if _inside(certificate_dir, vault_dir):
        raise PolicyRefusal("the certificate folder must be outside the vault folder")
    if any(_inside(certificate_dir, p) for p in [*(packages or []), *(keys or [])]):
        raise PolicyRefusal("the certificate folder must be outside the folders being deleted")
    args = {"early": reason is not None, "reason": reason,
            "packages": [p.name for p in packages or []], "keys": len(keys or [])}
    with open_vault(vault_dir, user, password, command="retention purge", args=args) as s:
        s.require_role(*PURGE_ROLES)
        copies = inv.list_artefacts(s.con)
        _check_reachable(copies, vault_dir, certificate_dir)
        facts = _facts(s.con)
        actor = {"user": s.user, "role": s.role, "slot_id": s.slot_id}
        fingerprint = dict(s.key_fingerprints)
        s.record(detail={"files": len(items), "bytes": sum(i.bytes for i in items)})
    with vault_lock(vault_dir):
        chain = audit.read_chain(vault_dir)
        items = inventory(vault_dir, packages, keys)
        hashed = [(item, _sha256(item.path)) for item in items]
        destroyed = _destroy_copies(copies)
        failures = _destroy(vault_dir, items)
    cert = _certificate(study, vault_dir, actor, facts, fingerprint, chain, hashed, reason,
                        failures, today)
    cert["stored_copies"] = destroyed
    body = json.dumps({k: v for k, v in cert.items() if k != "certificate_sha256"},
                      sort_keys=True, separators=(",", ":")).encode()
    cert["certificate_sha256"] = hashlib.sha256(body).hexdigest()
    certificate_dir.mkdir(parents=True, exist_ok=True)
    stem = f"destruction-certificate-{cert['certificate_id']}"
    json_path = certificate_dir / f"{stem}.json"
    json_path.write_text(json.dumps(cert, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    md_path = certificate_dir / f"{stem}.md"
    md_path.write_text(render_certificate(cert), encoding="utf-8")
    return PurgeResult(json_path, md_path, cert, failures)


def _check_reachable(copies: list[inv.Artefact], vault_dir: Path, certificate_dir: Path
                     ) -> None:
    """Refuse (nothing destroyed) while a copy not yet destroyed cannot be reached unchanged."""
    stuck = []
    for art in copies:
        if art.state not in ("held", "to_destroy"):
            continue
        path = Path(art.location)
        if _inside(certificate_dir, path) if path.is_dir() else False:
            raise PolicyRefusal(f"the certificate folder is inside {art.name}, which the purge "
                                "destroys")
        if not path.exists() or (art.sha256 and inv.sha256_of(path) != art.sha256):
            stuck.append(art)
    if stuck:
        names = "; ".join(f"{a.kind} {a.artefact_id} ({a.location})" for a in stuck)
        raise PolicyRefusal(f"{len(stuck)} stored copy(ies) holding children's data cannot be "
                            f"reached unchanged: {names}. Destroy each and record it with "
                            "`trialvault rights destroy ID --elsewhere \"where and how\"`, "
                            "then purge again; nothing was destroyed")


def _destroy_copies(copies: list[inv.Artefact]) -> list[dict[str, Any]]:
    """Destroy every copy not yet destroyed; the certificate lists all of them."""
    out = []
    for art in copies:
        entry = inv.certificate_entry(art)
        if art.state in ("held", "to_destroy"):
            entry["state"] = "destroyed by this purge" if inv.destroy_path(art) == "destroyed" \
                else "already gone"
        out.append(entry)
    return out


def _facts(con: Any) -> dict[str, Any]:
    """Counts and identifiers of the vault (no child codes, no values)."""
    info = con.execute("SELECT vault_id, study_id, created_at FROM audit.vault_info").fetchone()
    tables = con.execute(
        "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT "
        "internal AND database_name NOT IN ('temp', 'system', 'memory') AND NOT "
        "(database_name IN ('secrets', 'audit') OR table_name = 'secrets') "
        "ORDER BY 1, 2, 3").fetchall()
    counts = {(f"{s}.{t}" if d == "vault" else f"{d}.{t}"):
              int(con.execute(f"SELECT count(*) FROM {quote_qualified(f'{d}.{s}.{t}')}"
                              ).fetchone()[0]) for d, s, t in tables}
    held = {r[0] for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
    packages = [{"package_id": p, "la_code": la, "extract_date": str(d)} for p, la, d in
                con.execute("SELECT package_id, la_code, extract_date FROM meta.packages "
                            "ORDER BY la_code, extract_date").fetchall()] if "vault" in held \
        else []
    return {"vault_id": info[0] if info else None, "study_id": info[1] if info else None,
            "vault_created_at": info[2] if info else None, "row_counts": counts,
            "packages_ingested": packages}


def _destroy(vault_dir: Path, items: list[FileItem]) -> list[str]:
    """Shred the key slots and key files first, then delete everything; return failures."""
    failures: list[str] = []
    first = [i for i in items if i.kind == "key" or
             (i.kind == "vault" and i.path.name == KEYSLOTS_NAME)]
    for item in first:
        try:
            _shred(item.path)
        except OSError as exc:
            failures.append(f"{item.path.name}: {exc.strerror}")
    for item in items:
        if item in first:
            continue
        try:
            item.path.unlink(missing_ok=True)
        except OSError as exc:
            failures.append(f"{item.path.name}: {exc.strerror}")
    for folder in sorted({i.path.parent for i in items if i.kind != "vault"},
                         key=lambda p: len(p.parts), reverse=True):
        _remove_empty(folder)
    shutil.rmtree(vault_dir, ignore_errors=True)
    if vault_dir.exists():
        failures.append(f"{vault_dir.name}: folder could not be removed")
    return failures


def _remove_empty(folder: Path) -> None:
    # Not empty (it holds files we were not asked to delete) or already gone: leave it.
    with contextlib.suppress(OSError):
        folder.rmdir()


def _certificate(study: StudyFile, vault_dir: Path, actor: dict[str, str],
                 facts: dict[str, Any], fingerprint: dict[str, str], chain: list[str],
                 hashed: list[tuple[FileItem, str]], reason: str | None,
                 failures: list[str], today: dt.date) -> dict[str, Any]:
    r = study.retention
    cert: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT,
        "certificate_id": str(uuid.uuid4()),
        "destroyed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "destroyed_by": actor,
        "study": {"id": study.study.id, "title": study.study.title,
                  "controller": study.controller.name},
        "retention_rule": {"rule": r.rationale, "deletion": r.deletion_label,
                           "due": r.deletion_due.isoformat(), "purged_on": today.isoformat(),
                           "early": reason is not None, "early_reason": reason},
        "method": (f"{r.deletion_method} Key slots (keyslots.json, the only store of the "
                   "sealed domain keys) overwritten with random bytes, flushed and deleted; key "
                   "files likewise; all other files deleted."),
        "vault": {"folder": vault_dir.name, "vault_id": facts["vault_id"],
                  "created_at": facts["vault_created_at"],
                  "key_fingerprints": fingerprint},
        "audit": {"entries": len(chain), "head": chain[-1] if chain else None},
        "row_counts_destroyed": facts["row_counts"],
        "packages_ingested": facts["packages_ingested"],
        "files": [{"kind": item.kind, "name": _display(item, vault_dir),
                   "bytes": item.bytes, "sha256": digest} for item, digest in hashed],
        "complete": not failures,
        "failures": failures,
        "trialvault_version": __version__,
    }
    body = json.dumps(cert, sort_keys=True, separators=(",", ":")).encode()
    cert["certificate_sha256"] = hashlib.sha256(body).hexdigest()
    return cert


def _display(item: FileItem, vault_dir: Path) -> str:
    if item.kind == "vault":
        return str(Path(vault_dir.name) / item.path.relative_to(vault_dir))
    return item.path.name


def render_certificate(cert: dict[str, Any]) -> str:
    r, v, a = cert["retention_rule"], cert["vault"], cert["audit"]
    lines = [
        f"# Destruction certificate {cert['certificate_id']}",
        "",
        f"- **Study:** {cert['study']['title']} ({cert['study']['id']}), controller "
        f"{cert['study']['controller']}",
        f"- **Destroyed at:** {cert['destroyed_at']} by {cert['destroyed_by']['user']} "
        f"({cert['destroyed_by']['role']}, key slot {cert['destroyed_by']['slot_id']})",
        f"- **Retention rule:** {r['rule']} Deletion due {r['due']} ({r['deletion']}); "
        f"purged on {r['purged_on']}"
        + (f" — EARLY, reason: {r['early_reason']}" if r["early"] else ""),
        f"- **Method:** {cert['method']}",
        f"- **Vault:** {v['folder']} (id {v['vault_id']}, created {v['created_at']}), domain "
        "keys " + ", ".join(f"{d} {fp}" for d, fp in v['key_fingerprints'].items()),
        f"- **Audit chain:** {a['entries']} entries, head `{a['head']}`",
        f"- **Complete:** {'yes' if cert['complete'] else 'NO — ' + '; '.join(cert['failures'])}",
        "",
        "## Rows destroyed (counts)",
        "",
        "| table | rows |",
        "|---|---:|",
        *[f"| {t} | {n} |" for t, n in cert["row_counts_destroyed"].items()],
        "",
        "## Files destroyed (SHA-256 before destruction)",
        "",
        "| kind | file | bytes | sha256 |",
        "|---|---|---:|---|",
        *[f"| {f['kind']} | {f['name']} | {f['bytes']} | `{f['sha256']}` |"
          for f in cert["files"]],
        "",
        "## Stored copies holding children's data (inventory)",
        "",
        "| kind | name | children | made | state | how |",
        "|---|---|---:|---|---|---|",
        *[f"| {c['kind']} | {c['name']} | {c['children']} | {c['created_at'][:10]} | "
          f"{str(c['state']).replace('_', ' ')} | {c.get('how') or ''} |"
          for c in cert.get("stored_copies", [])],
        "",
        f"Certificate SHA-256 (of the JSON without this field): `{cert['certificate_sha256']}`",
        "",
    ]
    return "\n".join(lines)
