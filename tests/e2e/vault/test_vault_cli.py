"""The vault commands end to end through Typer, on a real vault and real packages."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from trialvault.seal import commands as seal_commands
from trialvault.seal import write_package
from trialvault.seal.keys import LaSigningKey
from trialvault.trust import Keyring
from trialvault.vault import FAST_TEST_KDF, commands, init_vault
from trialvault.vault.schema import package_columns
from trialvault.vault.store import connect_file

PW = "pw-of-the-data-manager"


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    # Only this stage's commands: the e2e test does not depend on other stages importing.
    app = typer.Typer()
    commands.register(app)
    seal_commands.register(app)
    return app


def _children(la: int, n: int) -> dict[str, pa.Table]:
    cols = {}
    for name, kind in package_columns("children"):
        if name == "la_code":
            cols[name] = pa.array(np.full(n, la, np.int32))
        elif name == "child_id":
            cols[name] = pa.array([f"ZQXJ{la}-{i}" for i in range(n)])
        elif name == "source_line":
            cols[name] = pa.array(np.arange(2, n + 2, dtype=np.int32))
        elif kind == "VARCHAR":
            cols[name] = pa.array(["1"] * n)
        elif kind == "INTEGER":
            cols[name] = pa.array(np.full(n, 150, np.int32))
        elif kind == "BOOLEAN":
            cols[name] = pa.array([False] * n)
        else:
            cols[name] = pa.array([dt.date(2025, 3, 31)] * n)
    return {"children": pa.table(cols)}


def test_vault_commands(app: typer.Typer, tmp_path: Path, nwd_study_path: Path) -> None:
    runner = CliRunner()
    vault = tmp_path / "vault"
    env = {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": PW,
           "TRIALVAULT_STUDY": str(nwd_study_path), "TRIALVAULT_USER": "dm"}
    ana_pw, new_pw = "ana reads the trial data", "a brand new passphrase here"

    def run(*args: str, code: int = 0, **extra: str) -> str:
        result = runner.invoke(app, list(args), env={**env, **extra})
        assert result.exit_code == code, (args, result.output)
        return result.output

    # The vault is made with the cheap test KDF; `init` itself is checked in its own test.
    recipient = init_vault(vault, "dm", PW, kdf_params=FAST_TEST_KDF, study_id="nwd")
    assert run("pubkey").strip() == recipient
    run("users", "add", "ana", "--role", "analyst", TRIALVAULT_NEW_PASSWORD=ana_pw)
    assert "ana" in run("users", "list") and "analyst" in run("users", "list")
    run("users", "add", "x", "--role", "boss", code=4, TRIALVAULT_NEW_PASSWORD="x")

    pkgs = []
    for la in (354, 807):
        key = LaSigningKey.generate(la)  # made at the LA; its public line sent to the vault
        path = tmp_path / f"{la}.tvpkg"
        write_package(path, [recipient], {"study_id": "nwd", "spec_version": "2025.1",
                                          "la_code": la, "extract_date": "2025-03-31",
                                          "validation_summary": {"errors": 0}},
                      _children(la, 12), b"", sign_key=key)
        pkgs.append(str(path))
        if la == 354:
            assert "not registered for LA 354" in run("ingest", str(path), "--keep-packages",
                                                      code=5)
        assert key.public.fingerprint() in run("la", "trust", key.public.line(), "--la",
                                               str(la))
    out = run("ingest", *pkgs, "--keep-packages")  # re-ingested below
    assert out.count("ingested") == 2 and "ZQXJ" not in out
    assert "rule replay" in run("ingest", pkgs[0], "--keep-packages", code=3)
    assert "needs role data-manager" in run("ingest", pkgs[0], "--user", "ana", code=4,
                                            TRIALVAULT_PASSWORD=ana_pw)
    status = run("status")
    assert "354" in status and "807" in status and "dm (data-manager)" in status
    assert "ZQXJ" not in status
    run("status", code=4, TRIALVAULT_PASSWORD="wrong")
    run("status", "--user", "ana", TRIALVAULT_PASSWORD=ana_pw)
    assert "needs role data-manager or dpo" in run("audit", "show", "--user", "ana", code=4,
                                                   TRIALVAULT_PASSWORD=ana_pw)
    run("passwd", "--user", "ana", TRIALVAULT_PASSWORD=ana_pw, TRIALVAULT_NEW_PASSWORD=new_pw)
    run("status", "--user", "ana", TRIALVAULT_PASSWORD=new_pw)
    run("rekey", "--user", "ana", code=4, TRIALVAULT_PASSWORD=new_pw)
    run("rekey", code=6)  # not at a terminal: needs --yes
    assert "re-keyed" in run("rekey", "--yes")
    assert "would remove ana" in run("users", "remove", "ana", "--dry-run")
    run("users", "remove", "ana", "--no-rekey", "--yes")
    run("status", "--user", "ana", code=4, TRIALVAULT_PASSWORD=new_pw)
    shown = run("audit", "show", "--last", "50")
    assert "ingest" in shown and "rekey" in shown and PW not in shown
    assert "ok" in run("audit", "verify")

    # Tamper with one entry inside the database (an insider holding the key)...
    key = Keyring.load(vault).unlock("dm", PW).domain_keys["audit"]
    con = connect_file(vault / "audit.duckdb", key, temp_dir=vault / "tmp", alias="audit")
    con.execute("UPDATE audit.entries SET user_name = 'ana' WHERE seq = 5")
    con.close()
    out = run("audit", "verify", code=5)
    assert "entry 5 (" in out and "content does not match its hash" in out
    con = connect_file(vault / "audit.duckdb", key, temp_dir=vault / "tmp", alias="audit")
    con.execute("UPDATE audit.entries SET user_name = 'dm' WHERE seq = 5")
    con.close()
    assert "ok" in run("audit", "verify")
    # ...and with audit.chain.
    chain = vault / "audit.chain"
    lines = chain.read_text().splitlines()
    chain.write_text("\n".join(lines[:3] + lines[4:]) + "\n")
    assert "audit chain does not verify" in run("audit", "verify", code=5)


def test_init_and_pubkey(app: typer.Typer, tmp_path: Path, nwd_study_path: Path) -> None:
    runner = CliRunner()
    env = {"TRIALVAULT_VAULT": str(tmp_path / "v"), "TRIALVAULT_PASSWORD": PW,
           "TRIALVAULT_STUDY": str(nwd_study_path), "TRIALVAULT_USER": ""}
    result = runner.invoke(app, ["init"], env=env)
    assert result.exit_code == 2 and "first user" in result.output
    result = runner.invoke(app, ["init", "--user", "dm"], env=env)
    assert result.exit_code == 0, result.output
    pub = runner.invoke(app, ["pubkey"], env=env)
    assert pub.exit_code == 0 and pub.output.strip() in result.output.replace("\n", "")
    again = runner.invoke(app, ["init", "--user", "dm"], env=env)
    assert again.exit_code == 1 and "already exists" in again.output


def test_every_command_documents_an_example(app: typer.Typer) -> None:
    runner = CliRunner()
    names = ["init", "pubkey", "ingest", "status", "rekey", "passwd", "users list",
             "users add", "users remove", "audit show", "audit verify"]
    for name in names:
        result = runner.invoke(app, [*name.split(), "--help"])
        assert result.exit_code == 0 and "Example:" in result.output, name


def test_a_held_vault_exits_7_naming_the_holder(app: typer.Typer, tmp_path: Path,
                                                nwd_study_path: Path) -> None:
    import time

    from trialvault.vault.session import set_default_wait, vault_lock

    vault = tmp_path / "v"
    init_vault(vault, "dm", PW, kdf_params=FAST_TEST_KDF, study_id="nwd")
    env = {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": PW, "TRIALVAULT_USER": "dm"}
    with vault_lock(vault):
        result = CliRunner().invoke(app, ["status"], env=env)
        assert result.exit_code == 7
        assert "open in another process (process" in result.output
        set_default_wait(0.6)
        try:
            start = time.monotonic()
            assert CliRunner().invoke(app, ["status"], env=env).exit_code == 7
            assert time.monotonic() - start >= 0.6  # it kept trying
        finally:
            set_default_wait(0)
    assert CliRunner().invoke(app, ["status", "--json"], env=env).exit_code == 0


def test_la_key_trust_check_and_retire(app: typer.Typer, tmp_path: Path,
                                       nwd_study_path: Path) -> None:
    """`la trust` refuses a key whose fingerprint is not the one read out by phone and takes
    the key as the file the LA sent; `la trusted --json`; `la retire` by a prefix of the
    fingerprint: a preview, a refusal off a terminal without --yes, then retired."""
    import json

    vault = tmp_path / "vault"
    init_vault(vault, "dm", PW, kdf_params=FAST_TEST_KDF, study_id="nwd")
    env = {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": PW,
           "TRIALVAULT_STUDY": str(nwd_study_path), "TRIALVAULT_USER": "dm"}

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, (args, result.output)
        return result.output

    key, other = LaSigningKey.generate(354), LaSigningKey.generate(354)
    sent = tmp_path / "la-354.pub"
    sent.write_text(key.public.line() + "\n", encoding="utf-8")
    said = key.public.fingerprint()
    assert "changed on the way" in run("la", "trust", other.public.line(), "--la", "354",
                                       "--fingerprint", said, code=6)
    assert "trusted" in run("la", "trust", str(sent), "--la", "354", "--fingerprint",
                            said.upper().replace(" ", ""))
    listed = json.loads(run("la", "trusted", "--json"))
    assert [(k["la"], k["fingerprint"], k["state"]) for k in listed] == [(354, said, "trusted")]
    prefix = said.replace(" ", "")[:6]
    assert "would retire LA 354" in run("la", "retire", prefix, "--dry-run")
    assert "--yes" in run("la", "retire", prefix, code=6)
    assert json.loads(run("la", "trusted", "--json"))[0]["state"] == "trusted"
    assert "retired" in run("la", "retire", prefix, "--yes")
    assert json.loads(run("la", "trusted", "--json"))[0]["state"] == "retired"
    run("la", "retire", prefix, "--yes", code=8)  # nothing trusted is left to retire
