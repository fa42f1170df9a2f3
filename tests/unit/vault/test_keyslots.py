"""Key slots: Argon2id + AES-GCM wrapped identities, age-wrapped data key, two-phase re-key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trialvault.errors import AccessDenied, InputFileError, IntegrityError
from trialvault.vault.keyslots import (
    FAST_TEST_KDF,
    Keyfile,
    _wrap_data_key,
    fingerprint,
    new_data_key,
)


@pytest.fixture
def keyfile(tmp_path: Path) -> tuple[Keyfile, bytes]:
    kf = Keyfile.create(tmp_path)
    key = new_data_key()
    kf.add_slot("alice", "data-manager", "pw-alice", key, FAST_TEST_KDF)
    kf.add_slot("bob", "analyst", "pw-bob", key, FAST_TEST_KDF)
    kf.save()
    return Keyfile.load(tmp_path), key


def test_each_user_unlocks_the_same_key(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, key = keyfile
    assert kf.unlock("alice", "pw-alice")[0] == key
    data_key, slot = kf.unlock("bob", "pw-bob")
    assert data_key == key and slot.role == "analyst"
    assert kf.doc["data_key_fingerprint"] == fingerprint(key)
    # The file holds no key material in the clear.
    text = kf.path.read_text()
    assert key.hex() not in text and "AGE-SECRET-KEY" not in text and "pw-bob" not in text


def test_wrong_password_and_unknown_user(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, _ = keyfile
    with pytest.raises(AccessDenied, match="wrong password for user 'bob'"):
        kf.unlock("bob", "pw-alice")
    with pytest.raises(AccessDenied, match="no key slot for user 'carol'"):
        kf.unlock("carol", "x")


def test_edited_role_refuses_the_slot(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, _ = keyfile
    doc = json.loads(kf.path.read_text())
    doc["slots"][1]["role"] = "data-manager"  # an analyst promoting themselves
    kf.path.write_text(json.dumps(doc))
    with pytest.raises(AccessDenied):
        Keyfile.load(kf.path.parent).unlock("bob", "pw-bob")


def test_swapped_data_key_detected(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, _ = keyfile
    doc = json.loads(kf.path.read_text())
    bob = doc["slots"][1]
    # A data key encrypted to bob that is not the vault's (e.g. planted by someone with write
    # access to keyslots.json): refused by fingerprint.
    bob["data_key"] = _wrap_data_key(new_data_key(), bob["recipient"])
    kf.path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="other than the vault's"):
        Keyfile.load(kf.path.parent).unlock("bob", "pw-bob")
    # Alice's wrapped key in bob's slot does not decrypt with bob's identity.
    bob["data_key"] = doc["slots"][0]["data_key"]
    kf.path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="does not decrypt"):
        Keyfile.load(kf.path.parent).unlock("bob", "pw-bob")


def test_add_refusals(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, key = keyfile
    with pytest.raises(AccessDenied, match="unknown role"):
        kf.add_slot("carol", "admin", "pw", key, FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="already has a key slot"):
        kf.add_slot("bob", "analyst", "pw", key, FAST_TEST_KDF)
    with pytest.raises(AccessDenied, match="empty password"):
        kf.add_slot("carol", "dpo", "", key, FAST_TEST_KDF)


def test_change_password_and_remove(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, key = keyfile
    kf.change_password("bob", "pw-bob", "new-bob", FAST_TEST_KDF)
    assert kf.unlock("bob", "new-bob")[0] == key
    with pytest.raises(AccessDenied):
        kf.unlock("bob", "pw-bob")
    with pytest.raises(AccessDenied, match="wrong password"):
        kf.change_password("bob", "nope", "x", FAST_TEST_KDF)
    kf.remove_slot("bob")
    with pytest.raises(AccessDenied, match="no key slot"):
        kf.unlock("bob", "new-bob")
    with pytest.raises(AccessDenied, match="last data-manager"):
        kf.remove_slot("alice")


def test_two_phase_rekey(keyfile: tuple[Keyfile, bytes]) -> None:
    kf, old = keyfile
    new = new_data_key()
    kf.stage_new_key(new, "ab" * 32)
    assert kf.unlock("bob", "pw-bob")[0] == old  # still the old key until committed
    pending = kf.drop_new_key()
    assert pending["audit_hash"] == "ab" * 32 and "pending" not in kf.doc
    kf.stage_new_key(new, "cd" * 32)
    kf.commit_new_key()
    assert kf.unlock("alice", "pw-alice")[0] == new
    assert kf.unlock("bob", "pw-bob")[0] == new  # re-wrapped without bob's password


def test_not_a_vault(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not a vault"):
        Keyfile.load(tmp_path)
    (tmp_path / "keyslots.json").write_text("{}")
    with pytest.raises(InputFileError, match="not a trialvault-keyslots/1 file"):
        Keyfile.load(tmp_path)
