"""Key slots: the vault's data key, unlocked only by a user's password (envelope encryption).

`keyslots.json` (plaintext, beside the database) holds one slot per user. Two layers:

- Each slot owns an age X25519 identity. Its secret is wrapped with AES-256-GCM under a key
  derived from the user's password with Argon2id (salt and cost parameters stored per slot).
  The slot's id, user name and role are the AES-GCM associated data, so editing a role or
  moving a slot to another name makes it fail to open.
- The random 256-bit data key (the DuckDB encryption key) is age-encrypted to every slot's
  public recipient.

Why the second layer: re-keying (erasure, retention) must re-wrap the new data key for *every*
user without knowing their passwords. Encrypting to each slot's public key allows that, while a
slot still opens only with its owner's password. A changed password re-wraps only the slot's
identity; a removed slot is deleted from the file (and `rekey` then retires the data key).

An interrupted re-key leaves a `pending` block (the new data key wrapped for each slot, and the
audit hash of the re-key entry); `recover_interrupted_rekey` finishes or undoes it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyrage
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyrage import x25519

from trialvault.errors import AccessDenied, InputFileError, IntegrityError

KEYSLOTS_NAME = "keyslots.json"
KEYSLOTS_FORMAT = "trialvault-keyslots/1"
DATA_KEY_BYTES = 32
Role = Literal["data-manager", "analyst", "output-checker", "dpo"]
ROLES: tuple[Role, ...] = ("data-manager", "analyst", "output-checker", "dpo")


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost. `time_cost` passes over `memory_cost` KiB with `parallelism` lanes."""

    time_cost: int = 3
    memory_cost: int = 256 * 1024
    parallelism: int = 2

    def to_json(self) -> dict[str, Any]:
        return {"name": "argon2id", "version": 19, "time_cost": self.time_cost,
                "memory_cost": self.memory_cost, "parallelism": self.parallelism}


# ~0.4 s per unlock on a 2-core machine (measured 2026-11): slow enough to make guessing costly.
DEFAULT_KDF = KdfParams()
# For tests only, passed explicitly: a cheap derivation (never a default, never from the env).
FAST_TEST_KDF = KdfParams(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass(frozen=True)
class Slot:
    """One user's key slot (no secrets in the clear)."""

    slot_id: str
    user: str
    role: Role
    created_at: str
    recipient: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def fingerprint(data_key: bytes) -> str:
    """A short public name for a data key: says which key, reveals nothing of it."""
    return hashlib.sha256(b"trialvault data key fingerprint\x00" + data_key).hexdigest()[:16]


def new_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_BYTES)


def _derive(password: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(password.encode("utf-8"), salt, params.time_cost, params.memory_cost,
                           params.parallelism, 32, Type.ID)


def _aad(vault_id: str, slot: dict[str, Any]) -> bytes:
    return json.dumps([vault_id, slot["slot_id"], slot["user"], slot["role"]]).encode()


def _wrap_data_key(data_key: bytes, recipient: str) -> str:
    return _b64(pyrage.encrypt(data_key, [x25519.Recipient.from_str(recipient)]))


class Keyfile:
    """keyslots.json in memory; `save()` writes it atomically."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    # --- loading and saving ------------------------------------------------------------------
    @classmethod
    def create(cls, vault_dir: Path) -> Keyfile:
        return cls(vault_dir / KEYSLOTS_NAME, {"format": KEYSLOTS_FORMAT,
                                               "vault_id": str(uuid.uuid4()),
                                               "data_key_fingerprint": None, "slots": []})

    @classmethod
    def load(cls, vault_dir: Path) -> Keyfile:
        path = vault_dir / KEYSLOTS_NAME
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError(f"not a vault: no {KEYSLOTS_NAME} (run `trialvault init`)",
                                 file=str(vault_dir)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"unreadable key slot file ({exc})", file=str(path)) from None
        if not isinstance(doc, dict) or doc.get("format") != KEYSLOTS_FORMAT:
            raise InputFileError(f"not a {KEYSLOTS_FORMAT} file", file=str(path))
        return cls(path, doc)

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".keyslots.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.doc, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)

    # --- reading -----------------------------------------------------------------------------
    @property
    def vault_id(self) -> str:
        return str(self.doc["vault_id"])

    @property
    def slots(self) -> list[Slot]:
        return [Slot(s["slot_id"], s["user"], s["role"], s["created_at"], s["recipient"])
                for s in self.doc["slots"]]

    def slot_doc(self, user: str) -> dict[str, Any]:
        for slot in self.doc["slots"]:
            if slot["user"] == user:
                return dict(slot)
        raise AccessDenied(f"no key slot for user {user!r} in this vault")

    # --- opening -----------------------------------------------------------------------------
    def unlock(self, user: str, password: str) -> tuple[bytes, Slot]:
        """The data key and the user's slot, or AccessDenied. Touches nothing."""
        doc = self.slot_doc(user)
        identity = self._open_identity(doc, password)
        try:
            data_key = bytes(pyrage.decrypt(_unb64(doc["data_key"]), [identity]))
        except (pyrage.DecryptError, ValueError):
            raise IntegrityError(f"{self.path.name}: the data key in the slot of {user!r} does "
                                 "not decrypt (file damaged or edited)") from None
        if fingerprint(data_key) != self.doc["data_key_fingerprint"]:
            raise IntegrityError(f"{self.path.name}: the slot of {user!r} holds a data key "
                                 "other than the vault's")
        return data_key, Slot(doc["slot_id"], doc["user"], doc["role"], doc["created_at"],
                              doc["recipient"])

    def _open_identity(self, doc: dict[str, Any], password: str) -> x25519.Identity:
        kdf = doc["kdf"]
        params = KdfParams(kdf["time_cost"], kdf["memory_cost"], kdf["parallelism"])
        kek = _derive(password, _unb64(kdf["salt"]), params)
        try:
            secret = AESGCM(kek).decrypt(_unb64(doc["nonce"]), _unb64(doc["wrapped_identity"]),
                                         _aad(self.vault_id, doc))
        except InvalidTag:
            # Wrong password, or the slot's name/role was edited: both refuse the same way.
            raise AccessDenied(f"wrong password for user {doc['user']!r} (or its key slot was "
                               "altered)") from None
        return x25519.Identity.from_str(secret.decode("ascii"))

    # --- changing ----------------------------------------------------------------------------
    def add_slot(self, user: str, role: str, password: str, data_key: bytes,
                 kdf: KdfParams = DEFAULT_KDF) -> Slot:
        if role not in ROLES:
            raise AccessDenied(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        if not user or not user.isprintable() or len(user) > 64:
            raise AccessDenied("a user name is 1-64 printable characters")
        if any(s["user"] == user for s in self.doc["slots"]):
            raise AccessDenied(f"user {user!r} already has a key slot")
        if not password:
            raise AccessDenied("an empty password is not allowed")
        identity = x25519.Identity.generate()
        recipient = str(identity.to_public())
        slot: dict[str, Any] = {
            "slot_id": str(uuid.uuid4()), "user": user, "role": role,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "recipient": recipient, "data_key": _wrap_data_key(data_key, recipient)}
        self._wrap_identity(slot, str(identity), password, kdf)
        if self.doc["data_key_fingerprint"] is None:
            self.doc["data_key_fingerprint"] = fingerprint(data_key)
        self.doc["slots"].append(slot)
        return Slot(slot["slot_id"], user, role, slot["created_at"], recipient)

    def _wrap_identity(self, slot: dict[str, Any], identity: str, password: str,
                       kdf: KdfParams) -> None:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kek = _derive(password, salt, kdf)
        slot["kdf"] = {**kdf.to_json(), "salt": _b64(salt)}
        slot["nonce"] = _b64(nonce)
        slot["wrapped_identity"] = _b64(AESGCM(kek).encrypt(nonce, identity.encode("ascii"),
                                                            _aad(self.vault_id, slot)))

    def change_password(self, user: str, old_password: str, new_password: str,
                        kdf: KdfParams = DEFAULT_KDF) -> None:
        if not new_password:
            raise AccessDenied("an empty password is not allowed")
        for slot in self.doc["slots"]:
            if slot["user"] == user:
                identity = self._open_identity(slot, old_password)
                self._wrap_identity(slot, str(identity), new_password, kdf)
                return
        raise AccessDenied(f"no key slot for user {user!r} in this vault")

    def remove_slot(self, user: str) -> Slot:
        doc = self.slot_doc(user)
        remaining = [s for s in self.doc["slots"] if s["user"] != user]
        if doc["role"] == "data-manager" and not any(s["role"] == "data-manager"
                                                     for s in remaining):
            raise AccessDenied(f"{user!r} is the last data-manager: add another one first")
        self.doc["slots"] = remaining
        return Slot(doc["slot_id"], doc["user"], doc["role"], doc["created_at"],
                    doc["recipient"])

    # --- re-keying (two-phase, see module docstring) -------------------------------------------
    def stage_new_key(self, data_key: bytes, audit_hash: str) -> None:
        for slot in self.doc["slots"]:
            slot["pending_data_key"] = _wrap_data_key(data_key, slot["recipient"])
        self.doc["pending"] = {"data_key_fingerprint": fingerprint(data_key),
                               "audit_hash": audit_hash}

    def commit_new_key(self) -> None:
        pending = self.doc.pop("pending")
        for slot in self.doc["slots"]:
            slot["data_key"] = slot.pop("pending_data_key")
        self.doc["data_key_fingerprint"] = pending["data_key_fingerprint"]

    def drop_new_key(self) -> dict[str, Any]:
        pending: dict[str, Any] = self.doc.pop("pending")
        for slot in self.doc["slots"]:
            slot.pop("pending_data_key", None)
        return pending


def _fsync_dir(folder: Path) -> None:
    # Make a rename durable: the directory entry itself must reach the disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
