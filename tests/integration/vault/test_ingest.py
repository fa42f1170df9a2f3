"""Ingest real sealed packages into a real vault: lineage, idempotence, supersede, refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import msgspec
import pyarrow as pa
import pytest

from trialvault.errors import AccessDenied, InputFileError, IntegrityError, PolicyRefusal
from trialvault.study import StudyFile, parse_study
from trialvault.vault import (
    FAST_TEST_KDF,
    add_tombstones,
    add_user,
    audit_entries,
    ingest_packages,
    open_vault,
    rebuild_harmonised,
    vault_status,
)

D1, D2 = dt.date(2024, 3, 31), dt.date(2025, 3, 31)


def _count(folder: Path, password: str, sql: str) -> int:
    with open_vault(folder, "dm", password, command="t", args={}, write=False) as s:
        return int(s.con.execute(sql).fetchone()[0])  # type: ignore[index]


def test_ingest_lineage_and_status(vault: tuple[Path, str], make_package: Callable[..., Path],
                                   password: str, nwd_study: StudyFile) -> None:
    folder, recipient = vault
    p354 = make_package(recipient, 354, D1, n_children=30, seed=1)
    p807 = make_package(recipient, 807, D1, n_children=20, seed=2)
    report = ingest_packages(folder, "dm", password, [p354, p807], study=nwd_study)
    assert report.ingest_batch == 1 and len(report.ingested) == 2
    assert report.harmonised_rows["children"] == 50
    assert report.harmonised_rows["referrals"] == 150
    with open_vault(folder, "dm", password, command="t", args={}, write=False) as s:
        row = s.con.execute("""SELECT count(*), count(DISTINCT package_id), min(ingest_batch),
                                      count(source_file), min(source_line)
                               FROM harmonised.cla_episodes""").fetchone()
        assert row == (150, 2, 1, 150, 2)
        cols = [r[0] for r in s.con.execute("DESCRIBE harmonised.children").fetchall()]
        assert cols == ["la_code", "child_id", "sex", "ethnicity", "disability", "uasc",
                        "age_months_at_reference", "reference_date", "source_file",
                        "source_line", "package_id", "ingest_batch"]
        assert s.con.execute("SELECT typeof(episode_start_date), typeof(uasc) FROM "
                             "harmonised.cla_episodes, harmonised.children LIMIT 1"
                             ).fetchone() == ("DATE", "BOOLEAN")
    status = vault_status(folder, "dm", password)
    assert [h.la_code for h in status.holdings] == [354, 807]
    la354 = status.holdings[0]
    assert la354.children == 30 and la354.harmonised_rows["neet"] == 90
    assert la354.current is not None and la354.current.extract_date == D1
    assert la354.current.validation_summary == {"by_rule": {"E101": {"error": 1}}}
    assert la354.current.rows["children"] == 30
    assert status.audit_entries >= 2 and len(status.audit_head) == 64
    assert status.bytes_on_disk["child.duckdb"] > 0
    entry = next(e for e in audit_entries(folder, "dm", password)
                 if e.command == "ingest" and e.phase == "end")
    assert entry.rows_touched["raw.children"] == 50 and entry.result == "ok"


def test_replays_and_older_extracts_are_refused_and_newer_supersedes(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile) -> None:
    folder, recipient = vault
    old = make_package(recipient, 354, D1, n_children=30, seed=1)
    first = ingest_packages(folder, "dm", password, [old], study=nwd_study)
    _refused(folder, password, [old], nwd_study, r"rule replay: package .* ingested before")
    new = make_package(recipient, 354, D2, n_children=40, seed=3)
    _refused(folder, password, [new, new], nwd_study, r"rule replay: package .* given twice")
    report = ingest_packages(folder, "dm", password, [new], study=nwd_study)
    assert report.superseded == {354: first.ingested[0].package_id}
    assert report.current == {354: report.ingested[0].package_id}
    assert report.harmonised_rows["children"] == 40
    assert _count(folder, password, "SELECT count(*) FROM raw.children") == 70
    # An older extract arriving late is refused: it can never replace the current one.
    older = make_package(recipient, 354, dt.date(2023, 3, 31), n_children=5, seed=4)
    _refused(folder, password, [older], nwd_study,
             r"rule extract-order: its extract date 2023-03-31 is older than LA 354's latest")


def test_a_new_extract_with_far_fewer_rows_needs_accept_drop(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile, tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    ingest_packages(folder, "dm", password, [make_package(recipient, 877, D1, n_children=40)],
                    study=nwd_study)
    tables = tables_factory(877, 40, seed=6)
    del tables["cla_episodes"]  # the attack: a package with an emptied table
    emptied = make_package(recipient, 877, D2, tables=tables, name="emptied.tvpkg")
    with pytest.raises(PolicyRefusal, match=r"emptied\.tvpkg: .*cla_episodes 120 → 0.*"
                       r"--accept-drop"):
        ingest_packages(folder, "dm", password, [emptied], study=nwd_study)
    assert _count(folder, password, "SELECT count(*) FROM harmonised.cla_episodes") == 120
    report = ingest_packages(folder, "dm", password, [emptied], study=nwd_study,
                             accept_drop=True)
    assert report.harmonised_rows["cla_episodes"] == 0


def test_tombstoned_children_are_not_loaded(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile, tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    tables = tables_factory(354, 10, seed=5)
    erased = tables["children"]["child_id"][0].as_py()
    pkg = make_package(recipient, 354, D1, tables=tables)
    ingest_packages(folder, "dm", password, [pkg], study=nwd_study)
    with open_vault(folder, "dm", password, command="rights erase", args={}) as s:
        assert add_tombstones(s.con, [(354, erased), (354, erased)]) == 1
        assert add_tombstones(s.con, [(354, erased)]) == 0
        stored = s.con.execute("SELECT child_hash FROM rights.tombstones").fetchall()
        assert erased not in str(stored)
    # Tombstones (register domain) and the current view (child domain) are separate files:
    # one transaction writes one of them.
    with open_vault(folder, "dm", password, command="rebuild", args={}) as s:
        counts = rebuild_harmonised(s.con)  # raw still holds the child; the view drops it
        assert counts["children"] == 9
    newer = make_package(recipient, 354, D2, tables=tables, name="again.tvpkg")
    report = ingest_packages(folder, "dm", password, [newer], study=nwd_study)
    outcome = report.ingested[0]
    assert outcome.tombstoned_children == 1 and outcome.tombstoned_rows > 1
    assert _count(folder, password, "SELECT count(*) FROM raw.children WHERE package_id = "
                  f"'{outcome.package_id}'") == 9
    assert report.harmonised_rows["children"] == 9


def _refused(folder: Path, password: str, paths: list[Path], study: StudyFile,
             pattern: str, error: type[Exception] = InputFileError) -> None:
    """The ingest is refused and nothing of it (not even a good package before) is stored."""
    sql = "SELECT (SELECT count(*) FROM meta.packages) + (SELECT count(*) FROM raw.children)"
    before = _count(folder, password, sql)
    with pytest.raises(error, match=pattern):
        ingest_packages(folder, "dm", password, paths, study=study)
    assert _count(folder, password, sql) == before


def test_any_bad_package_commits_nothing(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile, tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    good = make_package(recipient, 354, D1, n_children=10, seed=1)

    def variant(name: str, edit: Callable[[dict[str, pa.Table]], None], la: int = 807) -> Path:
        tables = tables_factory(la, 10, seed=2)
        edit(tables)
        return make_package(recipient, la, D1, tables=tables, name=f"{name}.tvpkg")

    def add_col(t: dict[str, pa.Table], table: str, col: str, values: pa.Array) -> None:
        t[table] = t[table].append_column(col, values)

    unknown = variant("unknown", lambda t: t.update(placements=t["children"]))
    _refused(folder, password, [good, unknown], nwd_study,
             r"unknown\.tvpkg, rule table: unknown table\(s\) \['placements'\]")
    upn = variant("upn", lambda t: add_col(t, "children", "upn", pa.array(["A"] * 10)))
    _refused(folder, password, [good, upn], nwd_study,
             r"upn\.tvpkg, rule column: table children: column\(s\) \['upn'\] are not in")
    nokey = variant("nokey", lambda t: t.update(neet=t["neet"].drop(["source_line"])))
    _refused(folder, password, [good, nokey], nwd_study, r"required column\(s\) \['source_line'\]")

    def bad_dates(t: dict[str, pa.Table]) -> None:
        idx = t["missing"].column_names.index("missing_start_date")
        values = ["2021-01-01"] * 30
        values[6] = "ZQXJ-31/02/2021"
        t["missing"] = t["missing"].set_column(idx, "missing_start_date", pa.array(values))

    dates = variant("dates", bad_dates)
    with pytest.raises(InputFileError) as info:
        ingest_packages(folder, "dm", password, [good, dates], study=nwd_study)
    assert str(info.value) == ("dates.tvpkg, rule type: table missing, column "
                               "missing_start_date: 1 value(s) not of type DATE (first at "
                               "missing.csv line 8)")
    other_la = variant("otherla", lambda t: t.update(children=tables_factory(877, 10, seed=9)[
        "children"]))
    _refused(folder, password, [other_la], nwd_study,
             r"10 row\(s\) of another LA than the manifest's 807 \(first at children\.csv line 2\)")
    # An LA outside the study has no trusted key (la trust refuses it): the signature check
    # is what refuses its package now.
    not_study = make_package(recipient, 999, D1, n_children=2, name="la999.tvpkg")
    _refused(folder, password, [not_study], nwd_study, "not registered for LA 999",
             error=IntegrityError)
    wrong_study = make_package(recipient, 354, D1, n_children=2, study_id="other",
                               name="other.tvpkg")
    _refused(folder, password, [wrong_study], nwd_study, "package is for study 'other'")
    _refused(folder, password, [good, folder / "absent.tvpkg"], nwd_study, "cannot read package")
    # Nothing of the refused runs is in the vault; the good package still loads.
    assert len(ingest_packages(folder, "dm", password, [good], study=nwd_study).ingested) == 1


def test_study_allow_list_enforced(vault: tuple[Path, str], make_package: Callable[..., Path],
                                   password: str, nwd_study: StudyFile) -> None:
    """A study that does not declare `ethnicity` refuses packages that carry it."""
    folder, recipient = vault
    doc = msgspec.to_builtins(nwd_study)
    for category in doc["categories"]:
        category["fields"] = [f for f in category["fields"] if f != "ethnicity"]
    doc["special_category"]["fields"] = ["disability"]
    narrow = parse_study(doc)
    pkg = make_package(recipient, 354, D1, n_children=3)
    _refused(folder, password, [pkg], narrow,
             r"rule minimisation: table children: column\(s\) \['ethnicity'\] are not allowed")


def test_missing_optional_columns_left_empty(
        vault: tuple[Path, str], make_package: Callable[..., Path], password: str,
        nwd_study: StudyFile, tables_factory: Callable[..., dict[str, pa.Table]]) -> None:
    folder, recipient = vault
    tables = tables_factory(354, 5, seed=1)
    tables["children"] = tables["children"].drop(["uasc"])
    del tables["neet"]
    pkg = make_package(recipient, 354, D1, tables=tables)
    report = ingest_packages(folder, "dm", password, [pkg], study=nwd_study)
    assert report.ingested[0].missing_columns == {"children": ["uasc"]}
    assert report.harmonised_rows["neet"] == 0
    assert _count(folder, password, "SELECT count(uasc) FROM harmonised.children") == 0


def test_only_data_managers_ingest(vault: tuple[Path, str], make_package: Callable[..., Path],
                                   password: str, nwd_study: StudyFile) -> None:
    folder, recipient = vault
    add_user(folder, "dm", password, "ana", "ana reads the trial data", "analyst", kdf_params=FAST_TEST_KDF)
    pkg = make_package(recipient, 354, D1, n_children=3)
    with pytest.raises(AccessDenied, match="`ingest` needs role data-manager"):
        ingest_packages(folder, "ana", "ana reads the trial data", [pkg], study=nwd_study)
