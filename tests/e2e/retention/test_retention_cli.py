"""`trialvault retention …` end to end through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import init_vault

runner = CliRunner()


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    vault = tmp_path / "vault"
    init_vault(vault, "dm", "the cli test passphrase", kdf_params=FAST_TEST_KDF, study_id="nwd")
    return {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": "the cli test passphrase",
            "TRIALVAULT_USER": "dm", "COLUMNS": "200"}


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_retention_status_and_guarded_purge(env: dict[str, str], tmp_path: Path) -> None:
    code, out = _run(env, "retention", "status")
    assert code == 0 and "2033-09-01" in out and "keyslots.json" in out
    code, out = _run(env, "retention", "purge", "--certificate-dir", str(tmp_path / "c"))
    assert code == 6 and "typed confirmation" in out
    code, out = _run(env, "retention", "purge", "--yes", "--certificate-dir",
                     str(tmp_path / "c"))
    assert code == 6 and "due on 2033-09-01" in out
    assert Path(env["TRIALVAULT_VAULT"], "keyslots.json").exists()
    code, out = _run(env, "retention", "purge", "--yes", "--early", "--reason",
                     "Controller decided to end the study early.", "--certificate-dir",
                     str(tmp_path / "c"))
    assert code == 0 and "destroyed" in out
    assert not Path(env["TRIALVAULT_VAULT"]).exists()
    assert len(list((tmp_path / "c").glob("destruction-certificate-*.json"))) == 1
