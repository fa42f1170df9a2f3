"""A small real vault with one user of each role, and a console app over it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from trialvault.console import ConsoleSettings, build_console
from trialvault.console.app import Console
from trialvault.study import load_study
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault.admin import add_user, init_vault

REPO = Path(__file__).resolve().parents[3]
PASSWORDS = {"dana": "dana manages the vault keys", "omar": "omar protects the childrens data",
             "ana": "ana analyses the trial data",
             "oli": "oli checks every output", "cara": "cara checks every output"}
ROLES = {"dana": "data-manager", "omar": "dpo", "ana": "analyst", "oli": "output-checker",
         "cara": "output-checker"}
LOCAL = ("127.0.0.1", 50123)
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"  # the Host header must name the bound address and port


@pytest.fixture(scope="module")
def console_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vault = tmp_path_factory.mktemp("console") / "vault"
    init_vault(vault, "dana", PASSWORDS["dana"], kdf_params=FAST_TEST_KDF)
    for user, role in ROLES.items():
        if user != "dana":
            add_user(vault, "dana", PASSWORDS["dana"], user, PASSWORDS[user], role,
                     kdf_params=FAST_TEST_KDF)
    return vault


@pytest.fixture
def console_app(console_vault: Path, tmp_path: Path) -> Console:
    study_path = REPO / "studies" / "no-wrong-door.toml"
    settings = ConsoleSettings(vault_dir=console_vault, study=load_study(study_path),
                               study_path=study_path, port=PORT,
                               responses_dir=tmp_path / "responses")
    return build_console(settings, secret="test-secret")


@pytest.fixture
def client(console_app: Console) -> Iterator[TestClient]:
    with local_client(console_app) as c:
        yield c


def local_client(console: Console) -> TestClient:
    """A client as the browser on this machine: loopback address, the console's own Host and,
    on POSTs, its Origin."""
    return TestClient(console.app(), client=LOCAL, base_url=BASE, follow_redirects=False,
                      headers={"origin": BASE})


def login_token(client: TestClient) -> str:
    """The login form's CSRF token (its cookie is kept by the client)."""
    page = client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and match, page.text
    return match.group(1)


def sign_in(client: TestClient, user: str, password: str) -> Any:
    return client.post("/login", data={"user": user, "password": password,
                                       "csrf_token": login_token(client)})


def _login(client: TestClient, user: str) -> None:
    response = sign_in(client, user, PASSWORDS[user])
    assert response.status_code == 303, response.text


def _csrf_of(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, "page has no CSRF field"
    return match.group(1)


@pytest.fixture
def login() -> Callable[[TestClient, str], None]:
    return _login


@pytest.fixture
def csrf_of() -> Callable[[TestClient, str], str]:
    return _csrf_of
