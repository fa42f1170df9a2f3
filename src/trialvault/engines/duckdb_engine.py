"""The DuckDB engine: the definitions run as written (they are DuckDB SQL).

Wraps a connection it is handed (e.g. a vault session's `s.con`, whose default catalog is the
encrypted vault) or an in-memory one it opens itself with spilling to disk switched off, so no
plaintext row reaches a temp file. Loaded tables are TEMP tables (unqualified names) or tables
in a schema of the default catalog (qualified names; only on an engine it opened itself — a
vault's catalog is never written through this class).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from trialvault.engines.base import Engine, EngineError
from trialvault.engines.transpile import Macro

_counter = itertools.count()


def _q(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


class DuckDBEngine(Engine):
    """DuckDB: an existing connection (`con=`) or a private in-memory one."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None, *,
                 threads: int | None = None) -> None:
        self._own = con is None
        if con is None:
            con = duckdb.connect(":memory:")
            con.execute("SET temp_directory = ''")
            if threads:
                con.execute(f"SET threads = {int(threads)}")
        self.con = con

    def load_table(self, name: str, table: pa.Table) -> None:
        view = f"_tv_arrow_{next(_counter)}"
        self.con.register(view, table)
        try:
            if "." in name:
                if not self._own:
                    raise EngineError(f"refusing to create {name} in a database this engine "
                                      "did not open (load it under an unqualified name)")
                schema = name.split(".")[0]
                self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
                self.con.execute(f"CREATE OR REPLACE TABLE {_q(name)} AS SELECT * FROM {view}")
            else:
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {_q(name)} AS "
                                 f"SELECT * FROM {view}")
        except duckdb.Error as exc:
            raise EngineError(f"cannot load table {name}: {type(exc).__name__}") from None
        finally:
            self.con.unregister(view)

    def query(self, sql: str, *, schema: str | None = None) -> pa.Table:
        try:
            with self._search_path(schema):
                return self.con.execute(sql).fetch_arrow_table()
        except duckdb.Error as exc:
            # DuckDB's messages name tables, columns and functions, not row values.
            raise EngineError(f"query failed on duckdb: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0]}") from None

    def execute(self, sql: str, *, schema: str | None = None) -> None:
        try:
            with self._search_path(schema):
                self.con.execute(sql)
        except duckdb.Error as exc:
            raise EngineError(f"statement failed on duckdb: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0]}") from None

    def materialise(self, name: str, select_sql: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP TABLE {_q(name)} AS {select_sql}")

    def define_macros(self, macros: Mapping[str, Macro]) -> None:
        for macro in macros.values():
            self.execute(f"CREATE OR REPLACE TEMP MACRO {macro.name}"
                         f"({', '.join(macro.parameters)}) AS {macro.body}")

    def drop_table(self, name: str) -> None:
        kind = self._kind(name)
        if kind is not None:
            self.con.execute(f"DROP {kind} IF EXISTS {_q(name)}")

    def has_table(self, name: str) -> bool:
        return self._kind(name) is not None

    def _kind(self, name: str) -> str | None:
        schema, _, table = name.rpartition(".")
        row = self.con.execute(
            "SELECT table_type FROM information_schema.tables WHERE table_name = ? "
            "AND (? = '' AND table_catalog IN (current_database(), 'temp') "
            "     OR table_schema = ? AND table_catalog = current_database()) "
            "ORDER BY table_catalog = 'temp' DESC LIMIT 1",
            [table, schema, schema]).fetchone()
        if row is None:
            return None
        return "VIEW" if str(row[0]).upper() == "VIEW" else "TABLE"

    def _search_path(self, schema: str | None) -> _SearchPath:
        return _SearchPath(self.con, schema)

    def close(self) -> None:
        if self._own:
            self.con.close()


class _SearchPath:
    """`SET search_path` for one statement (how rules see their format's tables unqualified)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, schema: str | None) -> None:
        self.con, self.schema = con, schema

    def __enter__(self) -> None:
        if self.schema:
            self.con.execute(f"SET search_path = '{self.schema},main'")

    def __exit__(self, *exc: object) -> None:
        if self.schema:
            self.con.execute("RESET search_path")
