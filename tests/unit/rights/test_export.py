"""The access workbook and letters: built in memory, readable, no child code in letters."""

from __future__ import annotations

import datetime as dt
import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from trialvault.rights.actions import AccessBundle
from trialvault.rights.export import access_workbook


def _bundle() -> AccessBundle:
    cols = ["la_code", "child_id", "referral_date", "referral_nfa", "source_file", "source_line"]
    rows = [(354, "C-SECRET", dt.date(2023, 5, 1), False, "cin.xml", 12),
            (354, "C-SECRET", dt.date(2024, 1, 9), True, "cin.xml", 40)]
    return AccessBundle(tables={"raw.referrals": (cols, rows)},
                        packages=[{"package_id": "p1", "la_code": 354,
                                   "extract_date": dt.date(2025, 4, 1),
                                   "file_name": "la354.tvpkg", "ingested_at": "2025-04-02"}],
                        outputs=[{"output": "results.runs", "kind": "run", "id": "r1",
                                  "basis": "data held at run time"}])


def test_workbook_never_touches_a_temporary_file(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a temporary file was created")

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    for name in ("mkstemp", "TemporaryFile", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    data = access_workbook(_bundle())
    assert list(spool.iterdir()) == []
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["raw.referrals", "packages", "outputs"]
    rows = list(wb["raw.referrals"].iter_rows(values_only=True))
    assert rows[0] == ("la_code", "child_id", "referral_date", "referral_nfa", "source_file",
                       "source_line")
    assert rows[1][:2] == (354, "C-SECRET") and rows[1][2].date() == dt.date(2023, 5, 1)
    assert rows[2][3] is True and rows[2][5] == 40
    assert list(wb["outputs"].iter_rows(values_only=True))[1] == ("results.runs", "run", "r1",
                                                                  "data held at run time")
