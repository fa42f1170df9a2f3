"""The prepare stage (LA side): intake, validate, report, link (UPN -> child), minimise, seal.

Public API:

- `prepare_la(study, la_code, *, ssda903, cin, education, neet, previous, postcodes, providers,
  recipient, out, report_dir, validate_only=False, fail_on=None, ...) -> PrepareResult`
- `PrepareResult`: files and years read, rules run and not run, findings by rule and type,
  linkage, risk summary, package path
- `intake.read_returns(...)`: the readers plus the LA-folder checks
- `report.write_la_report(...)`: the LA's CSV + XLSX report; `report.package_csv`: counts by rule
- `validate.connect()`, `validate.load_tables(...)`, `validate.run_rules(...)`: the rule engine

Importing the package is cheap: `prepare_la` and its heavy dependencies load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trialvault.prepare.pipeline import PrepareResult, check_recipient, prepare_la

__all__ = ["PrepareResult", "check_recipient", "prepare_la"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from trialvault.prepare import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
