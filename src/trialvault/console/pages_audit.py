"""Audit page: the searchable log and the chain verification, for the DPO and data manager."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from trialvault.cli_common import AUDIT_READERS
from trialvault.console.app import Console
from trialvault.console.security import ConsoleSession
from trialvault.vault import audit
from trialvault.vault.session import open_vault

AUDIT_ROLES = set(AUDIT_READERS)  # as `trialvault audit show`


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
    # To the second, as the CLI shows it: microseconds only make the column unreadable.
    return AuditRow(entry.seq, str(entry.at)[:19].replace("T", " "), entry.user, entry.command,
                    json.dumps(entry.args, sort_keys=True),
                    ", ".join(f"{k}: {v}" for k, v in sorted(entry.rows_touched.items())),
                    entry.result, entry.error, entry.hash)


PER_PAGE = 50
# Results that are not a refusal or a failure ("started": a begin entry).
FINE = frozenset({"ok", "started"})


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page was asked to show (query parameters); `matches` applies it."""

    text: str = ""
    user: str = ""
    command: str = ""
    result: str = ""        # "", "ok" or "error"
    since: str = ""         # YYYY-MM-DD, inclusive
    until: str = ""         # YYYY-MM-DD, inclusive
    page: int = 1
    upto: int | None = None  # the newest entry when the first page was shown: later pages
                             # stay where they were while the log grows (views add entries)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AuditFilter:
        def date(name: str) -> str:
            value = query.get(name, "").strip()
            try:
                return dt.date.fromisoformat(value).isoformat() if value else ""
            except ValueError:
                return ""
        def number(name: str) -> int | None:
            try:
                return max(1, int(query.get(name, "")))
            except ValueError:
                return None
        result = query.get("result", "")
        return cls(query.get("q", "").strip().lower(), query.get("user", "").strip(),
                   query.get("command", "").strip(), result if result in ("ok", "error") else "",
                   date("since"), date("until"), number("page") or 1, number("upto"))

    def matches(self, row: AuditRow) -> bool:
        day = row.at[:10]
        return ((self.upto is None or row.seq <= self.upto)
                and (not self.text or self.text in f"{row.user} {row.command} {row.result}".lower())
                and (not self.user or row.user == self.user)
                and (not self.command or row.command == self.command)
                and (not self.result or (row.result in FINE) == (self.result == "ok"))
                and (not self.since or day >= self.since)
                and (not self.until or day <= self.until))

    def link(self, page: int) -> str:
        """The page's address for another page of the same filter."""
        params = {"q": self.text, "user": self.user, "command": self.command,
                  "result": self.result, "since": self.since, "until": self.until}
        return "/audit?" + urlencode({**{k: v for k, v in params.items() if v},
                                      "upto": self.upto or "", "page": page})


def add_audit_pages(console: Console) -> None:
    settings = console.settings

    def show(request: Request, session: ConsoleSession, form: FormData | None,
             verification: audit.AuditVerification | None = None) -> Response:
        chosen = AuditFilter.from_query(request.query_params)
        # The search text is not recorded: a DPO may type a child's code into it.
        with open_vault(settings.vault_dir, session.user, session.password,
                        command="console audit", args={"search": bool(chosen.text)},
                        write=False, audit_read=False) as vault:
            entries = audit.read_entries(vault.con)
        every = [_row(e) for e in reversed(entries)]
        if chosen.upto is None and every:
            chosen = dataclasses.replace(chosen, upto=every[0].seq)
        rows = [r for r in every if chosen.matches(r)]
        pages = max(1, -(-len(rows) // PER_PAGE))
        page = min(chosen.page, pages)
        return console.render(request, session, "audit.html.j2", title="Audit log",
                              entries=rows[(page - 1) * PER_PAGE:page * PER_PAGE],
                              matching=len(rows), total=len(entries), f=chosen, page=page,
                              pages=pages, users=sorted({r.user for r in every}),
                              commands=sorted({r.command for r in every}),
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
