"""Console security: loopback only, login with key slots, CSRF, roles, idle timeout, audit."""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from trialvault.console.app import Console
from trialvault.vault import audit
from trialvault.vault.session import open_vault

from .conftest import BASE, sign_in  # type: ignore[import-not-found]


def test_non_loopback_client_is_refused(console_app: Console) -> None:
    with TestClient(console_app.app(), client=("192.0.2.7", 40000), base_url=BASE) as remote:
        assert remote.get("/login").status_code == 403


def test_wrong_password_is_refused_and_no_session(client: TestClient) -> None:
    response = sign_in(client, "dana", "nope")
    assert response.status_code == 401
    assert "tv_session" not in response.cookies
    assert client.get("/audit").status_code == 303  # back to login


def test_login_sets_a_strict_httponly_cookie(client: TestClient) -> None:
    response = sign_in(client, "omar", "omar protects the childrens data")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "omar protects the childrens data" not in cookie


def test_post_without_csrf_token_is_403(client: TestClient, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    login(client, "omar")
    assert client.post("/audit/verify", data={}).status_code == 403
    assert client.post("/audit/verify", data={"csrf_token": "forged"}).status_code == 403
    token = csrf_of(client, "/audit")
    ok = client.post("/audit/verify", data={"csrf_token": token})
    assert ok.status_code == 200 and "Chain verified" in ok.text


def test_wrong_role_is_403(client: TestClient, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    login(client, "ana")  # analyst: no audit page
    assert client.get("/audit").status_code == 403


def test_expired_session_goes_back_to_login(client: TestClient, console_app: Console, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    login(client, "omar")
    assert client.get("/audit").status_code == 200
    console_app.sessions.age_all(console_app.settings.idle_seconds + 1)
    response = client.get("/audit")
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_console_actions_are_audited(client: TestClient, console_vault: Path, login, csrf_of) -> None:  # type: ignore[no-untyped-def]
    login(client, "dana")
    assert client.get("/audit?q=console").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_of(client, "/audit")}
                       ).status_code == 303
    with open_vault(console_vault, "dana", "dana manages the vault keys", command="test read", args={},
                    write=False) as vault:
        commands = [e.command for e in audit.read_entries(vault.con)
                    if e.user == "dana" and e.command != "test read"]
    # The session is bracketed by its login and logout; page views write no entry of their own.
    assert commands[-4:] == ["console login"] * 2 + ["console logout"] * 2, commands


def test_holdings_page_for_data_manager(client: TestClient, login) -> None:  # type: ignore[no-untyped-def]
    login(client, "dana")
    page = client.get("/holdings")
    assert page.status_code == 200
    assert "Users (key slots)" in page.text and "output-checker" in page.text
