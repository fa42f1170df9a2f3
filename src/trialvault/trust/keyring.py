"""The key ring (`keyslots.json`): who may unlock which trust domain, bound by signatures.

Key hierarchy of one slot (one user):

    password --Argon2id--> KEK --AES-256-GCM--> X25519 identity (age)
    X25519 identity --age--> Ed25519 signing key      (sealed to the slot's public recipient)
    X25519 identity --age--> one key per granted domain (sealed the same way, one per domain)

Sealing to the slot's *public* recipient lets a re-key hand every user the new domain keys
without knowing their passwords, and lets a data manager give a new user exactly the keys of
their role. A slot can only carry keys its issuer holds: nobody can grant what they cannot
decrypt.

Every slot has a certificate — vault id, slot id, user, person, role, recipient, signing public
key, granted domains, issuer — signed by a data manager's signing key (the first data manager
signs their own; the key ring names that slot as its root). Unlocking checks the certificate
chain before the password, so an edited role, a swapped recipient or a planted slot fails
to open, and re-keying (which wraps keys for every slot) additionally checks every
certificate against the registry kept in the register domain (see `trialvault.vault.admin`).

The slot's user name and role are also the AES-GCM associated data of the wrapped identity
(as in format 1), so a 0.1.0 vault's slots keep their passwords through migration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyrage import x25519

from trialvault.errors import (
    AccessDenied,
    InputFileError,
    IntegrityError,
    NotFound,
    TrialvaultError,
)
from trialvault.trust.domains import (
    DOMAIN_ORDER,
    ROLE_DOMAINS,
    ROLES,
    SLOT_ISSUER_ROLES,
    domains_for,
)
from trialvault.trust.passwords import check_password
from trialvault.trust.signing import Signer, b64, digest, unb64, verify

KEYRING_NAME = "keyslots.json"
KEYRING_FORMAT = "trialvault-keyring/2"
LEGACY_FORMAT = "trialvault-keyslots/1"
CERT_FORMAT = "trialvault-slot-cert/1"
CERT_PURPOSE = "slot-certificate"
EVALUATOR_PURPOSE = "evaluator-recipient"
DOMAIN_KEY_BYTES = 32
# The CLI checks the same rule (cli_common.USER_NAME) before touching a vault.
USER_NAME = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")


class LegacyVault(TrialvaultError):
    """A vault made by trialvault 0.1.0: it must be migrated before use."""

    exit_code = 3


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
    """One user's key slot as its certificate states it (no secrets)."""

    slot_id: str
    user: str
    role: str
    created_at: str
    recipient: str
    person: str = ""
    sign_pub: str = ""
    domains: tuple[str, ...] = ()
    issuer: str = ""

    @classmethod
    def from_cert(cls, cert: Mapping[str, Any]) -> Slot:
        return cls(slot_id=cert["slot_id"], user=cert["user"], role=cert["role"],
                   created_at=cert["created_at"], recipient=cert["recipient"],
                   person=cert["person"], sign_pub=cert["sign_pub"],
                   domains=tuple(cert["domains"]), issuer=cert["issuer"])


@dataclass
class UnlockedSlot:
    """A slot opened with its password: its certificate, signing key and domain keys."""

    slot: Slot
    cert_hash: str
    signer: Signer = field(repr=False)
    domain_keys: dict[str, bytes] = field(repr=False)

    def holds(self, domain: str) -> bool:
        return domain in self.domain_keys


def new_domain_key() -> bytes:
    return secrets.token_bytes(DOMAIN_KEY_BYTES)


def fingerprint(domain: str, key: bytes) -> str:
    """A short public name for a domain key: says which key, reveals nothing of it."""
    return hashlib.sha256(b"trialvault domain key\x00" + domain.encode() + b"\x00" + key
                          ).hexdigest()[:16]


def cert_hash(cert: Mapping[str, Any]) -> str:
    return digest(dict(cert))


def _derive(password: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(password.encode("utf-8"), salt, params.time_cost, params.memory_cost,
                           params.parallelism, 32, Type.ID)


def _aad(vault_id: str, slot_id: str, user: str, role: str) -> bytes:
    return json.dumps([vault_id, slot_id, user, role]).encode()


def _seal(secret: bytes, recipient: str) -> str:
    return b64(pyrage.encrypt(secret, [x25519.Recipient.from_str(recipient)]))


def _unseal(sealed: str, identity: x25519.Identity) -> bytes:
    return bytes(pyrage.decrypt(unb64(sealed), [identity]))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_user_name(user: str) -> None:
    if not USER_NAME.match(user):
        raise AccessDenied("invalid user name: 1-32 characters, a lower-case letter first, then "
                           "lower-case letters, digits and . _ -")


class Keyring:
    """keyslots.json in memory; `save()` writes it atomically (mode 0600)."""

    def __init__(self, path: Path, doc: dict[str, Any]) -> None:
        self.path = path
        self.doc = doc

    # --- loading and saving ------------------------------------------------------------------
    @classmethod
    def create(cls, vault_dir: Path) -> Keyring:
        return cls(vault_dir / KEYRING_NAME, {
            "format": KEYRING_FORMAT, "vault_id": str(uuid.uuid4()), "root": None,
            "domains": {}, "slots": [], "evaluator": None})

    @classmethod
    def load(cls, vault_dir: Path) -> Keyring:
        path = vault_dir / KEYRING_NAME
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"{vault_dir}: not a vault (no {KEYRING_NAME}; run `trialvault "
                           "init`, or name the vault with --vault DIR)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputFileError(f"unreadable key ring ({type(exc).__name__})",
                                 file=str(path)) from None
        if isinstance(doc, dict) and doc.get("format") == LEGACY_FORMAT:
            raise LegacyVault(f"{vault_dir}: this vault was made by trialvault 0.1.0; upgrade "
                              f"it once with `trialvault migrate --vault {vault_dir}` "
                              "(as its data manager)")
        if not isinstance(doc, dict) or doc.get("format") != KEYRING_FORMAT:
            raise InputFileError(f"not a {KEYRING_FORMAT} file", file=str(path))
        if not isinstance(doc.get("slots"), list) or not isinstance(doc.get("domains"), dict):
            raise IntegrityError(f"{path.name}: malformed key ring (slots/domains)")
        return cls(path, doc)

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".keyslots.", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.doc, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        fsync_dir(self.path.parent)

    # --- reading -----------------------------------------------------------------------------
    @property
    def vault_id(self) -> str:
        return str(self.doc["vault_id"])

    @property
    def slots(self) -> list[Slot]:
        return [Slot.from_cert(s["cert"]) for s in self.doc["slots"]]

    def slot_doc(self, user: str) -> dict[str, Any]:
        for slot in self.doc["slots"]:
            if slot.get("cert", {}).get("user") == user:
                return dict(slot)
        raise AccessDenied(f"no key slot for user {user!r} in this vault")

    def domain_fingerprints(self) -> dict[str, str]:
        return {d: str(v["fingerprint"]) for d, v in self.doc["domains"].items()}

    def ring_hash(self) -> str:
        """Hash of the slot list as certified (certificates, their signatures, the root and the
        evaluator's signed recipient); part of every audit entry. Passwords changing (re-wrapped
        identities) and re-keys (re-sealed keys) do not change it; any slot edit does."""
        slots = sorted(([s["cert"], s["cert_sig"]] for s in self.doc["slots"]),
                       key=lambda pair: str(pair[0].get("slot_id")))
        return digest({"vault_id": self.vault_id, "root": self.doc.get("root"),
                       "slots": slots, "evaluator": self.doc.get("evaluator")})

    # --- certificates ------------------------------------------------------------------------
    def _by_id(self) -> dict[str, dict[str, Any]]:
        return {str(s.get("cert", {}).get("slot_id")): s for s in self.doc["slots"]}

    def cert_problems(self, slot: Mapping[str, Any]) -> list[str]:
        """Why `slot`'s certificate does not verify (empty when it does)."""
        return self._check_chain(slot, self._by_id(), set())

    def _check_chain(self, slot: Mapping[str, Any], by_id: dict[str, dict[str, Any]],
                     seen: set[str]) -> list[str]:
        cert = slot.get("cert")
        if not isinstance(cert, dict) or cert.get("format") != CERT_FORMAT:
            return ["no certificate"]
        sid = str(cert.get("slot_id"))
        if sid in seen:
            return ["certificate chain loops"]
        seen = seen | {sid}
        problems = []
        if cert.get("vault_id") != self.vault_id:
            problems.append("certificate is for another vault")
        role = cert.get("role")
        if role not in ROLES:
            return [*problems, f"unknown role {str(role)[:30]!r}"]
        granted = cert.get("domains")
        if not isinstance(granted, list) or not set(granted) <= ROLE_DOMAINS[role] \
                or "audit" not in granted:
            problems.append(f"grants domains a {role} may not hold")
        issuer_id = cert.get("issuer")
        if issuer_id == sid:
            if sid != self.doc.get("root") or role not in SLOT_ISSUER_ROLES:
                return [*problems, "self-signed but not the key ring's root data manager"]
            issuer_cert = cert
        else:
            issuer = by_id.get(str(issuer_id))
            if issuer is None:
                return [*problems, "issued by a slot that is not in the key ring"]
            issuer_cert = issuer["cert"]
            if issuer_cert.get("role") not in SLOT_ISSUER_ROLES:
                return [*problems, "issued by a slot that is not a data manager"]
            if not set(granted or []) <= set(issuer_cert.get("domains") or []):
                problems.append("grants domains its issuer does not hold")
            upstream = self._check_chain(issuer, by_id, seen)
            if upstream:
                return [*problems, "issuer's certificate does not verify"]
        if not verify(str(issuer_cert.get("sign_pub")), CERT_PURPOSE, cert,
                      str(slot.get("cert_sig", ""))):
            problems.append("certificate signature does not verify (slot edited or planted)")
        return problems

    def all_problems(self, registry: set[str] | None = None) -> dict[str, list[str]]:
        """Problems per slot (user name → reasons); with `registry` (certificate hashes recorded
        by audited `users add`), a slot whose certificate is not in it is refused too."""
        by_id = self._by_id()
        users: dict[str, int] = {}
        persons: dict[str, int] = {}
        for s in self.doc["slots"]:
            cert = s.get("cert") or {}
            users[str(cert.get("user"))] = users.get(str(cert.get("user")), 0) + 1
            persons[str(cert.get("person"))] = persons.get(str(cert.get("person")), 0) + 1
        out: dict[str, list[str]] = {}
        for s in self.doc["slots"]:
            cert = s.get("cert") or {}
            name = f"{cert.get('user')!s} (slot {str(cert.get('slot_id'))[:8]})"
            problems = self._check_chain(s, by_id, set())
            if users[str(cert.get("user"))] > 1:
                problems.append("user name used by more than one slot")
            if persons[str(cert.get("person"))] > 1:
                problems.append("person holds more than one slot")
            if registry is not None and cert and cert_hash(cert) not in registry:
                problems.append("not created by an audited `users add` (not in the registry)")
            if problems:
                out[name] = problems
        return out

    # --- opening -----------------------------------------------------------------------------
    def unlock(self, user: str, password: str) -> UnlockedSlot:
        """The user's signing key and domain keys, or AccessDenied/IntegrityError. Touches
        nothing on disk. An unknown user name costs the same Argon2id work as a wrong password,
        so timing does not tell which user names exist."""
        try:
            doc = self.slot_doc(user)
        except AccessDenied:
            _derive(password, secrets.token_bytes(16), self._typical_kdf())
            raise
        problems = self.cert_problems(doc)
        if problems:
            raise IntegrityError(f"{self.path.name}: the key slot of {user!r} does not verify: "
                                 f"{'; '.join(problems)}")
        cert = doc["cert"]
        identity = self._open_identity(doc, password)
        try:
            signer = Signer.from_raw(_unseal(doc["sealed_signing_key"], identity))
        except (pyrage.DecryptError, ValueError, KeyError):
            raise IntegrityError(f"{self.path.name}: the signing key in the slot of {user!r} "
                                 "does not decrypt (file damaged or edited)") from None
        if signer.public != cert["sign_pub"]:
            raise IntegrityError(f"{self.path.name}: the slot of {user!r} holds a signing key "
                                 "other than its certificate's")
        keys: dict[str, bytes] = {}
        fingerprints = self.domain_fingerprints()
        for domain in cert["domains"]:
            try:
                key = _unseal(doc["sealed_keys"][domain], identity)
            except (pyrage.DecryptError, ValueError, KeyError):
                raise IntegrityError(f"{self.path.name}: the {domain} key in the slot of "
                                     f"{user!r} does not decrypt (file damaged or edited)"
                                     ) from None
            if fingerprint(domain, key) != fingerprints.get(domain):
                raise IntegrityError(f"{self.path.name}: the slot of {user!r} holds a {domain} "
                                     "key other than the vault's")
            keys[domain] = key
        return UnlockedSlot(Slot.from_cert(cert), cert_hash(cert), signer, keys)

    def _typical_kdf(self) -> KdfParams:
        for slot in self.doc["slots"]:
            kdf = slot.get("kdf") or {}
            try:
                return KdfParams(int(kdf["time_cost"]), min(int(kdf["memory_cost"]),
                                                             DEFAULT_KDF.memory_cost * 4),
                                 int(kdf["parallelism"]))
            except (KeyError, TypeError, ValueError):
                continue
        return DEFAULT_KDF

    def _open_identity(self, doc: Mapping[str, Any], password: str) -> x25519.Identity:
        cert = doc["cert"]
        kdf = doc["kdf"]
        params = KdfParams(kdf["time_cost"], kdf["memory_cost"], kdf["parallelism"])
        kek = _derive(password, unb64(kdf["salt"]), params)
        try:
            secret = AESGCM(kek).decrypt(unb64(doc["nonce"]), unb64(doc["wrapped_identity"]),
                                         _aad(self.vault_id, cert["slot_id"], cert["user"],
                                              cert["role"]))
        except InvalidTag:
            raise AccessDenied(f"wrong password for user {cert['user']!r}") from None
        return x25519.Identity.from_str(secret.decode("ascii"))

    def _wrap_identity(self, slot: dict[str, Any], identity: str, password: str,
                       kdf: KdfParams) -> None:
        cert = slot["cert"]
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        kek = _derive(password, salt, kdf)
        slot["kdf"] = {**kdf.to_json(), "salt": b64(salt)}
        slot["nonce"] = b64(nonce)
        slot["wrapped_identity"] = b64(AESGCM(kek).encrypt(
            nonce, identity.encode("ascii"),
            _aad(self.vault_id, cert["slot_id"], cert["user"], cert["role"])))

    # --- creating slots ----------------------------------------------------------------------
    def create_root(self, user: str, person: str, password: str, domain_keys: dict[str, bytes],
                    kdf: KdfParams = DEFAULT_KDF) -> UnlockedSlot:
        """The first data manager of a new vault (self-signed, the chain's root)."""
        if self.doc["slots"]:
            raise TrialvaultError("the key ring already has a root")
        check_user_name(user)
        check_password(password, user=user)
        self.doc["domains"] = {d: {"fingerprint": fingerprint(d, k)}
                               for d, k in domain_keys.items()}
        identity = x25519.Identity.generate()
        signer = Signer.generate()
        slot_id = str(uuid.uuid4())
        self.doc["root"] = slot_id
        cert = self._cert(slot_id, user, person, "data-manager", str(identity.to_public()),
                          signer.public, sorted(domain_keys), issuer=slot_id)
        slot = self._slot(cert, signer.sign(CERT_PURPOSE, cert), identity, signer, domain_keys,
                          password, kdf)
        self.doc["slots"].append(slot)
        return UnlockedSlot(Slot.from_cert(cert), cert_hash(cert), signer, dict(domain_keys))

    def add_slot(self, issuer: UnlockedSlot, user: str, role: str, password: str, *,
                 person: str | None = None, kdf: KdfParams = DEFAULT_KDF) -> Slot:
        """A data manager (`issuer`, unlocked) gives `user` a slot with `role`'s keys."""
        if issuer.slot.role not in SLOT_ISSUER_ROLES:
            raise AccessDenied(f"only a data-manager can add users; {issuer.slot.user!r} is "
                               f"{issuer.slot.role}")
        if role not in ROLES:
            raise AccessDenied(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        check_user_name(user)
        person = (person or user).strip()
        if not person or len(person) > 128 or not person.isprintable():
            raise AccessDenied("a person id is 1-128 printable characters")
        for existing in self.slots:
            if existing.user == user:
                raise AccessDenied(f"user {user!r} already has a key slot")
            if existing.person == person:
                raise AccessDenied(f"person {person!r} already holds a key slot ({existing.user});"
                                   " one person, one slot")
        check_password(password, user=user, context=(person,))
        granted = sorted(domains_for(role))
        missing = [d for d in granted if not issuer.holds(d)]
        if missing:
            raise AccessDenied(f"{issuer.slot.user!r} does not hold the {', '.join(missing)} "
                               "key(s) and cannot grant them")
        identity = x25519.Identity.generate()
        signer = Signer.generate()
        cert = self._cert(str(uuid.uuid4()), user, person, role, str(identity.to_public()),
                          signer.public, granted, issuer=issuer.slot.slot_id)
        slot = self._slot(cert, issuer.signer.sign(CERT_PURPOSE, cert), identity, signer,
                          {d: issuer.domain_keys[d] for d in granted}, password, kdf)
        self.doc["slots"].append(slot)
        return Slot.from_cert(cert)

    def _cert(self, slot_id: str, user: str, person: str, role: str, recipient: str,
              sign_pub: str, domains: list[str], *, issuer: str) -> dict[str, Any]:
        return {"format": CERT_FORMAT, "vault_id": self.vault_id, "slot_id": slot_id,
                "user": user, "person": person, "role": role, "recipient": recipient,
                "sign_pub": sign_pub, "domains": sorted(domains, key=DOMAIN_ORDER.index),
                "created_at": _now(), "issuer": issuer}

    def _slot(self, cert: dict[str, Any], cert_sig: str, identity: x25519.Identity,
              signer: Signer, keys: Mapping[str, bytes], password: str, kdf: KdfParams
              ) -> dict[str, Any]:
        recipient = cert["recipient"]
        slot: dict[str, Any] = {
            "cert": cert, "cert_sig": cert_sig,
            "sealed_signing_key": _seal(signer.raw(), recipient),
            "sealed_keys": {d: _seal(k, recipient) for d, k in keys.items()}}
        self._wrap_identity(slot, str(identity), password, kdf)
        return slot

    # --- the evaluator's public recipient (signed, so `pubkey` needs no password) --------------
    def set_evaluator(self, issuer: UnlockedSlot, recipient: str) -> None:
        body = {"vault_id": self.vault_id, "recipient": recipient}
        self.doc["evaluator"] = {"recipient": recipient, "signed_by": issuer.slot.slot_id,
                                 "signature": issuer.signer.sign(EVALUATOR_PURPOSE, body)}

    def evaluator_recipient(self) -> str:
        """The recipient LAs seal to, checked against a data manager's signature."""
        record = self.doc.get("evaluator")
        if not isinstance(record, dict):
            raise IntegrityError(f"{self.path.name}: no signed evaluator recipient")
        signer = self._by_id().get(str(record.get("signed_by")))
        body = {"vault_id": self.vault_id, "recipient": record.get("recipient")}
        if signer is None or signer["cert"].get("role") not in SLOT_ISSUER_ROLES \
                or self.cert_problems(signer) \
                or not verify(signer["cert"]["sign_pub"], EVALUATOR_PURPOSE, body,
                              str(record.get("signature"))):
            raise IntegrityError(f"{self.path.name}: the evaluator recipient is not signed by a "
                                 "data manager of this vault (edited?)")
        return str(record["recipient"])

    # --- changing ----------------------------------------------------------------------------
    def change_password(self, user: str, old_password: str, new_password: str,
                        kdf: KdfParams = DEFAULT_KDF) -> None:
        check_password(new_password, user=user)
        for slot in self.doc["slots"]:
            if slot["cert"]["user"] == user:
                identity = self._open_identity(slot, old_password)
                self._wrap_identity(slot, str(identity), new_password, kdf)
                return
        raise AccessDenied(f"no key slot for user {user!r} in this vault")

    def remove_slot(self, actor: UnlockedSlot, user: str) -> tuple[Slot, list[str]]:
        """Delete `user`'s slot; re-sign (as `actor`) every certificate it had issued, after
        checking it. Returns the removed slot and the hashes of the re-issued certificates."""
        if actor.slot.role not in SLOT_ISSUER_ROLES:
            raise AccessDenied("only a data-manager can remove users")
        doc = self.slot_doc(user)
        gone = doc["cert"]
        remaining = [s for s in self.doc["slots"] if s["cert"]["slot_id"] != gone["slot_id"]]
        if gone["role"] == "data-manager" and not any(
                s["cert"]["role"] == "data-manager" for s in remaining):
            raise AccessDenied(f"{user!r} is the last data-manager: add another one first")
        if gone["slot_id"] == actor.slot.slot_id:
            raise AccessDenied("you cannot remove your own slot; ask another data manager")
        reissued: list[str] = []
        orphans = [s for s in remaining if s["cert"]["issuer"] == gone["slot_id"]]
        for slot in orphans:
            problems = self.cert_problems(slot)
            if problems:
                raise IntegrityError(f"slot of {slot['cert']['user']!r} does not verify: "
                                     f"{'; '.join(problems)}; remove it first")
        if gone["slot_id"] == self.doc["root"]:
            # The actor becomes the root: their certificate is re-signed by themselves.
            self.doc["root"] = actor.slot.slot_id
            own = next(s for s in remaining if s["cert"]["slot_id"] == actor.slot.slot_id)
            if own not in orphans:
                orphans.append(own)
        self.doc["slots"] = remaining
        for slot in orphans:
            cert = dict(slot["cert"])
            cert["issuer"] = actor.slot.slot_id
            slot["cert"] = cert
            slot["cert_sig"] = actor.signer.sign(CERT_PURPOSE, cert)
            reissued.append(cert_hash(cert))
        return Slot.from_cert(gone), reissued

    def drop_unverified(self, user: str) -> Slot:
        """Delete a slot whose certificate does not verify (a planted or edited slot)."""
        for slot in self.doc["slots"]:
            cert = slot.get("cert") or {}
            if cert.get("user") == user:
                self.doc["slots"] = [s for s in self.doc["slots"] if s is not slot]
                return Slot(str(cert.get("slot_id")), user, str(cert.get("role")),
                            str(cert.get("created_at")), str(cert.get("recipient")))
        raise AccessDenied(f"no key slot for user {user!r} in this vault")

    # --- re-keying (two-phase; see trialvault.vault.admin.rekey) -------------------------------
    def stage_keys(self, new_keys: Mapping[str, bytes], files: list[str]) -> None:
        """Seal the new keys of the rotated domains to every slot granted them, beside the old
        ones, and record which files are being swapped. Roll-forward after a crash."""
        for slot in self.doc["slots"]:
            granted = set(slot["cert"]["domains"])
            slot["pending_keys"] = {d: _seal(k, slot["cert"]["recipient"])
                                    for d, k in new_keys.items() if d in granted}
        self.doc["pending"] = {"domains": {d: fingerprint(d, k) for d, k in new_keys.items()},
                               "files": files, "staged_at": _now()}

    @property
    def pending(self) -> dict[str, Any] | None:
        pending = self.doc.get("pending")
        return pending if isinstance(pending, dict) else None

    def commit_keys(self) -> None:
        pending = self.doc.pop("pending")
        for slot in self.doc["slots"]:
            slot["sealed_keys"].update(slot.pop("pending_keys", {}))
        for domain, fp in pending["domains"].items():
            self.doc["domains"][domain] = {"fingerprint": fp}

    def drop_keys(self) -> None:
        self.doc.pop("pending", None)
        for slot in self.doc["slots"]:
            slot.pop("pending_keys", None)

    # --- migration from format 1 (0.1.0) -----------------------------------------------------
    @classmethod
    def from_legacy(cls, vault_dir: Path, legacy: dict[str, Any], user: str, password: str,
                    domain_keys: dict[str, bytes]) -> tuple[Keyring, UnlockedSlot, bytes]:
        """A format-2 key ring for a 0.1.0 key-slot file, built by its data manager `user`.

        Each user keeps their slot id, password and X25519 identity; each gets a new signing
        key and the keys of their role's domains, sealed to their recipient; the migrating data
        manager becomes the root and signs every certificate. Returns the ring, the unlocked
        root and the old data key (to read the old database once)."""
        ring = cls(vault_dir / KEYRING_NAME, {
            "format": KEYRING_FORMAT, "vault_id": legacy["vault_id"], "root": None,
            "domains": {d: {"fingerprint": fingerprint(d, k)} for d, k in domain_keys.items()},
            "slots": [], "evaluator": None})
        old = [s for s in legacy.get("slots", []) if isinstance(s, dict)]
        mine = next((s for s in old if s.get("user") == user), None)
        if mine is None:
            raise AccessDenied(f"no key slot for user {user!r} in this vault")
        if mine.get("role") != "data-manager":
            raise AccessDenied("only a data-manager can migrate a vault")
        identity = ring._open_legacy_identity(mine, password)
        try:
            old_key = bytes(pyrage.decrypt(unb64(mine["data_key"]), [identity]))
        except (pyrage.DecryptError, ValueError, KeyError):
            raise IntegrityError("the old data key does not decrypt (file damaged)") from None
        signers = {s["slot_id"]: Signer.generate() for s in old}
        root_id = mine["slot_id"]
        ring.doc["root"] = root_id
        root_signer = signers[root_id]
        for s in old:
            if s.get("role") not in ROLES:
                raise IntegrityError(f"legacy slot {str(s.get('slot_id'))[:8]} has an unknown role")
            granted = sorted(domains_for(s["role"]), key=DOMAIN_ORDER.index)
            cert = ring._cert(s["slot_id"], s["user"], s["user"], s["role"], s["recipient"],
                              signers[s["slot_id"]].public, granted, issuer=root_id)
            cert["created_at"] = s.get("created_at", cert["created_at"])
            ring.doc["slots"].append({
                "cert": cert, "cert_sig": root_signer.sign(CERT_PURPOSE, cert),
                "sealed_signing_key": _seal(signers[s["slot_id"]].raw(), s["recipient"]),
                "sealed_keys": {d: _seal(domain_keys[d], s["recipient"]) for d in granted},
                "kdf": s["kdf"], "nonce": s["nonce"], "wrapped_identity": s["wrapped_identity"]})
        root_cert = ring.slot_doc(user)["cert"]
        unlocked = UnlockedSlot(Slot.from_cert(root_cert), cert_hash(root_cert), root_signer,
                                dict(domain_keys))
        return ring, unlocked, old_key

    def _open_legacy_identity(self, slot: Mapping[str, Any], password: str) -> x25519.Identity:
        kdf = slot["kdf"]
        params = KdfParams(kdf["time_cost"], kdf["memory_cost"], kdf["parallelism"])
        kek = _derive(password, unb64(kdf["salt"]), params)
        try:
            secret = AESGCM(kek).decrypt(unb64(slot["nonce"]), unb64(slot["wrapped_identity"]),
                                         _aad(self.vault_id, slot["slot_id"], slot["user"],
                                              slot["role"]))
        except InvalidTag:
            raise AccessDenied(f"wrong password for user {slot['user']!r}") from None
        return x25519.Identity.from_str(secret.decode("ascii"))


def fsync_dir(folder: Path) -> None:
    # Make a rename durable: the directory entry itself must reach the disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


