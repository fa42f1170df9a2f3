"""One local Spark session for the whole test run (local[2], small-data settings), or a skip
with the reason when pyspark or Java is absent. `getOrCreate` hands every conftest that asks
the same session, so the engine and export tests share one JVM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trialvault.engines import DuckDBEngine, Engine

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
