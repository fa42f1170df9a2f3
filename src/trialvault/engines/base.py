"""The storage-engine interface: a small base class with documented hooks (ehrQL-style backends).

The project's definitions — validation rules (`spec/rules/*.yaml`), cohort and outcome SQL
(`evaluate/sql/*.sql`) — are written once, in DuckDB's SQL dialect. An `Engine` runs them:
`DuckDBEngine` as written, `SparkEngine` after SQLGlot transpiles them (with the few rewrites in
`engines.transpile`). Code that runs a definition takes an `Engine` and uses only these hooks,
so the same definition gives the same rows on a laptop and on a Spark cluster.

Table names are DuckDB style, optionally schema-qualified (`harmonised.referrals`,
`validation.code_lists`); an engine without schemas maps them (Spark: `harmonised__referrals`).
Every hook raises `EngineError` (a TrialvaultError) whose message names the table or the
statement's purpose, never a row value.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from trialvault.errors import TrialvaultError

if TYPE_CHECKING:
    from trialvault.engines.transpile import Macro


class EngineError(TrialvaultError):
    """An engine refused a statement or is not available (e.g. pyspark or Java missing)."""


class Engine(abc.ABC):
    """A place to load tables and run DuckDB-dialect SQL over them.

    Hooks a subclass implements:

    - `load_table(name, table)`: make the Arrow table queryable as `name` (replacing any
      table or view of that name). Temporary: it lives as long as the engine.
    - `query(sql)`: run one SELECT (DuckDB dialect) and return its rows as Arrow.
    - `execute(sql)`: run one statement that returns nothing (CREATE TEMP VIEW ... AS SELECT).
    - `drop_table(name)`: forget a table/view loaded or created before (no error if absent).
    - `has_table(name)`: whether `name` can be queried.
    - `close()`: release what the engine started (never a session it was handed).

    `name` is the engine's short name (`duckdb`, `spark`), as `--engine` spells it.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def load_table(self, name: str, table: pa.Table) -> None: ...

    @abc.abstractmethod
    def query(self, sql: str, *, schema: str | None = None) -> pa.Table: ...

    @abc.abstractmethod
    def execute(self, sql: str, *, schema: str | None = None) -> None: ...

    @abc.abstractmethod
    def materialise(self, name: str, select_sql: str) -> None: ...

    @abc.abstractmethod
    def define_macros(self, macros: Mapping[str, Macro]) -> None: ...

    @abc.abstractmethod
    def drop_table(self, name: str) -> None: ...

    @abc.abstractmethod
    def has_table(self, name: str) -> bool: ...

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release resources the engine started itself."""

    # --- conveniences built on the hooks ------------------------------------------------
    def load_tables(self, tables: dict[str, pa.Table]) -> None:
        """`load_table` for each (name, table)."""
        for name, table in tables.items():
            self.load_table(name, table)

    def columns(self, name: str) -> list[str]:
        """Column names of table/view `name` (engines may answer without running a job)."""
        return self.query(f"SELECT * FROM {name} LIMIT 0").column_names

    def drop_tables(self, names: Iterable[str]) -> None:
        for name in names:
            self.drop_table(name)

    def create_view(self, name: str, select_sql: str) -> None:
        """A temporary view `name` over a DuckDB-dialect SELECT."""
        self.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select_sql}")

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
