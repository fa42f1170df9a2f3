"""The prepare stage (LA side): validate, link (UPN -> child), minimise, risk summary, seal.

Public API:

- `prepare_la(study, la_code, *, ssda903, cin, education, neet, recipient, out, report_dir,
  validate_only=False, ssda903_year=None, extract_date=None, limits=...) -> PrepareResult`
- `PrepareResult`: counts, linkage rate, validation summary, risk summary, package path
- `risk.record_frequencies(table, quasi_identifiers)`, `risk.risk_summary(children)`
- `validate.connect()`, `validate.load_tables(...)`, `validate.run_rules(...)`: the rule engine
"""

from trialvault.prepare.pipeline import PrepareResult, check_recipient, prepare_la

__all__ = ["PrepareResult", "check_recipient", "prepare_la"]
