"""Shared test fixtures: where the public fake files are, the NWD study, the slow-test switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trialvault.study import StudyFile, load_study

REPO = Path(__file__).resolve().parents[1]
NWD_STUDY = REPO / "studies" / "no-wrong-door.toml"
# The public fake SSDA903 / CIN files and R `did` references sit beside the repository in a
# developer's workspace and in CI; a newcomer's clone has no ../shared.
SHARED_EXTERNAL = REPO.parent / "shared" / "external"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="run slow statistical checks (coverage over many seeds)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow statistical check: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def nwd_study_path() -> Path:
    return NWD_STUDY


@pytest.fixture(scope="session")
def nwd_study() -> StudyFile:
    return load_study(NWD_STUDY)


@pytest.fixture(scope="session")
def shared_external() -> Path:
    """The public fake data folder, or skip with the reason when this checkout has none."""
    if not SHARED_EXTERNAL.is_dir():
        pytest.skip(f"public fake data not present at {SHARED_EXTERNAL} (newcomer clone)")
    return SHARED_EXTERNAL


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile) -> Any:
    """One small demo run (every stage, fast Argon2id) shared by the e2e tests."""
    from trialvault.demo import run_demo
    from trialvault.vault.keyslots import FAST_TEST_KDF

    folder = tmp_path_factory.mktemp("demo") / "run"
    return run_demo(nwd_study, folder, scale=0.05, kdf_params=FAST_TEST_KDF)


@pytest.fixture(scope="session")
def demo_credentials(demo_run: Any) -> dict[str, str]:
    text = demo_run.artefacts["demo-credentials.txt"].read_text(encoding="utf-8")
    return {user: password for user, _role, password in
            (line.split("\t") for line in text.splitlines()[1:])}
