"""The seal stage: an age-encrypted, LA-signed package of minimised tables plus its manifest.

Public API:

- `write_package(path, recipients, manifest, tables, validation_csv, sign_key=None)
  -> package_id`
- `verify_package(source, identity, trusted_keys) -> VerifiedPackage`: decrypted in memory,
  the LA signature checked against the keys trusted per LA, hashes and counts verified, within
  `PackageLimits` (what ingest uses)
- `read_package(source, identity) -> PackageContents`: the same without the trust check
- `generate_identity() -> (secret identity, public recipient)`, `recipient_of(identity)`
- LA keys: `LaSigningKey.generate(la)`, `write_key_file`, `load_signing_key`,
  `read_public_key`, `parse_public_key`, `LaPublicKey` (`.line()`, `.fingerprint()`)
- `PackageLimits`, `DEFAULT_PACKAGE_LIMITS` (seal/limits.py: every cap, documented)
- errors: `PackageNotTrusted` (IntegrityError, with `.reason`), `PackageLimitExceeded`
  (InputFileError)

Manifest keys (JSON): format, package_id (UUID4), study_id, spec_version, la_code (int),
extract_date (ISO date), created_at, trialvault_version, tables {name: {rows, sha256}},
validation_sha256, dropped_columns, linkage_rate, risk_summary, validation_summary. The caller
gives study_id, spec_version, la_code and extract_date (and the optional ones); the rest is
filled in.
"""

from trialvault.seal.keys import (
    LaPublicKey,
    LaSigningKey,
    load_signing_key,
    parse_public_key,
    read_public_key,
    write_key_file,
)
from trialvault.seal.limits import DEFAULT_PACKAGE_LIMITS, PackageLimits
from trialvault.seal.package import (
    PACKAGE_FORMAT,
    PACKAGE_SUFFIX,
    PackageContents,
    generate_identity,
    read_package,
    recipient_of,
    write_package,
)
from trialvault.seal.reader import PackageLimitExceeded
from trialvault.seal.verify import PackageNotTrusted, VerifiedPackage, verify_package

__all__ = ["DEFAULT_PACKAGE_LIMITS", "PACKAGE_FORMAT", "PACKAGE_SUFFIX", "LaPublicKey",
           "LaSigningKey", "PackageContents", "PackageLimitExceeded", "PackageLimits",
           "PackageNotTrusted", "VerifiedPackage", "generate_identity", "load_signing_key",
           "parse_public_key", "read_package", "read_public_key", "recipient_of",
           "verify_package", "write_key_file", "write_package"]
