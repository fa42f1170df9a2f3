"""Package signatures: the LA signs the manifest; the evaluator checks who signed it.

The manifest holds every table's SHA-256 and row count and the validation CSV's SHA-256, so one
Ed25519 signature over the manifest's exact bytes covers the whole package. The signature and
the signer's public key travel inside the (encrypted) package as `signature.json`:

    {"format": "trialvault-package-signature/1",
     "signer": "trialvault-la-ed25519:354:<base64>",
     "signed": {"la_code": 354, "package_id": "…", "manifest_sha256": "…"},
     "signature": "<base64>"}

The signature is `trialvault.trust` Ed25519 over canonical JSON of `signed` with the purpose
`la-package` (the one signing construction of the project; the purpose keeps a package
signature from ever passing as any other signed record).

`verify_package` is pure: it reads the package and a mapping of trusted keys, touches nothing
else, and refuses — naming the package — an unsigned package, a signer not registered for any
LA, a signer registered for another LA, a bad signature, and a manifest or table hash that does
not match. Vault state (extract-date order, package ids already seen) is the caller's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialvault.errors import InputFileError, IntegrityError
from trialvault.seal.keys import LaPublicKey, LaSigningKey, parse_public_key
from trialvault.seal.limits import DEFAULT_PACKAGE_LIMITS, PackageLimits
from trialvault.seal.package import PackageContents, source_name
from trialvault.seal.reader import (
    OpenedPackage,
    open_package,
    parse_identity,
    read_tables,
    read_validation,
)
from trialvault.trust import canonical, verify

SIGNATURE_FORMAT = "trialvault-package-signature/1"
SIGN_PURPOSE = "la-package"


class PackageNotTrusted(IntegrityError):
    """The package is not signed by a key the vault trusts for its LA.

    `reason` is one of `unsigned`, `malformed`, `unknown-key`, `other-la`, `bad-signature`.
    """

    def __init__(self, name: str, reason: str, message: str) -> None:
        self.package = name
        self.reason = reason
        super().__init__(f"{name}: {message}")


@dataclass(frozen=True)
class VerifiedPackage(PackageContents):
    """A package whose signature verified against a key trusted for its LA."""

    signer: LaPublicKey


def signature_document(key: LaSigningKey, manifest: Mapping[str, Any], manifest_bytes: bytes
                       ) -> bytes:
    """The `signature.json` bytes for a manifest (called by `write_package`)."""
    signed = {"la_code": manifest["la_code"], "package_id": manifest["package_id"],
              "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest()}
    return canonical({"format": SIGNATURE_FORMAT, "signer": key.public.line(),
                      "signed": signed, "signature": key.sign(SIGN_PURPOSE, signed)})


def check_signature(opened: OpenedPackage) -> LaPublicKey | None:
    """The signer of a package whose signature verifies against its own embedded key, or
    None for an unsigned package. This alone says nothing about trust."""
    doc = opened.signature
    if doc is None:
        return None
    name, manifest = opened.name, opened.manifest
    signed, signer, signature = doc.get("signed"), doc.get("signer"), doc.get("signature")
    if (doc.get("format") != SIGNATURE_FORMAT or not isinstance(signed, dict)
            or not isinstance(signer, str) or not isinstance(signature, str)):
        raise PackageNotTrusted(name, "malformed", "signature.json is not a package signature "
                                f"({SIGNATURE_FORMAT})")
    try:
        key = parse_public_key(signer, source=f"{name}: signature.json signer")
    except InputFileError:
        raise PackageNotTrusted(name, "malformed", "signature.json: the signer is not an LA "
                                "public key") from None
    if not verify(key.b64, SIGN_PURPOSE, signed, signature):
        raise PackageNotTrusted(name, "bad-signature", "the LA signature does not verify (the "
                                "package was changed after signing, or the signature is forged)")
    expected = {"la_code": manifest["la_code"], "package_id": manifest["package_id"],
                "manifest_sha256": hashlib.sha256(opened.manifest_bytes).hexdigest()}
    if signed != expected:
        raise PackageNotTrusted(name, "bad-signature", "the signature is for another manifest "
                                "(manifest hash, package id or LA code differs)")
    return key


def _trust(name: str, la_code: int, signer: LaPublicKey,
           trusted_keys: Mapping[int, Sequence[LaPublicKey]]) -> None:
    if any(k.raw == signer.raw for k in trusted_keys.get(la_code, ())):
        return
    owners = sorted(la for la, keys in trusted_keys.items() if la != la_code
                    and any(k.raw == signer.raw for k in keys))
    if owners:
        raise PackageNotTrusted(name, "other-la", f"the package says LA {la_code} but is "
                                f"signed by the key registered for LA "
                                f"{', '.join(map(str, owners))} (fingerprint "
                                f"{signer.fingerprint()})")
    raise PackageNotTrusted(name, "unknown-key", f"signed by a key not registered for LA "
                            f"{la_code} or any LA (fingerprint {signer.fingerprint()}); "
                            "register the LA's key with `trialvault la trust` after checking "
                            "its fingerprint with the LA")


def verify_package(source: Path | bytes, identity: str,
                   trusted_keys: Mapping[int, Sequence[LaPublicKey]], *,
                   name: str | None = None,
                   limits: PackageLimits = DEFAULT_PACKAGE_LIMITS) -> VerifiedPackage:
    """Decrypt a package in memory, check its LA signature against `trusted_keys`
    ({LA code: keys registered for it}), then its hashes and row counts, within `limits`.

    The signature is checked before any table is parsed: an untrusted package's Parquet is
    never read. Raises `PackageNotTrusted` (unsigned, unknown key, another LA's key, bad
    signature), `IntegrityError` (hash or count mismatch), `PackageLimitExceeded` or
    `InputFileError` (malformed), each naming the package.
    """
    label = name or source_name(source)
    opened = open_package(source, parse_identity(identity), limits, name=label)
    with opened.archive:
        signer = check_signature(opened)
        la_code = int(opened.manifest["la_code"])
        if signer is None:
            raise PackageNotTrusted(label, "unsigned", "the package is not signed by its LA "
                                    "(prepare it with --sign-key)")
        _trust(label, la_code, signer, trusted_keys)
        if opened.manifest.get("validation_sha256") is None:
            raise PackageNotTrusted(label, "malformed", "a signed manifest must hold the "
                                    "validation CSV's SHA-256")
        tables = read_tables(opened, limits)
        validation = read_validation(opened, limits)
    return VerifiedPackage(manifest=opened.manifest, tables=tables, validation_csv=validation,
                           signer=signer)
