"""The notice, Article 30 record and LIA are generated from the study file alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trialvault.errors import StudyFileError
from trialvault.study import load_study
from trialvault.study.documents import REQUIRED_SECTIONS, render

MADE_UP = Path(__file__).resolve().parents[2] / "data" / "made-up-study.toml"
PRIVACY_NOTICE = Path(__file__).resolve().parents[4] / "shared" / "mission" / "privacy-notice.md"

# Every fact of the NWD privacy notice (shared/mission/privacy-notice.md), as it must read.
NWD_FACTS = {
    "controller": ["What Works for Children's Social Care",
                   "The Evidence Quarter, Albany House, Westminster, London, SW1H 9EA",
                   "07773 647480", "info@whatworks-csc.org.uk"],
    "date written": ["18/09/2020"],
    "dpo": ["Luke Eastwood", "luke.eastwood@whatworks-csc.org.uk"],
    "las": ["Rochdale", "Redcar & Cleveland", "Warrington", "Norfolk", "Leicester", "five local"],
    "period": ["between 2019 and 2025"],
    "subjects": ["children and young people and their families who have been referred to "
                 "children's social care", "We cannot tell from the data who it is about"],
    "categories": ["Codes that local authorities' children's social care services use to track",
                   "referrals to children's social care, assessments, Child in Need plans, "
                   "Child Protection Plans, and details about becoming looked after",
                   "sex, ethnicity, age in months, disabled status",
                   "unaccompanied asylum seeker", "attendance", "free school meals",
                   "pupil premium", "in education, employment or training"],
    "source": ["We receive all of this personal information indirectly",
               "transferred to us directly from the local authorities"],
    "lawful basis": ["6(1)(f)", "(f) We have a legitimate interest",
                     "Legitimate interest is a three part test",
                     "Purpose test", "Necessity test", "Balancing test",
                     "improve the evidence base in children's social care",
                     "personal data is required to improve how accurate and informative",
                     "individuals' interests do not override our legitimate interest"],
    "special category": ["special category data", "the ethnicity of the children and young "
                         "people, and their disability status",
                         "archiving, scientific, historical research or statistical purposes",
                         "9(2)(j)", "Schedule 1, Part 1, paragraph 4"],
    "storage": ["external encrypted and password protected hard drives",
                "locked safe within our restricted access office"],
    "retention": ["five years after our final reporting", "Autumn 2028", "Autumn 2033",
                  "securely deleted from these hard-drives"],
    "rights": ["right of access", "right to rectification", "right to erasure",
               "right to restriction of processing", "right to object to processing",
               "complete information you think is incomplete"],
    "requests": ["luke.eastwood@whatworks-csc.org.uk and info@whatworks-csc.org.uk",
                 "By post", "By telephone"],
    "complaints": ["Data Protection Officer", "complain to the ICO",
                   "Information Commissioner's Office", "Wycliffe House", "Water Lane",
                   "Wilmslow", "Cheshire", "SK9 5AF", "0303 123 1113", "https://www.ico.org.uk"],
}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("*", ""))


@pytest.mark.parametrize("group", sorted(NWD_FACTS))
def test_every_notice_fact_appears(nwd_study, group):  # type: ignore[no-untyped-def]
    notice = _flat(render(nwd_study, "notice", "md"))
    missing = [fact for fact in NWD_FACTS[group] if fact.lower() not in notice.lower()]
    assert not missing, f"{group}: not in the generated notice: {missing}"


def test_facts_list_is_drawn_from_the_real_notice() -> None:
    """Guard the fact list itself: each fact is worded as in the shared notice."""
    if not PRIVACY_NOTICE.is_file():
        pytest.skip(f"{PRIVACY_NOTICE} not present (newcomer clone)")
    source = _flat(PRIVACY_NOTICE.read_text(encoding="utf-8")).lower()
    generated_only = {"6(1)(f)", "9(2)(j)", "schedule 1, part 1, paragraph 4", "five local",
                      "luke.eastwood@whatworks-csc.org.uk and info@whatworks-csc.org.uk",
                      "the evidence quarter, albany house, westminster, london, sw1h 9ea",
                      "codes that local authorities' children's social care services use to track",
                      # Corrected wording (issue 20): the field is sex, and "WWCS's" was a
                      # typo for the controller.
                      "sex, ethnicity, age in months, disabled status",
                      "locked safe within our restricted access office"}
    for facts in NWD_FACTS.values():
        for fact in facts:
            if fact.lower() in generated_only:
                continue
            assert fact.lower() in source, fact


def test_html_is_a_page_and_escapes_study_text(nwd_study) -> None:  # type: ignore[no-untyped-def]
    html = render(nwd_study, "notice", "html")
    assert html.startswith("<!DOCTYPE html>")
    assert "<table>" in html and "@media print" in html
    assert "Redcar &amp; Cleveland" in html
    assert "<script" not in html


@pytest.mark.parametrize("kind", ["ropa", "lia"])
def test_ropa_and_lia_carry_their_required_parts(nwd_study, kind) -> None:  # type: ignore[no-untyped-def]
    text = _flat(render(nwd_study, kind, "md"))
    common = ["What Works for Children's Social Care", "Luke Eastwood", "6(1)(f)",
              "Schedule 1, Part 1, paragraph 4"]
    required = {
        "ropa": ["Purposes of the processing", "Categories of data subjects",
                 "Categories of personal data", "Recipients", "International transfers",
                 "Retention", "Autumn 2033", "security measures", "ethnicity and disability"],
        "lia": ["Purpose test", "Necessity test", "Balancing test", "Autumn 2033",
                "age_months"],
    }[kind]
    missing = [part for part in common + required if part.lower() not in text.lower()]
    assert not missing


def test_a_made_up_study_renders_its_own_facts_and_none_of_nwd() -> None:
    study = load_study(MADE_UP)
    for kind in ("notice", "ropa", "lia"):
        for fmt in ("md", "html"):
            text = render(study, kind, fmt)  # type: ignore[arg-type]
            for nwd_fact in ("No Wrong Door", "Rochdale", "Luke Eastwood", "whatworks",
                             "Autumn 2033", "2019"):
                assert nwd_fact not in text, (kind, fmt, nwd_fact)
    notice = _flat(render(study, "notice", "md"))
    for fact in ("Heron Evidence Trust", "Gateshead", "Sunderland", "two local authorities",
                 "Priya Natarajan", "29/02/2024", "between 2021 and 2026", "Spring 2027",
                 "Spring 2030"):
        assert fact in notice, fact


# --- issue 20: every section the ICO's templates ask for, present and filled -------------------

def _sections(markdown: str) -> dict[str, str]:
    """Heading text -> the text up to the next heading of any level."""
    sections: dict[str, str] = {}
    heading = None
    for line in markdown.splitlines():
        match = re.match(r"^#{2,4} (.+)$", line)
        if match:
            heading = match.group(1).strip()
            sections[heading] = ""
        elif heading is not None:
            sections[heading] += line + "\n"
    return sections


PARENT_SECTIONS = {"3. Balancing test: do the individual's interests override the legitimate "
                   "interest?"}


@pytest.mark.parametrize("study_file", ["nwd", "made-up"])
@pytest.mark.parametrize("kind", sorted(REQUIRED_SECTIONS))
def test_every_ico_section_is_present_and_filled(nwd_study, kind, study_file) -> None:  # type: ignore[no-untyped-def]
    study = nwd_study if study_file == "nwd" else load_study(MADE_UP)
    sections = _sections(render(study, kind, "md"))
    for heading in REQUIRED_SECTIONS[kind]:
        assert heading in sections, f"{kind}: no section '{heading}'"
        body = sections[heading]
        if heading not in PARENT_SECTIONS:  # a parent's text is in its sub-sections
            assert len(body.split()) >= 3, f"{kind}: section '{heading}' is empty: {body!r}"
        for placeholder in ("None\n", "TODO", "{{", "}}", "Undefined"):
            assert placeholder not in body, f"{kind}: '{heading}' shows {placeholder!r}"


def test_the_documents_say_what_the_study_file_says(nwd_study) -> None:  # type: ignore[no-untyped-def]
    dc = nwd_study.document_control
    notice = _sections(render(nwd_study, "notice", "md"))
    about = _flat(notice["About this notice"])
    assert "first written: 18/09/2020" in about
    assert f"{dc.version}, last updated {dc.updated:%d/%m/%Y}" in about
    assert f"{dc.review_due:%d/%m/%Y}" in about and dc.owner in about
    sharing = _flat(notice["Who we share your information with"])
    assert nwd_study.recipients.recipients[0] in sharing and "no processors" in sharing
    assert nwd_study.recipients.publication in sharing
    assert _flat(notice["Transfers outside the UK"]).strip() == \
        nwd_study.recipients.international_transfers
    assert nwd_study.automated_decision_making.description in notice[
        "Automated decision-making and profiling"]
    ropa = _sections(render(nwd_study, "ropa", "md"))
    control = _flat(ropa["Document control"])
    for value in (dc.owner, dc.version, dc.updated.isoformat(), dc.review_due.isoformat()):
        assert value in control
    assert dc.dpia in ropa["Data protection impact assessment"]
    assert "Children's data: yes" in ropa["Categories of data subjects"]
    lia = _sections(render(nwd_study, "lia", "md"))
    children = _flat(lia["Children as data subjects"])
    assert nwd_study.lawful_basis.children in children and "12 to 17" in children
    assert "who are children" in lia["Outcome"] and dc.review_due.isoformat() in lia["Outcome"]


def test_the_notice_no_longer_carries_the_old_mistakes(nwd_study) -> None:  # type: ignore[no-untyped-def]
    notice = render(nwd_study, "notice", "md")
    assert "WWCS's" not in notice and "Gender" not in notice
    assert "Sex, ethnicity, age in months" in notice


_NWD = Path(__file__).resolve().parents[3] / "studies" / "no-wrong-door.toml"


@pytest.mark.parametrize("edit,key", [
    (lambda t: t.replace('version = "2.0"\n', ""), "document_control.version"),
    (lambda t: t.replace("review_due = 2027-11-30", "review_due = 2026-01-01"),
     "document_control"),
    (lambda t: t.replace("updated = 2026-11-30", 'updated = "last week"'),
     "document_control.updated"),
    (lambda t: re.sub(r'(?m)^owner = ".*"$', 'owner = ""', t), "document_control.owner"),
    (lambda t: re.sub(r"(?ms)^\[automated_decision_making\].*?(?=^#|^\[)", "", t),
     "automated_decision_making"),
    (lambda t: t.replace("processors = []\n", ""), "recipients.processors"),
    (lambda t: re.sub(r'(?m)^children = ".*"$', "", t), "lawful_basis.children"),
    (lambda t: re.sub(r'(?m)^international_transfers = ".*"$', 'international_transfers = ""',
                      t), "recipients.international_transfers"),
])
def test_a_missing_or_broken_document_value_is_refused_naming_the_key(  # type: ignore[no-untyped-def]
        tmp_path, edit, key) -> None:
    text = _NWD.read_text(encoding="utf-8")
    broken = edit(text)
    assert broken != text
    path = tmp_path / "study.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(StudyFileError) as refused:
        load_study(path)
    assert key in str(refused.value)
