"""Reference data an LA supplies beside its SSDA903 return: a postcode directory and Ofsted's
provider register (CSV files laid out as the `postcodes` and `providers` tables of the
SSDA903 layout), and the LA's own ONS code. The DfE derives the placement LA, location and
distance from postcodes and checks URNs against Ofsted's register; the rules that need these
(`needs: [postcodes]`, `needs: [providers]`) run only when the data is given.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from trialvault.errors import InputFileError
from trialvault.formats.base import COLLECTION_YEAR, SOURCE_FILE, SOURCE_LINE
from trialvault.formats.csvfile import read_csv_table
from trialvault.formats.limits import DEFAULT_LIMITS, ReadLimits
from trialvault.spec import load_layout

FORMAT = "ssda903"


def _as_return_table(table: pa.Table) -> pa.Table:
    """A reference table in the reader's shape (no collection year: it serves every year)."""
    index = table.schema.get_field_index(SOURCE_FILE)
    return table.add_column(index, COLLECTION_YEAR, pa.nulls(table.num_rows, pa.int32()))


def read_reference_table(name: str, path: Path, limits: ReadLimits = DEFAULT_LIMITS) -> pa.Table:
    """Read the reference CSV `path` as the layout's table `name` (postcodes or providers)."""
    spec = load_layout(FORMAT).table(name)
    if not spec.reference:
        raise KeyError(f"{name} is not a reference table")
    if not path.is_file():
        raise InputFileError(f"{name} file is not a file", file=str(path))
    table = read_csv_table(path, spec.column_names, [c.name for c in spec.columns if c.required],
                           limits=limits, table=name)
    return _as_return_table(table)


def local_authority_table(ons_code: str) -> pa.Table:
    """The one-row `local_authority` table: whose return this is."""
    return pa.table({"ONS_CODE": [ons_code], COLLECTION_YEAR: pa.nulls(1, pa.int32()),
                     SOURCE_FILE: ["study"], SOURCE_LINE: pa.array([0], pa.int32())})
