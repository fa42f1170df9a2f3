"""One request of each type, filed and executed on a vault: what `trialvault demo` shows.

    demo_requests(vault_dir, user, password, study, la_code, child_ids, recipient, out_dir)
        -> list[RequestSummary]

`child_ids` are five distinct codes of children held for `la_code` (access, rectification,
restriction, objection, erasure, in that order). The access request goes through a
stop-the-clock (identity asked, then received) to show the ICO rule; the erasure ends with a
re-key. Summaries carry ids, states, dates and counts — no child code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.rights import service
from trialvault.rights.register import REQUEST_TYPES
from trialvault.study.model import StudyFile

# The demo's correction: a recorded ethnicity replaced by the code the person gives
# (DfE code WIRI, "White Irish"); harmless on synthetic data.
DEMO_RECTIFICATION = ("children", "ethnicity", "WIRI")
DEMO_FALLBACK = "WOTH"  # when the child is already recorded as WIRI


@dataclass(frozen=True)
class RequestSummary:
    request_id: int
    type: str
    state: str
    received: dt.date
    due: dt.date | None
    paused_days: int
    outcome: str
    rows_touched: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    rekeyed: bool = False


def demo_requests(vault_dir: Path, user: str, password: str, study: StudyFile, la_code: int,
                  child_ids: list[str], recipient: str, out_dir: Path, *,
                  today: dt.date | None = None) -> list[RequestSummary]:
    """File and execute one request of each type (see module docstring)."""
    if len(child_ids) < len(REQUEST_TYPES) or len(set(child_ids)) < len(REQUEST_TYPES):
        raise InputFileError(f"the demo needs {len(REQUEST_TYPES)} distinct children "
                             f"(got {len(set(child_ids))})", rule="children")
    day = today or dt.date.today()
    received = day - dt.timedelta(days=10)
    v = service.Vault(vault_dir, user, password)
    summaries = []
    for kind, child in zip(REQUEST_TYPES, child_ids, strict=False):
        rid = service.new_request(v, study, type=kind, la_code=la_code, child_id=child,
                                  received=received, channel="email",
                                  note="demo request on synthetic data", today=day)
        kwargs: dict[str, object] = {}
        if kind == "access":
            # Identity asked two days after receipt, received three days later: the month
            # restarts from the day the ID arrived (UK GDPR Art. 12A).
            service.await_information(v, rid, "identity",
                                      asked=received + dt.timedelta(days=2), today=day)
            service.resume(v, rid, answered=received + dt.timedelta(days=5), today=day)
            kwargs = {"recipient": recipient, "out_dir": out_dir}
        elif kind == "rectification":
            table, column, value = DEMO_RECTIFICATION
            kwargs = {"rectification": service.Rectification(
                table, column, value, "The person, through the LA, says the recorded "
                "ethnicity is wrong and gave the right code.")}
        else:
            service.start(v, rid, today=day)
        try:
            report = service.execute(v, study, rid, today=day, **kwargs)  # type: ignore[arg-type]
        except PolicyRefusal:
            if kind != "rectification":
                raise
            # The synthetic child already had the demo's code: correct it to another one.
            table, column, _ = DEMO_RECTIFICATION
            kwargs = {"rectification": service.Rectification(
                table, column, DEMO_FALLBACK, "The person, through the LA, says the recorded "
                "ethnicity is wrong and gave the right code.")}
            report = service.execute(v, study, rid, today=day, **kwargs)  # type: ignore[arg-type]
        detail = service.show_request(v, rid, today=day)
        summaries.append(RequestSummary(
            request_id=rid, type=kind, state=report.state, received=received,
            due=detail.view.due, paused_days=detail.view.paused_days, outcome=report.outcome,
            rows_touched=report.rows_touched, files=report.files,
            rekeyed=report.rekey is not None))
    return summaries
