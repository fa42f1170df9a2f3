"""`prepare_la`: one LA's returns in, a validated, linked, minimised and sealed package out.

Order matters for safety: everything that can refuse (study, LA code, recipient key, output
path, allowed fields, hostile or malformed files) is checked before anything is written, the
database lives in memory only, and the package is written atomically by `seal.write_package`.
The LA keeps its own validation report (it names the LA's child codes: its own data).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyrage
from pyrage import x25519

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.formats import (
    DEFAULT_LIMITS,
    ReadLimits,
    SourceTables,
    read_cin_census,
    read_education,
    read_neet,
    read_ssda903,
)
from trialvault.prepare import link, minimise, report, risk, validate
from trialvault.seal import PACKAGE_SUFFIX, LaSigningKey, write_package
from trialvault.spec.rules import RULE_FORMATS, load_rules
from trialvault.study.model import StudyFile


@dataclass(frozen=True)
class PrepareResult:
    """What `prepare_la` did, in counts and names (no values)."""

    la_code: int
    package: Path | None
    package_id: str | None
    files_read: dict[str, list[str]]
    rows_read: dict[str, int]
    rows_rejected: int
    tables: dict[str, int]
    issues: dict[str, Any]
    linkage: link.Linkage
    risk: dict[str, Any]
    dropped_tables: list[str]
    dropped_columns: list[str]
    report_files: list[Path]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def linkage_rate(self) -> float | None:
        return self.linkage.rate

    @property
    def rows_packaged(self) -> int:
        return sum(self.tables.values())


def _as_list(paths: Path | Sequence[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else list(paths)


def check_recipient(recipient: str) -> str:
    """The recipient as an age X25519 public key, or an InputFileError saying what it is not."""
    text = recipient.strip()
    try:
        x25519.Recipient.from_str(text)
    except pyrage.RecipientError:
        raise InputFileError("recipient is not an age X25519 public key (age1…)") from None
    return text


def _preflight(study: StudyFile, la_code: int, formats: list[str], validate_only: bool,
               recipient: str | None, out: Path | None) -> str | None:
    if la_code not in study.la_codes:
        raise PolicyRefusal(f"LA {la_code} is not a local authority of study "
                            f"{study.study.id!r} (its LAs: {study.la_codes})")
    minimise.check_allowed(study, minimise.tables_for(formats))
    if validate_only:
        return None
    if recipient is None or out is None:
        raise InputFileError("a package needs --recipient and --out (or use --validate-only)")
    if out.exists():
        raise InputFileError("output package already exists; give a new name", file=str(out))
    if out.suffix != PACKAGE_SUFFIX:
        raise InputFileError(f"package name must end in {PACKAGE_SUFFIX}", file=out.name)
    if not out.parent.is_dir():
        raise InputFileError("folder of the output package does not exist",
                             file=str(out.parent))
    return check_recipient(recipient)


def read_sources(*, ssda903: Path | Sequence[Path], cin: Path | Sequence[Path],
                 education: Path | None = None, neet: Path | None = None,
                 ssda903_year: int | None = None, limits: ReadLimits = DEFAULT_LIMITS
                 ) -> dict[str, SourceTables]:
    """Read one LA's returns with the hardened readers, keyed by format."""
    sources: dict[str, SourceTables] = {
        "ssda903": read_ssda903(_as_list(ssda903), limits=limits, year=ssda903_year),
        "cin_census": read_cin_census(_as_list(cin), limits=limits),
    }
    if education:
        sources["education"] = read_education([education], limits=limits)
    if neet:
        sources["neet"] = read_neet([neet], limits=limits)
    return sources


def prepare_la(study: StudyFile, la_code: int, *, ssda903: Path | Sequence[Path],
               cin: Path | Sequence[Path], education: Path | None = None,
               neet: Path | None = None, recipient: str | None = None,
               out: Path | None = None, report_dir: Path, validate_only: bool = False,
               ssda903_year: int | None = None, extract_date: dt.date | None = None,
               limits: ReadLimits = DEFAULT_LIMITS,
               sign_key: LaSigningKey | None = None) -> PrepareResult:
    """Read, validate, link, minimise and (unless `validate_only`) seal one LA's returns.

    `ssda903`: a folder (CSV set, or per-year subfolders) or an XML file; `cin`: the CIN census
    XML file(s), one per collection year; `education`, `neet`: the UPN-keyed CSV exports.
    The validation report (CSV + XLSX) goes to `report_dir`; the package to `out`, encrypted to
    the age public key `recipient`, signed with the LA's `sign_key` (which must be this LA's).
    Raises on hostile or malformed input, writing nothing.
    """
    started = time.perf_counter()
    formats = ["ssda903", "cin_census"] + (["education"] if education else []) + (
        ["neet"] if neet else [])
    recipient_key = _preflight(study, la_code, formats, validate_only, recipient, out)
    if sign_key is not None and sign_key.la_code != la_code:
        raise PolicyRefusal(f"--sign-key is LA {sign_key.la_code}'s key, not LA {la_code}'s: "
                            "an LA signs only its own packages")

    sources = read_sources(ssda903=ssda903, cin=cin, education=education, neet=neet,
                           ssda903_year=ssda903_year, limits=limits)
    notes = _notes(sources, la_code)

    rows_in = sum(s.row_count for s in sources.values())
    con = validate.connect(threads=1 if rows_in < validate.SMALL_INPUT_ROWS else None)
    try:
        result = validate.validate_sources(
            con, [sources.get(f) or _empty(f) for f in
                  ("ssda903", "cin_census", "education", "neet")],
            {f: load_rules(f) for f in RULE_FORMATS if f in sources},
            needed=minimise.SOURCE_TABLES)
        link.mark_rejected(con)
        link.install_helpers(con)
        link.build_people(con)
        link.build_upn_links(con)
        linkage = link.link_pupils(con)
        tables = minimise.build_tables(con, la_code, minimise.tables_for(formats))
        rejected = con.execute("SELECT count(*) FROM validation.rejected").fetchone()
        rows = report.issue_rows(con)
    finally:
        con.close()

    summary = risk.risk_summary(tables["children"],
                                sizes=sorted({*risk.DEFAULT_SIZES, study.disclosure.threshold}))
    dropped = minimise.dropped_columns(sources)
    report_files = report.write_la_report(rows, report_dir)
    package_id = None
    if not validate_only and out is not None and recipient_key is not None:
        manifest = {
            "study_id": study.study.id, "spec_version": study.study.spec_version,
            "la_code": la_code, "extract_date": extract_date or dt.date.today(),
            "dropped_columns": dropped.columns, "dropped_tables": dropped.tables,
            "linkage_rate": linkage.rate, "linkage": linkage.as_dict(),
            "risk_summary": summary, "validation_summary": result.summary(),
            "source_files": {f: list(s.files) for f, s in sources.items()},
            "collection_years": {f: list(s.meta.get("collection_years", []))
                                 for f, s in sources.items() if "collection_years" in s.meta},
        }
        package_id = write_package(out, [recipient_key], manifest, tables,
                                   report.package_csv(rows), sign_key=sign_key)
    return PrepareResult(
        la_code=la_code, package=None if validate_only else out, package_id=package_id,
        files_read={f: list(s.files) for f, s in sources.items()},
        rows_read={f: s.row_count for f, s in sources.items()},
        rows_rejected=int(rejected[0]) if rejected else 0,
        tables={name: t.num_rows for name, t in tables.items()},
        issues=result.summary(), linkage=linkage, risk=summary,
        dropped_tables=dropped.tables, dropped_columns=dropped.columns,
        report_files=report_files, notes=notes, seconds=time.perf_counter() - started)


def _empty(fmt: str) -> SourceTables:
    return SourceTables(format=fmt, tables={}, files=())


def _notes(sources: dict[str, SourceTables], la_code: int) -> list[str]:
    """Things the analyst should know that are not row findings (names and codes only)."""
    notes = []
    ignored = sources["ssda903"].meta.get("ignored") or []
    if ignored:
        notes.append(f"SSDA903 folder: files not read (not CSV): {sorted(ignored)}")
    for header in sources["cin_census"].meta.get("headers", []):
        lea = header.get("la")
        if lea is not None and str(lea).strip() != str(la_code):
            notes.append(f"{header['file']}: header LEA is {lea}, not {la_code}")
    return notes
