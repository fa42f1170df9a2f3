"""Realistic faults planted in the rendered files, each recorded for scoring validation.

Every fault names the file (relative to the output folder), the 1-based line, the child, the kind,
the table/column, and the DfE rule code it should trigger where a public validator has one
(csc-validator-be-903 `lac2022_23` rules, csc-validator-be-cin `cin2022_23` rules). Faults never
add or remove lines before a clean row (duplicates are appended at the end of a file, and
header rows are only dropped from a file's last rows), so clean rows keep their lines.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pandas as pd

# (kind, column, DfE rule) per (format, table). Values are made by `_faulty`.
CSV_FAULTS: dict[tuple[str, str], tuple[tuple[str, str | None, str | None], ...]] = {
    ("ssda903", "header"): (
        ("invalid_code", "ETHNIC", "103"), ("invalid_code", "SEX", "101"),
        ("missing_mandatory", "ETHNIC", "103"), ("malformed_date", "DOB", "102")),
    ("ssda903", "episodes"): (
        ("invalid_code", "LS", "144"), ("invalid_code", "PLACE", "146"),
        ("invalid_code", "RNE", "143"), ("missing_mandatory", "CIN", "145"),
        ("missing_mandatory", "LS", "144"), ("end_before_start", "DEC", "356"),
        ("malformed_date", "DECOM", "141"), ("duplicate_episode", None, "501")),
    ("ssda903", "missing"): (
        ("invalid_code", "MISSING", "1006"), ("end_before_start", "MIS_END", "567"),
        ("malformed_date", "MIS_START", "1004")),
    ("education", "education"): (
        ("missing_mandatory", "SESSIONS_POSSIBLE", None), ("invalid_code", "TERM", None)),
    ("neet", "neet"): (
        ("invalid_code", "ACTIVITY_CODE", None), ("malformed_date", "ACTIVITY_MONTH", None)),
}
SPEC_TABLE = {"education": "attendance", "neet": "activity"}  # the layouts' table names
INVALID = {"ETHNIC": "XXXX", "SEX": "7", "LS": "Z9", "PLACE": "X9", "RNE": "Q", "MISSING": "X",
           "TERM": "WIN", "ACTIVITY_CODE": "999"}
START_OF = {"DEC": "DECOM", "MIS_END": "MIS_START"}


@dataclass
class FaultLog:
    """Every planted fault, in the order planted: kept in `faults`, or streamed as JSON lines
    to `sink` when one is given (so memory stays flat however many faults a big run plants)."""

    faults: list[dict[str, Any]] = field(default_factory=list)
    sink: IO[str] | None = None
    count: int = 0

    def add(self, *, file: str, line: int, child: str, kind: str, table: str,
            column: str | None, rule: str | None, fmt: str, detail: str = "") -> None:
        fault = {"file": file, "line": int(line), "child": child, "kind": kind, "format": fmt,
                 "table": table, "column": column, "rule": rule, "detail": detail}
        self.count += 1
        if self.sink is not None:
            self.sink.write(json.dumps(fault) + "\n")
        else:
            self.faults.append(fault)

    def cin(self, file: str, line: int, child: str, kind: str, table: str, column: str,
            rule: str | None, value: str) -> str:
        self.add(file=file, line=line, child=child, kind=kind, table=table, column=column,
                 rule=rule, fmt="cin_census")
        return value


def _shift_date(value: str, days: int, iso: bool) -> str:
    fmt = "%Y-%m-%d" if iso else "%d/%m/%Y"
    return (dt.datetime.strptime(value, fmt) - dt.timedelta(days=days)).strftime(fmt)


def _malformed(value: str, iso: bool) -> str:
    year = value[:4] if iso else value[-4:]
    return f"{year}-13-01" if iso else f"31/02/{year}"


def plant_csv(df: pd.DataFrame, fmt: str, table: str, rng: np.random.Generator, rate: float,
              first_line: int, file: str, child_col: str, log: FaultLog
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Plant faults in a block of rows about to be written at `first_line`.

    Returns the rows to write and the duplicate rows to append at the end of the file.
    """
    specs = CSV_FAULTS.get((fmt, table))
    if not rate or not specs or df.empty:
        return df, df.iloc[0:0]
    hit = np.flatnonzero(rng.random(len(df)) < rate)
    if not len(hit):
        return df, df.iloc[0:0]
    df = df.copy()
    iso = fmt in ("education", "neet")
    dups: list[int] = []
    for pos in hit:
        row = df.iloc[pos]
        usable = [s for s in specs if _applies(s, row)]
        if not usable:
            continue
        kind, column, rule = usable[int(rng.integers(0, len(usable)))]
        child = str(row[child_col])
        if kind == "duplicate_episode":
            dups.append(int(pos))
            continue
        assert column is not None  # every non-duplicate fault names its column
        if kind == "invalid_code":
            value = INVALID[column]
        elif kind == "missing_mandatory":
            value = ""
        elif kind == "end_before_start":
            value = _shift_date(str(row[START_OF[column]]), int(rng.integers(1, 30)), iso)
        else:
            value = _malformed(str(row[column]), iso)
        if df[column].dtype != object:
            df[column] = df[column].astype(object)
        df.iat[pos, df.columns.get_loc(column)] = value
        log.add(file=file, line=first_line + int(pos), child=child, kind=kind,
                table=SPEC_TABLE.get(table, table), column=column, rule=rule, fmt=fmt)
    return df, df.iloc[dups].copy()


def _applies(spec: tuple[str, str | None, str | None], row: pd.Series) -> bool:
    kind, column, _ = spec
    if kind == "duplicate_episode":
        # A copy of a closed episode starts before that episode ends (rule 501); a copy of
        # the child's open episode would not be reported by that rule.
        return str(row.get("DEC", "")) != ""
    if column is None:
        return True
    value = str(row[column])
    if kind == "end_before_start":
        return value != "" and str(row[START_OF[column]]) != ""
    if kind in ("malformed_date", "missing_mandatory", "invalid_code"):
        return value != ""
    return True


CIN_FAULTS = (
    ("invalid_code", "ReferralSource", "8866"), ("invalid_code", "PrimaryNeedCode", "8650"),
    ("missing_mandatory", "ReferralSource", "8866"), ("end_before_start", "CINclosureDate", "8630"),
    ("malformed_date", "CINreferralDate", "8600"),
)


def plant_cin(block: list[str], rng: np.random.Generator, file: str, first_line: int,
              child: str, log: FaultLog) -> None:
    """Plant one fault in a CINdetails block (lines of text, edited in place)."""
    def find(tag: str) -> int:
        return next((i for i, line in enumerate(block) if f"<{tag}>" in line), -1)

    usable = [f for f in CIN_FAULTS if find(f[1]) >= 0]
    kind, tag, rule = usable[int(rng.integers(0, len(usable)))]
    i = find(tag)
    indent = block[i][: len(block[i]) - len(block[i].lstrip())]
    old = block[i].strip()[len(tag) + 2: -(len(tag) + 3)]
    if kind == "invalid_code":
        new = {"ReferralSource": "99", "PrimaryNeedCode": "N12"}[tag]
    elif kind == "missing_mandatory":
        new = ""
    elif kind == "end_before_start":
        start = block[find("CINreferralDate")].strip()[17:27]
        new = _shift_date(start, int(rng.integers(1, 30)), True)
    else:
        new = old[:5] + "02-30"
    block[i] = f"{indent}<{tag}>{new}</{tag}>" if new else f"{indent}<{tag}/>"
    log.add(file=file, line=first_line + i, child=child, kind=kind, table="cin_details",
            column=tag, rule=rule, fmt="cin_census")
