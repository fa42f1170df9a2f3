"""Holdings page: per LA, packages, extract dates, rows per table and validation summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.vault.status import vault_status

HOLDINGS_ROLES = {"data-manager", "dpo", "analyst"}


def flatten(summary: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested counts as (dotted key, value) rows; the summaries hold counts, never values.
    Lists of records (e.g. counts by rule) are left to `record_tables`."""
    if isinstance(summary, dict):
        rows: list[tuple[str, Any]] = []
        for key in sorted(summary, key=str):
            rows += flatten(summary[key], f"{prefix}.{key}" if prefix else str(key))
        return rows
    if _records(summary):
        return []
    if isinstance(summary, list):
        return [(prefix, ", ".join(str(v) for v in summary))]
    return [(prefix, summary)]


@dataclass(frozen=True)
class RecordTable:
    """A list of records in a summary (e.g. counts by rule) as a table to show."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


def record_tables(summary: Any, prefix: str = "") -> list[RecordTable]:
    """Every list of records in the summary as a table (columns in first-seen order; the
    `rows` count last), so it reads as a table rather than as Python text."""
    if isinstance(summary, dict):
        out: list[RecordTable] = []
        for key in sorted(summary, key=str):
            out += record_tables(summary[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if not _records(summary):
        return []
    columns: list[str] = []
    for record in summary:
        columns += [k for k in record if k not in columns]
    columns.sort(key=lambda c: c == "rows")
    title = prefix.replace("_", " ").replace(".", " › ")
    return [RecordTable(title, columns, [[r.get(c, "") for c in columns] for r in summary])]


def _records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def add_holdings_pages(console: Console) -> None:
    settings = console.settings
    la_names = {la.dfe_code: la.name for la in settings.study.local_authorities}

    def holdings(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        status = vault_status(settings.vault_dir, session.user, session.password,
                              audit_read=False)
        return console.render(request, session, "holdings.html.j2", title="Holdings",
                              status=status, la_names=la_names, flatten=flatten,
                              record_tables=record_tables)

    console.page("/holdings", "Holdings", HOLDINGS_ROLES, holdings)
