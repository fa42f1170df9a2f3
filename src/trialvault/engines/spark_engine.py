"""The Spark engine: the same DuckDB-dialect definitions, transpiled by SQLGlot, run by Spark SQL.

`pyspark` is an optional dependency (`pip install 'trialvault[spark]'`, Java 17+): importing
this module works without it; creating an engine without it raises `EngineError` naming what
is missing. Tables live as temporary views (`schema.table` → `schema__table`), so nothing is
written to a warehouse; sessions this module creates encrypt Spark's own spill and shuffle
files (`spark.io.encryption.enabled`), so no plaintext row reaches local disk.

Use an existing session (a notebook's `spark`, a `spark-submit` job) with
`SparkEngine(spark=session)`, or let `spark_session(master=...)` start one (local[2] by default,
`yarn`, `spark://host:7077`, `k8s://...`; `sc://host` for Spark Connect).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from trialvault.engines.base import Engine, EngineError
from trialvault.engines.transpile import Macro, flat_name, to_spark

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_MASTER = "local[2]"
APP_NAME = "trialvault"
# Settings every session this module starts gets (a handed-in session is left as it is, except
# for the time zone check in SparkEngine).
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # DATE columns never shift: DuckDB has no session zone for DATE either.
    "spark.sql.session.timeZone": "UTC",
    # Local disk gets Spark's shuffle and spill files: keep them encrypted (AES-CTR, key per app).
    "spark.io.encryption.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Small jobs: a handful of shuffle partitions instead of 200 (clusters override this).
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.adaptive.enabled": "true",
}


def spark_available() -> str | None:
    """None when Spark can run here, else the reason it cannot (for skips and errors)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'trialvault[spark]')"
    if shutil.which("java") is None:
        return "no Java runtime on PATH (Spark needs Java 17+)"
    return None


def spark_session(master: str = DEFAULT_MASTER, *, conf: Mapping[str, str] | None = None,
                  app_name: str = APP_NAME) -> SparkSession:
    """A Spark session for `master` with the module's defaults and `conf` on top."""
    reason = spark_available()
    if reason:
        raise EngineError(f"Spark engine unavailable: {reason}")
    from pyspark.sql import SparkSession

    builder: Any = SparkSession.builder.appName(app_name)
    remote = master.startswith("sc://")
    builder = builder.remote(master) if remote else builder.master(master)
    for key, value in {**SESSION_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # py4j/JVM start-up errors have no common base class
        raise EngineError(f"cannot start Spark ({master}): {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not master.startswith("sc://"):
        session.sparkContext.setLogLevel("OFF")
    return session


class SparkEngine(Engine):
    """Spark SQL over temporary views; DuckDB SQL is transpiled on the way in."""

    name = "spark"

    def __init__(self, spark: SparkSession | None = None, *, master: str = DEFAULT_MASTER,
                 conf: Mapping[str, str] | None = None) -> None:
        self._own = spark is None
        self.spark = spark if spark is not None else spark_session(master, conf=conf)
        self.macros: dict[str, Macro] = {}
        self._views: set[str] = set()
        self._persisted: dict[str, DataFrame] = {}

    # --- hooks ---------------------------------------------------------------------------
    def load_table(self, name: str, table: pa.Table) -> None:
        view = flat_name(name)
        self.drop_table(name)
        try:
            frame = self.spark.createDataFrame(_spark_friendly(table))
        except Exception as exc:
            raise EngineError(f"cannot load table {name} into Spark: "
                              f"{type(exc).__name__}") from None
        frame.createOrReplaceTempView(view)
        self._views.add(view)

    def register_frame(self, name: str, frame: DataFrame) -> None:
        """Make a Spark DataFrame (e.g. read from Parquet on the cluster) queryable as `name`."""
        view = flat_name(name)
        frame.createOrReplaceTempView(view)
        self._views.add(view)

    def translate(self, sql: str, *, schema: str | None = None) -> str:
        """The Spark SQL this engine runs for a DuckDB-dialect statement."""
        return to_spark(sql, macros=self.macros, default_schema=schema)

    def frame(self, sql: str, *, schema: str | None = None) -> DataFrame:
        """A lazy Spark DataFrame for a DuckDB-dialect SELECT."""
        spark_sql = self.translate(sql, schema=schema)
        try:
            return self.spark.sql(spark_sql)
        except Exception as exc:
            raise EngineError(f"query failed on spark: {_spark_message(exc)}") from None

    def query(self, sql: str, *, schema: str | None = None) -> pa.Table:
        frame = self.frame(sql, schema=schema)
        try:
            return frame.toArrow()
        except Exception as exc:
            raise EngineError(f"query failed on spark: {_spark_message(exc)}") from None

    def execute(self, sql: str, *, schema: str | None = None) -> None:
        self.frame(sql, schema=schema)
        for view in _created_views(sql):
            self._views.add(flat_name(view))

    def materialise(self, name: str, select_sql: str) -> None:
        from pyspark import StorageLevel

        self.drop_table(name)
        frame = self.frame(select_sql).persist(StorageLevel.MEMORY_AND_DISK)
        view = flat_name(name)
        frame.createOrReplaceTempView(view)
        self._views.add(view)
        self._persisted[view] = frame

    def define_macros(self, macros: Mapping[str, Macro]) -> None:
        self.macros.update(macros)

    def drop_table(self, name: str) -> None:
        view = flat_name(name)
        frame = self._persisted.pop(view, None)
        if frame is not None:
            frame.unpersist()
        self.spark.catalog.dropTempView(view)
        self._views.discard(view)

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(flat_name(name)).columns)

    def has_table(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(flat_name(name)))

    def close(self) -> None:
        for view in list(self._views):
            self.drop_table(view)
        if self._own:
            self.spark.stop()


def _created_views(sql: str) -> list[str]:
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="duckdb")
    if isinstance(tree, exp.Create) and isinstance(tree.this, exp.Table):
        return [".".join(p for p in (tree.this.db, tree.this.name) if p)]
    return []


def _spark_friendly(table: pa.Table) -> pa.Table:
    """Arrow types Spark's converter takes: large strings → strings, dictionaries decoded."""
    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(field.name, kind))
    schema = pa.schema(fields)
    return table if schema.equals(table.schema) else table.cast(schema)


def _spark_message(exc: Exception) -> str:
    # Spark's analysis errors name columns and tables; keep the first line only (no plan dump).
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


KMS_SOURCE = Path(__file__).resolve().parent / "java" / "InMemoryKms.java"
KMS_CLASS_FILE = "uk/trialvault/parquet/InMemoryKms.class"


def build_kms_jar(out_dir: Path) -> Path:
    """Compile `java/InMemoryKms.java` against Spark's jars into `out_dir/trialvault-kms.jar`
    (reused when already built from the same source). Needs a JDK (`javac`)."""
    reason = spark_available()
    if reason:
        raise EngineError(f"cannot build the Parquet KMS client: {reason}")
    javac = shutil.which("javac")
    if javac is None:
        raise EngineError("cannot build the Parquet KMS client: no `javac` (install a JDK 17+)")
    import pyspark

    source = KMS_SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    jar = Path(out_dir) / f"trialvault-kms-{digest}.jar"
    if jar.exists():
        return jar
    jars = Path(pyspark.__file__).resolve().parent / "jars"
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run(
            [javac, "--release", "17", "-nowarn", "-cp", f"{jars}/*", "-d", work,
             str(KMS_SOURCE)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise EngineError(f"javac failed on {KMS_SOURCE.name}: "
                              f"{done.stderr.strip().splitlines()[:1]}")
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        partial = jar.with_suffix(".part")
        with zipfile.ZipFile(partial, "w") as archive:
            archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            archive.write(Path(work) / KMS_CLASS_FILE, KMS_CLASS_FILE)
        partial.rename(jar)
    return jar


def read_encrypted_parquet(engine: SparkEngine, name: str, path: Path,
                           options: Mapping[str, str]) -> None:
    """Register an encrypted Parquet file as table `name`, decrypted by Spark itself
    (`options`: `vault.export.spark_read_options(...)`; the KMS jar on the classpath)."""
    try:
        frame = engine.spark.read.options(**dict(options)).parquet(str(path))
    except Exception as exc:
        raise EngineError(f"Spark cannot read {Path(path).name}: {_spark_message(exc)}") from None
    engine.register_frame(name, frame)
