"""Readers of the statutory input formats, one per format, behind a registry.

- `read_ssda903(paths, year=None)`: SSDA903 CSV set (folder, or per-year subfolders) or XML
- `read_cin_census(paths)`: CIN census XML, any year's schema variant, one file per year
- `read_education(paths)`, `read_neet(paths)`: the UPN-keyed CSV exports
- `READERS[name]`: the same by format name (registering a name twice raises)

Every reader returns `SourceTables` (string columns as in the file + `source_file`,
`source_line`), refuses hostile or malformed input with an `InputFileError` naming file, line
and rule, and never puts a value from the file into an error message.
"""

from trialvault.formats.base import (
    COLLECTION_YEAR,
    READERS,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_RECORD,
    ReaderRegistry,
    SourceTables,
)
from trialvault.formats.cin_census import read_cin_census
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits
from trialvault.formats.pupil import read_education, read_neet
from trialvault.formats.ssda903 import read_ssda903

__all__ = [
    "COLLECTION_YEAR",
    "DEFAULT_LIMITS",
    "READERS",
    "SOURCE_FILE",
    "SOURCE_LINE",
    "SOURCE_RECORD",
    "ReadLimits",
    "ReaderRegistry",
    "SourceTables",
    "read_cin_census",
    "read_education",
    "read_neet",
    "read_ssda903",
]
