"""The rights desk on a real encrypted vault: register, actions, audit, erasure with re-key."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from trialvault.errors import AccessDenied, InputFileError, IntegrityError, PolicyRefusal
from trialvault.rights import excluded_children
from trialvault.rights import service as desk
from trialvault.rights.export import open_access_response
from trialvault.seal import generate_identity
from trialvault.study.model import StudyFile
from trialvault.trust import FAST_TEST_KDF, Keyring
from trialvault.vault import audit, store
from trialvault.vault.admin import add_user
from trialvault.vault.session import open_vault

from .conftest import CHILDREN, LA, OTHER_LA

TODAY = dt.date(2025, 6, 2)


def _new(vault: desk.Vault, study: StudyFile, type: str, child: str) -> int:
    return desk.new_request(vault, study, type=type, la_code=LA, child_id=child,
                            received=dt.date(2025, 5, 30), channel="email", note=None,
                            today=TODAY)


def _read(vault: desk.Vault, sql: str, params: list[object] | None = None) -> list[tuple]:
    with open_vault(vault.path, vault.user, vault.password, command="test read", args={},
                    write=False) as s:
        return s.con.execute(sql, params or []).fetchall()


def _audit_text(vault: desk.Vault) -> str:
    with open_vault(vault.path, vault.user, vault.password, command="test audit", args={},
                    write=False) as s:
        return json.dumps([e.body() for e in audit.read_entries(s.con)])


def test_register_list_show_and_masking(vault: desk.Vault, nwd_study: StudyFile) -> None:
    rid = _new(vault, nwd_study, "access", CHILDREN[0])
    views = desk.list_requests(vault, today=TODAY)
    assert [(v.request_id, v.child, v.state) for v in views] == [(rid, desk.MASK, "received")]
    assert views[0].due == dt.date(2025, 6, 30) and views[0].days_left == 28
    assert desk.list_requests(vault, today=TODAY, reveal=True)[0].child == CHILDREN[0]
    detail = desk.show_request(vault, rid, today=TODAY)
    assert detail.rows_held == {"raw.children": 1, "harmonised.children": 1,
                                "raw.referrals": 2, "harmonised.referrals": 2}
    assert [e[2] for e in detail.events] == ["new"]
    # The child code never reaches the audit log.
    assert CHILDREN[0] not in _audit_text(vault)


def test_other_roles_cannot_run_the_desk_or_see_codes(vault: desk.Vault,
                                                      nwd_study: StudyFile) -> None:
    rid = _new(vault, nwd_study, "access", CHILDREN[0])
    add_user(vault.path, vault.user, vault.password, "ana", "analyst passphrase for tests",
             "analyst", kdf_params=FAST_TEST_KDF)
    analyst = desk.Vault(vault.path, "ana", "analyst passphrase for tests")
    # The analyst's slot holds no key to the register: not even a masked list.
    with pytest.raises(AccessDenied, match="register domain"):
        desk.list_requests(analyst, today=TODAY)
    with pytest.raises(AccessDenied, match="register domain"):
        desk.show_request(analyst, rid, today=TODAY)
    with pytest.raises(AccessDenied):
        desk.refuse(analyst, rid, reason="An analyst should not be able to do this.",
                    today=TODAY)
    with pytest.raises(AccessDenied):
        _new(analyst, nwd_study, "erasure", CHILDREN[1])


def test_access_export_is_sealed_and_complete(vault: desk.Vault, nwd_study: StudyFile,
                                              tmp_path: Path) -> None:
    identity, recipient = generate_identity()
    rid = _new(vault, nwd_study, "access", CHILDREN[2])
    out = tmp_path / "out"
    with pytest.raises(InputFileError, match="age public key"):
        desk.execute(vault, nwd_study, rid, today=TODAY, recipient="not-a-key", out_dir=out)
    assert desk.show_request(vault, rid, today=TODAY).view.state == "received"  # rolled back
    report = desk.execute(vault, nwd_study, rid, today=TODAY, recipient=recipient, out_dir=out)
    assert report.state == "completed"
    assert [p.name for p in out.iterdir()] == ["access-request-1.zip.age"]
    raw = (out / "access-request-1.zip.age").read_bytes()
    assert CHILDREN[2].encode() not in raw and b"WBRI" not in raw
    members = open_access_response(report.files[0], identity)
    assert sorted(members) == ["access-request-1-covering-letter.md", "access-request-1.xlsx"]
    wb = load_workbook(io.BytesIO(members["access-request-1.xlsx"]))
    assert wb.sheetnames == ["harmonised.children", "harmonised.referrals", "raw.children",
                             "raw.referrals", "packages", "outputs"]
    sheet = wb["raw.referrals"]
    header = [c.value for c in sheet[1]]
    assert {"source_file", "source_line", "package_id"} <= set(header)
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 2
    assert {r[header.index("child_id")] for r in rows} == {CHILDREN[2]}
    assert {r[header.index("la_code")] for r in rows} == {LA}  # not the other LA's child
    letter = members["access-request-1-covering-letter.md"].decode()
    assert "- 2 records of referrals to children's social care" in letter
    assert "We hold 3 records about you" in letter and nwd_study.study.purpose in letter
    assert CHILDREN[2] not in letter


def test_rectification_keeps_history_and_checks_input(vault: desk.Vault,
                                                      nwd_study: StudyFile) -> None:
    rid = _new(vault, nwd_study, "rectification", CHILDREN[3])
    bad = desk.Rectification("children", "ethnicity", "WIRI", "x" * 25)
    with pytest.raises(InputFileError, match="rule table"):
        desk.execute(vault, nwd_study, rid, today=TODAY,
                     rectification=desk.Rectification("nope", "sex", "1", "r" * 25))
    with pytest.raises(InputFileError, match="rule column"):
        desk.execute(vault, nwd_study, rid, today=TODAY,
                     rectification=desk.Rectification("children", "child_id", "X", "r" * 25))
    with pytest.raises(InputFileError, match="must be a whole number") as err:
        desk.execute(vault, nwd_study, rid, today=TODAY,
                     rectification=desk.Rectification("children", "age_months_at_reference",
                                                      "SECRET-VALUE", "r" * 25))
    assert "SECRET-VALUE" not in str(err.value)
    report = desk.execute(vault, nwd_study, rid, today=TODAY, rectification=bad)
    assert report.rows_touched == {"raw.children": 1, "harmonised.children": 1}
    got = _read(vault, "SELECT la_code, ethnicity FROM harmonised.children WHERE child_id = ? "
                       "ORDER BY la_code", [CHILDREN[3]])
    assert got == [(LA, "WIRI"), (OTHER_LA, "WBRI")]
    hist = _read(vault, "SELECT table_name, column_name, old_value, new_value, record_key, "
                        "by_user FROM rights.overlay")
    assert hist == [("children", "ethnicity", "WBRI", "WIRI", "{}", vault.user)]


def test_restriction_and_objection_exclude_until_overridden(vault: desk.Vault,
                                                            nwd_study: StudyFile) -> None:
    r1 = _new(vault, nwd_study, "restriction", CHILDREN[4])
    r2 = _new(vault, nwd_study, "objection", CHILDREN[5])
    for rid in (r1, r2):
        desk.execute(vault, nwd_study, rid, today=TODAY)

    def excluded() -> list[tuple]:
        with open_vault(vault.path, vault.user, vault.password, command="t", args={},
                        write=False) as s:
            return sorted(excluded_children(s.con).fetchall())

    assert excluded() == [(LA, CHILDREN[4]), (LA, CHILDREN[5])]
    with pytest.raises(PolicyRefusal, match="at least"):
        desk.override_objection(vault, r2, grounds="we want to", decided_by="DPO",
                                today=TODAY)
    with pytest.raises(PolicyRefusal, match="not an executed objection"):
        desk.override_objection(vault, r1, grounds="g" * 30, decided_by="DPO", today=TODAY)
    desk.override_objection(vault, r2, decided_by="L. Eastwood (DPO)", today=TODAY,
                            grounds="Safeguarding review ordered by the court needs the record.")
    assert excluded() == [(LA, CHILDREN[4])]
    desk.lift_restriction(vault, r1, today=TODAY,
                          reason="The person withdrew the restriction in writing.")
    assert excluded() == []


def test_erasure_removes_child_everywhere_and_rekeys(vault: desk.Vault,
                                                     nwd_study: StudyFile,
                                                     tmp_path: Path) -> None:
    child = CHILDREN[6]
    restrict = _new(vault, nwd_study, "restriction", child)
    desk.execute(vault, nwd_study, restrict, today=TODAY)
    rid = _new(vault, nwd_study, "erasure", child)
    before = tmp_path / "pre-erasure.duckdb"
    shutil.copy(vault.path / "child.duckdb", before)
    old_key = Keyring.load(vault.path).unlock(vault.user, vault.password).domain_keys["child"]

    report = desk.execute(vault, nwd_study, rid, today=TODAY)
    assert report.state == "completed"
    assert report.rows_touched["raw.referrals"] == 2
    assert report.rows_touched["meta.rights_flags"] == 1
    assert report.rekey is not None
    assert report.rekey.old_fingerprints != report.rekey.new_fingerprints

    # In no table (the other LA's child with the same code stays: a different child).
    with open_vault(vault.path, vault.user, vault.password, command="t", args={},
                    write=False) as s:
        hits = s.con.execute("SELECT database_name, schema_name, table_name FROM "
                             "duckdb_columns() WHERE column_name = 'child_id' AND NOT "
                             "internal").fetchall()
        assert len(hits) >= 22  # 10 raw + 10 harmonised + flags + rights tables
        for catalog, schema, table in hits:
            n = s.con.execute(f"SELECT count(*) FROM {catalog}.{schema}.{table} WHERE "
                              "la_code = ? AND child_id = ?", [LA, child]).fetchone()
            assert n == (0,), f"{catalog}.{schema}.{table}"
    assert _read(vault, "SELECT count(*) FROM harmonised.children WHERE child_id = ?",
                 [child]) == [(1,)]
    assert _read(vault, "SELECT count(*) FROM rights.tombstones WHERE la_code = ?", [LA]) == [(1,)]
    assert _read(vault, "SELECT count(*) FROM rights.requests WHERE child_id IS NULL") == [(2,)]
    # Not excluded either: erased children are simply gone.
    with open_vault(vault.path, vault.user, vault.password, command="t", args={},
                    write=False) as s:
        assert excluded_children(s.con).fetchall() == []

    # The pre-erasure copy opens with the old key but not with the current key slots.
    new_key = Keyring.load(vault.path).unlock(vault.user, vault.password).domain_keys["child"]
    assert new_key != old_key
    with pytest.raises(IntegrityError):
        store.connect_file(before, new_key, temp_dir=tmp_path / "t1").close()
    con = store.connect_file(before, old_key, temp_dir=tmp_path / "t2")
    assert con.execute("SELECT count(*) FROM raw.referrals WHERE child_id = ?",
                       [child]).fetchone() == (2,)
    con.close()

    # A later access request for that child finds nothing; the code is not in the audit log.
    identity, recipient = generate_identity()
    again = _new(vault, nwd_study, "access", child)
    rep = desk.execute(vault, nwd_study, again, today=TODAY, recipient=recipient,
                       out_dir=tmp_path / "out")
    members = open_access_response(rep.files[0], identity)
    wb = load_workbook(io.BytesIO(members[f"access-request-{again}.xlsx"]))
    assert wb.sheetnames == ["packages", "outputs"]
    assert "we do not hold any records about you" in \
        members[f"access-request-{again}-covering-letter.md"].decode()
    assert child not in _audit_text(vault)


def test_outcome_letter_for_an_exemption(vault: desk.Vault, nwd_study: StudyFile) -> None:
    rid = _new(vault, nwd_study, "erasure", CHILDREN[7])
    with pytest.raises(PolicyRefusal, match="still open"):
        desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    desk.exempt(vault, rid, right="erasure", decided_by="L. Eastwood (DPO)", today=TODAY,
                reason="The final analysis is locked; erasure would break the registered "
                       "primary analysis.")
    letter = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    assert "Art. 17(3)(d)" in letter and "L. Eastwood (DPO)" in letter
    assert "Article 89(1)" in letter and CHILDREN[7] not in letter
