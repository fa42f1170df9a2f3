"""Holdings page: per LA, packages, extract dates, rows per table and validation summary."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.vault.status import vault_status

HOLDINGS_ROLES = {"data-manager", "dpo", "analyst"}


def flatten(summary: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested counts as (dotted key, value) rows; the summaries hold counts, never values."""
    if isinstance(summary, dict):
        rows: list[tuple[str, Any]] = []
        for key in sorted(summary, key=str):
            rows += flatten(summary[key], f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, summary)]


def add_holdings_pages(console: Console) -> None:
    settings = console.settings
    la_names = {la.dfe_code: la.name for la in settings.study.local_authorities}

    def holdings(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        status = vault_status(settings.vault_dir, session.user, session.password)
        return console.render(request, session, "holdings.html.j2", title="Holdings",
                              status=status, la_names=la_names, flatten=flatten)

    console.page("/holdings", "Holdings", HOLDINGS_ROLES, holdings)
