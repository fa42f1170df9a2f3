"""The five LAs' synthetic returns (with planted faults): every fault found, and packages that
hold no UPN, no postcode, no date of birth and no name, checked by decrypting and scanning
every value."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from trialvault.formats import read_cin_census, read_ssda903
from trialvault.prepare import prepare_la
from trialvault.prepare.scoring import score_faults
from trialvault.seal import generate_identity, read_package
from trialvault.study.model import StudyFile
from trialvault.synth import generate_files

UPN = re.compile(r"[A-Z]\d{11}[0-9A-Z]", re.IGNORECASE)
POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b", re.IGNORECASE)
IDENTIFIER_COLUMNS = {"upn", "former_upn", "dob", "person_birth_date", "postcode", "home_post",
                      "pl_post", "urn", "name", "first_name", "surname", "mc_dob", "sw_id"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile
             ) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("synthetic")
    data = root / "data"
    generate_files(nwd_study, data, seed=11, scale=0.03, error_rate=0.02)
    identity, recipient = generate_identity()
    results = {}
    for la in nwd_study.la_codes:
        folder = data / str(la)
        results[la] = prepare_la(
            nwd_study, la, ssda903=folder / "ssda903",
            cin=sorted((folder / "cin_census").glob("*.xml")),
            education=folder / "education.csv", neet=folder / "neet.csv",
            recipient=recipient, out=root / f"{la}.tvpkg", report_dir=root / f"report_{la}",
            extract_date=dt.date(2026, 6, 1))
    return {"data": data, "identity": identity, "results": results}


def test_every_planted_fault_is_found(prepared: dict[str, Any]) -> None:
    truth = json.loads((prepared["data"] / "truth.json").read_text())
    assert truth["faults"], "the generator planted no faults"
    for la, result in prepared["results"].items():
        faults = [f for f in truth["faults"] if f["file"].split("/")[0] == str(la)]
        rows = list(csv.DictReader(result.report_files[0].read_text(encoding="utf-8-sig")
                                   .splitlines()))
        score = score_faults(faults, rows)
        assert score.found == score.planted, (la, score.as_dict())
        assert score.found_with_rule >= 0.99 * score.planted, (la, score.as_dict())


def _secrets(folder: Path) -> tuple[set[str], dict[str, set[dt.date]]]:
    """Every UPN and every (child, date of birth) in one LA's input returns."""
    upns: set[str] = set()
    births: dict[str, set[dt.date]] = {}
    ssda = read_ssda903([folder / "ssda903"])
    cin = read_cin_census(sorted((folder / "cin_census").glob("*.xml")))
    rows = [(r["CHILD"], r["UPN"], r["DOB"], "%d/%m/%Y")
            for r in ssda.tables["header"].to_pylist()]
    rows += [(r["LAchildID"], r["UPN"], r["PersonBirthDate"], "%Y-%m-%d")
             for r in cin.tables["child_identifiers"].to_pylist()]
    for child, upn, born, fmt in rows:
        if upn and UPN.fullmatch(upn):
            upns.add(upn.upper())
        try:
            births.setdefault(child, set()).add(dt.datetime.strptime(born, fmt).date())
        except (TypeError, ValueError):
            continue
    for name in ("education.csv", "neet.csv"):
        with (folder / name).open(encoding="utf-8") as handle:
            upns |= {r["UPN"].upper() for r in csv.DictReader(handle) if r["UPN"]}
    return upns, births


def test_packages_hold_no_upn_postcode_birth_date_or_name(prepared: dict[str, Any]) -> None:
    for la, result in prepared["results"].items():
        package = read_package(result.package, prepared["identity"])
        upns, births = _secrets(prepared["data"] / str(la))
        assert upns and births
        event_dates = dates_equal_to_birth = 0
        for name, table in package.tables.items():
            assert not {c.lower() for c in table.column_names} & IDENTIFIER_COLUMNS, name
            for row in table.to_pylist():
                born = births.get(row["child_id"], set())
                for column, value in row.items():
                    if isinstance(value, str):
                        assert value.upper() not in upns, (name, column)
                        assert not UPN.fullmatch(value), (name, column)
                        assert not POSTCODE.search(value), (name, column)
                    elif isinstance(value, dt.date):
                        event_dates += 1
                        dates_equal_to_birth += value in born
        # An event can fall on a birthday by chance, but no column carries the birth date.
        assert dates_equal_to_birth <= 0.005 * event_dates, (la, dates_equal_to_birth)
        dropped = package.manifest["dropped_columns"]
        assert {"ssda903.header.UPN", "ssda903.header.DOB", "cin_census.child_identifiers.UPN",
                "cin_census.child_identifiers.PersonBirthDate", "education.attendance.UPN",
                "education.attendance.POSTCODE", "neet.activity.UPN"} <= set(dropped)


def test_results_report_linkage_and_risk(prepared: dict[str, Any]) -> None:
    for result in prepared["results"].values():
        assert result.linkage.rate is not None and result.linkage.rate > 0.9
        assert result.risk["records"] == result.tables["children"]
        assert result.tables["cla_episodes"] > 0 and result.tables["referrals"] > 0
        assert result.rows_rejected > 0  # the planted faults


def test_packages_say_their_data_are_synthetic_and_cannot_claim_real(
        prepared: dict[str, Any], nwd_study: StudyFile, tmp_path: Path) -> None:
    """Files from `trialvault synth` carry its marker: their packages record origin
    synthetic (the report keeps its SYNTHETIC banner), and declaring them real is refused
    before anything is written."""
    from trialvault.errors import PolicyRefusal

    for la, result in prepared["results"].items():
        package = read_package(result.package, prepared["identity"])
        assert package.manifest["origin"] == "synthetic", la
    la = nwd_study.la_codes[0]
    folder = prepared["data"] / str(la)
    out = tmp_path / "claimed-real.tvpkg"
    with pytest.raises(PolicyRefusal, match="--origin real refused"):
        prepare_la(nwd_study, la, ssda903=folder / "ssda903",
                   cin=sorted((folder / "cin_census").glob("*.xml")),
                   recipient=generate_identity()[1], out=out, report_dir=tmp_path / "report",
                   origin="real")
    assert not out.exists() and not (tmp_path / "report").exists()
