"""Attacks on the release channel (issue 16), each tried for real and each refused.

The adversary is an analyst with her own password and the vault folder: she opens the outputs
domain with a plain DuckDB connection and her own unwrapped key, rewrites the stored release
(and its unkeyed hash), forges review rows, flips the status; a data manager adds a reviewer
after the request; a requester names a study file with weaker rules. Leak attacks (an LP
intruder over every number a written release shows) are in
`tests/integration/disclose/test_release_vault.py`; here the cross-release one.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from trialvault.disclose import approvals as ap
from trialvault.disclose import (
    request_release,
    review_release,
    show_release,
    verify_release,
    write_release,
)
from trialvault.errors import IntegrityError, PolicyRefusal
from trialvault.study import study_json
from trialvault.trust import FAST_TEST_KDF, Keyring
from trialvault.vault import add_user, init_vault, open_vault
from trialvault.vault.store import connect_file

REPO = Path(__file__).resolve().parents[2]


def _setup() -> ModuleType:
    name = "disclose_setup_vault"
    if name not in sys.modules:
        path = REPO / "tests" / "integration" / "disclose" / "setup_vault.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec and spec.loader
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


S = _setup()
PW = S.PASSWORDS


def STUDY(**rules: object):  # type: ignore[no-untyped-def]
    """The trimmed study with yearly tables (fewer cells: quicker joint programs)."""
    return S.trimmed_study(table_period="year", **rules)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trialvault.evaluate import evaluate_vault

    path = tmp_path_factory.mktemp("release-attacks") / "vault"
    init_vault(path, "dm", PW["dm"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    for user, role in S.ROLES.items():
        add_user(path, "dm", PW["dm"], user, PW[user], role=role, kdf_params=FAST_TEST_KDF)
    study = STUDY()
    S.fill_vault(path, S.toy_tables(study, seed=5, per_cell=12))
    evaluate_vault(path, "ana", PW["ana"], study)
    return path


def _releases_con(vault: Path, tmp: Path):  # type: ignore[no-untyped-def]
    """The analyst's own outputs key, a plain DuckDB connection: no session, no audit."""
    key = Keyring.load(vault).unlock("ana", PW["ana"]).domain_keys["outputs"]
    return connect_file(vault / "releases.duckdb", key, temp_dir=tmp, alias="releases")


def _approved(vault: Path) -> str:
    rid = request_release(vault, "ana", PW["ana"])
    review_release(vault, "oc", PW["oc"], rid, "approve", "checked")
    review_release(vault, "oc2", PW["oc2"], rid, "approve", "checked too")
    return rid


def test_a_swapped_study_file_is_refused(vault: Path, tmp_path: Path) -> None:
    """Attack: request with a copy of the study setting threshold 1 and rounding 1."""
    weak = STUDY(threshold=1, rounding_base=1, zeros_disclosive=False)
    with pytest.raises(PolicyRefusal, match="differs from the one in force"):
        request_release(vault, "ana", PW["ana"], weak)
    path = tmp_path / "weak.json"
    path.write_text(study_json(weak))
    same = STUDY()
    rid = request_release(vault, "ana", PW["ana"], same)  # the run's own study: accepted
    _, checked = show_release(vault, "oc", PW["oc"], rid)
    assert checked.rules["threshold"] == 10 and checked.rules["rounding_base"] == 5


def test_post_approval_edit_of_the_stored_json_is_refused(vault: Path, tmp_path: Path) -> None:
    """Attack: after approval the analyst rewrites a suppressed cell with its true small value
    in the stored outputs and rewrites the unkeyed hash beside it."""
    rid = _approved(vault)
    con = _releases_con(vault, tmp_path)
    text, = con.execute("SELECT checked_json FROM releases.requests WHERE release_id = ?",
                        [rid]).fetchone()  # type: ignore[misc]
    public = json.loads(text)
    table = next(o for o in public["outputs"] if o["name"].startswith("events_"))["table"]
    row = next(i for i, r in enumerate(table["data"]) if "c" in r)
    table["data"][row][table["data"][row].index("c")] = "3"
    forged = json.dumps(public, sort_keys=True)
    con.execute("UPDATE releases.requests SET checked_json = ?, checked_sha256 = ? WHERE "
                "release_id = ?", [forged, ap.sha256_hex(forged.encode()), rid])
    con.close()
    with pytest.raises(IntegrityError, match="differ from what was requested"):
        write_release(vault, "ana", PW["ana"], rid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_post_approval_edit_re_signed_with_the_analysts_own_key_is_refused(
        vault: Path, tmp_path: Path) -> None:
    """Attack: as above, and the analyst also re-signs the request (her own key, extracted
    from her slot) over the new content hash."""
    rid = _approved(vault)
    unlocked = Keyring.load(vault).unlock("ana", PW["ana"])
    con = _releases_con(vault, tmp_path)
    text, internal, study_json, body = con.execute(
        "SELECT checked_json, internal_json, study_json, request_body FROM releases.requests "
        "WHERE release_id = ?", [rid]).fetchone()  # type: ignore[misc]
    public = json.loads(text)
    public["outputs"] = [o for o in public["outputs"] if o["name"] != "baseline"]
    request = json.loads(body)
    request["content_sha256"] = ap.content_hash(public, json.loads(internal), study_json)
    con.execute("UPDATE releases.requests SET checked_json = ?, request_body = ?, "
                "request_signature = ? WHERE release_id = ?",
                [json.dumps(public, sort_keys=True), json.dumps(request),
                 unlocked.signer.sign(ap.REQUEST_PURPOSE, request), rid])
    con.close()
    found = verify_release(vault, "oc", PW["oc"], rid)
    assert not found.ok
    assert any("no `release request` entry" in p for p in found.problems)
    with pytest.raises(IntegrityError):
        write_release(vault, "ana", PW["ana"], rid, tmp_path / "out")


def test_one_approval_when_two_are_required_is_refused(vault: Path, tmp_path: Path) -> None:
    """Attack: one reviewer approves; the analyst sets the status to approved herself."""
    rid = request_release(vault, "ana", PW["ana"])
    assert review_release(vault, "oc", PW["oc"], rid, "approve", "ok").status == "pending"
    con = _releases_con(vault, tmp_path)
    con.execute("UPDATE releases.requests SET status = 'approved' WHERE release_id = ?", [rid])
    con.close()
    with pytest.raises(PolicyRefusal, match="1 valid approval"):
        write_release(vault, "ana", PW["ana"], rid, tmp_path / "out")


def test_a_forged_review_row_is_refused(vault: Path, tmp_path: Path) -> None:
    """Attack: the analyst inserts a second approval 'by oc2', signed with her own key."""
    rid = request_release(vault, "ana", PW["ana"])
    review_release(vault, "oc", PW["oc"], rid, "approve", "ok")
    record, _ = show_release(vault, "ana", PW["ana"], rid)
    certs = Keyring.load(vault).slots
    oc2 = next(s for s in certs if s.user == "oc2")
    body = ap.review_body(request=record.request_body, decision="approve", comment="fine",
                          user="oc2", slot_id=oc2.slot_id, person=oc2.person,
                          reviewed_at="2030-01-01T00:00:00+00:00", audit_begin_seq=1)
    forged = Keyring.load(vault).unlock("ana", PW["ana"]).signer.sign(ap.APPROVAL_PURPOSE, body)
    con = _releases_con(vault, tmp_path)
    con.execute("INSERT INTO releases.reviews (release_id, reviewer, role, decision, comment, "
                "reviewed_at, body, signature) VALUES (?, 'oc2', 'output-checker', 'approve', "
                "'fine', now(), ?, ?)", [rid, json.dumps(body), forged])
    con.execute("UPDATE releases.requests SET status = 'approved' WHERE release_id = ?", [rid])
    con.close()
    with pytest.raises(IntegrityError, match="signature does not verify"):
        write_release(vault, "ana", PW["ana"], rid, tmp_path / "out")


def test_a_reviewer_slot_made_after_the_request_cannot_review(vault: Path, tmp_path: Path
                                                              ) -> None:
    """Attack: a data manager adds a fresh output checker once the request is in."""
    rid = request_release(vault, "ana", PW["ana"])
    review_release(vault, "oc", PW["oc"], rid, "approve", "ok")
    add_user(vault, "dm", PW["dm"], "late", "late checks every output", role="output-checker",
             kdf_params=FAST_TEST_KDF)
    with pytest.raises(PolicyRefusal, match="made after"):
        review_release(vault, "late", "late checks every output", rid, "approve", "ok")
    # Even a review row the late slot signs itself (outside the tools) does not count.
    record, _ = show_release(vault, "ana", PW["ana"], rid)
    late = next(s for s in Keyring.load(vault).slots if s.user == "late")
    body = ap.review_body(request=record.request_body, decision="approve", comment="ok",
                          user="late", slot_id=late.slot_id, person=late.person,
                          reviewed_at="2030-01-01T00:00:00+00:00", audit_begin_seq=1)
    signed = Keyring.load(vault).unlock("late", "late checks every output").signer.sign(
        ap.APPROVAL_PURPOSE, body)
    con = _releases_con(vault, tmp_path)
    con.execute("INSERT INTO releases.reviews (release_id, reviewer, role, decision, comment, "
                "reviewed_at, body, signature) VALUES (?, 'late', 'output-checker', "
                "'approve', 'ok', now(), ?, ?)", [rid, json.dumps(body), signed])
    con.close()
    with pytest.raises(IntegrityError, match="made after the request"):
        write_release(vault, "ana", PW["ana"], rid, tmp_path / "out")


def test_the_same_person_counts_once_and_never_as_the_requester() -> None:
    """Certificates naming one person twice (a data manager faking people), checked directly."""
    def cert(slot: str, user: str, person: str, role: str, seq: int) -> ap.Certificate:
        return ap.Certificate(slot, user, person, role, "pub", "2026-01-01", seq)

    request = {"slot_id": "r", "content_sha256": "h", "release_id": "X", "vault_id": "v"}
    certs = {"r": cert("r", "ana", "P1", "analyst", 1),
             "a": cert("a", "ana2", "P1", "output-checker", 2),
             "b": cert("b", "oli", "P2", "output-checker", 3),
             "c": cert("c", "oli2", "P2", "output-checker", 4)}
    reviews = [{"reviewer": u, "body": {"format": ap.REVIEW_FORMAT, "slot_id": s,
                                        "decision": "approve",
                                        "request_sha256": ap.digest_of(request),
                                        "content_sha256": "h"}, "signature": "sig"}
               for u, s in (("ana2", "a"), ("oli", "b"), ("oli2", "c"))]
    import trialvault.disclose.approvals as module

    real_verify = module.verify
    module.verify = lambda *args: True  # type: ignore[assignment]  # signatures are tested above
    try:
        found = ap.check_reviews(request, reviews, certs=certs, request_seq=10,
                                 reviewer_roles=("output-checker",), required=2)
    finally:
        module.verify = real_verify  # type: ignore[assignment]
    assert [a["reviewer"] for a in found.approvals] == ["oli"]
    assert any("same person as the requester" in p for p in found.problems)
    assert any("already approved" in p for p in found.problems)
    assert not found.ok


def test_a_release_after_an_erasure_is_checked_against_the_earlier_one(vault: Path,
                                                                        tmp_path: Path) -> None:
    """Attack: difference a release made before and one made after a child left the data."""
    from trialvault.evaluate import evaluate_vault
    from trialvault.rights.flags import FLAGS_TABLE, ensure_flags_table

    first = _approved(vault)
    write_release(vault, "ana", PW["ana"], first, tmp_path / "before")
    with open_vault(vault, "dm", PW["dm"], command="test-flag", args={}) as s:
        ensure_flags_table(s.con)
        la, child = s.con.execute("SELECT la_code, child_id FROM harmonised.referrals ORDER BY "
                                  "referral_date LIMIT 1").fetchone() or (0, "")
        s.con.execute(f"INSERT INTO {FLAGS_TABLE} (flag_id, la_code, child_id, kind, status, "
                      "set_at, set_by) VALUES (4242, ?, ?, 'objection', 'active', now(), 'dpo')",
                      [la, child])
    evaluate_vault(vault, "ana", PW["ana"], STUDY())
    second = request_release(vault, "ana", PW["ana"])
    _, checked = show_release(vault, "oc", PW["oc"], second)
    assert checked.across, "the later release was not compared with the earlier ones"
    assert all(a["all_protected"] for a in checked.across)
    # Every earlier release is accounted for; releases of the same counts as the first one
    # are covered by its joint check (they kept its suppressions).
    assert first in {a["release_id"] for a in checked.across}
    joint = [a for a in checked.across if a["quantities"] > 0]
    assert len(joint) == 1 and joint[0]["intruder_model"] in ("removals only",
                                                               "removals and additions")
    _, earlier = show_release(vault, "oc", PW["oc"], first)
    for out in earlier.outputs:
        if out.kind != "counts" or not checked.has(out.name):
            continue
        now = checked.output(out.name).table
        for r in out.table.index:
            for c in out.table.columns:
                if out.table.loc[r, c] == "c" and r in now.index and c in now.columns:
                    assert now.loc[r, c] == "c", (out.name, r, c)
