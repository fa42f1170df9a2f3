"""An LA file whose values are written to break out of the SQL that loads them.

The LA's CIN census check loads the XML readers' values into DuckDB as JSON text inside one
quoted SQL literal (`trialvault.sql.insert_columns`). A hostile or broken file tries to end the
literal or the JSON and run its own statement (write a file, drop a table); it must fail: the
command runs as for any other file and every value reaches the LA's report exactly as written.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<Message><Header><CollectionDetails><Collection>CIN</Collection><Year>2023</Year>
<ReferenceDate>2023-03-31</ReferenceDate></CollectionDetails><Source><SourceLevel>L</SourceLevel>
<LEA>354</LEA><SoftwareCode>x</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>
<DateTime>2023-05-01T00:00:00</DateTime></Source></Header><Children>"""
CHILD = """<Child><ChildIdentifiers><LAchildID>{child}</LAchildID><UPN>A354123456789</UPN>
<PersonBirthDate>2010-01-01</PersonBirthDate><GenderCurrent>1</GenderCurrent></ChildIdentifiers>
<ChildCharacteristics><Ethnicity>{ethnicity}</Ethnicity></ChildCharacteristics><CINdetails>
<CINreferralDate>2022-05-01</CINreferralDate><ReferralSource>1A</ReferralSource>
<PrimaryNeedCode>N1</PrimaryNeedCode><ReferralNFA>false</ReferralNFA></CINdetails></Child>"""


def _payloads(pwned: Path) -> list[str]:
    target = str(pwned).replace("'", "''")
    return [
        # end the SQL literal, then the statement
        f"x'); COPY (SELECT 1) TO '{target}'; --",
        # end the JSON string and document inside the literal
        f'x"]}}\', \'{{}}\'); COPY (SELECT 1) TO \'{target}\'; --',
        # a backslash before the quote, as other SQL dialects escape
        f"\\'); COPY (SELECT 1) TO '{target}'; --",
        "'; DROP TABLE validation.findings; --",
        "\u2019) OR 1=1 --\u00a0\u202e",
    ]


def test_values_written_to_break_out_stay_values(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned.csv"
    payloads = _payloads(pwned)
    # Each payload is a child code, and an ethnicity (a coded field the rules test and report).
    children = "".join(CHILD.format(child=escape(p), ethnicity=escape(p)) for p in payloads)
    cin = tmp_path / "cin.xml"
    cin.write_text(HEADER + children + "</Children></Message>", encoding="utf-8")
    report = tmp_path / "report"
    done = subprocess.run(
        [sys.executable, "-c", "from trialvault.cli import app; app(prog_name='trialvault')",
         "prepare", "--la", "354", "--validate-only", "--cin", str(cin), "--report-dir",
         str(report)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not pwned.exists()
    with (report / "validation_issues.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # The invalid ethnicity is reported for every child, with its child code and value as
    # written (no payload starts a formula, so none is escaped).
    ethnic = [r for r in rows if "Ethnicity=" in (r["value"] or "")]
    assert {r["child"] for r in ethnic} == set(payloads)
    assert {r["value"].removeprefix("Ethnicity=") for r in ethnic} == set(payloads)
    # No payload reached a log line or the summary printed to the analyst.
    for payload in payloads:
        assert payload not in done.stdout and payload not in done.stderr


@pytest.mark.parametrize("value", ["\x00", "a\x00b"])
def test_a_nul_cannot_reach_sql(value: str) -> None:
    from trialvault.sql import quote_literal

    with pytest.raises(ValueError, match="NUL"):
        quote_literal(value)
