"""The two UPN-keyed CSV exports: education (attendance per term) and NEET (monthly activity).

Each is one CSV file laid out as in the spec (`education.yaml`, `neet.yaml`); neither carries a
social-care child code, so `prepare` links rows to children through the UPN.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from trialvault.errors import InputFileError
from trialvault.formats.base import READERS, SOURCE_FILE, SOURCE_LINE, SourceTables
from trialvault.formats.csvfile import read_csv_table
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits
from trialvault.spec import load_layout


def table_schema(fmt: str, name: str) -> pa.Schema:
    """Arrow schema of table `name` of `fmt` (education or neet) as the reader returns it."""
    spec = load_layout(fmt).table(name)
    return pa.schema([*(pa.field(c, pa.string()) for c in spec.column_names),
                      pa.field(SOURCE_FILE, pa.string()), pa.field(SOURCE_LINE, pa.int32())])


def _read_single_table(fmt: str, paths: Sequence[Path], limits: ReadLimits) -> SourceTables:
    layout = load_layout(fmt)
    (table,) = layout.tables.values()
    if len(paths) != 1:
        raise InputFileError(f"give exactly one {fmt} CSV file (got {len(paths)})")
    path = paths[0]
    if not path.is_file():
        raise InputFileError(f"{fmt} input is not a file", file=str(path))
    data = read_csv_table(path, table.column_names,
                          [c.name for c in table.columns if c.required], limits=limits,
                          table=table.name)
    return SourceTables(format=fmt, tables={table.name: data}, files=(path.name,))


@READERS.register("education")
def read_education(paths: Sequence[Path], *, limits: ReadLimits = DEFAULT_LIMITS
                   ) -> SourceTables:
    """Read the education (attendance, FSM, pupil premium) CSV."""
    return _read_single_table("education", paths, limits)


@READERS.register("neet")
def read_neet(paths: Sequence[Path], *, limits: ReadLimits = DEFAULT_LIMITS) -> SourceTables:
    """Read the NEET (NCCIS monthly activity) CSV."""
    return _read_single_table("neet", paths, limits)
