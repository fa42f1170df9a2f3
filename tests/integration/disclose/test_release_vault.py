"""The release workflow on a real encrypted vault: request → review by a different person →
write, every step audited; the written folder is scanned for small counts, recoverable
suppressed cells and child codes."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from trialvault.disclose import (
    children_in_release,
    release_list,
    request_release,
    review_release,
    show_release,
    write_release,
)
from trialvault.errors import AccessDenied, PolicyRefusal
from trialvault.vault import audit_entries, open_vault

UNIT = Path(__file__).resolve().parents[2] / "unit" / "disclose"


def _load(name: str, path: Path) -> ModuleType:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_setup = _load("disclose_setup_vault", Path(__file__).with_name("setup_vault.py"))
PASSWORDS, trimmed_study = _setup.PASSWORDS, _setup.trimmed_study


def _intruder() -> ModuleType:
    return _load("release_intruder", UNIT / "intruder.py")


COUNT_PREFIXES = ("flow", "cohort", "events_", "denominators_")


class _CountCells(HTMLParser):
    """Text of every <td class="count"> and the src of every <img>."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[str] = []
        self.images: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "count" in (a.get("class") or "").split():
            self._in = True
            self.counts.append("")
        if tag == "img":
            self.images.append(a.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.counts[-1] += data.strip()


@pytest.fixture(scope="module")
def approved(evaluated_vault: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, Path]:
    study = trimmed_study()
    rid = request_release(evaluated_vault, "ana", PASSWORDS["ana"], study, note="test release")
    with pytest.raises(PolicyRefusal, match="only an approved release"):
        write_release(evaluated_vault, "ana", PASSWORDS["ana"], rid,
                      tmp_path_factory.mktemp("early") / "out")
    record = review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "approve",
                            "checked every table and figure")
    assert record.status == "approved" and record.approvals == ["oc"]
    out = tmp_path_factory.mktemp("written") / "release"
    report = write_release(evaluated_vault, "ana", PASSWORDS["ana"], rid, out)
    assert report == out / "report.html"
    return rid, out


def test_requester_may_not_approve_their_own_release(evaluated_vault: Path) -> None:
    rid = request_release(evaluated_vault, "ana2", PASSWORDS["ana2"], trimmed_study())
    with pytest.raises(PolicyRefusal, match="two-person rule"):
        review_release(evaluated_vault, "ana2", PASSWORDS["ana2"], rid, "approve", "mine, fine")
    # Another person's name without their password does not unlock a key slot.
    with pytest.raises(AccessDenied):
        review_release(evaluated_vault, "oc", PASSWORDS["ana2"], rid, "approve", "forged")
    # An analyst who is not the requester still lacks the reviewer's role.
    with pytest.raises(AccessDenied, match="output-checker"):
        review_release(evaluated_vault, "ana", PASSWORDS["ana"], rid, "approve", "looks fine")
    record, _ = show_release(evaluated_vault, "ana2", PASSWORDS["ana2"], rid)
    assert record.status == "pending" and record.reviews == []
    # Both refusals are audited (a wrong password never opens the vault: it is logged aside).
    log = audit_entries(evaluated_vault, "dm", PASSWORDS["dm"])
    begins = {e.seq for e in log if e.command == "release review" and e.phase == "begin"
              and e.args.get("release_id") == rid}
    entries = [e for e in log if e.phase == "end" and e.begin_seq in begins]
    assert [(e.user, e.result) for e in entries] == [("ana2", "error"), ("ana", "error")]
    assert '"user": "oc"' in (evaluated_vault / "access-failures.log").read_text()
    # Rejected is final: it can be neither reviewed again nor written.
    rejected = review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "reject", "no")
    assert rejected.status == "rejected"
    with pytest.raises(PolicyRefusal, match="rejected"):
        review_release(evaluated_vault, "oc2", PASSWORDS["oc2"], rid, "approve", "late")


def test_more_reviewers_when_the_study_asks(evaluated_vault: Path) -> None:
    rid = request_release(evaluated_vault, "ana", PASSWORDS["ana"],
                          trimmed_study(reviewers_required=3))
    first = review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "approve", "ok")
    assert first.status == "pending"
    with pytest.raises(PolicyRefusal, match="already reviewed"):
        review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "approve", "again")
    second = review_release(evaluated_vault, "oc2", PASSWORDS["oc2"], rid, "approve", "ok too")
    assert second.status == "approved" and second.approvals == ["oc", "oc2"]


def test_manifest_lists_every_file_with_its_hash(approved: tuple[str, Path]) -> None:
    rid, out = approved
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["release_id"] == rid and manifest["approved_by"] == ["oc"]
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json"}
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert {"report.html", "privacy-notice.html", "checking-report.json", "checking-report.md",
            "tables/cohort.csv", "tables/estimates.csv"} <= listed


def test_no_file_shows_a_small_count_or_a_child_code(approved: tuple[str, Path],
                                                     evaluated_vault: Path) -> None:
    rid, out = approved
    threshold = trimmed_study().disclosure.threshold
    scanned = 0
    for csv in sorted((out / "tables").glob("*.csv")):
        if not csv.stem.startswith(COUNT_PREFIXES):
            continue
        table = pd.read_csv(csv, index_col=0, dtype=str)
        for text in table.to_numpy().ravel():
            assert text == "c" or int(text) >= threshold, (csv.name, text)
            scanned += 1
    parser = _CountCells()
    parser.feed((out / "report.html").read_text(encoding="utf-8"))
    assert parser.counts
    for text in parser.counts:
        assert text == "c" or int(text) >= threshold, ("report.html", text)
    assert scanned > 100
    with open_vault(evaluated_vault, "dm", PASSWORDS["dm"], command="test-read", args={},
                    write=False) as s:
        kids = children_in_release(s.con, rid)
    assert len(kids) > 500
    blob = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    assert not [c for _, c in kids if c in blob]


def test_no_suppressed_cell_can_be_recovered_from_the_written_tables(
        approved: tuple[str, Path]) -> None:
    _, out = approved
    study = trimmed_study()
    rules = study.disclosure
    tables = {p.stem: pd.read_csv(p, index_col=0, dtype=str)
              for p in (out / "tables").glob("*.csv") if p.stem.startswith(COUNT_PREFIXES)}
    cohort = tables["cohort"]
    rows = [r for r in cohort.index if r != "Total"]
    cols = [c for c in cohort.columns if c != "Total"]
    outcomes = [n.removeprefix("events_") for n in tables if n.startswith("events_")]
    it, _ = _intruder().attack(tables, rows, cols, outcomes, base=rules.rounding_base,
                               symbol=rules.suppression_symbol)
    report = json.loads((out / "checking-report.json").read_text())
    primary = {(o["name"], c["row"], c["column"]) for o in report["outputs"]
               for c in o["changes"] if c["rule"] in ("threshold", "zero")}
    checked = 0
    for (name, r, c), expr in it.cells.items():
        if str(tables[name].loc[r, c]) != "c":
            continue
        lo, hi = it.range_of(expr)
        need = rules.threshold if (name, r, c) in primary else 1
        assert hi - lo >= need, f"{name} {r} {c}: intruder narrows it to [{lo}, {hi}]"
        checked += 1
    assert checked > 0


def test_report_embeds_figures_and_links_the_notice(approved: tuple[str, Path]) -> None:
    _, out = approved
    html = (out / "report.html").read_text(encoding="utf-8")
    parser = _CountCells()
    parser.feed(html)
    assert len(parser.images) >= 4
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert 'href="privacy-notice.html"' in html and (out / "privacy-notice.html").exists()
    assert "illustrative" in html.lower()
    assert "http" not in "".join(parser.images)


def test_every_step_is_audited_without_child_codes(approved: tuple[str, Path],
                                                   evaluated_vault: Path) -> None:
    rid, _ = approved
    entries = audit_entries(evaluated_vault, "dm", PASSWORDS["dm"])
    mine = [e for e in entries if e.detail.get("release_id") == rid]
    assert [e.command for e in mine] == ["release request", "release review", "release write"]
    assert all(e.result == "ok" for e in mine)
    assert mine[0].user == "ana" and mine[1].user == "oc"
    assert "child_id" not in json.dumps([e.detail for e in mine])
    listed = {r.release_id: r.status for r in release_list(evaluated_vault, "oc",
                                                             PASSWORDS["oc"])}
    assert listed[rid] == "approved"


def test_a_stale_run_is_refused(evaluated_vault: Path) -> None:
    # Restrict one cohort child after the evaluation: the run no longer matches the data.
    from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table

    with open_vault(evaluated_vault, "dm", PASSWORDS["dm"], command="test-flag", args={}) as s:
        ensure_flags_table(s.con)
        la, child = s.con.execute("SELECT la_code, child_id FROM harmonised.referrals ORDER BY "
                                  "referral_date DESC LIMIT 1").fetchone() or (0, "")
        s.con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                      "set_at, set_by) VALUES (999, ?, ?, 'restriction', 'active', now(), 'dpo')",
                      [la, child])
    with pytest.raises(PolicyRefusal, match="no longer matches"):
        request_release(evaluated_vault, "ana", PASSWORDS["ana"], trimmed_study())
