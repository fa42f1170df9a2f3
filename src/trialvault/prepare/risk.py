"""Re-identification risk of the minimised data: k-anonymity and uniqueness.

Records sharing the same values of the quasi-identifiers form an equivalence class; a record's
frequency (sdcMicro's `fk`) is the size of its class, k-anonymity is the smallest class, and a
record alone in its class is sample-unique. A blank value is a value of its own (as in sdcMicro).
The summary goes into the package manifest: counts only, never a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

# The characteristics someone could know about a child and match on.
QUASI_IDENTIFIERS = ("sex", "ethnicity", "age_months_at_reference", "disability", "la_code")
# Class sizes reported: how many records sit in classes smaller than each.
DEFAULT_SIZES = (2, 3, 5, 10)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def record_frequencies(table: pa.Table, quasi_identifiers: Sequence[str]) -> list[int]:
    """For each record, in order, the number of records with the same quasi-identifier values."""
    if not quasi_identifiers:
        raise ValueError("give at least one quasi-identifier")
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET temp_directory = ''")
        con.register("records", table.append_column(
            "_pos", pa.array(range(table.num_rows), pa.int64())))
        keys = ", ".join(_q(c) for c in quasi_identifiers)
        # PARTITION BY groups NULLs together: a blank is a value of its own.
        rows = con.execute(f"SELECT count(*) OVER (PARTITION BY {keys}) FROM records "
                           "ORDER BY _pos").fetchall()
    finally:
        con.close()
    return [int(r[0]) for r in rows]


def k_anonymity(table: pa.Table, quasi_identifiers: Sequence[str]) -> int | None:
    """The smallest equivalence class (None for no records)."""
    freqs = record_frequencies(table, quasi_identifiers)
    return min(freqs) if freqs else None


def _summary(freqs: list[int], sizes: Sequence[int]) -> dict[str, Any]:
    n = len(freqs)
    classes = sum(1.0 / f for f in freqs)  # each class of size f has f records
    unique = sum(1 for f in freqs if f == 1)
    return {
        "records": n,
        "equivalence_classes": round(classes),
        "k_anonymity": min(freqs) if freqs else None,
        "unique_records": unique,
        "uniqueness": round(unique / n, 4) if n else None,
        "records_in_classes_smaller_than": {str(k): sum(1 for f in freqs if f < k)
                                            for k in sorted(set(sizes))},
    }


def risk_summary(children: pa.Table, *, sizes: Sequence[int] = DEFAULT_SIZES,
                 quasi_identifiers: Sequence[str] = QUASI_IDENTIFIERS) -> dict[str, Any]:
    """Risk of the `children` table on the quasi-identifiers as packaged (age in months), and,
    for comparison, with age coarsened to whole years."""
    freqs = record_frequencies(children, quasi_identifiers)
    out = {"quasi_identifiers": list(quasi_identifiers), **_summary(freqs, sizes)}
    if "age_months_at_reference" in quasi_identifiers:
        months = children["age_months_at_reference"].to_pylist()
        years = pa.array([None if m is None else m // 12 for m in months], pa.int32())
        coarse = children.append_column("age_years_at_reference", years)
        qis = [("age_years_at_reference" if q == "age_months_at_reference" else q)
               for q in quasi_identifiers]
        out["with_age_in_years"] = {"quasi_identifiers": qis,
                                    **_summary(record_frequencies(coarse, qis), sizes)}
    return out
