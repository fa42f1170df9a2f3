"""Retention in the console: countdown, and a purge that needs the typed phrase and a reason."""

from __future__ import annotations

from pathlib import Path

from trialvault.console import ConsoleSettings, build_console
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault.admin import add_user, init_vault

from .conftest import PORT, local_client, sign_in  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[3]


def test_retention_countdown_and_early_purge(tmp_path: Path, csrf_of) -> None:  # type: ignore[no-untyped-def]
    vault = tmp_path / "vault"
    init_vault(vault, "dana", "dana manages the vault keys", kdf_params=FAST_TEST_KDF)
    add_user(vault, "dana", "dana manages the vault keys", "omar",
             "omar protects the childrens data", "dpo", kdf_params=FAST_TEST_KDF)
    study_path = REPO / "studies" / "no-wrong-door.toml"
    settings = ConsoleSettings(vault_dir=vault, study=load_study(study_path),
                               study_path=study_path, certificate_dir=tmp_path / "certs",
                               port=PORT)
    with local_client(build_console(settings, secret="s")) as client:
        assert sign_in(client, "omar", "omar protects the childrens data").status_code == 303
        page = client.get("/retention")
        assert page.status_code == 200
        assert "2033-09-01" in page.text and "days left" in page.text
        token = csrf_of(client, "/retention")
        wrong = client.post("/retention/purge", data={"csrf_token": token, "confirm": "yes",
                                                      "early_reason": "study stopped early"})
        assert wrong.status_code == 400 and vault.exists()
        no_reason = client.post("/retention/purge", data={"csrf_token": token,
                                                          "confirm": "destroy nwd"})
        assert no_reason.status_code == 400 and (vault / "child.duckdb").exists()
        done = client.post("/retention/purge", data={
            "csrf_token": token, "confirm": "destroy nwd",
            "early_reason": "The funder ended the study early; the DPO approved deletion."})
        assert done.status_code == 200, done.text
        assert "vault was destroyed" in done.text
        assert not (vault / "child.duckdb").exists()
        assert list((tmp_path / "certs").glob("destruction-certificate-*.json"))
        assert client.get("/retention").status_code == 303  # signed out: the vault is gone
