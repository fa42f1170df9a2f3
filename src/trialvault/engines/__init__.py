"""Portable storage engines: the same definitions on DuckDB (default) and on Spark.

- `Engine`: the small base class with documented hooks (`engines.base`).
- `DuckDBEngine`: runs the DuckDB-dialect definitions as written.
- `SparkEngine`: transpiles them with SQLGlot (`engines.transpile`) and runs Spark SQL; needs the
  optional `spark` extra and Java 17+.
- `make_engine(name, ...)`: the engine `--engine` names.
- Definitions through an engine: `engines.validation.validate_on_engine` (validation rules) and
  `engines.evaluation.build_analysis_on_engine` (cohort and outcomes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from trialvault.engines.base import Engine, EngineError
from trialvault.engines.duckdb_engine import DuckDBEngine

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyspark.sql import SparkSession

EngineName = Literal["duckdb", "spark"]
ENGINE_NAMES: tuple[str, ...] = ("duckdb", "spark")


def make_engine(name: str, *, spark_master: str | None = None,
                spark: SparkSession | None = None,
                spark_conf: Mapping[str, str] | None = None) -> Engine:
    """The engine `name` (`duckdb`: private in-memory DuckDB; `spark`: the given session, or a
    new one on `spark_master`, default local[2])."""
    if name == "duckdb":
        return DuckDBEngine()
    if name == "spark":
        from trialvault.engines.spark_engine import DEFAULT_MASTER, SparkEngine

        return SparkEngine(spark, master=spark_master or DEFAULT_MASTER, conf=spark_conf)
    raise EngineError(f"unknown engine {name!r} (known: {', '.join(ENGINE_NAMES)})")


__all__ = ["ENGINE_NAMES", "DuckDBEngine", "Engine", "EngineError", "EngineName", "make_engine"]
