"""Attacks on the package boundary (issue 14), each tried for real and each refused.

The adversary holds the evaluator's public recipient (it is public: `trialvault pubkey`), so
they can build, encrypt and name a package as they like; or they are an LA whose package is
broken or hostile. `verify_package` is the one entry point ingest uses. Decompression bombs run
in a child process whose peak RSS is measured; fuzzing feeds random bytes, random manifests and
damaged Parquet to the reader and accepts only our own refusals.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyrage
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrage import x25519

from trialvault.errors import TrialvaultError
from trialvault.seal import (
    LaSigningKey,
    PackageLimitExceeded,
    PackageLimits,
    PackageNotTrusted,
    generate_identity,
    read_package,
    verify_package,
    write_package,
)
from trialvault.seal.package import _parquet_bytes
from trialvault.seal.verify import signature_document

MiB = 1024 * 1024
GiB = 1024 * MiB
MANIFEST = {"study_id": "nwd", "spec_version": "2025.1", "la_code": 877,
            "extract_date": "2025-03-31"}
EPISODES = pa.table({"la_code": pa.array([877] * 3, pa.int32()),
                     "child_id": ["C-1", "C-2", "C-3"],
                     "decom": pa.array([20240101, 20240201, 20240301], pa.int32())})
# A refusal must come with at most this much extra memory (the caps are 256 MiB for the CSV and
# 1 GiB per decoded table; the bombs would take 2 GiB and more).
RSS_ALLOWANCE = 400 * MiB


@pytest.fixture(scope="module")
def evaluator() -> tuple[str, str]:
    return generate_identity()


@pytest.fixture(scope="module")
def la_keys() -> dict[int, LaSigningKey]:
    return {la: LaSigningKey.generate(la) for la in (354, 807, 877)}


def _trusted(keys: dict[int, LaSigningKey]) -> dict[int, list[Any]]:
    return {la: [k.public] for la, k in keys.items()}


def _encrypt(plain: bytes, recipient: str) -> bytes:
    return pyrage.encrypt(plain, [x25519.Recipient.from_str(recipient)])


# --- attack: a package labelled as another LA, by anyone holding the recipient ---------------

def test_forged_package_for_la_877_from_anyone_with_the_recipient(
        tmp_path: Path, evaluator: tuple[str, str], la_keys: dict[int, LaSigningKey]) -> None:
    """Issue 14: a package labelled LA 877, a later extract date and an emptied cla_episodes,
    built with only the public recipient, superseded LA 877's data. Now refused: unsigned, or
    signed with the attacker's own key."""
    emptied = {"cla_episodes": EPISODES.slice(0, 0)}
    unsigned = tmp_path / "la-877-forged.tvpkg"
    write_package(unsigned, [evaluator[1]], {**MANIFEST, "extract_date": "2031-03-31"},
                  emptied, b"")
    with pytest.raises(PackageNotTrusted, match=r"la-877-forged\.tvpkg: .*not signed"):
        verify_package(unsigned, evaluator[0], _trusted(la_keys))
    own_key = tmp_path / "la-877-own-key.tvpkg"
    write_package(own_key, [evaluator[1]], {**MANIFEST, "extract_date": "2031-03-31"}, emptied,
                  b"", sign_key=LaSigningKey.generate(877))
    with pytest.raises(PackageNotTrusted, match=r"la-877-own-key\.tvpkg: .*not registered"):
        verify_package(own_key, evaluator[0], _trusted(la_keys))


def test_la_354_cannot_sign_for_la_807(tmp_path: Path, evaluator: tuple[str, str],
                                       la_keys: dict[int, LaSigningKey]) -> None:
    """Issue 14: LA 354's files prepared as `--la 807` replaced LA 807's rows. LA 354's key
    refuses to sign an LA 807 manifest; a hand-made one signed by it is refused at verify."""
    path = tmp_path / "la-807.tvpkg"
    with pytest.raises(TrialvaultError, match="LA 354's, not LA 807's"):
        write_package(path, [evaluator[1]], {**MANIFEST, "la_code": 807}, {"cla_episodes":
                      EPISODES}, b"", sign_key=la_keys[354])
    assert not path.exists()
    # by hand: the manifest says 807, the signature is made with LA 354's registered key
    manifest = {**MANIFEST, "la_code": 807, "format": "trialvault-package/1",
                "package_id": "0d1c5d0e-8f3a-4b7e-9c1a-5a0f0e4b2c11",
                "validation_sha256": hashlib.sha256(b"").hexdigest(),
                "tables": {"cla_episodes": {"rows": 3, "sha256": hashlib.sha256(
                    _parquet_bytes(EPISODES)).hexdigest()}}}
    manifest_bytes = json.dumps(manifest).encode()
    signature = signature_document(LaSigningKey(807, la_keys[354].signer), manifest,
                                   manifest_bytes)
    members = {"manifest.json": manifest_bytes, "signature.json": signature,
               "tables/cla_episodes.parquet": _parquet_bytes(EPISODES),
               "validation/issues.csv": b""}
    path.write_bytes(_encrypt(_zip(members), evaluator[1]))
    with pytest.raises(PackageNotTrusted, match="registered for LA 354") as caught:
        verify_package(path, evaluator[0], _trusted(la_keys))
    assert caught.value.reason == "other-la"


# --- decompression bombs ------------------------------------------------------------------

def _zip(members: dict[str, bytes]) -> bytes:
    """A plain ZIP of stored members (zipfile, like the writer)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _hand_zip(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A ZIP written byte by byte, as an attacker would: (name, raw deflate or stored data,
    method, CRC-32, the uncompressed size to *declare*) per member."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, method, crc, declared in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                              len(data), declared, len(encoded), 0) + encoded + data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21,
                                  crc, len(data), declared, len(encoded), 0, 0, 0, 0, 0,
                                  offset) + encoded)
    start, directory = out.tell(), central.getvalue()
    out.write(directory)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members),
                          len(directory), start, 0))
    return out.getvalue()


def _zeros_deflated(blocks: int, block: int = 16 * MiB) -> tuple[bytes, int, int]:
    """(raw deflate stream, CRC-32, size) of `blocks` x `block` zero bytes, built in about a
    second: after a full flush the compressor forgets its history, so every block of zeros
    compresses to the same bytes and one compressed block can be repeated."""
    zeros = bytes(block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = one * blocks + compressor.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(blocks):
        crc = zlib.crc32(zeros, crc)
    return stream, crc, blocks * block


_CHILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from trialvault.seal import parse_public_key, verify_package

    def kib(field):  # VmRSS: resident now; VmHWM: this process image's peak (reset by exec,
        # unlike getrusage's ru_maxrss, which keeps the forking parent's peak)
        return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0])

    identity, line = sys.argv[2], sys.argv[3]
    key = parse_public_key(line)
    base = kib("VmRSS")
    outcome = {"error": None, "rule": None, "message": None}
    try:
        verify_package(Path(sys.argv[1]), identity, {key.la_code: [key]})
    except Exception as exc:
        outcome = {"error": type(exc).__name__, "rule": getattr(exc, "rule", None),
                   "message": str(exc)}
    outcome.update(base_kib=base, peak_kib=kib("VmHWM"))
    print(json.dumps(outcome))
""")


def _verify_in_child(path: Path, identity: str, key: LaSigningKey) -> dict[str, Any]:
    """verify_package in a fresh process: its peak RSS is the reader's, nothing else's."""
    done = subprocess.run([sys.executable, "-c", _CHILD, str(path), identity,
                           key.public.line()], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["extra_bytes"] = (result["peak_kib"] - result["base_kib"]) * 1024
    return result


def _signed_members(key: LaSigningKey, tables: dict[str, bytes], rows: dict[str, int],
                    csv_sha256: str) -> dict[str, bytes]:
    manifest = {**MANIFEST, "la_code": key.la_code, "format": "trialvault-package/1",
                "package_id": "3b7d6a52-1c0e-4f8e-8a61-2f0c9d1e5b44",
                "validation_sha256": csv_sha256,
                "tables": {t: {"rows": rows[t], "sha256": hashlib.sha256(d).hexdigest()}
                           for t, d in tables.items()}}
    manifest_bytes = json.dumps(manifest).encode()
    return {"manifest.json": manifest_bytes,
            "signature.json": signature_document(key, manifest, manifest_bytes),
            **{f"tables/{t}.parquet": d for t, d in tables.items()}}


@pytest.mark.parametrize("declared", ["honest", "lying"])
def test_2_gib_validation_csv_in_a_2_mb_package(tmp_path: Path, evaluator: tuple[str, str],
                                                la_keys: dict[int, LaSigningKey],
                                                declared: str) -> None:
    """Issue 14: a 2 MB package holding a 2 GiB validation/issues.csv took the reader to
    4.1 GiB. Refused with bounded memory whether the ZIP states the size or lies about it."""
    stream, crc, size = _zeros_deflated(128)
    key = la_keys[877]
    members = _signed_members(key, {"cla_episodes": _parquet_bytes(EPISODES)},
                              {"cla_episodes": 3}, hashlib.sha256(b"").hexdigest())
    entries = [(n, d, 0, zlib.crc32(d), len(d)) for n, d in members.items()]
    entries.append(("validation/issues.csv", stream, 8, crc,
                    size if declared == "honest" else 1000))
    path = tmp_path / "bomb.tvpkg"
    path.write_bytes(_encrypt(_hand_zip(entries), evaluator[1]))
    assert path.stat().st_size < 3 * MiB and size == 2 * GiB
    result = _verify_in_child(path, evaluator[0], key)
    if declared == "honest":
        assert result["error"] == "PackageLimitExceeded", result
        assert result["rule"] == "limit:max_validation_csv_bytes"
        assert "bomb.tvpkg" in result["message"] and "validation/issues.csv" in result["message"]
    else:  # the declared size bounds what is inflated; the CRC then fails
        assert result["error"] == "IntegrityError", result
        assert "damaged ZIP member" in result["message"]
    assert result["extra_bytes"] < RSS_ALLOWANCE, result


def test_1m_parquet_rows_in_a_tiny_file(tmp_path: Path, evaluator: tuple[str, str],
                                        la_keys: dict[int, LaSigningKey]) -> None:
    """Issue 14: a 110 KB package decoded to 1M Parquet rows and 2.1 GiB. A million rows of
    one 4 KiB string (dictionary-encoded: a few KB on disk) would decode to 4 GiB; refused
    while the strings are still encoded."""
    rows = 1_000_000
    value = "x" * 4096
    table = pa.table({"la_code": pa.array(np.full(rows, 877, np.int32)),
                      "child_id": pa.DictionaryArray.from_arrays(
                          pa.array(np.zeros(rows, np.int32)), pa.array([value]))})
    data = _parquet_bytes(table)
    assert len(data) < 1 * MiB and rows * len(value) > 2 * GiB
    key = la_keys[877]
    members = _signed_members(key, {"cla_episodes": data}, {"cla_episodes": rows},
                              hashlib.sha256(b"").hexdigest())
    members["validation/issues.csv"] = b""
    path = tmp_path / "rows.tvpkg"
    path.write_bytes(_encrypt(_zip(members), evaluator[1]))
    result = _verify_in_child(path, evaluator[0], key)
    assert result["error"] == "PackageLimitExceeded", result
    assert result["rule"] == "limit:max_table_decoded_bytes"
    assert "rows.tvpkg:tables/cla_episodes.parquet" in result["message"]
    assert result["extra_bytes"] < RSS_ALLOWANCE, result


def test_too_many_rows_refused_from_the_footer(tmp_path: Path, evaluator: tuple[str, str]
                                               ) -> None:
    table = pa.table({"la_code": pa.array(np.zeros(50_000, np.int32))})
    path = tmp_path / "many.tvpkg"
    write_package(path, [evaluator[1]], MANIFEST, {"cla_episodes": table}, b"")
    limits = PackageLimits(max_table_rows=10_000)
    with pytest.raises(PackageLimitExceeded, match="50000 rows, above the limit of 10000"):
        read_package(path, evaluator[0], limits=limits)


def test_oversized_package_file_refused_before_reading(tmp_path: Path,
                                                       evaluator: tuple[str, str]) -> None:
    path = tmp_path / "big.tvpkg"
    write_package(path, [evaluator[1]], MANIFEST, {"cla_episodes": EPISODES}, b"x" * 5000)
    limits = PackageLimits(max_package_bytes=1000)
    with pytest.raises(PackageLimitExceeded, match=r"big\.tvpkg, rule limit:max_package_bytes: "
                       r"the package file is \d+ bytes, above the limit of 1000"):
        read_package(path, evaluator[0], limits=limits)


def test_deeply_nested_manifest_refused(tmp_path: Path, evaluator: tuple[str, str]) -> None:
    members = {"manifest.json": b"[" * 100_000 + b"]" * 100_000, "validation/issues.csv": b""}
    path = tmp_path / "deep.tvpkg"
    path.write_bytes(_encrypt(_zip(members), evaluator[1]))
    with pytest.raises(TrialvaultError, match=r"deep\.tvpkg: manifest\.json is not valid JSON"):
        read_package(path, evaluator[0])
    members["manifest.json"] = json.dumps({"x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]
                                                 ]]]]]]]]]]]]]]]]]]]]}).encode()
    path.write_bytes(_encrypt(_zip(members), evaluator[1]))
    with pytest.raises(PackageLimitExceeded, match="nests deeper"):
        read_package(path, evaluator[0])


# --- fuzzing: only our own refusals, no hang, bounded memory ------------------------------

@contextmanager
def _no_hang(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError(f"the reader took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _only_our_refusals(source: bytes, identity: str, trusted: dict[int, list[Any]]) -> None:
    """Both readers refuse `source` with our own error (naming the package) or accept it; in
    under 20 s, with less than 64 MiB of Python allocations and no Arrow memory kept."""
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    try:
        with _no_hang(20):
            for reader in (lambda: verify_package(source, identity, trusted, name="fuzz.tvpkg"),
                           lambda: read_package(source, identity, name="fuzz.tvpkg")):
                try:
                    reader()
                except TrialvaultError as exc:
                    assert "fuzz.tvpkg" in str(exc) or "package" in str(exc), str(exc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB
    assert pa.total_allocated_bytes() <= arrow_before + MiB


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(evaluator: tuple[str, str], la_keys: dict[int, LaSigningKey],
                      data: bytes) -> None:
    _only_our_refusals(data, evaluator[0], _trusted(la_keys))
    _only_our_refusals(b"age-encryption.org/v1\n" + data, evaluator[0], _trusted(la_keys))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_inside_valid_encryption(evaluator: tuple[str, str],
                                              la_keys: dict[int, LaSigningKey],
                                              data: bytes) -> None:
    _only_our_refusals(_encrypt(data, evaluator[1]), evaluator[0], _trusted(la_keys))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)
_CONSISTENT_TABLES = {"cla_episodes": {"rows": 3, "sha256": hashlib.sha256(
    _parquet_bytes(EPISODES)).hexdigest()}}
la_codes = st.one_of(st.sampled_from([877, 354, 807, 0, -1, 10_000, True]), json_values)
manifests = st.fixed_dictionaries(
    {"format": st.one_of(st.just("trialvault-package/1"), json_values),
     "study_id": st.one_of(st.just("nwd"), json_values),
     "spec_version": st.one_of(st.just("2025.1"), json_values),
     "la_code": la_codes,
     "extract_date": st.one_of(st.sampled_from(["2025-03-31", "2025-02-30", "31/03/2025"]),
                               json_values),
     "package_id": st.one_of(st.just("7f1d2c3b-4a5e-4f60-8b71-9c0d1e2f3a4b"), st.uuids().map(
         str), json_values),
     "tables": st.one_of(st.just(_CONSISTENT_TABLES), st.dictionaries(
         st.sampled_from(["cla_episodes", "children", "Bad Name", ""]),
         st.one_of(st.fixed_dictionaries({"rows": st.one_of(st.integers(-5, 5), json_values),
                                          "sha256": st.one_of(st.just("0" * 64),
                                                              json_values)}),
                   json_values), max_size=3), json_values),
     "validation_sha256": st.one_of(st.just(hashlib.sha256(b"").hexdigest()), json_values)},
    optional={"extra": json_values})


@FUZZ
@given(manifest=manifests, sign=st.booleans(),
       members=st.one_of(
           st.just({"tables/cla_episodes.parquet", "validation/issues.csv"}),
           st.sets(st.sampled_from(["tables/cla_episodes.parquet", "tables/children.parquet",
                                    "validation/issues.csv", "../escape", "signature.json"]))))
def test_random_valid_looking_manifests(evaluator: tuple[str, str],
                                        la_keys: dict[int, LaSigningKey],
                                        manifest: dict[str, Any], sign: bool,
                                        members: set[str]) -> None:
    manifest_bytes = json.dumps(manifest).encode()
    contents = {"manifest.json": manifest_bytes}
    for member in members:
        contents[member] = _parquet_bytes(EPISODES) if member.endswith(".parquet") else b""
    if sign and isinstance(manifest.get("la_code"), int) and manifest["la_code"] in la_keys:
        contents["signature.json"] = signature_document(
            la_keys[manifest["la_code"]], {"la_code": manifest["la_code"],
                                           "package_id": manifest["package_id"]},
            manifest_bytes)
    _only_our_refusals(_encrypt(_zip(contents), evaluator[1]), evaluator[0], _trusted(la_keys))


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1,
                     max_size=8))
def test_damaged_parquet_behind_a_valid_signature(evaluator: tuple[str, str],
                                                  la_keys: dict[int, LaSigningKey],
                                                  cuts: list[tuple[int, int]]) -> None:
    """A trusted LA's package whose Parquet bytes are damaged (the hash is recomputed, so the
    parser itself meets the bytes): refused as unreadable, never a crash."""
    data = bytearray(_parquet_bytes(EPISODES))
    for position, byte in cuts:
        data[position % len(data)] = byte
    key = la_keys[877]
    members = _signed_members(key, {"cla_episodes": bytes(data)}, {"cla_episodes": 3},
                              hashlib.sha256(b"").hexdigest())
    members["validation/issues.csv"] = b""
    _only_our_refusals(_encrypt(_zip(members), evaluator[1]), evaluator[0], _trusted(la_keys))
