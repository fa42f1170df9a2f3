"""Readers of the statutory input formats, one per format, behind a registry.

- `read_ssda903(paths, year=None)`: SSDA903 CSV set (folder, or per-year subfolders) or XML
- `read_cin_census(paths)`: CIN census XML, any year's schema variant, one file per year
- `read_education(paths)`, `read_neet(paths)`: the UPN-keyed CSV exports
- `READERS[name]`: the same by format name (registering a name twice raises)

Every reader returns `SourceTables` (string columns as in the file + `source_file`,
`source_line`), refuses hostile or malformed input with an `InputFileError` naming file, line
and rule, and never puts a value from the file into an error message.

The readers are imported when first named: the CSV readers need pyarrow (its CSV parser), the
XML readers do not, and the LA's check of a CIN census alone never loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from trialvault.formats.base import (
    COLLECTION_YEAR,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_RECORD,
    ColumnTable,
    Fields,
    ReaderRegistry,
    SourceTables,
    Table,
    as_arrow,
)
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits

if TYPE_CHECKING:
    from trialvault.formats.base import READERS
    from trialvault.formats.cin_census import read_cin_census
    from trialvault.formats.pupil import read_education, read_neet
    from trialvault.formats.ssda903 import read_ssda903

_READER_MODULES = {"read_cin_census": "cin_census", "read_education": "pupil",
                   "read_neet": "pupil", "read_ssda903": "ssda903"}


def __getattr__(name: str) -> Any:
    if name in _READER_MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_READER_MODULES[name]}"), name)
    if name == "READERS":  # every reader registered
        for module in set(_READER_MODULES.values()):
            importlib.import_module(f"{__name__}.{module}")
        from trialvault.formats.base import READERS

        return READERS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COLLECTION_YEAR",
    "DEFAULT_LIMITS",
    "READERS",
    "SOURCE_FILE",
    "SOURCE_LINE",
    "SOURCE_RECORD",
    "ColumnTable",
    "Fields",
    "ReadLimits",
    "ReaderRegistry",
    "SourceTables",
    "Table",
    "as_arrow",
    "read_cin_census",
    "read_education",
    "read_neet",
    "read_ssda903",
]
