"""LA signing keys: the key file under a passphrase, the public key line, the `la` commands."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.errors import AccessDenied, InputFileError
from trialvault.seal import (
    LaSigningKey,
    load_signing_key,
    parse_public_key,
    read_public_key,
    write_key_file,
)
from trialvault.trust import DEFAULT_KDF, FAST_TEST_KDF

PASSPHRASE = "rochdale keeps its signing key safe"
runner = CliRunner()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, LaSigningKey]:
    key = LaSigningKey.generate(354)
    path = tmp_path_factory.mktemp("keys") / "la-354.key"
    write_key_file(path, key, PASSPHRASE, kdf=FAST_TEST_KDF)
    return path, key


def test_key_file_round_trip_and_no_private_key_in_clear(key_file: tuple[Path, LaSigningKey]
                                                         ) -> None:
    path, key = key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_signing_key(path, PASSPHRASE)
    assert loaded.public == key.public and loaded.la_code == 354
    assert loaded.signer.raw() == key.signer.raw()
    text = path.read_text(encoding="utf-8")
    assert base64.b64encode(key.signer.raw()).decode() not in text
    assert key.signer.raw().hex() not in text
    assert read_public_key(path) == key.public


def test_wrong_passphrase_is_access_denied(key_file: tuple[Path, LaSigningKey]) -> None:
    with pytest.raises(AccessDenied, match="wrong passphrase"):
        load_signing_key(key_file[0], "not the passphrase at all")


@pytest.mark.parametrize("edit", ["public_key", "nonce", "wrapped_private_key"])
def test_an_edited_key_file_does_not_open(key_file: tuple[Path, LaSigningKey], tmp_path: Path,
                                          edit: str) -> None:
    document = json.loads(key_file[0].read_text(encoding="utf-8"))
    if edit == "public_key":  # someone swaps in their own public key: bound as associated data
        document["public_key"] = LaSigningKey.generate(354).public.line()
    else:
        raw = bytearray(base64.b64decode(document[edit]))
        raw[0] ^= 1
        document[edit] = base64.b64encode(bytes(raw)).decode()
    edited = tmp_path / "edited.key"
    edited.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(AccessDenied, match="or the file was edited"):
        load_signing_key(edited, PASSPHRASE)


def test_a_hostile_kdf_cost_is_refused_before_deriving(key_file: tuple[Path, LaSigningKey],
                                                       tmp_path: Path) -> None:
    document = json.loads(key_file[0].read_text(encoding="utf-8"))
    document["kdf"]["memory_cost"] = 1024**4  # 1 PiB of Argon2 memory
    edited = tmp_path / "edited.key"
    edited.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(InputFileError, match="cost out of range"):
        load_signing_key(edited, PASSPHRASE)


def test_the_default_cost_is_the_key_slots(tmp_path: Path) -> None:
    write_key_file(tmp_path / "k.key", LaSigningKey.generate(926), PASSPHRASE)
    kdf = json.loads((tmp_path / "k.key").read_text(encoding="utf-8"))["kdf"]
    assert (kdf["name"], kdf["time_cost"], kdf["memory_cost"]) == (
        "argon2id", DEFAULT_KDF.time_cost, DEFAULT_KDF.memory_cost)


def test_weak_passphrase_and_existing_file_refused(key_file: tuple[Path, LaSigningKey],
                                                   tmp_path: Path) -> None:
    with pytest.raises(AccessDenied, match="at least 12 characters"):
        write_key_file(tmp_path / "k.key", LaSigningKey.generate(354), "short")
    with pytest.raises(AccessDenied, match="too easy to guess"):
        write_key_file(tmp_path / "k.key", LaSigningKey.generate(354), "password1234")
    with pytest.raises(InputFileError, match="never overwritten"):
        write_key_file(key_file[0], LaSigningKey.generate(354), PASSPHRASE)
    assert not (tmp_path / "k.key").exists()


@pytest.mark.parametrize("line", [
    "", "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
    "trialvault-la-ed25519:354:AAAA",
    "trialvault-la-ed25519:abc:" + base64.b64encode(b"k" * 32).decode(),
    "trialvault-la-ed25519:354:" + base64.b64encode(b"k" * 33).decode(),
    "trialvault-la-ed25519:12345:" + base64.b64encode(b"k" * 32).decode(),
])
def test_malformed_public_lines_refused(line: str) -> None:
    with pytest.raises(InputFileError, match="not an LA public key"):
        parse_public_key(line)


def test_public_line_round_trip_and_fingerprint() -> None:
    public = LaSigningKey.generate(877).public
    assert parse_public_key(f"  {public.line()}\n") == public
    assert public.line().startswith("trialvault-la-ed25519:877:")
    assert len(public.fingerprint().split()) == 5


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": "other"}', "{" * 5000])
def test_not_a_key_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.key"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFileError, match="not an LA key file"):
        read_public_key(path)


def test_la_keygen_and_pubkey_commands(tmp_path: Path) -> None:
    env = {"TRIALVAULT_LA_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"}
    out = tmp_path / "la-807.key"
    made = runner.invoke(app, ["la", "keygen", "--la", "807", "--out", str(out)], env=env)
    assert made.exit_code == 0, made.output
    public = read_public_key(out)
    assert public.line() in made.stdout and public.fingerprint() in made.output
    shown = runner.invoke(app, ["la", "pubkey", str(out)])
    assert shown.exit_code == 0 and shown.stdout.strip() == public.line()
    again = runner.invoke(app, ["la", "keygen", "--la", "807", "--out", str(out)], env=env)
    assert again.exit_code == 3 and "never overwritten" in again.output
    bad = runner.invoke(app, ["la", "keygen", "--la", "0", "--out", str(tmp_path / "z.key")],
                        env=env)
    assert bad.exit_code == 3 and "not a DfE LA code" in bad.output


def test_prepare_refuses_another_las_key_and_a_wrong_passphrase_before_reading(
        key_file: tuple[Path, LaSigningKey], tmp_path: Path) -> None:
    """The returns named here do not exist: the key is checked before any of them is read."""
    args = ["prepare", "--la", "807", "--ssda903", str(tmp_path / "none"), "--cin",
            str(tmp_path / "none.xml"), "--recipient",
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
            "--out", str(tmp_path / "807.tvpkg"), "--sign-key", str(key_file[0])]
    other = runner.invoke(app, args, env={"TRIALVAULT_LA_PASSPHRASE": PASSPHRASE})
    assert other.exit_code == 6 and "LA 354's key, not LA 807's" in other.output
    wrong = runner.invoke(app, args, env={"TRIALVAULT_LA_PASSPHRASE": "not the passphrase"})
    assert wrong.exit_code == 4 and "wrong passphrase" in wrong.output
    assert not (tmp_path / "807.tvpkg").exists()
