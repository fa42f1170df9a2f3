"""The seal stage: an age-encrypted package of minimised tables plus its manifest.

Public API:

- `write_package(path, recipients, manifest, tables, validation_csv) -> package_id`
- `read_package(path, identity) -> PackageContents` (decrypted in memory, hashes verified)
- `generate_identity() -> (secret identity, public recipient)`, `recipient_of(identity)`

Manifest keys (JSON): format, package_id (UUID4), study_id, spec_version, la_code (int),
extract_date (ISO date), created_at, trialvault_version, tables {name: {rows, sha256}},
dropped_columns, linkage_rate, risk_summary, validation_summary. The caller gives study_id,
spec_version, la_code and extract_date (and the optional ones); the rest is filled in.
"""

from trialvault.seal.package import (
    PACKAGE_FORMAT,
    PACKAGE_SUFFIX,
    PackageContents,
    generate_identity,
    read_package,
    recipient_of,
    write_package,
)

__all__ = ["PACKAGE_FORMAT", "PACKAGE_SUFFIX", "PackageContents", "generate_identity",
           "read_package", "recipient_of", "write_package"]
