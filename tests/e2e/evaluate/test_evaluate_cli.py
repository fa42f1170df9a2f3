"""`trialvault evaluate` from the command line: summary printed, exit codes for refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from trialvault.evaluate import commands
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import init_vault, open_vault

NWD = Path(__file__).resolve().parents[3] / "studies" / "no-wrong-door.toml"


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """(test shell: only the evaluate stage's commands)"""

    commands.register(app)
    return app


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    init_vault(path, "dm", "dm keeps the vault keys safe", kdf_params=FAST_TEST_KDF, study_id="nwd")
    with open_vault(path, "dm", "dm keeps the vault keys safe", command="test-fill", args={}) as s:
        # Two LAs' worth of referrals each quarter: enough for the models to run.
        s.con.execute("""
            INSERT INTO harmonised.referrals (la_code, child_id, referral_date, age_months)
            SELECT la.code, la.code || '-' || CAST(i AS VARCHAR),
                   CAST(DATE '2019-01-01' + INTERVAL (i % 2190) DAY AS DATE), 144 + i % 72
            FROM (VALUES (354), (807), (877), (926), (856)) AS la(code), range(0, 2000) AS r(i)
        """)
        s.con.execute("""
            INSERT INTO harmonised.cla_episodes (la_code, child_id, episode_start_date,
                                                 reason_new_episode, placement_type, age_months)
            SELECT la_code, child_id, CAST(referral_date + INTERVAL 30 DAY AS DATE), 'S', 'K2',
                   age_months
            FROM harmonised.referrals WHERE hash(child_id) % 5 = 0
        """)
    return path


def test_evaluate_prints_the_summary(vault: Path) -> None:
    result = CliRunner().invoke(_app(), ["evaluate", "--study", str(NWD), "--vault", str(vault),
                                         "--user", "dm"],
                                env={"TRIALVAULT_PASSWORD": "dm keeps the vault keys safe"})
    assert result.exit_code == 0, result.output
    assert "entered_care_12m" in result.output and "RI, 120 assignments" in result.output
    assert "354-" not in result.output  # no child code on screen


def test_wrong_password_exits_with_access_denied(vault: Path) -> None:
    result = CliRunner().invoke(_app(), ["evaluate", "--study", str(NWD), "--vault", str(vault),
                                         "--user", "dm"], env={"TRIALVAULT_PASSWORD": "nope"})
    assert result.exit_code == 4


def test_help_has_an_example() -> None:
    result = CliRunner().invoke(_app(), ["evaluate", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
