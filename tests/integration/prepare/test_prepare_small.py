"""prepare_la on a small hand-made LA: validation, linkage, minimisation and the sealed package.

Every expected value below was worked out by hand from the input rows.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pytest

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.prepare import prepare_la
from trialvault.seal import generate_identity, read_package
from trialvault.study.model import StudyFile

H = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
E = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
     "PL_POST,URN\n")
U = "CHILD,SEX,DOB,DUC\n"
M = "CHILD,DOB,MISSING,MIS_START,MIS_END\n"


def cin_xml(year: int, children: str) -> str:
    return f"""<Message><Header><CollectionDetails><Collection>CIN</Collection><Year>{year}</Year>
<ReferenceDate>{year}-03-31</ReferenceDate></CollectionDetails><Source><SourceLevel>L</SourceLevel>
<LEA>354</LEA><SoftwareCode>x</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>
<DateTime>{year}-05-01T00:00:00</DateTime></Source></Header><Children>
{children}
</Children></Message>"""


def child(cid: str, upn: str, born: str, sex: str, eth: str, details: str,
          disability: str = "NONE") -> str:
    return f"""<Child><ChildIdentifiers><LAchildID>{cid}</LAchildID><UPN>{upn}</UPN>
<PersonBirthDate>{born}</PersonBirthDate><GenderCurrent>{sex}</GenderCurrent></ChildIdentifiers>
<ChildCharacteristics><Ethnicity>{eth}</Ethnicity><Disabilities><Disability>{disability}</Disability>
</Disabilities></ChildCharacteristics>{details}</Child>"""


REFERRAL = """<CINdetails><CINreferralDate>{ref}</CINreferralDate><ReferralSource>1A</ReferralSource>
<PrimaryNeedCode>N1</PrimaryNeedCode><ReferralNFA>false</ReferralNFA>{inner}</CINdetails>"""
ASSESSMENT = """<Assessments><AssessmentActualStartDate>{start}</AssessmentActualStartDate>
<AssessmentAuthorisationDate>{end}</AssessmentAuthorisationDate><FactorsIdentifiedAtAssessment>
<AssessmentFactors>4B</AssessmentFactors><AssessmentFactors>16A</AssessmentFactors>
</FactorsIdentifiedAtAssessment></Assessments>"""


@pytest.fixture()
def la(tmp_path: Path) -> dict[str, Path]:
    ssda = tmp_path / "ssda903"
    for year, header, episodes in (
        (2022, H + "C1,1,15/03/2008,WBRI,A354123456789,,\n",
         E + "C1,01/06/2021,S,C2,N1,U1,PR1,,,,,,\n"),
        # 2023: the episode open over 31 March again (latest year wins), a new one, and a row
        # whose end is before its start (rule 356 rejects it).
        (2023, H + "C1,1,15/03/2008,WBRI,A354123456789,,\nC2,2,01/01/2010,BAFR,UN1,,\n",
         E + "C1,01/06/2021,S,C2,N1,U1,PR1,01/02/2023,E11,,SW1 1AA,SW1 1AB,1234567\n"
             "C2,10/10/2022,S,V2,N2,K2,PR4,09/10/2022,X1,,,,\n"),
    ):
        folder = ssda / str(year)
        folder.mkdir(parents=True)
        (folder / "header.csv").write_text(header)
        (folder / "episodes.csv").write_text(episodes)
    (ssda / "2023" / "uasc.csv").write_text(U + "C2,2,01/01/2010,\n")
    (ssda / "2023" / "missing.csv").write_text(M + "C1,15/03/2008,M,01/12/2022,03/12/2022\n")
    cin = tmp_path / "cin_2023.xml"
    cin.write_text(cin_xml(2023, "\n".join([
        child("C1", "A354123456789", "2008-03-15", "1", "WIRI",
              REFERRAL.format(ref="2022-05-01", inner=ASSESSMENT.format(
                  start="2022-05-03", end="2022-06-01")), disability="AUT"),
        child("C3", "A354999999999", "2012-07-20", "2", "WBRI",
              REFERRAL.format(ref="2022-09-01", inner="")),
        # Same UPN as C3 under another code: ambiguous, links nothing.
        child("C4", "A354999999999", "2013-01-01", "2", "WBRI",
              REFERRAL.format(ref="2022-09-02", inner="")),
    ])))
    education = tmp_path / "education.csv"
    education.write_text(
        "UPN,DOB,POSTCODE,ACADEMIC_YEAR,TERM,SESSIONS_POSSIBLE,SESSIONS_AUTHORISED,"
        "SESSIONS_UNAUTHORISED,FSM_ELIGIBLE,PUPIL_PREMIUM\n"
        "A354123456789,2008-03-15,SW1 1AA,2022/23,SPR,120,4,6,1,1\n"
        "A354999999999,2012-07-20,SW1 1AB,2022/23,AUT,130,0,0,0,0\n"
        "B354000000000,2011-01-01,SW1 1AC,2022/23,AUT,130,0,0,0,0\n"
        "A354123456789,2008-03-15,SW1 1AA,2022/23,WIN,120,4,6,1,1\n")
    neet = tmp_path / "neet.csv"
    neet.write_text("UPN,DOB,POSTCODE,ACTIVITY_MONTH,ACTIVITY_CODE\n"
                    "a354123456789,2008-03-15,SW1 1AA,2024-04-01,619\n"
                    "A354123456789,2008-03-15,SW1 1AA,2024-05-01,230\n")
    return {"ssda903": ssda, "cin": cin, "education": education, "neet": neet,
            "out": tmp_path / "354.tvpkg", "report": tmp_path / "report"}


def test_small_la_end_to_end(la: dict[str, Path], nwd_study: StudyFile) -> None:
    identity, recipient = generate_identity()
    result = prepare_la(nwd_study, 354, ssda903=la["ssda903"], cin=[la["cin"]],
                        education=la["education"], neet=la["neet"], recipient=recipient,
                        out=la["out"], report_dir=la["report"],
                        extract_date=dt.date(2023, 5, 2))
    package = read_package(la["out"], identity)
    tables = {name: t.to_pylist() for name, t in package.tables.items()}

    # Episodes: the open-over-31-March episode once, from 2023; the 356 row quarantined.
    assert [(e["child_id"], e["collection_year"], e["episode_end_date"])
            for e in tables["cla_episodes"]] == [("C1", 2023, dt.date(2023, 2, 1))]
    assert tables["cla_episodes"][0]["age_months"] == 158  # 15/03/2008 -> 01/06/2021
    assert result.rows_rejected >= 1

    children = {c["child_id"]: c for c in tables["children"]}
    assert set(children) == {"C1", "C2", "C3", "C4"}
    # C1: the CIN record of 2023 wins over the 903 header of 2023 (it carries disability).
    assert children["C1"]["sex"] == "M" and children["C1"]["ethnicity"] == "WIRI"
    assert children["C1"]["disability"] is True and children["C1"]["uasc"] is False
    assert children["C1"]["age_months_at_reference"] == 180  # 15/03/2008 -> 31/03/2023
    assert children["C2"]["sex"] == "F" and children["C2"]["uasc"] is True
    assert children["C2"]["disability"] is False

    assessment = tables["assessments"][0]
    assert assessment["assessment_factors"] == "4B,16A"
    assert assessment["referral_date"] == dt.date(2022, 5, 1)

    # Linkage: C1 by UPN (any case), C3/C4 share a UPN (ambiguous), B354... unknown; the WIN
    # term row is rejected by EDU01 before linkage.
    attendance = tables["attendance"]
    assert [(a["child_id"], a["term"], a["age_months"]) for a in attendance] == [
        ("C1", "spring", 177)]  # 15/03/2008 -> 01/01/2023
    assert [(n["child_id"], n["neet"]) for n in tables["neet"]] == [("C1", True), ("C1", False)]
    assert result.linkage.rows == 5 and result.linkage.rows_linked == 3
    assert result.linkage.ambiguous_upns == 1 and result.linkage_rate == 0.6

    # Nothing identifying left, and the manifest says what went.
    values = {str(v) for rows in tables.values() for row in rows for v in row.values()}
    assert not any(v.upper().startswith(("A354", "B354", "SW1")) for v in values)
    assert "2008-03-15" not in values and "1234567" not in values
    manifest = package.manifest
    assert "ssda903.header.UPN" in manifest["dropped_columns"]
    assert "education.attendance.POSTCODE" in manifest["dropped_columns"]
    assert manifest["linkage_rate"] == 0.6 and manifest["extract_date"] == "2023-05-02"
    assert manifest["risk_summary"]["records"] == 4
    assert manifest["tables"]["cla_episodes"]["rows"] == 1

    # The package's copy of the report: counts by rule, no child code, line or value.
    issues = list(csv.DictReader(package.validation_csv.decode().splitlines()))
    assert tuple(issues[0]) == ("format", "table", "rule", "type", "severity", "rows")
    assert {"format": "ssda903", "table": "episodes", "rule": "356", "type": "error",
            "severity": "reject", "rows": "1"} in issues
    assert "C2" not in package.validation_csv.decode()
    assert manifest["validation_summary"]["issues"] == sum(int(i["rows"]) for i in issues)
    # The LA's own report has child, line, message and the offending value, in CSV and XLSX.
    assert sorted(p.name for p in result.report_files) == ["validation_issues.csv",
                                                           "validation_issues.xlsx"]
    la_rows = list(csv.DictReader(result.report_files[0].read_text(encoding="utf-8-sig")
                                  .splitlines()))
    assert any(r["rule"] == "EDU01" and r["message"].startswith("Term") for r in la_rows)
    ended = next(r for r in la_rows if r["rule"] == "356")
    assert (ended["file"], ended["line"], ended["year"], ended["child"], ended["type"]) == (
        "episodes.csv", "3", "2023", "C2", "error")
    assert ended["value"] == "DECOM=10/10/2022; DEC=09/10/2022"
    assert ended["action"] == "row not packaged"
    assert result.outcome == "errors" and result.findings["error"] >= 1


def test_validate_only_writes_the_report_and_no_package(la: dict[str, Path],
                                                        nwd_study: StudyFile) -> None:
    result = prepare_la(nwd_study, 354, ssda903=la["ssda903"], cin=la["cin"],
                        report_dir=la["report"], validate_only=True)
    assert result.package is None and not la["out"].exists()
    assert (la["report"] / "validation_issues.xlsx").exists()
    assert "attendance" not in result.tables


def test_refusals_before_anything_is_written(la: dict[str, Path], nwd_study: StudyFile) -> None:
    _, recipient = generate_identity()
    common = {"ssda903": la["ssda903"], "cin": la["cin"], "report_dir": la["report"]}
    with pytest.raises(PolicyRefusal, match="LA 975 is not a local authority"):
        prepare_la(nwd_study, 975, recipient=recipient, out=la["out"], **common)  # type: ignore[arg-type]
    with pytest.raises(InputFileError, match="not an age X25519 public key"):
        prepare_la(nwd_study, 354, recipient="age1nope", out=la["out"], **common)  # type: ignore[arg-type]
    with pytest.raises(InputFileError, match=r"must end in \.tvpkg"):
        prepare_la(nwd_study, 354, recipient=recipient, out=la["out"].with_suffix(".zip"),
                   **common)  # type: ignore[arg-type]
    la["out"].write_bytes(b"old")
    with pytest.raises(InputFileError, match="already exists"):
        prepare_la(nwd_study, 354, recipient=recipient, out=la["out"], **common)  # type: ignore[arg-type]
    assert la["out"].read_bytes() == b"old"
    assert not la["report"].exists()
