"""`prepare --validate-only --engine spark`: the same rules on another engine.

Reading and typing stay with the hardened readers and the LA-folder checks of the default path
(`intake.read_returns`); only the rules run on the engine (see `trialvault.engines.validation`).
The findings then go back into the typing DuckDB so the LA gets the same report (CSV + XLSX)
from the same writer. Sealing always runs on the default path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trialvault.engines import Engine
from trialvault.errors import PolicyRefusal
from trialvault.formats import ReadLimits
from trialvault.formats.limits import DEFAULT_LIMITS
from trialvault.prepare.validate import ValidationResult
from trialvault.study.model import StudyFile

ISSUES_FILE = "validation_issues.csv"  # the same name as the default path's report


def validate_la_on_engine(engine: Engine, study: StudyFile, la_code: int, *,
                          ssda903: Path | Sequence[Path] | None,
                          cin: Path | Sequence[Path] | None,
                          education: Path | None = None, neet: Path | None = None,
                          report_dir: Path, ssda903_year: int | None = None,
                          previous: Path | None = None, postcodes: Path | None = None,
                          providers: Path | None = None,
                          limits: ReadLimits = DEFAULT_LIMITS) -> ValidationResult:
    """Validate one LA's returns with `engine`; write the LA's report to `report_dir`. The
    report stays at the LA: it names files, lines, child codes, rules and values."""
    from trialvault.engines.validation import validate_on_engine
    from trialvault.prepare import report, validate
    from trialvault.prepare.intake import read_returns
    from trialvault.spec.rules import RULE_FORMATS, load_rules

    if la_code not in study.la_codes:
        raise PolicyRefusal(f"LA {la_code} is not a local authority of study "
                            f"'{study.study.id}' (its LAs: {study.la_codes})")
    intake = read_returns(study, la_code, ssda903=ssda903, cin=cin, education=education,
                          neet=neet, previous=previous, postcodes=postcodes,
                          providers=providers, ssda903_year=ssda903_year, limits=limits)
    sources = list(intake.sources.values())
    rulesets = {f: load_rules(f) for f in RULE_FORMATS if f in intake.sources}
    result = validate_on_engine(engine, sources, rulesets)
    con = validate.connect()
    try:
        for source in sources:
            validate.load_tables(con, source)
        validate.record_findings(con, result.collected)
        report.write_la_report(con, report_dir, leave_out=intake.previous)
    finally:
        con.close()
    return result
