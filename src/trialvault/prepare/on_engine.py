"""`prepare --validate-only --engine spark`: the same rules on another engine.

Reading and typing stay with the hardened readers; only the rules run on the engine (see
`trialvault.engines.validation`). Sealing always runs on the default path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.csv as pacsv

from trialvault.engines import Engine
from trialvault.engines.validation import validate_on_engine
from trialvault.errors import PolicyRefusal
from trialvault.formats import ReadLimits
from trialvault.formats.limits import DEFAULT_LIMITS
from trialvault.prepare.pipeline import read_sources
from trialvault.prepare.validate import ValidationResult
from trialvault.spec.rules import RULE_FORMATS, load_rules
from trialvault.study.model import StudyFile

ISSUES_FILE = "validation_issues.csv"  # the same name as the default path's report


def validate_la_on_engine(engine: Engine, study: StudyFile, la_code: int, *, ssda903: Path | Sequence[Path],
                          cin: Path | Sequence[Path], education: Path | None = None,
                          neet: Path | None = None, report_dir: Path,
                          ssda903_year: int | None = None,
                          limits: ReadLimits = DEFAULT_LIMITS) -> ValidationResult:
    """Validate one LA's returns with `engine`; write the LA's issue list (CSV) to
    `report_dir`. The list stays at the LA: it names files, lines, child codes and rules."""
    if la_code not in study.la_codes:
        raise PolicyRefusal(f"LA {la_code} is not a local authority of study "
                            f"'{study.study.id}' (its LAs: {study.la_codes})")
    sources = read_sources(ssda903=ssda903, cin=cin, education=education, neet=neet,
                           ssda903_year=ssda903_year, limits=limits)
    rulesets = {f: load_rules(f) for f in RULE_FORMATS if f in sources}
    result = validate_on_engine(engine, list(sources.values()), rulesets)
    report_dir.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(result.issues, report_dir / ISSUES_FILE)
    return result
