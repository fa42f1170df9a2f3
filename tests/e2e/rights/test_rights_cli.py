"""`trialvault rights …` end to end through the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import init_vault

runner = CliRunner()
CHILD = "CLI-CHILD-77"


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    vault = tmp_path / "vault"
    init_vault(vault, "dm", "the cli test passphrase", kdf_params=FAST_TEST_KDF, study_id="nwd")
    return {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": "the cli test passphrase",
            "TRIALVAULT_USER": "dm", "COLUMNS": "200"}


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.output


def test_deadline_calculator() -> None:
    code, out = _run({"COLUMNS": "200"}, "rights", "deadline", "2025-01-31")
    assert code == 0 and "due 2025-02-28 (Friday)" in out
    code, out = _run({"COLUMNS": "200"}, "rights", "deadline", "2025-11-25", "--extended")
    assert code == 0 and "due 2026-02-25" in out and "by 2025-12-29" in out
    code, out = _run({"COLUMNS": "200"}, "rights", "deadline", "31/01/2025")
    assert code == 2 and "YYYY-MM-DD" in out


def test_request_lifecycle_through_the_cli(env: dict[str, str], tmp_path: Path) -> None:
    received = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    code, out = _run(env, "rights", "new", "--type", "restriction", "--la", "354", "--child",
                     CHILD, "--received", received, "--channel", "phone")
    assert code == 0 and "registered request 1" in out and CHILD not in out
    code, out = _run(env, "rights", "new", "--type", "access", "--la", "999", "--child", "X",
                     "--received", received, "--channel", "email")
    assert code == 3 and "not a local authority" in out
    code, out = _run(env, "rights", "list")
    assert code == 0 and "restriction" in out and CHILD not in out and "•••" in out
    code, out = _run(env, "rights", "list", "--reveal")
    assert code == 0 and CHILD in out
    code, out = _run(env, "rights", "extend", "1", "--reason", "busy")
    assert code == 6 and "at least" in out
    code, out = _run(env, "rights", "await-clarification", "1")
    assert code == 6 and "only on access requests" in out
    code, out = _run(env, "rights", "await-id", "1")
    assert code == 0 and "clock stopped" in out
    today = dt.date.today()
    code, out = _run(env, "rights", "resume", "1", "--date", today.isoformat())
    assert code == 0 and "(0 day(s) paused)" in out  # identity restarts the month instead
    code, out = _run(env, "rights", "execute", "1")  # not at a terminal: --yes is needed
    assert code == 6 and "--yes" in out and "meta.rights_flags" in out  # the preview
    code, out = _run(env, "rights", "execute", "1", "--yes")
    assert code == 0 and "completed" in out and "meta.rights_flags" in out
    code, out = _run(env, "rights", "show", "1")
    assert code == 0 and "await-identity" in out and CHILD not in out
    letter = tmp_path / "letter.md"
    code, out = _run(env, "rights", "letter", "1", "--out", str(letter))
    assert code == 0 and "we do not use your information in any part" in letter.read_text()
    assert CHILD not in letter.read_text()
    code, out = _run(env, "rights", "execute", "1")
    assert code == 6 and "is completed" in out


def test_backup_restore_inventory_and_destroy_through_the_cli(env: dict[str, str],
                                                             tmp_path: Path) -> None:
    code, out = _run(env, "backup", "--out", str(tmp_path / "b1"))
    assert code == 0 and "backup " in out and (tmp_path / "b1" / "backup.json").exists()
    code, out = _run(env, "backup", "--out", str(tmp_path / "b1"))
    assert code == 3 and "not empty" in out
    code, out = _run(env, "restore", "--backup", str(tmp_path / "b1"), "--dry-run")
    assert code == 0 and "would restore backup" in out
    code, out = _run(env, "restore", "--backup", str(tmp_path / "b1"), "--yes")
    assert code == 0 and "restored backup" in out and "0 erased children" in out
    code, out = _run(env, "restore", "--backup", str(tmp_path), "--yes")
    assert code == 3 and "not a trialvault backup" in out
    code, out = _run(env, "rights", "inventory")
    assert code == 0 and "backup" in out and "held" in out
    code, out = _run(env, "rights", "inventory", "--json")
    backup_id = next(a["id"] for a in json.loads(out) if a["kind"] == "backup")
    code, out = _run(env, "rights", "destroy", backup_id[:8], "--elsewhere", "short", "--yes")
    assert code == 6 and "at least" in out
    code, out = _run(env, "rights", "destroy", backup_id[:8])  # not at a terminal: refused
    assert code == 6 and "--yes" in out and (tmp_path / "b1").exists()
    code, out = _run(env, "rights", "destroy", backup_id[:8], "--yes")
    assert code == 0 and "destroyed" in out and not (tmp_path / "b1").exists()
    code, out = _run(env, "rights", "inventory", "--to-destroy")
    assert code == 0 and "nothing to destroy" in out
    code, out = _run(env, "rights", "new", "--type", "access", "--la", "354", "--child",
                     CHILD, "--received", "1999-01-01", "--channel", "post")
    assert code == 3 and "before the study's data period" in out and CHILD not in out


def test_only_the_desk_roles_list_requests_as_in_the_console(env: dict[str, str]) -> None:
    """An analyst or an output checker is refused `rights list` (exit 4), as the console
    refuses them its Rights page (403): the register's key is the dpo's and data manager's."""
    from trialvault.vault import add_user

    vault = Path(env["TRIALVAULT_VAULT"])
    for user, role in (("ana", "analyst"), ("oli", "output-checker")):
        add_user(vault, "dm", env["TRIALVAULT_PASSWORD"], user, f"{user} has a long passphrase",
                 role, kdf_params=FAST_TEST_KDF)
        code, out = _run({**env, "TRIALVAULT_USER": user,
                          "TRIALVAULT_PASSWORD": f"{user} has a long passphrase"},
                         "rights", "list")
        assert code == 4 and "register" in out, out
