"""The release workflow on a real encrypted vault: request → reviews by two other people →
write, every step audited and signed; the written folder is scanned for small counts, child
codes and anything of the reviewers' checking report, attacked with an LP intruder, and its
report round-tripped through the vault (every figure's step dates from the study)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
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
    verify_release,
    write_release,
)
from trialvault.disclose.aggregate import can_be_undefined, has_expected, possible_exposures
from trialvault.disclose.frequency import CONDITIONS
from trialvault.errors import AccessDenied, PolicyRefusal
from trialvault.report.render import SYNTHETIC_BANNER
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
intruder = _load("release_intruder", UNIT / "intruder.py")


class _Page(HTMLParser):
    """Text of every <td class="count">, the src of every <img>, each figure's step marks."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: list[str] = []
        self.images: list[str] = []
        self.steps: list[dict[str, str]] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "td" and "count" in (a.get("class") or "").split():
            self._in = True
            self.counts.append("")
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "figure":
            self.steps.append(json.loads(a.get("data-steps") or "{}"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in = False

    def handle_data(self, data: str) -> None:
        if self._in:
            self.counts[-1] += data.strip()


@pytest.fixture(scope="module")
def approved(evaluated_vault: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[str, Path]:
    rid = request_release(evaluated_vault, "ana", PASSWORDS["ana"], note="test release")
    first = review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "approve",
                           "checked every table and figure")
    assert first.status == "pending"  # the study asks for two reviewers
    with pytest.raises(PolicyRefusal, match="1 valid approval"):
        write_release(evaluated_vault, "ana", PASSWORDS["ana"], rid,
                      tmp_path_factory.mktemp("early") / "out")
    second = review_release(evaluated_vault, "oc2", PASSWORDS["oc2"], rid, "approve",
                            "second pair of eyes")
    assert second.status == "approved" and second.approvals == ["oc", "oc2"]
    out = tmp_path_factory.mktemp("written") / "release"
    assert write_release(evaluated_vault, "ana", PASSWORDS["ana"], rid, out) == \
        out / "report.html"
    return rid, out


def test_requester_may_not_approve_their_own_release(evaluated_vault: Path) -> None:
    rid = request_release(evaluated_vault, "ana2", PASSWORDS["ana2"])
    with pytest.raises(PolicyRefusal, match="two-person rule"):
        review_release(evaluated_vault, "ana2", PASSWORDS["ana2"], rid, "approve", "mine, fine")
    with pytest.raises(AccessDenied):
        review_release(evaluated_vault, "oc", PASSWORDS["ana2"], rid, "approve", "forged")
    with pytest.raises(AccessDenied, match="output-checker"):
        review_release(evaluated_vault, "ana", PASSWORDS["ana"], rid, "approve", "looks fine")
    record, _ = show_release(evaluated_vault, "ana2", PASSWORDS["ana2"], rid)
    assert record.status == "pending" and record.reviews == []
    rejected = review_release(evaluated_vault, "oc", PASSWORDS["oc"], rid, "reject", "no")
    assert rejected.status == "rejected"
    with pytest.raises(PolicyRefusal, match="rejected"):
        review_release(evaluated_vault, "oc2", PASSWORDS["oc2"], rid, "approve", "late")


def test_manifest_lists_every_file_with_its_hash_and_signatures(
        approved: tuple[str, Path], evaluated_vault: Path) -> None:
    rid, out = approved
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["release_id"] == rid and manifest["approved_by"] == ["oc", "oc2"]
    assert all(a["signature"] and a["sign_pub"] for a in manifest["approvals"])
    assert manifest["data_origin"] == "unknown"  # toy rows, no package manifest
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == listed | {"manifest.json"}
    for f in manifest["files"]:
        assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    assert {"report.html", "privacy-notice.html", "disclosure-control.md",
            "tables/cohort.csv", "tables/estimates.csv"} <= listed
    assert verify_release(evaluated_vault, "oc", PASSWORDS["oc"], rid).ok


def test_the_checking_report_stays_in_the_vault(approved: tuple[str, Path],
                                                evaluated_vault: Path) -> None:
    rid, out = approved
    _, checked = show_release(evaluated_vault, "oc", PASSWORDS["oc"], rid)
    internal = checked.internal_json()
    hidden = [c for r in internal["reviews"].values() for c in r["cells"]
              if c["action"] == "suppressed"]
    assert hidden
    blob = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    for word in ("`threshold`", "`zero`", "`secondary`", "True value", "Protects",
                 "Suppressed | Withheld"):
        assert word not in blob, word
    assert "c" in (out / "disclosure-control.md").read_text()


def test_no_file_shows_a_small_count_or_a_child_code(approved: tuple[str, Path],
                                                     evaluated_vault: Path) -> None:
    rid, out = approved
    threshold = trimmed_study().disclosure.threshold
    scanned = 0
    for csv in sorted((out / "tables").glob("*.csv")):
        if csv.stem in ("estimates", "event_study", "variance_components",
                        "means_by_condition"):
            continue
        table = pd.read_csv(csv, index_col=0, dtype=str)
        for text in table.to_numpy().ravel():
            assert text in ("c", "z") or int(text) >= threshold, (csv.name, text)
            scanned += 1
    page = _Page()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.counts
    for text in page.counts:
        assert text in ("c", "z") or int(text) >= threshold, ("report.html", text)
    assert scanned > 100
    with open_vault(evaluated_vault, "dm", PASSWORDS["dm"], command="test-read", args={},
                    write=False) as s:
        kids = children_in_release(s.con, rid)
    assert len(kids) > 500
    blob = "\n".join(p.read_text(encoding="utf-8") for p in out.rglob("*") if p.is_file())
    words = set(re.findall(r"[\w-]+", blob))
    assert not [c for _, c in kids if c in words]


def attack_folder(out: Path, study) -> tuple[object, dict[str, pd.DataFrame]]:  # type: ignore[no-untyped-def]
    """The intruder's model of a written release folder (every published count)."""
    tables = {p.stem: pd.read_csv(p, index_col=0, dtype=str, keep_default_na=False)
              for p in (out / "tables").glob("*.csv")}
    cohort = tables["cohort"]
    periods = [c for c in cohort.columns if c != "Total"]
    from trialvault.disclose.aggregate import study_periods

    starts = {p.label: p for p in study_periods(study)}
    strata = [(la, p, e) for la in study.la_codes for p in periods
              for e in possible_exposures(study, la, starts[p])]
    specs = [intruder.OutcomeSpec(o.id, o.title, o.kind == "binary", has_expected(o.id),
                                  can_be_undefined(study, o.id))
             for o in study.analysis.outcomes]
    base = tables["baseline"]
    groups: dict[str, list[str]] = {}
    for label in base.index:
        title, _, cat = str(label).partition(": ")
        groups.setdefault(title, []).append(cat)
    flow = tables["flow"]
    labels = list(flow.index)
    steps = [(lb, "in_cohort" if lb.startswith("In the cohort") else "before_cohort")
             for lb in labels[1:-1] if lb != labels[labels.index("Cohort (eligible children)")]]
    it = intruder.attack(tables, strata=strata,
                         la_names={c: study.la(c).name for c in study.la_codes},
                         periods=periods, outcomes=specs, baseline=list(groups.items()),
                         flow=steps, flow_labels=(labels[0], "Cohort (eligible children)",
                                                  labels[-1]),
                         base=study.disclosure.rounding_base,
                         symbol=study.disclosure.suppression_symbol)
    assert tuple(tables["allocation"].columns[:2]) == CONDITIONS
    return it, tables


def test_no_suppressed_cell_narrows_below_the_promise(approved: tuple[str, Path],
                                                      evaluated_vault: Path) -> None:
    """The LP intruder over every number the folder publishes (tables, report, note)."""
    rid, out = approved
    study = trimmed_study()
    rules = study.disclosure
    it, tables = attack_folder(out, study)
    _, checked = show_release(evaluated_vault, "oc", PASSWORDS["oc"], rid)
    primary = {(name, c.row, c.column) for name, r in checked.reviews.items()
               for c in r.cells if c.rule in ("threshold", "zero")}
    checked_cells = 0
    for (name, r, c), expr in it.cells.items():
        if str(tables[name].loc[r, c]) != "c":
            continue
        lo, hi = it.range_of(expr)
        need = rules.threshold if (name, r, c) in primary else 1
        assert hi - lo >= need, f"{name} {r} {c}: intruder narrows it to [{lo}, {hi}]"
        checked_cells += 1
    assert checked_cells > 20


def test_report_round_trips_through_the_vault(approved: tuple[str, Path]) -> None:
    _, out = approved
    html = (out / "report.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(html)
    study = trimmed_study()
    expected = {study.la(s.la).name: s.step_date.isoformat() for s in study.design.rollout}
    marked = [m for m in page.steps if m]
    assert len(marked) >= 2 and all(m == expected for m in marked)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert SYNTHETIC_BANNER in html  # origin unknown: never presented as trial results
    assert 'href="privacy-notice.html"' in html and (out / "privacy-notice.html").exists()


def test_every_step_is_audited_without_child_codes(approved: tuple[str, Path],
                                                   evaluated_vault: Path) -> None:
    rid, _ = approved
    entries = audit_entries(evaluated_vault, "dm", PASSWORDS["dm"])
    mine = [e for e in entries if e.detail.get("release_id") == rid and e.phase == "end"]
    assert [e.command for e in mine] == ["release request", "release review",
                                         "release review", "release write"]
    assert all(e.result == "ok" for e in mine)
    assert mine[0].detail["content_sha256"] and mine[1].detail["review_sha256"]
    assert "child_id" not in json.dumps([e.detail for e in mine])
    listed = {r.release_id: r.status for r in release_list(evaluated_vault, "oc",
                                                             PASSWORDS["oc"])}
    assert listed[rid] == "approved"


def test_a_stale_run_is_refused(evaluated_vault: Path, approved: tuple[str, Path]) -> None:
    from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table

    with open_vault(evaluated_vault, "dm", PASSWORDS["dm"], command="test-flag", args={}) as s:
        ensure_flags_table(s.con)
        la, child = s.con.execute("SELECT la_code, child_id FROM harmonised.referrals ORDER BY "
                                  "referral_date DESC LIMIT 1").fetchone() or (0, "")
        s.con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                      "set_at, set_by) VALUES (999, ?, ?, 'restriction', 'active', now(), 'dpo')",
                      [la, child])
    with pytest.raises(PolicyRefusal, match="no longer matches"):
        request_release(evaluated_vault, "ana", PASSWORDS["ana"])
