"""The vault: encrypted DuckDB files per trust domain, key slots, ingest with lineage, and a
signed audit log.

A vault is a folder: one encrypted DuckDB file per catalog of each trust domain
(`child.duckdb`, `rights.duckdb`, `secrets.duckdb`, `results.duckdb`, `releases.duckdb`,
`audit.duckdb`; see `trialvault.trust.domains` and docs/security.md), `keyslots.json` (the key
ring: per-user certified key slots), `audit.chain` (plaintext head hashes), `tmp/` (encrypted
DuckDB spill files), `access-failures.log` (refused unlocks) and `.lock`.

Library API for other stages (everything takes the vault folder, a user and a password; the
CLI reads them from options, `$TRIALVAULT_USER` and `$TRIALVAULT_PASSWORD`):

    with open_vault(vault_dir, user, password, command="rights erase", args={...},
                    write=True) as s:
        s.require_role("data-manager", "dpo")       # AccessDenied otherwise
        s.con.execute("DELETE FROM raw.children WHERE ...")   # default catalog = child data
        s.writer("rights").execute("UPDATE rights.requests ...")  # a second domain's writes
        s.record(rows_touched={"raw.children": 3}, detail={"request": "R-12"})
    # -> a signed begin entry before the block, an end entry (ok or error) after it

`s.con` runs inside ONE transaction the session commits (never COMMIT yourself); it cannot
read or write files (DuckDB external access is off), so fetch results into Python. `write=False`
rolls the work back. Session fields: con, user, role, person, slot_id, vault_dir, vault_id,
domains, key_fingerprints, command, record(), require_role(), require_domain(), holds(),
writer(), signer.

Catalogs: `vault` (default; schemas raw, harmonised, meta), `rights`, `secrets`, `results`,
`releases`, `audit` — attached only when the user's slot holds that domain's key.
"""

from trialvault.trust import FAST_TEST_KDF, ROLES, KdfParams, Slot
from trialvault.vault.admin import (
    RekeyReport,
    add_user,
    audit_entries,
    change_password,
    check_slots,
    default_user,
    evaluator_identity,
    evaluator_recipient,
    init_vault,
    list_users,
    rekey,
    remove_user,
    tombstone_key,
    verify_audit,
    write_witness,
)
from trialvault.vault.audit import AuditEntry, AuditVerification
from trialvault.vault.ingest import (
    IngestReport,
    PackageOutcome,
    add_tombstones,
    child_hash,
    current_packages,
    ingest_packages,
    is_tombstoned,
    rebuild_harmonised,
)
from trialvault.vault.session import VaultSession, open_vault
from trialvault.vault.status import VaultStatus, vault_status

__all__ = [
    "FAST_TEST_KDF", "ROLES", "AuditEntry", "AuditVerification", "IngestReport", "KdfParams",
    "PackageOutcome", "RekeyReport", "Slot", "VaultSession", "VaultStatus", "add_tombstones",
    "add_user", "audit_entries", "change_password", "check_slots", "child_hash",
    "current_packages", "default_user", "evaluator_identity", "evaluator_recipient",
    "ingest_packages", "init_vault", "is_tombstoned",
    "list_users", "open_vault", "rebuild_harmonised", "rekey", "remove_user", "tombstone_key",
    "vault_status", "verify_audit", "write_witness",
]
