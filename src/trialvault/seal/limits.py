"""Resource limits for reading a package: every way it can grow in memory has a cap.

A package is small on disk and may be built by anyone holding the evaluator's public recipient,
so reading it must not trust any size it states. Each cap below is checked *before* the bytes
or rows it bounds are decoded:

- the encrypted file's size, before it is read;
- the ZIP: number of members, each member's declared size by kind, and the total — checked on
  the central directory; each member is then read in chunks and refused as soon as it passes
  its cap (a member that lies about its size is caught by the CRC check or the cap);
- Parquet: rows and columns from the footer, and the encoded ("uncompressed") bytes of every
  column chunk, before any page is read; then the decoded Arrow size, counted while reading with
  strings kept dictionary-encoded (a 110 KB file of one repeated string must not become GiBs of
  strings before it is refused);
- the validation CSV and the manifest (also a JSON nesting cap: a deep `[[[[` is refused).

The defaults are ~10x above the largest real LA's package (about 150,000 rows and 40 MB of
Arrow data for eight years of returns) and keep a package's decoded tables under 2 GiB.
"""

from __future__ import annotations

from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True)
class PackageLimits:
    """Upper bounds `read_package` and `verify_package` enforce; a breach is
    `PackageLimitExceeded` naming the package, the member and the limit."""

    max_package_bytes: int = 1 * GiB
    """Size of the encrypted package file (read whole into memory to decrypt it)."""
    max_members: int = 128
    """Members of the ZIP (manifest, signature, validation CSV, one per table)."""
    max_unpacked_bytes: int = 2 * GiB
    """Sum of every member's decoded (inflated) size."""
    max_manifest_bytes: int = 4 * MiB
    """manifest.json."""
    max_manifest_depth: int = 32
    """JSON nesting of manifest.json (and of signature.json)."""
    max_signature_bytes: int = 64 * KiB
    """signature.json."""
    max_validation_csv_bytes: int = 256 * MiB
    """validation/issues.csv (rule, file, line; about 60 bytes per issue)."""
    max_table_file_bytes: int = 1 * GiB
    """One table's Parquet file."""
    max_table_rows: int = 20_000_000
    """Rows of one table (from the Parquet footer)."""
    max_total_rows: int = 50_000_000
    """Rows of all tables together."""
    max_columns: int = 256
    """Columns of one table."""
    max_table_decoded_bytes: int = 1 * GiB
    """One table in memory (Arrow), strings decoded."""
    max_total_decoded_bytes: int = 2 * GiB
    """All tables in memory together."""


DEFAULT_PACKAGE_LIMITS = PackageLimits()
