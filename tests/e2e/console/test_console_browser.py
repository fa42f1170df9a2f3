"""The console in a real browser: sign in, work a rights request to completion, see each page.

Screenshots of every page go to test-artifacts/console/.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from trialvault.console import ConsoleSettings, build_console
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault.admin import add_user, init_vault

from .conftest import REPO, ServerThread, free_port  # type: ignore[import-not-found]

pytestmark = pytest.mark.browser
# Server actions (a release check, an evaluation) can take long on a loaded 2-core CI box.
SLOW_SERVER_MS = 180_000
CHILD = "BRWSR-CHILD-0042"
USERS = {"dana": ("dana manages the vault keys", "data-manager"),
         "omar": ("omar protects the childrens data", "dpo"),
         "ana": ("ana analyses the trial data", "analyst")}


@pytest.fixture
def console_url(tmp_path: Path) -> Any:
    vault = tmp_path / "vault"
    init_vault(vault, "dana", USERS["dana"][0], kdf_params=FAST_TEST_KDF)
    for user, (pw, role) in USERS.items():
        if user != "dana":
            add_user(vault, "dana", USERS["dana"][0], user, pw, role, kdf_params=FAST_TEST_KDF)
    study_path = REPO / "studies" / "no-wrong-door.toml"
    port = free_port()
    settings = ConsoleSettings(vault_dir=vault, study=load_study(study_path),
                               study_path=study_path, certificate_dir=tmp_path / "certs",
                               responses_dir=tmp_path / "responses", port=port)
    with ServerThread(build_console(settings).app(), port):
        yield f"http://127.0.0.1:{port}"


def sign_in(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(USERS[user][0])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_dpo_files_and_completes_a_rights_request(browser: Any, console_url: str, shot: Any
                                                  ) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 800})
    page.set_default_timeout(SLOW_SERVER_MS)
    sign_in(page, console_url, "omar")
    assert page.url.endswith("/holdings")
    shot(page, "holdings")
    page.get_by_role("link", name="Rights").click()
    page.get_by_label("Right").select_option("restriction")
    page.get_by_label("Local authority").select_option("877")
    page.get_by_label("LA child code").fill(CHILD)
    page.get_by_label("Date received").fill((dt.date.today() - dt.timedelta(days=3)).isoformat())
    page.get_by_label("Channel").select_option("post")
    page.get_by_role("button", name="File request").click()
    page.wait_for_load_state()
    assert re.search(r"/rights/\d+$", page.url)
    assert page.get_by_role("button", name="Information received").count() == 0  # no pause
    page.get_by_role("button", name="Start work").click()
    page.wait_for_load_state()
    assert page.get_by_role("button", name="Start work").count() == 0  # started already
    page.get_by_role("button", name="Execute the request").click()
    page.wait_for_load_state()
    assert "check before executing" in page.content() and "meta.rights_flags" in page.content()
    shot(page, "rights-confirm")
    page.get_by_role("button", name="Confirm: execute the request").click()
    page.wait_for_load_state()
    assert "completed" in page.content()
    assert page.get_by_role("button", name="Execute the request").count() == 0  # closed
    shot(page, "rights-request")
    page.get_by_role("link", name="Read the outcome letter").click()
    page.wait_for_load_state()
    assert "We have stopped using your information" in page.content()
    assert CHILD not in page.content()
    shot(page, "rights-letter")
    page.get_by_role("link", name="Rights").click()
    shot(page, "rights")
    page.get_by_role("link", name="Retention").click()
    assert "2033-09-01" in page.content()
    shot(page, "retention")
    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Verify the audit chain").click()
    page.wait_for_load_state()
    assert "Chain verified" in page.content()
    shot(page, "audit")
    for html in (page.content(),):
        assert CHILD not in html
    page.close()


def test_analyst_sees_no_rights_desk(browser: Any, console_url: str) -> None:
    page = browser.new_page()
    page.set_default_timeout(SLOW_SERVER_MS)
    sign_in(page, console_url, "ana")
    nav = page.get_by_role("navigation").inner_text()
    assert "Rights" not in nav and "Holdings" in nav
    response = page.goto(f"{console_url}/rights")
    assert response is not None and response.status == 403
    page.close()
