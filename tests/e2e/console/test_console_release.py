"""Releases in the browser: the requester cannot approve their own release; a second user can."""

from __future__ import annotations

from typing import Any

import pytest

from trialvault.console import ConsoleSettings, build_console
from trialvault.study import load_study

from .conftest import REPO, ServerThread, free_port  # type: ignore[import-not-found]

pytestmark = pytest.mark.browser
# Server actions (a release check, an evaluation) can take long on a loaded 2-core CI box.
SLOW_SERVER_MS = 180_000


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_two_person_rule_in_the_browser(browser: Any, demo_run: Any,
                                        demo_credentials: dict[str, str], shot: Any) -> None:
    study_path = REPO / "studies" / "no-wrong-door.toml"
    port = free_port()
    settings = ConsoleSettings(vault_dir=demo_run.folder / "vault",
                               study=load_study(study_path), study_path=study_path, port=port)
    with ServerThread(build_console(settings).app(), port):
        url = f"http://127.0.0.1:{port}"
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(SLOW_SERVER_MS)
        sign_in(page, url, "ana", demo_credentials["ana"])
        page.get_by_role("link", name="Releases").click()
        page.get_by_label("Note for the output checkers").fill("Second release for review")
        page.get_by_role("button", name="Request release").click()
        page.wait_for_load_state()
        release_url = page.url
        assert "pending" in page.content()
        shot(page, "release-pending")
        # The requester is offered no review form (two-person rule; the library refuses a
        # forged one too, tests/security/test_release.py).
        assert page.get_by_role("button", name="Record review").count() == 0
        assert "Waiting for 2 output checkers other than you" in page.content()
        page.get_by_role("button", name="Sign out").click()

        # A checker returns it with a comment; the requester reads it and resubmits.
        comment = "Say in the note which outcomes are primary."
        sign_in(page, url, "oli", demo_credentials["oli"])
        page.goto(release_url)
        page.get_by_role("radio", name="return").check()
        page.get_by_label("Comment (why").fill(comment)
        page.get_by_role("button", name="Record review").click()
        page.wait_for_load_state()
        assert "status <strong>returned</strong>" in page.content()
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, url, "ana", demo_credentials["ana"])
        page.get_by_role("link", name="Releases").click()
        assert comment in page.content()
        page.goto(release_url)
        page.get_by_label("What did you change?").fill("Primary outcome named in the note.")
        page.get_by_role("button", name="Resubmit").click()
        page.wait_for_load_state()
        assert release_url not in page.url and "pending" in page.content()
        assert "answers the returned release" in page.content()
        release_url = page.url
        shot(page, "release-resubmitted")
        page.get_by_role("button", name="Sign out").click()

        # Two output checkers must approve (the study's reviewers_required), each signing.
        for checker in ("oli", "ola"):
            sign_in(page, url, checker, demo_credentials[checker])
            page.goto(release_url)
            page.get_by_label("Comment (why").fill("Every table checked against the report.")
            if checker == "oli":  # a rejection needs the "final" box ticked
                page.get_by_role("radio", name="reject").check()
                page.get_by_role("button", name="Record review").click()
                page.wait_for_load_state()
                assert "a rejection is final" in page.content()
                page.goto(release_url)
                page.get_by_label("Comment (why").fill("Every table checked against the report.")
            page.get_by_role("button", name="Record review").click()
            page.wait_for_load_state()
            if checker == "oli":
                assert "status <strong>pending</strong>" in page.content()
                page.get_by_role("button", name="Sign out").click()
        content = page.content()
        assert "status <strong>approved</strong>" in content and "ola" in content
        shot(page, "release-approved")
        page.get_by_role("link", name="Releases").click()
        shot(page, "releases")
        page.close()
