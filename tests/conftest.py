"""Shared test fixtures: where the public fake files are, the NWD study, the slow-test switch."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trialvault.engines import DuckDBEngine, Engine
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
def fake_903(shared_external: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public fake SSDA903 CSV return as an LA would submit it: the shared folder holds two
    adoption-placement files (placed_for_adoption.csv and the upstream's _errors variant), which
    `prepare` refuses as a duplicate table, so this folder links every file but the variant."""
    folder = tmp_path_factory.mktemp("fake_903")
    for path in sorted((shared_external / "ssda903").iterdir()):
        if path.name != "placed_for_adoption_errors.csv":
            (folder / path.name).symlink_to(path)
    return folder


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile) -> Any:
    """One small demo run (every stage, fast Argon2id) shared by the e2e tests."""
    from trialvault.demo import run_demo
    from trialvault.trust import FAST_TEST_KDF

    folder = tmp_path_factory.mktemp("demo") / "run"
    return run_demo(nwd_study, folder, scale=0.05, kdf_params=FAST_TEST_KDF)


@pytest.fixture(scope="session")
def demo_credentials(demo_run: Any) -> dict[str, str]:
    text = demo_run.artefacts["demo-credentials.txt"].read_text(encoding="utf-8")
    return {user: password for user, _role, password in
            (line.split("\t") for line in text.splitlines()[1:])}


# --- one local Spark session for the whole run (engine and export tests share one JVM) ---

# Tiny tables: whole-stage code generation costs more than it saves, one shuffle partition.
TEST_SPARK_CONF = {"spark.sql.shuffle.partitions": "1", "spark.sql.codegen.wholeStage": "false"}


def shared_spark(jar_dir: Path) -> Any:
    from trialvault.engines.spark_engine import build_kms_jar, spark_available, spark_session

    reason = spark_available()
    if reason:
        pytest.skip(f"Spark engine tests need pyspark and Java 17+: {reason}")
    conf = dict(TEST_SPARK_CONF)
    try:
        conf["spark.jars"] = str(build_kms_jar(jar_dir))
    except Exception as exc:  # no javac: engine tests still run, export tests skip themselves
        conf["spark.trialvault.kms_missing"] = str(exc)
    return spark_session("local[2]", conf=conf)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return shared_spark(tmp_path_factory.getbasetemp() / "spark-kms")


@pytest.fixture(params=["duckdb", "spark"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "duckdb":
        eng: Engine = DuckDBEngine()
    else:
        from trialvault.engines.spark_engine import SparkEngine

        eng = SparkEngine(request.getfixturevalue("spark"))
    yield eng
    eng.close()


# --- one headless Chromium (Debian's) for every browser test: Playwright's sync API allows one
# running instance per thread, so the report and console tests must share it. ---
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no chromium binary: apt-get install chromium")
    api = pytest.importorskip("playwright.sync_api", reason="playwright (dev extra) missing")
    with api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class LaKeys:
    """Signing keys of synthetic LAs (one per LA code, made once per test session), and their
    registration in a vault: ingest accepts only packages signed by a key trusted for their LA."""

    def __init__(self) -> None:
        self._keys: dict[int, Any] = {}

    def key(self, la_code: int) -> Any:
        from trialvault.seal.keys import LaSigningKey

        if la_code not in self._keys:
            self._keys[la_code] = LaSigningKey.generate(la_code)
        return self._keys[la_code]

    def trust(self, vault: Path, user: str, password: str, study: StudyFile,
              las: Iterable[int] | None = None) -> None:
        from trialvault.vault.la_keys import trust_la_key

        for la in las if las is not None else study.la_codes:
            trust_la_key(vault, user, password, la, self.key(la).public.line(), study=study)


@pytest.fixture(scope="session")
def la_keys() -> LaKeys:
    return LaKeys()
