"""Ed25519 signatures over canonical JSON: the one construction every signed record uses.

Signed things in trialvault: key-slot certificates, audit entries, audit witnesses and LA
receipts, release approvals. Each signs `canonical(body)` with a domain-separation prefix
(`purpose`), so a signature made for one kind of record can never be replayed as another.
Keys come from `cryptography` (no hand-written curve code).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

_PREFIX = b"trialvault signature v1\x00"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def canonical(obj: Any) -> bytes:
    """The one byte form of a JSON value that is hashed or signed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def digest(obj: Any) -> str:
    """SHA-256 hex of the canonical form."""
    return hashlib.sha256(canonical(obj)).hexdigest()


def _message(purpose: str, body: Any) -> bytes:
    return _PREFIX + purpose.encode("ascii") + b"\x00" + canonical(body)


class Signer:
    """A user's private signing key, held in memory only while their session is open."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> Signer:
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    def raw(self) -> bytes:
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public(self) -> str:
        """The public key as base64 of its 32 raw bytes."""
        return b64(self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, purpose: str, body: Any) -> str:
        return b64(self._key.sign(_message(purpose, body)))


def verify(public: str, purpose: str, body: Any, signature: str) -> bool:
    """True when `signature` is `public`'s signature of `body` for `purpose`; never raises."""
    try:
        key = Ed25519PublicKey.from_public_bytes(unb64(public))
        key.verify(unb64(signature), _message(purpose, body))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
