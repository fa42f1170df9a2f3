"""The key ring: certified slots, per-domain keys sealed to each slot, password policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialvault.errors import AccessDenied, IntegrityError
from trialvault.trust import (
    DOMAINS,
    FAST_TEST_KDF,
    ROLE_DOMAINS,
    Keyring,
    LegacyVault,
    UnlockedSlot,
    WeakPassword,
    new_domain_key,
)
from trialvault.trust.keyring import _seal

PW = {"alice": "alice keeps the vault keys", "bob": "bob analyses the trial data",
      "carol": "carol checks every output twice", "dan": "dan protects the data subjects"}


@pytest.fixture
def ring(tmp_path: Path) -> tuple[Keyring, UnlockedSlot, dict[str, bytes]]:
    r = Keyring.create(tmp_path)
    keys = {d: new_domain_key() for d in DOMAINS}
    root = r.create_root("alice", "alice@example.org", PW["alice"], keys, FAST_TEST_KDF)
    r.add_slot(root, "bob", "analyst", PW["bob"], kdf=FAST_TEST_KDF)
    r.add_slot(root, "carol", "output-checker", PW["carol"], kdf=FAST_TEST_KDF)
    r.add_slot(root, "dan", "dpo", PW["dan"], kdf=FAST_TEST_KDF)
    r.save()
    return Keyring.load(tmp_path), root, keys


def _edit(ring: Keyring, change) -> Keyring:  # type: ignore[no-untyped-def]
    doc = json.loads(ring.path.read_text())
    change(doc)
    ring.path.write_text(json.dumps(doc))
    return Keyring.load(ring.path.parent)


@pytest.mark.parametrize("user,role", [("alice", "data-manager"), ("bob", "analyst"),
                                       ("carol", "output-checker"), ("dan", "dpo")])
def test_each_role_gets_exactly_its_domain_keys(ring, user: str, role: str) -> None:  # type: ignore[no-untyped-def]
    r, _, keys = ring
    u = r.unlock(user, PW[user])
    assert u.slot.role == role
    assert set(u.domain_keys) == ROLE_DOMAINS[role]
    assert all(u.domain_keys[d] == keys[d] for d in u.domain_keys)
    # The file holds no key material in the clear.
    text = r.path.read_text()
    assert not any(k.hex() in text for k in keys.values())
    assert "AGE-SECRET-KEY" not in text and PW[user] not in text


def test_file_mode_is_private(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring
    assert r.path.stat().st_mode & 0o777 == 0o600


def test_wrong_password_and_unknown_user(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring
    with pytest.raises(AccessDenied, match="wrong password for user 'bob'"):
        r.unlock("bob", PW["alice"])
    with pytest.raises(AccessDenied, match="no key slot for user 'eve'"):
        r.unlock("eve", "x")


def test_role_edit_breaks_the_certificate(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring

    def promote(doc: dict) -> None:  # type: ignore[type-arg]
        doc["slots"][1]["cert"]["role"] = "data-manager"

    with pytest.raises(IntegrityError, match="signature does not verify"):
        _edit(r, promote).unlock("bob", PW["bob"])


def test_domains_edit_breaks_the_certificate(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring

    def widen(doc: dict) -> None:  # type: ignore[type-arg]
        doc["slots"][1]["cert"]["domains"] = ["child", "register", "outputs", "audit"]

    with pytest.raises(IntegrityError, match=r"may not hold|signature"):
        _edit(r, widen).unlock("bob", PW["bob"])


def test_self_signed_planted_slot_is_refused(ring, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Someone with write access builds a slot with its own self-signed certificate."""
    r, _, keys = ring
    other = Keyring.create(tmp_path / "x") if (tmp_path / "x").mkdir() is None else None
    assert other is not None
    other.doc["vault_id"] = r.vault_id
    fake = other.create_root("mallory", "m", "mallory wants everything", keys, FAST_TEST_KDF)
    planted = other.slot_doc("mallory")
    assert fake.slot.role == "data-manager"

    def plant(doc: dict) -> None:  # type: ignore[type-arg]
        doc["slots"].append(planted)

    r2 = _edit(r, plant)
    with pytest.raises(IntegrityError, match="self-signed but not the key ring's root"):
        r2.unlock("mallory", "mallory wants everything")
    problems = r2.all_problems()
    assert list(problems) == [f"mallory (slot {planted['cert']['slot_id'][:8]})"]


def test_slot_issued_by_analyst_is_refused(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring
    bob = r.unlock("bob", PW["bob"])
    with pytest.raises(AccessDenied, match="only a data-manager can add users"):
        r.add_slot(bob, "eve", "analyst", "eve is not really a user", kdf=FAST_TEST_KDF)


def test_swapped_domain_key_detected(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, _ = ring

    def swap(doc: dict) -> None:  # type: ignore[type-arg]
        bob = doc["slots"][1]
        bob["sealed_keys"]["child"] = _seal(new_domain_key(), bob["cert"]["recipient"])

    with pytest.raises(IntegrityError, match="other than the vault's"):
        _edit(r, swap).unlock("bob", PW["bob"])


def test_issuer_cannot_grant_what_it_does_not_hold(tmp_path: Path) -> None:
    r = Keyring.create(tmp_path)
    keys = {d: new_domain_key() for d in DOMAINS if d != "secrets"}
    root = r.create_root("alice", "a", PW["alice"], keys, FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="does not hold the secrets key"):
        r.add_slot(root, "ann", "data-manager", "ann is another manager", kdf=FAST_TEST_KDF)


def test_weak_passwords_refused(ring) -> None:  # type: ignore[no-untyped-def]
    r, root, _ = ring
    for weak in ("short", "password1234", "eveeveeveeve", "trialvault2026"):
        with pytest.raises(WeakPassword):
            r.add_slot(root, "eve", "analyst", weak, kdf=FAST_TEST_KDF)
    with pytest.raises(WeakPassword):
        r.change_password("bob", PW["bob"], "bob12345")


def test_one_person_one_slot_and_user_names(ring) -> None:  # type: ignore[no-untyped-def]
    r, root, _ = ring
    with pytest.raises(AccessDenied, match="already holds a key slot"):
        r.add_slot(root, "bob2", "analyst", "another long phrase here", person="bob",
                   kdf=FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="invalid user name"):
        r.add_slot(root, "bob; rm -rf", "analyst", "another long phrase here",
                   kdf=FAST_TEST_KDF)


def test_remove_reissues_certificates_of_the_removed_issuer(ring) -> None:  # type: ignore[no-untyped-def]
    r, root, _ = ring
    ann = r.add_slot(root, "ann", "data-manager", "ann manages the vault too", kdf=FAST_TEST_KDF)
    ann_u = r.unlock("ann", "ann manages the vault too")
    r.add_slot(ann_u, "eve", "analyst", "eve joined the analysis", kdf=FAST_TEST_KDF)
    removed, reissued = r.remove_slot(root, "ann")
    assert removed.slot_id == ann.slot_id and len(reissued) == 1
    assert r.all_problems() == {}
    assert r.unlock("eve", "eve joined the analysis").slot.issuer == root.slot.slot_id
    # Removing the root hands the root to the acting data manager.
    r.add_slot(root, "fay", "data-manager", "fay is the new manager", kdf=FAST_TEST_KDF)
    fay = r.unlock("fay", "fay is the new manager")
    r.remove_slot(fay, "alice")
    assert r.doc["root"] == fay.slot.slot_id and r.all_problems() == {}


def test_evaluator_recipient_is_signed(ring) -> None:  # type: ignore[no-untyped-def]
    r, root, _ = ring
    r.set_evaluator(root, "age1examplerecipient")
    r.save()
    assert Keyring.load(r.path.parent).evaluator_recipient() == "age1examplerecipient"

    def swap(doc: dict) -> None:  # type: ignore[type-arg]
        doc["evaluator"]["recipient"] = "age1attacker"

    with pytest.raises(IntegrityError, match="not signed by a data manager"):
        _edit(r, swap).evaluator_recipient()


def test_legacy_file_names_the_migration(tmp_path: Path) -> None:
    (tmp_path / "keyslots.json").write_text(json.dumps({"format": "trialvault-keyslots/1"}))
    with pytest.raises(LegacyVault, match="trialvault migrate"):
        Keyring.load(tmp_path)


def test_two_phase_key_rotation(ring) -> None:  # type: ignore[no-untyped-def]
    r, _, keys = ring
    new = new_domain_key()
    r.stage_keys({"child": new}, ["vault"])
    assert r.unlock("bob", PW["bob"]).domain_keys["child"] == keys["child"]  # not yet
    r.commit_keys()
    assert r.unlock("bob", PW["bob"]).domain_keys["child"] == new
    assert r.unlock("dan", PW["dan"]).domain_keys["child"] == new
    assert r.unlock("carol", PW["carol"]).domain_keys.get("child") is None
