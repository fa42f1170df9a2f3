"""Study files are validated with messages that name the offending key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest

from trialvault.errors import StudyFileError
from trialvault.study import load_study, study_from_json, study_json

NWD = Path(__file__).resolve().parents[3] / "studies" / "no-wrong-door.toml"


def _broken(tmp_path: Path, old: str, new: str, count: int = 1) -> Path:
    text = NWD.read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return path


def test_nwd_study_holds_the_notice_facts(nwd_study) -> None:  # type: ignore[no-untyped-def]
    assert {la.dfe_code: la.name for la in nwd_study.local_authorities} == {
        354: "Rochdale", 807: "Redcar & Cleveland", 877: "Warrington", 926: "Norfolk",
        856: "Leicester"}
    assert nwd_study.retention.deletion_label == "Autumn 2033"
    assert nwd_study.retention.deletion_window == (dt.date(2033, 9, 1), dt.date(2033, 11, 30))
    assert nwd_study.special_fields == {"ethnicity", "disability"}
    assert "age_months" in nwd_study.allowed_fields and "upn" not in nwd_study.allowed_fields
    assert nwd_study.design.illustrative_schedule
    assert nwd_study.analysis.primary_outcome.id == "entered_care_12m"


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('name = "Luke Eastwood"\n', "", "dpo.name"),
        ("dfe_code = 807", 'dfe_code = "eight"', "local_authorities.1.dfe_code"),
        ('ons_code = "E06000007"', 'ons_code = "W06000007"', "local_authorities.2.ons_code"),
        ("years_after_final_reporting = 5", "years_after_final_reporting = 5\nkeep_forever = true",
         "retention.keep_forever"),
        ('final_reporting_season = "autumn"', 'final_reporting_season = "autumnal"',
         "retention.final_reporting_season"),
        ('article = "6(1)(f)"', 'article = "6(1)(z)"', "lawful_basis.article"),
        ("notice_written = 2020-09-18", 'notice_written = "18th September"',
         "study.notice_written"),
        ("primary = true", "primary = false", "analysis.outcomes"),
        ("threshold = 10", "threshold = 0", "disclosure.threshold"),
    ],
)
def test_a_wrong_field_is_refused_naming_the_key(tmp_path, old, new, key) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StudyFileError, match=re.escape(key)):
        load_study(_broken(tmp_path, old, new))


def test_rollout_must_cover_every_la(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match=r"design\.rollout"):
        load_study(_broken(tmp_path, "la = 856", "la = 999"))


def test_field_in_two_categories_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StudyFileError, match="declared in two categories"):
        load_study(_broken(tmp_path, 'fields = ["la_code", "child_id"]',
                           'fields = ["la_code", "child_id", "sex"]'))


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nid=", encoding="utf-8")
    with pytest.raises(StudyFileError, match="not valid TOML"):
        load_study(bad)
    with pytest.raises(StudyFileError, match="cannot read"):
        load_study(tmp_path / "absent.toml")


def test_the_stored_study_json_is_what_earlier_versions_hashed(nwd_study) -> None:  # type: ignore[no-untyped-def]
    # Vault runs and releases keep the study's JSON and its SHA-256 (evaluate.results,
    # disclose.from_vault). The hash below is of pydantic's `model_dump_json` of this file, from
    # the last version that used pydantic: msgspec must write the same bytes, or every stored
    # run would stop matching its study and need a migration.
    assert hashlib.sha256(study_json(nwd_study).encode("utf-8")).hexdigest() == (
        "cfc3d54ac1bb5c63cbbc1dffa4f68eb6ccad67c4a5d96cba70c5170e3a58a5d2")
    assert study_from_json(study_json(nwd_study)) == nwd_study


def test_a_stored_study_is_checked_again_when_read(nwd_study) -> None:  # type: ignore[no-untyped-def]
    stored = json.loads(study_json(nwd_study))
    stored["disclosure"]["threshold"] = 0
    with pytest.raises(StudyFileError, match=r"disclosure\.threshold"):
        study_from_json(json.dumps(stored))
    with pytest.raises(StudyFileError, match="not valid JSON"):
        study_from_json(study_json(nwd_study)[:-10])


def test_replace_copies_without_touching_the_original(nwd_study) -> None:  # type: ignore[no-untyped-def]
    # As pydantic's model_copy: a what-if copy is not checked again (here one without its
    # primary outcome, which a file could not declare), and a misspelt field is refused.
    secondary = [o for o in nwd_study.analysis.outcomes if not o.primary]
    changed = nwd_study.analysis.replace(outcomes=secondary)
    assert [o.id for o in changed.outcomes] == [o.id for o in secondary]
    assert nwd_study.analysis.primary_outcome.id == "entered_care_12m"
    with pytest.raises(TypeError, match="no field 'outcome'"):
        nwd_study.analysis.replace(outcome=secondary)
