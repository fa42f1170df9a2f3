"""Every letter type rendered on a real vault, and every claim checked against what the vault
recorded and what is actually on disk (issue 15: letters promise only what was done)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from trialvault.errors import PolicyRefusal
from trialvault.rights import letters
from trialvault.rights import service as desk
from trialvault.rights.erasure import recorded_actions
from trialvault.rights.export import open_access_response
from trialvault.seal import generate_identity
from trialvault.study.model import StudyFile
from trialvault.trust import Keyring
from trialvault.vault import inventory
from trialvault.vault.session import open_vault

from .conftest import CHILDREN, LA

TODAY = dt.date(2025, 6, 2)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
INTERNAL = re.compile(r"\b(raw|harmonised|meta|rights)\.[a-z_]+|\(s\)|tvpkg|run_id|release_id")


def _new(v: desk.Vault, study: StudyFile, kind: str, child: str) -> int:
    return desk.new_request(v, study, type=kind, la_code=LA, child_id=child,
                            received=dt.date(2025, 5, 30), channel="email", note=None,
                            today=TODAY)


def _plain(letter: str) -> None:
    """No internal id, no table name, no "(s)", no child code; a reference and a way to
    complain. (The access letter names two workbook columns the person will see.)"""
    letter = letter.replace("`source_file`", "").replace("`source_line`", "")
    assert not UUID.search(letter), letter
    assert not INTERNAL.search(letter), INTERNAL.search(letter)
    assert not any(c in letter for c in CHILDREN)
    assert "Your reference number" in letter and "If you are not happy" in letter


def _count(v: desk.Vault, sql: str, params: list[object]) -> int:
    with open_vault(v.path, v.user, v.password, command="t", args={}, write=False) as s:
        row = s.con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def test_every_letter_type_says_only_what_was_done(vault: desk.Vault, nwd_study: StudyFile,
                                                   tmp_path: Path) -> None:
    rendered: dict[str, str] = {}
    # Access: the covering letter inside the sealed response counts records once.
    identity, recipient = generate_identity()
    rid = _new(vault, nwd_study, "access", CHILDREN[0])
    rep = desk.execute(vault, nwd_study, rid, today=TODAY, recipient=recipient,
                       out_dir=tmp_path / "out")
    covering = open_access_response(rep.files[0], identity)[
        f"access-request-{rid}-covering-letter.md"].decode()
    assert "We hold 3 records about you" in covering  # raw rows, not raw + current copy
    assert "- 1 record of your basic details" in covering
    assert "- 2 records of referrals to children's social care" in covering
    rendered["access"] = covering

    # Rectification: the code and its meaning, from the recorded correction.
    rid = _new(vault, nwd_study, "rectification", CHILDREN[1])
    rep = desk.execute(vault, nwd_study, rid, today=TODAY, rectification=desk.Rectification(
        "children", "ethnicity", "WIRI", "The person gave the right code."))
    rendered["rectification"] = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    assert ('We corrected your ethnicity in the record of your basic details (such as sex, '
            'ethnicity and disability): it now says "White Irish" instead of "White British".'
            in rendered["rectification"])
    assert _count(vault, "SELECT count(*) FROM raw.children WHERE la_code = ? AND child_id = ? "
                         "AND ethnicity = 'WIRI'", [LA, CHILDREN[1]]) == 1
    # A later copy of the information shows the correction (both values, with meanings).
    rid = _new(vault, nwd_study, "access", CHILDREN[1])
    rep = desk.execute(vault, nwd_study, rid, today=TODAY, recipient=recipient,
                       out_dir=tmp_path / "out2")
    corrected = open_access_response(rep.files[0], identity)[
        f"access-request-{rid}-covering-letter.md"].decode()
    assert "## Corrections we made" in corrected
    assert 'now says "White Irish" instead of "White British"' in corrected

    # Restriction and objection: only what the flag does.
    for kind, child in (("restriction", CHILDREN[2]), ("objection", CHILDREN[3])):
        rid = _new(vault, nwd_study, kind, child)
        desk.execute(vault, nwd_study, rid, today=TODAY)
        rendered[kind] = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
        assert _count(vault, "SELECT count(*) FROM meta.rights_flags WHERE child_id = ? AND "
                             "kind = ? AND status = 'active'", [child, kind]) == 1
        assert f"From {TODAY.day} {TODAY:%B %Y}" in rendered[kind]

    # Refusal and exemption.
    rid = _new(vault, nwd_study, "access", CHILDREN[4])
    desk.refuse(vault, rid, reason="The LA says this is not a child of the trial.",
                today=TODAY)
    rendered["refused"] = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    assert "Our reason: The LA says this is not a child of the trial." in rendered["refused"]
    rid = _new(vault, nwd_study, "objection", CHILDREN[4])
    desk.exempt(vault, rid, right="objection", decided_by="L. Eastwood (DPO)", today=TODAY,
                reason="The final analysis is locked and this would break it.")
    rendered["exemption"] = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    assert "paragraph 27" in rendered["exemption"] and "L. Eastwood (DPO)" in \
        rendered["exemption"]

    # Erasure, with a kept package file and an export registered where the child is held.
    child = CHILDREN[5]
    pkg = tmp_path / "kept.tvpkg"
    pkg.write_bytes(b"sealed package bytes")
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "children.parquet").write_bytes(b"encrypted parquet")
    with open_vault(vault.path, vault.user, vault.password, command="t", args={}) as s:
        reg = s.writer("rights")
        inventory.register(reg, artefact_id="p-1", kind="package", location=pkg,
                           user=s.user, children=[(LA, child)],
                           sha256=inventory.sha256_of(pkg))
        inventory.register(reg, artefact_id="e-1", kind="export", location=export_dir,
                           user=s.user, children=[(LA, child), (LA, CHILDREN[6])],
                           sha256=inventory.sha256_of(export_dir))
    waiting = _new(vault, nwd_study, "access", child)  # open: closed by the erasure
    raw_rows = _count(vault, "SELECT (SELECT count(*) FROM raw.children WHERE la_code = $1 AND "
                             "child_id = $2) + (SELECT count(*) FROM raw.referrals WHERE "
                             "la_code = $1 AND child_id = $2)", [LA, child])
    keys_before = Keyring.load(vault.path).domain_fingerprints()
    rid = _new(vault, nwd_study, "erasure", child)
    desk.execute(vault, nwd_study, rid, today=TODAY)
    rendered["erasure"] = desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
    with open_vault(vault.path, vault.user, vault.password, command="t", args={},
                    write=False) as s:
        acts = recorded_actions(s.con, rid)
        todo = [a for a in inventory.list_artefacts(s.con, states=("to_destroy",))
                if a.state_request == rid]
    claims = letters.erasure_claims(acts)
    for claim in claims:
        assert claim.text in rendered["erasure"]
    by_kind = {c.kind: c for c in claims}
    assert set(by_kind) == {"table", "package", "copies", "tombstone", "rekey", "close"}
    assert by_kind["table"].count == raw_rows == 3
    assert "We deleted all 3 records about you" in rendered["erasure"]
    assert by_kind["package"].count == 1 and not pkg.exists()
    assert by_kind["copies"].count == len(todo) == 1 and export_dir.exists()
    assert _count(vault, "SELECT count(*) FROM rights.tombstones WHERE la_code = ?", [LA]) == 1
    keys_after = Keyring.load(vault.path).domain_fingerprints()
    assert all(keys_after[d] != keys_before[d] for d in ("child", "register"))
    assert by_kind["close"].count == 1
    closed = desk.show_request(vault, waiting, today=TODAY).view
    assert closed.state == "closed"
    rendered["closed"] = desk.outcome_letter(vault, nwd_study, waiting, today=TODAY)
    assert "About your other request" in rendered["closed"]

    assert set(rendered) == {"access", "rectification", "restriction", "objection",
                             "refused", "exemption", "erasure", "closed"}
    for letter in rendered.values():
        _plain(letter)
    # A still-open request has no outcome letter yet.
    rid = _new(vault, nwd_study, "restriction", CHILDREN[7])
    with pytest.raises(PolicyRefusal, match="still open"):
        desk.outcome_letter(vault, nwd_study, rid, today=TODAY)
