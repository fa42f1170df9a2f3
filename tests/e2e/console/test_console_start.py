"""`trialvault console` refuses to start where every sign-in would fail or the server could
not listen: a folder that is not a vault (exit 8), a vault another process holds (exit 7), a
port in use (exit 7) — one error line each, and never the "console on …" line first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault.admin import init_vault
from trialvault.vault.session import vault_lock

PW = "dana manages the vault keys"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("console-start") / "vault"
    init_vault(folder, "dana", PW, kdf_params=FAST_TEST_KDF)
    return folder


def _start(vault: Path, port: int) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["console", "--vault", str(vault), "--port", str(port)])
    return result.exit_code, result.output


def test_a_folder_that_is_not_a_vault_is_refused(tmp_path: Path) -> None:
    code, out = _start(tmp_path / "nowhere", 1)
    assert code == 8 and "not a vault" in out and "console on" not in out


def test_a_vault_held_by_another_process_is_refused(vault: Path) -> None:
    with vault_lock(vault):
        code, out = _start(vault, 1)
    assert code == 7 and "open in another process (process" in out
    assert "console on" not in out


def test_a_port_in_use_is_one_clear_error(vault: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out = _start(vault, port)
    assert code == 7 and f"port {port} on 127.0.0.1 is already in use" in out
    assert "--port" in out and "console on" not in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
