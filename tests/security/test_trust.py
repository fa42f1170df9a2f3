"""Attacks on the trust model (issue 13), each tried for real and each refused.

The adversary holds one role's password and the raw vault folder: they edit `keyslots.json`,
open the domain files with plain DuckDB connections using their own unwrapped keys, and rewrite
or cut the audit log. Each test names the attack it reproduces.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from trialvault.errors import AccessDenied, IntegrityError, TrialvaultError
from trialvault.trust import DOMAINS, FAST_TEST_KDF, Keyring, catalog_file
from trialvault.trust.keyring import _seal
from trialvault.vault import (
    add_user,
    audit_entries,
    init_vault,
    open_vault,
    rekey,
    remove_user,
    verify_audit,
    write_witness,
)
from trialvault.vault import audit as audit_log
from trialvault.vault.session import FAILURE_LOG
from trialvault.vault.store import connect_file

PW = {"dm": "dm keeps the vault keys safe", "ana": "ana reads the trial data",
      "oc": "oc checks every output", "dpo": "dpo protects the data"}
ROLES = {"ana": "analyst", "oc": "output-checker", "dpo": "dpo"}


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    folder = tmp_path / "vault"
    init_vault(folder, "dm", PW["dm"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    for user, role in ROLES.items():
        add_user(folder, "dm", PW["dm"], user, PW[user], role, kdf_params=FAST_TEST_KDF)
    with open_vault(folder, "dm", PW["dm"], command="fill", args={}) as s:
        s.con.execute("INSERT INTO raw.children (la_code, child_id, sex) VALUES "
                      "(354, 'ZQXJ-child-1', '1')")
    return folder


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in (".lock", FAILURE_LOG)}


def _try_open_every_file(folder: Path, keys: dict[str, bytes], tmp: Path) -> set[str]:
    """Which domain files open with any of these keys (a plain DuckDB connection each)."""
    opened = set()
    for domain in DOMAINS.values():
        for catalog in domain.catalogs:
            for key in keys.values():
                try:
                    connect_file(folder / catalog_file(catalog), key, temp_dir=tmp,
                                 alias="x").close()
                except IntegrityError:
                    continue
                opened.add(domain.name)
    return opened


# --- 1. a role that "cannot" see something lacks the key to it --------------------------------

@pytest.mark.parametrize("user,expected", [
    ("oc", {"outputs", "audit"}),
    ("ana", {"child", "outputs", "audit"}),
    ("dpo", {"child", "register", "outputs", "audit"}),
    ("dm", set(DOMAINS)),
])
def test_each_role_opens_only_its_domains_with_its_own_keys(vault: Path, tmp_path: Path,
                                                            user: str, expected: set[str]
                                                            ) -> None:
    """Attack: the output checker reads raw.children; the analyst reads the tombstone key and
    the evaluator's age identity. Tried with the role's own unwrapped keys on every file."""
    keys = Keyring.load(vault).unlock(user, PW[user]).domain_keys
    assert _try_open_every_file(vault, keys, tmp_path / "t") == expected


def test_output_checker_session_has_no_child_catalog(vault: Path) -> None:
    with open_vault(vault, "oc", PW["oc"], command="peek", args={}, write=False) as s:
        attached = {r[0] for r in s.con.execute("SELECT database_name FROM duckdb_databases()"
                                                ).fetchall()}
        assert "vault" not in attached and "rights" not in attached
        with pytest.raises(Exception, match=r"children|raw|does not exist"):
            s.con.execute("SELECT * FROM raw.children").fetchall()


def test_analyst_cannot_read_the_evaluator_identity_or_tombstone_key(vault: Path) -> None:
    from trialvault.vault import evaluator_identity, tombstone_key

    with open_vault(vault, "ana", PW["ana"], command="peek", args={}, write=False) as s:
        with pytest.raises(AccessDenied, match="does not hold the key"):
            evaluator_identity(s.con)
        with pytest.raises(AccessDenied, match="does not hold the key"):
            tombstone_key(s.con)


# --- 2. the slot list is authenticated --------------------------------------------------------

def _edit(folder: Path, change) -> None:  # type: ignore[no-untyped-def]
    path = folder / "keyslots.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _slot(doc: dict, user: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in doc["slots"] if s["cert"]["user"] == user)


def test_analyst_promoting_own_slot_is_refused(vault: Path) -> None:
    """Attack: the analyst re-labels her slot data-manager, then tries to add users."""
    def promote(doc: dict) -> None:  # type: ignore[type-arg]
        _slot(doc, "ana")["cert"]["role"] = "data-manager"

    _edit(vault, promote)
    with pytest.raises(IntegrityError, match="does not verify"):
        add_user(vault, "ana", PW["ana"], "eve", "eve is an accomplice", "dpo",
                 kdf_params=FAST_TEST_KDF)
    failures = (vault / FAILURE_LOG).read_text()
    assert '"user": "ana"' in failures and "users add" in failures


def test_analyst_granting_herself_more_domains_is_refused(vault: Path) -> None:
    """Attack: the analyst adds the register domain to her certificate and seals the DPO's...
    no — she cannot: she has no register key to seal. Editing the list alone breaks it."""
    def widen(doc: dict) -> None:  # type: ignore[type-arg]
        _slot(doc, "ana")["cert"]["domains"] = ["child", "register", "outputs", "audit"]

    _edit(vault, widen)
    with pytest.raises(IntegrityError), open_vault(vault, "ana", PW["ana"], command="t",
                                                   args={}):
        pass


def test_planted_slot_without_password_never_gets_keys(vault: Path) -> None:
    """Attack: someone with write access to the folder (no password) plants a data-manager
    slot; at the next `rekey` the vault would re-wrap the new keys for it. Now: refused,
    nothing changed, the refusal audited."""
    planted_ring = Keyring.create(vault.parent / "scratch")
    (vault.parent / "scratch").mkdir()
    planted_ring.doc["vault_id"] = Keyring.load(vault).vault_id
    fake_keys = {d: b"\x01" * 32 for d in DOMAINS}
    planted_ring.create_root("ghost", "ghost", "ghost wants every key", fake_keys,
                             FAST_TEST_KDF)
    ghost = planted_ring.slot_doc("ghost")
    _edit(vault, lambda doc: doc["slots"].append(ghost))
    before = _files(vault)
    with pytest.raises(IntegrityError, match=r"re-key refused, nothing changed.*ghost"):
        rekey(vault, "dm", PW["dm"])
    after = _files(vault)
    assert {k: v for k, v in after.items() if k not in ("audit.duckdb", "audit.chain")} == \
        {k: v for k, v in before.items() if k not in ("audit.duckdb", "audit.chain")}
    assert json.loads((vault / "keyslots.json").read_text())["slots"][-1] == ghost
    rekey_end = [e for e in audit_entries(vault, "dm", PW["dm"]) if e.command == "rekey"][-1]
    assert rekey_end.result == "error" and "ghost" in (rekey_end.error or "")
    # The data manager removes it; then re-keying works and the ghost holds nothing.
    remove_user(vault, "dm", PW["dm"], "ghost", rekey_after=True)
    assert "ghost" not in {s.user for s in Keyring.load(vault).slots}


def test_replayed_slot_of_a_removed_user_is_refused(vault: Path, tmp_path: Path) -> None:
    """Attack: a removed user's old slot (validly signed by a data manager) is copied back
    into keyslots.json. Removal without a re-key leaves the keys the same, so the old slot
    opens — but the registry knows it was retired and `rekey` refuses to wrap for it."""
    old = _slot(json.loads((vault / "keyslots.json").read_text()), "ana")
    remove_user(vault, "dm", PW["dm"], "ana", rekey_after=False)
    _edit(vault, lambda doc: doc["slots"].append(old))
    with pytest.raises(IntegrityError, match="not created by an audited"):
        rekey(vault, "dm", PW["dm"])
    remove_user(vault, "dm", PW["dm"], "ana", rekey_after=True)  # drop it again, re-key
    _edit(vault, lambda doc: doc["slots"].append(old))
    with pytest.raises(IntegrityError, match="key other than the vault's"), \
            open_vault(vault, "ana", PW["ana"], command="t", args={}):
        pass


def test_slot_issued_by_an_analyst_is_refused(vault: Path) -> None:
    """Attack: the analyst signs a 'ghost data-manager' certificate with her own key."""
    ring = Keyring.load(vault)
    ana = ring.unlock("ana", PW["ana"])
    # Bypass the library's role check to forge the certificate directly.
    cert = dict(_slot(ring.doc, "ana")["cert"])
    cert.update(slot_id="ghost-slot", user="ghost", person="ghost", role="data-manager",
                issuer=ana.slot.slot_id)
    forged = {**_slot(ring.doc, "ana"), "cert": cert,
              "cert_sig": ana.signer.sign("slot-certificate", cert)}
    _edit(vault, lambda doc: doc["slots"].append(forged))
    problems = Keyring.load(vault).all_problems()
    assert any("ghost" in who and "not a data manager" in " ".join(why)
               for who, why in problems.items())
    with pytest.raises(IntegrityError):
        Keyring.load(vault).unlock("ghost", PW["ana"])


def test_swapped_recipient_gets_no_keys(vault: Path) -> None:
    """Attack: replace the DPO's recipient with the attacker's, hoping the next re-key seals
    the new keys to it."""
    from pyrage import x25519

    mine = x25519.Identity.generate()

    def swap(doc: dict) -> None:  # type: ignore[type-arg]
        slot = _slot(doc, "dpo")
        slot["cert"]["recipient"] = str(mine.to_public())
        slot["sealed_keys"]["child"] = _seal(b"\x02" * 32, str(mine.to_public()))

    _edit(vault, swap)
    with pytest.raises(IntegrityError, match="re-key refused"):
        rekey(vault, "dm", PW["dm"])


def test_every_audit_entry_carries_the_slot_list_hash(vault: Path) -> None:
    entries = audit_entries(vault, "dm", PW["dm"])
    assert all(e.ring_hash and len(e.ring_hash) == 64 for e in entries)
    hashes = [e.ring_hash for e in entries]
    assert len(set(hashes)) >= 4  # each `users add` changed the certified slot list
    assert hashes[-1] == Keyring.load(vault).ring_hash()


# --- 3. a log must prove nothing was cut ------------------------------------------------------

def _audit_con(vault: Path, user: str, tmp: Path):  # type: ignore[no-untyped-def]
    key = Keyring.load(vault).unlock(user, PW[user]).domain_keys["audit"]
    return connect_file(vault / "audit.duckdb", key, temp_dir=tmp, alias="audit")


def test_cut_tail_is_caught_by_the_dpos_witness(vault: Path, tmp_path: Path) -> None:
    """Attack: the analyst deletes the last entries from the log and from audit.chain."""
    witness = tmp_path / "dpo-witness.json"
    write_witness(vault, "dpo", PW["dpo"], witness)
    with open_vault(vault, "dm", PW["dm"], command="sensitive", args={}):
        pass
    con = _audit_con(vault, "ana", tmp_path / "t")
    cut_from = json.loads(witness.read_text())["seq"] - 1
    con.execute("DELETE FROM audit.entries WHERE seq > ?", [cut_from])
    con.close()
    chain = vault / "audit.chain"
    chain.write_text("".join(f"{h}\n" for h in chain.read_text().split()[:cut_from]))
    assert verify_audit(vault, "dm", PW["dm"]).ok  # invisible without an outside anchor
    result = verify_audit(vault, "dm", PW["dm"], witnesses=[witness])
    assert not result.ok
    assert any(p.startswith("witness dpo-witness.json:") and (
        "cut from the log" in p or "differs from the witnessed" in p) for p in result.problems)


def test_rewritten_entry_with_recomputed_hashes_is_caught(vault: Path, tmp_path: Path) -> None:
    """Attack: entry 5's user and command changed and every later hash (and audit.chain)
    recomputed, using only the audit key every role holds."""
    con = _audit_con(vault, "ana", tmp_path / "t")
    entries = audit_log.read_entries(con)
    prev = entries[3].hash
    lines = [e.hash for e in entries[:4]]
    for e in entries[4:]:
        body = {**e.body(), "prev_hash": prev}
        if e.seq == 5:
            body.update(user="ana", command="nothing happened")
        digest = audit_log.entry_hash(body)
        con.execute("UPDATE audit.entries SET user_name = ?, command = ?, prev_hash = ?, "
                    "hash = ? WHERE seq = ?", [body["user"], body["command"], prev, digest, e.seq])
        prev = digest
        lines.append(digest)
    con.close()
    (vault / "audit.chain").write_text("".join(f"{h}\n" for h in lines))
    result = verify_audit(vault, "dm", PW["dm"])
    assert not result.ok
    assert result.problems[0].startswith("entry 5 (nothing happened by ana): signature does "
                                         "not verify")


def test_ingest_receipt_anchors_the_log_for_the_la(vault: Path, tmp_path: Path) -> None:
    """An LA's receipt is a witness: cutting the log after the ingest is caught with it."""
    from trialvault.seal import write_package
    from trialvault.study import load_study
    from trialvault.vault import evaluator_recipient, ingest_packages

    sys_path = Path(__file__).resolve().parents[1] / "integration" / "vault"
    import sys
    sys.path.insert(0, str(sys_path))
    try:
        from conftest import make_tables  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(sys_path))
    study = load_study(Path(__file__).resolve().parents[2] / "studies" / "no-wrong-door.toml")
    from trialvault.seal.keys import LaSigningKey
    from trialvault.vault.la_keys import trust_la_key

    key = LaSigningKey.generate(354)
    trust_la_key(vault, "dm", PW["dm"], 354, key.public.line(), study=study)
    pkg = tmp_path / "354.tvpkg"
    write_package(pkg, [evaluator_recipient(vault)],
                  {"study_id": study.study.id, "spec_version": "2025.1", "la_code": 354,
                   "extract_date": dt.date(2025, 3, 31)}, make_tables(354, 5, seed=1), b"",
                  sign_key=key)
    report = ingest_packages(vault, "dm", PW["dm"], [pkg], study=study)
    receipt = next(iter(report.receipts.values()))
    assert receipt["la_code"] == 354 and "ZQXJ" not in json.dumps(receipt)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    assert verify_audit(vault, "dm", PW["dm"], witnesses=[path]).ok
    con = _audit_con(vault, "ana", tmp_path / "t")
    con.execute("DELETE FROM audit.entries WHERE seq >= ?", [receipt["seq"]])
    con.close()
    # The verifying command's own entries now sit where the cut ones were: either way the
    # receipt's entry is gone or different.
    problems = verify_audit(vault, "dm", PW["dm"], witnesses=[path]).problems
    assert any(p.startswith("witness receipt.json:") and ("cut from the log" in p or
                                                          "differs from the witnessed" in p)
               for p in problems)


# --- 4. no silent reads; 5. passwords and removal ------------------------------------------------

def test_reading_commands_are_recorded_before_they_read(vault: Path, tmp_path: Path) -> None:
    """A process that opens the vault and dies inside the block (before any outcome) has
    already left its signed begin entry."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from trialvault.vault import open_vault
        with open_vault(Path(sys.argv[1]), "ana", sys.argv[2], command="quiet look",
                        args={}, write=False) as s:
            s.con.execute("SELECT count(*) FROM raw.children").fetchall()
            os._exit(0)
    """)
    src = Path(__file__).resolve().parents[2] / "src"
    subprocess.run([sys.executable, "-c", script, str(vault), PW["ana"]], check=True,
                   env={**__import__("os").environ, "PYTHONPATH": str(src)}, timeout=120)
    result = verify_audit(vault, "dm", PW["dm"])
    assert result.ok
    assert any("(quiet look by ana) has no outcome entry" in w for w in result.warnings)


def test_weak_password_refused_everywhere(vault: Path, tmp_path: Path) -> None:
    from trialvault.vault import change_password

    with pytest.raises(AccessDenied, match=r"too easy to guess|at least 12"):
        add_user(vault, "dm", PW["dm"], "eve", "password123", "analyst",
                 kdf_params=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match=r"too easy to guess|at least 12"):
        change_password(vault, "ana", PW["ana"], "ana")
    with pytest.raises(AccessDenied, match=r"too easy to guess|at least 12"):
        init_vault(tmp_path / "v2", "dm", "qwertyuiop12", kdf_params=FAST_TEST_KDF)


def test_removed_user_keys_open_nothing_written_after(vault: Path, tmp_path: Path) -> None:
    """Attack: the analyst keeps a copy of her unwrapped keys, is removed, and later reads the
    folder. Removal re-keys every domain she could decrypt (child, outputs, audit)."""
    kept = Keyring.load(vault).unlock("ana", PW["ana"]).domain_keys
    copy = tmp_path / "old-copy"
    shutil.copytree(vault, copy)
    remove_user(vault, "dm", PW["dm"], "ana")
    assert _try_open_every_file(vault, kept, tmp_path / "t") == set()
    # The folder copy from before her removal still opens with her keys: that is what she
    # could already read; nothing written since is in it.
    assert _try_open_every_file(copy, kept, tmp_path / "t2") == {"child", "outputs", "audit"}


def test_vault_files_are_private(vault: Path) -> None:
    assert vault.stat().st_mode & 0o077 == 0
    for p in vault.iterdir():
        if p.is_file():
            assert p.stat().st_mode & 0o077 == 0, p.name


def test_legacy_vault_is_refused_with_the_command(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "keyslots.json").write_text(json.dumps({"format": "trialvault-keyslots/1",
                                                      "vault_id": "x", "slots": []}))
    with pytest.raises(TrialvaultError, match="trialvault migrate --vault"), \
            open_vault(folder, "dm", PW["dm"], command="status", args={}):
        pass
