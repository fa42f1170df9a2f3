"""No page of the console, and no line of its server log, carries a child code."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from trialvault.console import ConsoleSettings, build_console
from trialvault.study import load_study
from trialvault.vault.session import open_vault

from .conftest import REPO, ServerThread, free_port  # type: ignore[import-not-found]

pytestmark = pytest.mark.browser
# Server actions (a release check, an evaluation) can take long on a loaded 2-core CI box.
SLOW_SERVER_MS = 180_000


def test_no_child_code_in_any_page_or_log(browser: Any, demo_run: Any,
                                          demo_credentials: dict[str, str],
                                          caplog: pytest.LogCaptureFixture) -> None:
    vault_dir = demo_run.folder / "vault"
    with open_vault(vault_dir, "dpo", demo_credentials["dpo"], command="test list codes",
                    args={}, write=False) as vault:
        codes = {str(r[0]) for r in vault.con.execute(
            "SELECT DISTINCT child_id FROM raw.children UNION SELECT child_id FROM "
            "harmonised.cla_episodes").fetchall()}
    assert len(codes) > 100
    study_path = REPO / "studies" / "no-wrong-door.toml"
    port = free_port()
    settings = ConsoleSettings(vault_dir=vault_dir, study=load_study(study_path),
                               study_path=study_path, port=port)
    pages: dict[str, str] = {}
    caplog.set_level(logging.DEBUG)
    with ServerThread(build_console(settings).app(), port):
        url = f"http://127.0.0.1:{port}"
        for user in ("dana", "dpo", "ana", "oli"):
            page = browser.new_page()
            page.set_default_timeout(SLOW_SERVER_MS)
            page.goto(f"{url}/login")
            page.get_by_label("User name").fill(user)
            page.get_by_label("Password").fill(demo_credentials[user])
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_load_state()
            links = [a.get_attribute("href") for a in
                     page.get_by_role("navigation").get_by_role("link").all()]
            for href in links:
                page.goto(url + str(href))
                pages[f"{user} {href}"] = page.content()
                for detail in page.locator("main a[href^='/rights/'], main a[href^='/releases/']"
                                           ).all()[:3]:
                    target = str(detail.get_attribute("href"))
                    sub = browser.new_page()
                    sub.set_default_timeout(SLOW_SERVER_MS)
                    sub.context.add_cookies(page.context.cookies())
                    sub.goto(url + target)
                    pages[f"{user} {target}"] = sub.content()
                    sub.close()
            page.close()
    assert any("/rights/" in k for k in pages) and any("/releases/" in k for k in pages)
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(codes))) + r")\b")
    leaks = {name: word.findall(html) for name, html in pages.items() if word.search(html)}
    assert not leaks
    assert not word.search(caplog.text)
