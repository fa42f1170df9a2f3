"""An LA's signing key: made at the LA, kept there under a passphrase, used to sign packages.

The key ceremony (docs/security.md, "Boundaries"):

1. the LA analyst runs `trialvault la keygen --la 354 --out la-354.key` and chooses a
   passphrase; the file holds the public key and the Ed25519 private key wrapped exactly as a
   vault key slot wraps its identity: Argon2id (argon2-cffi, the slots' cost parameters) derives
   a key-encryption key, AES-256-GCM (`cryptography`) encrypts the private key with the file
   format, LA code and public key as associated data (an edited public key or LA code does not
   decrypt);
2. the analyst sends the public key line (`trialvault la pubkey la-354.key`) to the evaluator
   and reads its fingerprint to them over a second channel (phone);
3. the evaluator's data manager registers the line for LA 354 in the vault (`la trust`);
4. `prepare --sign-key la-354.key` signs each package; ingest accepts a package only when its
   signer is registered for the package's LA.

The public key travels as one line that names its LA: `trialvault-la-ed25519:354:<base64>`. The
LA code in the line is a label for people; what a key may sign for is decided by the vault's
registration, never by the line.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from trialvault.errors import AccessDenied, InputFileError, IntegrityError
from trialvault.files import write_atomic
from trialvault.trust import DEFAULT_KDF, KdfParams, Signer, canonical, check_password

KEY_FILE_FORMAT = "trialvault-la-key/1"
PUBLIC_PREFIX = "trialvault-la-ed25519"
_PUBLIC_LINE = re.compile(rf"^{PUBLIC_PREFIX}:(\d{{1,4}}):([A-Za-z0-9+/]{{43}}=)$")
_MAX_KEY_FILE_BYTES = 64 * 1024
_RAW_KEY_BYTES = 32
# A key file states its own Argon2id cost; a hostile file must not make loading take the
# machine's memory or an hour.
_MAX_KDF = KdfParams(time_cost=64, memory_cost=4 * 1024 * 1024, parallelism=16)


@dataclass(frozen=True)
class LaPublicKey:
    """An LA's Ed25519 public key (32 raw bytes) and the LA code it is labelled with."""

    la_code: int
    raw: bytes

    def line(self) -> str:
        """The one-line form: `trialvault-la-ed25519:<la>:<base64>`."""
        return f"{PUBLIC_PREFIX}:{self.la_code}:{base64.b64encode(self.raw).decode('ascii')}"

    @property
    def b64(self) -> str:
        """Base64 of the raw key (the form `trialvault.trust.verify` takes)."""
        return base64.b64encode(self.raw).decode("ascii")

    def fingerprint(self) -> str:
        """SHA-256 of the raw key, first 20 hex digits in groups of four: to read aloud."""
        digest = hashlib.sha256(self.raw).hexdigest()[:20]
        return " ".join(digest[i:i + 4] for i in range(0, 20, 4))

    def __str__(self) -> str:
        return self.line()


def parse_public_key(text: str, *, source: str = "public key") -> LaPublicKey:
    """An `LaPublicKey` from its one-line form; InputFileError naming `source` otherwise."""
    match = _PUBLIC_LINE.fullmatch(text.strip())
    if match is None:
        raise InputFileError(f"not an LA public key ({PUBLIC_PREFIX}:<la code>:<base64 of 32 "
                             "bytes>)", file=source)
    try:
        raw = base64.b64decode(match.group(2), validate=True)
    except binascii.Error:
        raise InputFileError("LA public key is not valid base64", file=source) from None
    if len(raw) != _RAW_KEY_BYTES:
        raise InputFileError("LA public key is not 32 bytes", file=source)
    return LaPublicKey(int(match.group(1)), raw)


class LaSigningKey:
    """An LA's private signing key, in memory only while `prepare` runs."""

    def __init__(self, la_code: int, signer: Signer) -> None:
        self.la_code = la_code
        self.signer = signer
        self.public = LaPublicKey(la_code, base64.b64decode(signer.public))

    @classmethod
    def generate(cls, la_code: int) -> LaSigningKey:
        _check_la_code(la_code)
        return cls(la_code, Signer(Ed25519PrivateKey.generate()))

    def sign(self, purpose: str, body: Any) -> str:
        return self.signer.sign(purpose, body)


def _check_la_code(la_code: int) -> None:
    if isinstance(la_code, bool) or not isinstance(la_code, int) or not 0 < la_code < 10_000:
        raise InputFileError(f"{la_code!r} is not a DfE LA code (1-9999)", rule="la_code")


def _kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(passphrase.encode("utf-8"), salt, params.time_cost,
                           params.memory_cost, params.parallelism, 32, Type.ID)


def _aad(la_code: int, public_line: str) -> bytes:
    return canonical([KEY_FILE_FORMAT, la_code, public_line])


def write_key_file(path: Path, key: LaSigningKey, passphrase: str, *,
                   kdf: KdfParams = DEFAULT_KDF) -> Path:
    """Write `key` to a new file at `path`, its private half encrypted under `passphrase`.

    Refuses a weak passphrase (the vault's password policy) and an existing file (a key is
    never overwritten: the old one may still be registered). The file is created with mode 0600.
    `kdf` is the Argon2id cost (tests pass a cheap one).
    """
    check_password(passphrase, user=f"la-{key.la_code}", context=("la", str(key.la_code)))
    if path.exists():
        raise InputFileError("a file of that name exists: a key file is never overwritten",
                             file=str(path))
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    public_line = key.public.line()
    wrapped = AESGCM(_kek(passphrase, salt, kdf)).encrypt(nonce, key.signer.raw(),
                                                          _aad(key.la_code, public_line))
    document = {
        "format": KEY_FILE_FORMAT, "la_code": key.la_code, "public_key": public_line,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "kdf": {**kdf.to_json(), "salt": _b64(salt)},
        "nonce": _b64(nonce), "wrapped_private_key": _b64(wrapped),
        "note": "LA signing key for trialvault packages. Keep this file and its passphrase at "
                "the LA; give the evaluator only the public_key line.",
    }
    old = os.umask(0o077)  # the temporary file and the key file: owner only
    try:
        write_atomic(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    finally:
        os.umask(old)
    path.chmod(0o600)
    return path


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(document: dict[str, Any], key: str, path: Path) -> bytes:
    try:
        return base64.b64decode(str(document[key]), validate=True)
    except (KeyError, binascii.Error):
        raise InputFileError(f"LA key file: {key} is missing or not base64",
                             file=str(path)) from None


def _read_key_document(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise InputFileError(f"cannot read the key file ({exc.strerror})", file=str(path)
                             ) from None
    if len(data) > _MAX_KEY_FILE_BYTES:
        raise InputFileError("not an LA key file (too large)", file=str(path))
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputFileError("not an LA key file (not JSON)", file=str(path)) from None
    if not isinstance(document, dict) or document.get("format") != KEY_FILE_FORMAT:
        raise InputFileError(f"not an LA key file (format is not {KEY_FILE_FORMAT})",
                             file=str(path))
    if not isinstance(document.get("public_key"), str):
        raise InputFileError("LA key file lacks its public_key", file=str(path))
    return document


def _kdf_of(document: dict[str, Any], path: Path) -> KdfParams:
    kdf = document.get("kdf")
    try:
        if not isinstance(kdf, dict) or kdf.get("name") != "argon2id":
            raise ValueError
        params = KdfParams(int(kdf["time_cost"]), int(kdf["memory_cost"]),
                           int(kdf["parallelism"]))
    except (KeyError, TypeError, ValueError):
        raise InputFileError("LA key file: kdf is not Argon2id parameters",
                             file=str(path)) from None
    if not (0 < params.time_cost <= _MAX_KDF.time_cost
            and 8 <= params.memory_cost <= _MAX_KDF.memory_cost
            and 0 < params.parallelism <= _MAX_KDF.parallelism):
        raise InputFileError("LA key file: Argon2id cost out of range", file=str(path))
    return params


def read_public_key(path: Path) -> LaPublicKey:
    """The public key of a key file (no passphrase needed)."""
    return parse_public_key(_read_key_document(path)["public_key"], source=str(path))


def load_signing_key(path: Path, passphrase: str) -> LaSigningKey:
    """Decrypt a key file. AccessDenied for a wrong passphrase (or an edited file: the LA code
    and public key are bound to the ciphertext); IntegrityError when the private key does not
    belong to the public key."""
    document = _read_key_document(path)
    public = parse_public_key(document["public_key"], source=str(path))
    params = _kdf_of(document, path)
    salt, nonce = _unb64(document["kdf"], "salt", path), _unb64(document, "nonce", path)
    wrapped = _unb64(document, "wrapped_private_key", path)
    if len(nonce) != 12 or not 8 <= len(salt) <= 64:
        raise InputFileError("LA key file: bad nonce or salt", file=str(path))
    try:
        raw = AESGCM(_kek(passphrase, salt, params)).decrypt(
            nonce, wrapped, _aad(public.la_code, document["public_key"]))
    except InvalidTag:
        raise AccessDenied(f"{path}: wrong passphrase for this LA key (or the file was "
                           "edited)") from None
    if len(raw) != _RAW_KEY_BYTES:
        raise IntegrityError(f"{path}: the private key is not an Ed25519 key")
    derived = Ed25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)
    if derived != public.raw:
        raise IntegrityError(f"{path}: the private key does not match the file's public key")
    return LaSigningKey(public.la_code, Signer.from_raw(raw))
