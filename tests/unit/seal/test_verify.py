"""Signed packages: a package verifies only when a key trusted for its LA signed its manifest."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyrage
import pytest
from pyrage import x25519

from trialvault.errors import InputFileError, IntegrityError
from trialvault.seal import (
    LaSigningKey,
    PackageNotTrusted,
    generate_identity,
    read_package,
    verify_package,
    write_package,
)
from trialvault.seal.package import _parquet_bytes

MANIFEST = {"study_id": "nwd", "spec_version": "2025.1", "la_code": 877,
            "extract_date": "2025-03-31"}
TABLES = {"children": pa.table({"la_code": pa.array([877, 877], pa.int32()),
                                "child_id": ["C-ONE", "C-TWO"]})}
CSV = b"rule,file,line\n101,header.csv,2\n"


@pytest.fixture(scope="module")
def evaluator() -> tuple[str, str]:
    return generate_identity()


@pytest.fixture(scope="module")
def keys() -> dict[int, LaSigningKey]:
    return {la: LaSigningKey.generate(la) for la in (354, 877)}


def _trusted(keys: dict[int, LaSigningKey]) -> dict[int, list]:
    return {la: [k.public] for la, k in keys.items()}


def _signed(tmp_path: Path, evaluator: tuple[str, str], key: LaSigningKey | None,
            name: str = "la-877.tvpkg", **manifest: object) -> Path:
    path = tmp_path / name
    write_package(path, [evaluator[1]], {**MANIFEST, **manifest}, TABLES, CSV, sign_key=key)
    return path


def _rebuild(path: Path, evaluator: tuple[str, str],
             change: Callable[[dict[str, bytes]], None]) -> None:
    """What anyone holding the public recipient can do: open, change members, re-encrypt."""
    plain = pyrage.decrypt(path.read_bytes(), [x25519.Identity.from_str(evaluator[0])])
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    change(members)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    path.write_bytes(pyrage.encrypt(buffer.getvalue(),
                                    [x25519.Recipient.from_str(evaluator[1])]))


def test_a_signed_package_verifies(tmp_path: Path, evaluator: tuple[str, str],
                                   keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, keys[877])
    verified = verify_package(path, evaluator[0], _trusted(keys))
    assert verified.signer == keys[877].public and verified.la_code == 877
    assert verified.tables["children"].equals(TABLES["children"])
    assert verified.validation_csv == CSV
    assert verified.manifest["validation_sha256"] == hashlib.sha256(CSV).hexdigest()
    # the same bytes, given as bytes with a name
    again = verify_package(path.read_bytes(), evaluator[0], _trusted(keys), name="p.tvpkg")
    assert again.package_id == verified.package_id
    # read_package (no trust asked) reads a signed package too
    assert read_package(path, evaluator[0]).package_id == verified.package_id


def test_unsigned_package_refused(tmp_path: Path, evaluator: tuple[str, str],
                                  keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, None)
    with pytest.raises(PackageNotTrusted, match=r"^la-877\.tvpkg: .*not signed") as caught:
        verify_package(path, evaluator[0], _trusted(keys))
    assert caught.value.reason == "unsigned" and caught.value.exit_code == 5


def test_unknown_key_refused(tmp_path: Path, evaluator: tuple[str, str],
                             keys: dict[int, LaSigningKey]) -> None:
    stranger = LaSigningKey.generate(877)
    path = _signed(tmp_path, evaluator, stranger)
    with pytest.raises(PackageNotTrusted, match=r"la-877\.tvpkg: signed by a key not "
                                                r"registered") as caught:
        verify_package(path, evaluator[0], _trusted(keys))
    assert caught.value.reason == "unknown-key"
    assert stranger.public.fingerprint() in str(caught.value)


def test_key_of_another_la_refused(tmp_path: Path, evaluator: tuple[str, str],
                                   keys: dict[int, LaSigningKey]) -> None:
    # LA 354's analyst labels a package LA 877 and signs it with a key whose line claims 877
    # but whose raw key is LA 354's registered one: the registration decides, not the label.
    disguised = LaSigningKey(877, keys[354].signer)
    path = _signed(tmp_path, evaluator, disguised)
    with pytest.raises(PackageNotTrusted, match="signed by the key registered for LA 354"
                       ) as caught:
        verify_package(path, evaluator[0], _trusted(keys))
    assert caught.value.reason == "other-la"


def test_writer_refuses_another_las_key(tmp_path: Path, evaluator: tuple[str, str],
                                        keys: dict[int, LaSigningKey]) -> None:
    with pytest.raises(InputFileError, match="signing key is LA 354's, not LA 877's"):
        _signed(tmp_path, evaluator, keys[354])
    assert list(tmp_path.iterdir()) == []


def test_manifest_changed_after_signing(tmp_path: Path, evaluator: tuple[str, str],
                                        keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, keys[877])

    def later_extract(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["extract_date"] = "2030-01-01"
        members["manifest.json"] = json.dumps(manifest).encode()

    _rebuild(path, evaluator, later_extract)
    with pytest.raises(PackageNotTrusted, match="signature is for another manifest") as caught:
        verify_package(path, evaluator[0], _trusted(keys))
    assert caught.value.reason == "bad-signature"


def test_table_emptied_after_signing(tmp_path: Path, evaluator: tuple[str, str],
                                     keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, keys[877])
    empty = _parquet_bytes(TABLES["children"].slice(0, 0))

    def swap_table(members: dict[str, bytes]) -> None:
        members["tables/children.parquet"] = empty

    _rebuild(path, evaluator, swap_table)
    with pytest.raises(IntegrityError, match=r"children\.parquet: SHA-256 differs"):
        verify_package(path, evaluator[0], _trusted(keys))

    def and_fix_the_manifest(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        manifest["tables"]["children"] = {"rows": 0, "sha256": hashlib.sha256(empty).hexdigest()}
        members["manifest.json"] = json.dumps(manifest).encode()

    _rebuild(path, evaluator, and_fix_the_manifest)
    with pytest.raises(PackageNotTrusted, match="another manifest"):
        verify_package(path, evaluator[0], _trusted(keys))


def test_validation_csv_changed_after_signing(tmp_path: Path, evaluator: tuple[str, str],
                                              keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, keys[877])

    def edit(members: dict[str, bytes]) -> None:
        members["validation/issues.csv"] = b"rule,file,line\n"

    _rebuild(path, evaluator, edit)
    with pytest.raises(IntegrityError, match=r"validation/issues\.csv: SHA-256 differs"):
        verify_package(path, evaluator[0], _trusted(keys))


def test_signature_moved_from_another_package(tmp_path: Path, evaluator: tuple[str, str],
                                              keys: dict[int, LaSigningKey]) -> None:
    real = _signed(tmp_path, evaluator, keys[877], name="real.tvpkg")
    forged = _signed(tmp_path, evaluator, None, name="forged.tvpkg", extract_date="2030-01-01")
    plain = pyrage.decrypt(real.read_bytes(), [x25519.Identity.from_str(evaluator[0])])
    with zipfile.ZipFile(io.BytesIO(plain)) as archive:
        signature = archive.read("signature.json")

    _rebuild(forged, evaluator, lambda members: members.update({"signature.json": signature}))
    with pytest.raises(PackageNotTrusted, match="another manifest"):
        verify_package(forged, evaluator[0], _trusted(keys))


@pytest.mark.parametrize("document", [
    b"{}", b"[]", b"not json", b'{"format": "trialvault-package-signature/1"}',
    b'{"format": "trialvault-package-signature/1", "signer": "age1x", "signed": {}, '
    b'"signature": "AAAA"}',
])
def test_malformed_signature_document(tmp_path: Path, evaluator: tuple[str, str],
                                      keys: dict[int, LaSigningKey], document: bytes) -> None:
    path = _signed(tmp_path, evaluator, keys[877])
    _rebuild(path, evaluator, lambda members: members.update({"signature.json": document}))
    with pytest.raises((PackageNotTrusted, InputFileError), match=r"la-877\.tvpkg"):
        verify_package(path, evaluator[0], _trusted(keys))
    with pytest.raises((PackageNotTrusted, InputFileError)):
        read_package(path, evaluator[0])  # a broken signature is never ignored


def test_forged_signature_bytes(tmp_path: Path, evaluator: tuple[str, str],
                                keys: dict[int, LaSigningKey]) -> None:
    path = _signed(tmp_path, evaluator, keys[877])

    def flip(members: dict[str, bytes]) -> None:
        document = json.loads(members["signature.json"])
        sig = bytearray(document["signature"].encode())
        sig[5] = ord("A") if sig[5] != ord("A") else ord("B")
        document["signature"] = sig.decode()
        members["signature.json"] = json.dumps(document).encode()

    _rebuild(path, evaluator, flip)
    with pytest.raises(PackageNotTrusted, match="does not verify") as caught:
        verify_package(path, evaluator[0], _trusted(keys))
    assert caught.value.reason == "bad-signature"
