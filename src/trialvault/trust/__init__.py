"""Trust: roles, domains and their keys, key-slot certificates, signatures, password policy.

The one package that owns who may unwrap what (STYLE: "one package owns keys, domains and who
may unwrap what"). The vault stage uses it to open sessions; the rights, release and ingest
stages use the acting user's `Signer` (through the vault session) to sign what they approve.

Public surface:
- `ROLES`, `DOMAINS`, `ROLE_DOMAINS`, `REKEY_ROLES`, `domains_for(role)`, `catalogs_for(...)`,
  `catalog_file(catalog)` — the role × domain matrix (docs/security.md);
- `Keyring`, `Slot`, `UnlockedSlot`, `KdfParams`, `DEFAULT_KDF`, `FAST_TEST_KDF`,
  `new_domain_key()`, `fingerprint()`, `cert_hash()` — key slots (`keyslots.json`);
- `Signer`, `verify`, `digest`, `canonical` — Ed25519 over canonical JSON;
- `check_password`, `WeakPassword` — the password policy.
"""

from trialvault.trust.domains import (
    DOMAIN_ORDER,
    DOMAINS,
    REKEY_ROLES,
    ROLE_DOMAINS,
    ROLES,
    SLOT_ISSUER_ROLES,
    catalog_file,
    catalogs_for,
    domain_of_catalog,
    domains_for,
)
from trialvault.trust.keyring import (
    DEFAULT_KDF,
    FAST_TEST_KDF,
    KEYRING_NAME,
    KdfParams,
    Keyring,
    LegacyVault,
    Slot,
    UnlockedSlot,
    cert_hash,
    fingerprint,
    new_domain_key,
)
from trialvault.trust.passwords import WeakPassword, check_password
from trialvault.trust.signing import Signer, canonical, digest, verify

__all__ = [
    "DEFAULT_KDF", "DOMAINS", "DOMAIN_ORDER", "FAST_TEST_KDF", "KEYRING_NAME", "REKEY_ROLES",
    "ROLES", "ROLE_DOMAINS", "SLOT_ISSUER_ROLES", "KdfParams", "Keyring", "LegacyVault",
    "Signer", "Slot", "UnlockedSlot", "WeakPassword", "canonical", "catalog_file",
    "catalogs_for", "cert_hash", "check_password", "digest", "domain_of_catalog", "domains_for",
    "fingerprint", "new_domain_key", "verify",
]
