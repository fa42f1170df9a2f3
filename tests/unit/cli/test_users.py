"""Who a vault command acts as: never a guess when the vault has several users (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.cli_common import USER_ENV, acting_user, check_user_name, first_user
from trialvault.errors import UsageError
from trialvault.vault import FAST_TEST_KDF, add_user, init_vault

PASSWORDS = {"dana": "quartz-Lantern-meadow-71", "ana": "copper-Violet-harbour-93"}
runner = CliRunner()


@pytest.fixture(scope="module")
def two_user_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vault = tmp_path_factory.mktemp("users") / "vault"
    init_vault(vault, "dana", PASSWORDS["dana"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    add_user(vault, "dana", PASSWORDS["dana"], "ana", PASSWORDS["ana"], "analyst",
             kdf_params=FAST_TEST_KDF)
    return vault


@pytest.fixture(scope="module")
def one_user_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vault = tmp_path_factory.mktemp("one-user") / "vault"
    init_vault(vault, "dana", PASSWORDS["dana"], kdf_params=FAST_TEST_KDF, study_id="nwd")
    return vault


def test_the_only_user_is_the_default(one_user_vault: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USER_ENV, raising=False)
    assert acting_user(one_user_vault, None) == "dana"


def test_several_users_and_none_named_is_refused_listing_them(
        two_user_vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USER_ENV, raising=False)
    with pytest.raises(UsageError) as refused:
        acting_user(two_user_vault, None)
    message = str(refused.value)
    assert "2 users (dana, ana)" in message and "--user" in message and USER_ENV in message
    assert refused.value.exit_code == 2


def test_user_option_wins_over_the_environment(two_user_vault: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(USER_ENV, "dana")
    assert acting_user(two_user_vault, None) == "dana"
    assert acting_user(two_user_vault, "ana") == "ana"


@pytest.mark.parametrize("name", ["Ana", "ana smith", "-ana", "ana;rm", "", "a" * 33, "äna",
                                  "../ana"])
def test_bad_user_names_are_refused_without_echoing_them(name: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_user_name(name)
    assert (name not in str(refused.value)) or not name.strip()


@pytest.mark.parametrize("name", ["ana", "dana.m", "olu_2", "dpo-1", "a"])
def test_good_user_names_pass(name: str) -> None:
    assert check_user_name(name) == name


def test_init_needs_a_first_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(USER_ENV, raising=False)
    with pytest.raises(UsageError, match="first user"):
        first_user(None)
    monkeypatch.setenv(USER_ENV, "dana")
    assert first_user(None) == "dana" and first_user("ana") == "ana"


def test_cli_without_user_on_a_shared_vault_touches_nothing(two_user_vault: Path) -> None:
    failures = two_user_vault / "access-failures.log"
    before = failures.read_bytes() if failures.exists() else b""
    result = runner.invoke(app, ["status", "--vault", str(two_user_vault)],
                           env={"TRIALVAULT_PASSWORD": PASSWORDS["ana"], USER_ENV: ""})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and "2 users (dana, ana)" in result.stderr
    assert (failures.read_bytes() if failures.exists() else b"") == before


def test_an_access_refusal_names_the_user_tried_and_how_to_choose(two_user_vault: Path) -> None:
    result = runner.invoke(app, ["status", "--vault", str(two_user_vault)],
                           env={"TRIALVAULT_PASSWORD": "not-the-password", USER_ENV: "ana"})
    assert result.exit_code == 4, result.output
    lines = result.stderr.strip().split("\n")
    assert lines[0].startswith("error: ")
    assert lines[-1] == ("note: acted as user 'ana' (from TRIALVAULT_USER); to act as someone "
                         "else, give --user NAME")
