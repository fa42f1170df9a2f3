"""Sealed packages: round trip, and every way a package can be damaged or mis-addressed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyrage
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrage import x25519

from trialvault.errors import InputFileError, IntegrityError
from trialvault.seal import (
    PackageLimits,
    generate_identity,
    read_package,
    recipient_of,
    write_package,
)
from trialvault.seal.package import _parquet_bytes, _zip_bytes

MANIFEST = {"study_id": "nwd", "spec_version": "2025.1", "la_code": 354,
            "extract_date": "2025-03-31", "validation_summary": {"E101": {"error": 2}}}


def _tables() -> dict[str, pa.Table]:
    return {
        "children": pa.table({"la_code": pa.array([354, 354], pa.int32()),
                              "child_id": ["C-ALPHA-1", "C-BETA-2"],
                              "sex": ["1", "2"],
                              "source_file": ["header.csv"] * 2,
                              "source_line": pa.array([2, 3], pa.int32())}),
        "missing": pa.table({"la_code": pa.array([354], pa.int32()),
                             "child_id": ["C-ALPHA-1"],
                             "missing_start_date": [dt.date(2021, 5, 3)]}),
    }


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return generate_identity()


def test_round_trip_fills_manifest(tmp_path: Path, keypair: tuple[str, str]) -> None:
    secret, recipient = keypair
    path = tmp_path / "rochdale.tvpkg"
    package_id = write_package(path, [recipient], MANIFEST, _tables(), b"rule,file,line\n")
    contents = read_package(path, secret)
    assert contents.package_id == package_id
    assert contents.la_code == 354 and contents.extract_date == dt.date(2025, 3, 31)
    assert contents.manifest["tables"]["children"]["rows"] == 2
    assert contents.manifest["tables"]["missing"]["rows"] == 1
    assert len(contents.manifest["tables"]["children"]["sha256"]) == 64
    assert contents.manifest["validation_summary"] == {"E101": {"error": 2}}
    assert contents.tables["children"].equals(_tables()["children"])
    assert contents.validation_csv == b"rule,file,line\n"
    assert recipient_of(secret) == recipient
    # Only ciphertext on disk: neither a child code nor a table name is readable.
    raw = path.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n")
    assert b"C-ALPHA-1" not in raw and b"manifest" not in raw
    assert [p.name for p in tmp_path.iterdir()] == ["rochdale.tvpkg"]


def test_two_recipients_both_decrypt(tmp_path: Path) -> None:
    (s1, r1), (s2, r2) = generate_identity(), generate_identity()
    path = tmp_path / "p.tvpkg"
    write_package(path, [r1, r2], MANIFEST, _tables(), b"")
    assert read_package(path, s1).package_id == read_package(path, s2).package_id


def test_wrong_identity_refused(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    write_package(path, [keypair[1]], MANIFEST, _tables(), b"")
    other, _ = generate_identity()
    with pytest.raises(InputFileError, match=r"p\.tvpkg: package is not encrypted to this key"):
        read_package(path, other)


def test_truncated_package_refused(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    write_package(path, [keypair[1]], MANIFEST, _tables(), b"")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(IntegrityError, match="truncated or corrupted"):
        read_package(path, keypair[0])
    path.write_bytes(data[:30])
    with pytest.raises((InputFileError, IntegrityError)):
        read_package(path, keypair[0])


def test_flipped_byte_refused(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    write_package(path, [keypair[1]], MANIFEST, _tables(), b"")
    data = bytearray(path.read_bytes())
    data[-50] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"p\.tvpkg"):
        read_package(path, keypair[0])


def test_not_an_age_file(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    path.write_bytes(b"PK\x03\x04 plain zip")
    with pytest.raises(InputFileError, match="not an age-encrypted package"):
        read_package(path, keypair[0])
    with pytest.raises(InputFileError, match="cannot read package"):
        read_package(tmp_path / "absent.tvpkg", keypair[0])


def _seal_raw(path: Path, recipient: str, manifest: dict, members: dict[str, bytes]) -> None:
    """Encrypt a hand-built archive: lets a test plant a wrong hash behind valid encryption."""
    plain = _zip_bytes(manifest, members, b"")
    path.write_bytes(pyrage.encrypt(plain, [x25519.Recipient.from_str(recipient)]))


def test_hash_mismatch_detected(tmp_path: Path, keypair: tuple[str, str]) -> None:
    data = _parquet_bytes(_tables()["children"])
    manifest = {**MANIFEST, "format": "trialvault-package/1",
                "package_id": "5a1b0c6e-3f9e-4d7a-9a57-0e6f1d3c2b10",
                "tables": {"children": {"rows": 2, "sha256": "0" * 64}}}
    path = tmp_path / "p.tvpkg"
    _seal_raw(path, keypair[1], manifest, {"tables/children.parquet": data})
    with pytest.raises(IntegrityError, match=r"children\.parquet: SHA-256 differs"):
        read_package(path, keypair[0])
    manifest["tables"]["children"] = {"rows": 3, "sha256": hashlib.sha256(data).hexdigest()}
    _seal_raw(path, keypair[1], manifest, {"tables/children.parquet": data})
    with pytest.raises(IntegrityError, match="2 rows, manifest says 3"):
        read_package(path, keypair[0])
    manifest["tables"]["children"]["rows"] = 2
    _seal_raw(path, keypair[1], manifest, {"tables/children.parquet": data,
                                           "../evil.sh": b"x"})
    with pytest.raises(InputFileError, match="unexpected member"):
        read_package(path, keypair[0])
    _seal_raw(path, keypair[1], {**manifest, "tables": {}}, {"tables/children.parquet": data})
    with pytest.raises(IntegrityError, match="differ from the manifest"):
        read_package(path, keypair[0])


def test_zip_bomb_limit(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    write_package(path, [keypair[1]], MANIFEST, _tables(), b"x" * 10_000)
    with pytest.raises(InputFileError, match="above the limit"):
        read_package(path, keypair[0], limits=PackageLimits(max_unpacked_bytes=1000))
    with pytest.raises(InputFileError, match=r"validation/issues\.csv is 10000 bytes, above"):
        read_package(path, keypair[0], limits=PackageLimits(max_validation_csv_bytes=1000))


def test_write_refusals_leave_nothing(tmp_path: Path, keypair: tuple[str, str]) -> None:
    path = tmp_path / "p.tvpkg"
    with pytest.raises(InputFileError, match="not an age X25519 public key"):
        write_package(path, ["age1notakey"], MANIFEST, _tables(), b"")
    with pytest.raises(InputFileError, match="no recipient"):
        write_package(path, [], MANIFEST, _tables(), b"")
    with pytest.raises(InputFileError, match=r"lacks required key\(s\) \['la_code'\]"):
        write_package(path, [keypair[1]], {k: v for k, v in MANIFEST.items() if k != "la_code"},
                      _tables(), b"")
    with pytest.raises(InputFileError, match="extract_date is not an ISO date"):
        write_package(path, [keypair[1]], {**MANIFEST, "extract_date": "31/03/2025"},
                      _tables(), b"")
    with pytest.raises(InputFileError, match="not a lower-case identifier"):
        write_package(path, [keypair[1]], MANIFEST, {"Bad Name": _tables()["missing"]}, b"")
    with pytest.raises(InputFileError, match="identity is not"):
        read_package(path, "AGE-SECRET-KEY-nope")
    assert list(tmp_path.iterdir()) == []


def test_failure_during_write_leaves_old_file(tmp_path: Path, keypair: tuple[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.tvpkg"
    first = write_package(path, [keypair[1]], MANIFEST, _tables(), b"")
    before = path.read_bytes()

    def boom(src: str, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("trialvault.files.os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_package(path, [keypair[1]], MANIFEST, _tables(), b"")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["p.tvpkg"]
    assert read_package(path, keypair[0]).package_id == first


_codes = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(codes=st.lists(_codes, max_size=30),
       months=st.lists(st.one_of(st.none(), st.integers(0, 400)), max_size=30),
       csv=st.binary(max_size=200))
def test_round_trip_property(tmp_path: Path, keypair: tuple[str, str], codes: list[str],
                             months: list[int | None], csv: bytes) -> None:
    n = min(len(codes), len(months))
    table = pa.table({"child_id": pa.array(codes[:n], pa.string()),
                      "age_months": pa.array(months[:n], pa.int32())})
    path = tmp_path / "h.tvpkg"
    package_id = write_package(path, [keypair[1]], MANIFEST, {"children": table}, csv)
    contents = read_package(path, keypair[0])
    assert contents.package_id == package_id
    assert contents.tables["children"].equals(table)
    assert contents.validation_csv == csv
    assert json.loads(json.dumps(contents.manifest)) == contents.manifest
