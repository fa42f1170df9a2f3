"""The vault: an encrypted DuckDB database, key slots, ingest with lineage, and an audit chain.

A vault is a folder: `vault.duckdb` (DuckDB AES-256-GCM), `keyslots.json` (per-user key
slots), `audit.chain` (plaintext head hashes), `tmp/` (DuckDB spill files, encrypted),
`access-failures.log` (refused logins: time, user name, reason) and `.lock`.

Library API for other stages (everything takes the vault folder, a user and a password; the
CLI reads them from options, `$TRIALVAULT_USER` and `$TRIALVAULT_PASSWORD`):

    with open_vault(vault_dir, user, password, command="rights erase", args={...},
                    write=True) as s:
        s.require_role("data-manager", "dpo")       # AccessDenied otherwise
        s.con.execute("DELETE FROM raw.children WHERE ...")   # default catalog = the vault
        s.record(rows_touched={"raw.children": 3}, detail={"request": "R-12"})
    # -> one audit entry (ok or error), work committed only on success

`s.con` runs inside ONE transaction the session commits (never COMMIT yourself); it cannot
read or write files (DuckDB external access is off), so fetch results into Python. `write=False`
rolls the work back. Session fields: con, user, role, slot_id, vault_dir,
data_key_fingerprint, command, record(), require_role().

Schemas: `harmonised.<table>` (current view, docs/architecture.md tables + package_id,
ingest_batch), `raw.<table>` (every package as received), `meta.*` (packages, audit_log,
tombstones, ...). Other stages create their own tables (e.g. `rights_flags`, `results`).

Functions: init_vault, add_user, remove_user, change_password, list_users, default_user,
rekey, evaluator_recipient, ingest_packages, rebuild_harmonised, add_tombstones, child_hash,
is_tombstoned, vault_status, audit_entries, verify_audit. Roles: data-manager, analyst,
output-checker, dpo.
"""

from trialvault.vault.admin import (
    RekeyReport,
    add_user,
    audit_entries,
    change_password,
    default_user,
    evaluator_recipient,
    init_vault,
    list_users,
    rekey,
    remove_user,
    verify_audit,
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
from trialvault.vault.keyslots import FAST_TEST_KDF, ROLES, KdfParams, Slot
from trialvault.vault.session import VaultSession, open_vault
from trialvault.vault.status import VaultStatus, vault_status

__all__ = [
    "FAST_TEST_KDF", "ROLES", "AuditEntry", "AuditVerification", "IngestReport", "KdfParams",
    "PackageOutcome", "RekeyReport", "Slot", "VaultSession", "VaultStatus", "add_tombstones",
    "add_user", "audit_entries", "change_password", "child_hash", "current_packages",
    "default_user", "evaluator_recipient", "ingest_packages", "init_vault", "is_tombstoned",
    "list_users", "open_vault", "rebuild_harmonised", "rekey", "remove_user", "vault_status",
    "verify_audit",
]
