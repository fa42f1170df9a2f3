"""Audit page: the searchable log and the chain verification, for the DPO and data manager."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.vault import audit
from trialvault.vault.session import open_vault

AUDIT_ROLES = {"dpo", "data-manager"}
SHOWN = 500


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: str
    user: str
    command: str
    args_text: str
    rows_text: str
    result: str
    error: str | None
    hash: str


def _row(entry: audit.AuditEntry) -> AuditRow:
    return AuditRow(entry.seq, entry.at, entry.user, entry.command,
                    json.dumps(entry.args, sort_keys=True),
                    ", ".join(f"{k}: {v}" for k, v in sorted(entry.rows_touched.items())),
                    entry.result, entry.error, entry.hash)


def add_audit_pages(console: Console) -> None:
    settings = console.settings

    def show(request: Request, session: ConsoleSession, form: FormData | None,
             verification: audit.AuditVerification | None = None) -> Response:
        query = request.query_params.get("q", "").strip().lower()
        # The search text is not recorded: a DPO may type a child's code into it.
        with open_vault(settings.vault_dir, session.user, session.password,
                        command="console audit", args={"search": bool(query)},
                        write=False) as vault:
            entries = audit.read_entries(vault.con)
        rows = [_row(e) for e in reversed(entries)]
        if query:
            rows = [r for r in rows if query in f"{r.user} {r.command} {r.result}".lower()]
        return console.render(request, session, "audit.html.j2", title="Audit log",
                              entries=rows[:SHOWN], total=len(entries), q=query,
                              verification=verification)

    def verify(request: Request, session: ConsoleSession, form: FormData | None) -> Response:
        with open_vault(settings.vault_dir, session.user, session.password,
                        command="console audit verify", args={}, write=False) as vault:
            result = audit.verify(vault.con, settings.vault_dir, vault_id=vault.vault_id,
                                  running=vault.begin_entry.seq if vault.begin_entry else None)
            vault.record(detail={"entries": result.entries, "ok": result.ok})
        return show(request, session, form, verification=result)

    console.page("/audit", "Audit", AUDIT_ROLES, show)
    console.page("/audit/verify", "Verify", AUDIT_ROLES, verify, methods=("POST",), nav=False)
