"""`prepare_la`: one LA's returns in, a validated, linked, minimised and sealed package out.

Order matters for safety: everything that can refuse (study, LA code, recipient key, output
path, allowed fields, hostile or malformed files, another LA's return) is checked before
anything is written, the database lives in memory only, and the package is written atomically
by `seal.write_package`. The LA keeps its own validation report (it names the LA's child codes
and quotes values: its own data); the package carries counts by rule only.

`validate_only` is the command an LA runs on every draft of its return: read, validate, write
the report; no linkage, minimisation, risk scoring or sealing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.formats import DEFAULT_LIMITS, ColumnTable, ReadLimits, SourceTables
from trialvault.origin import package_origin
from trialvault.prepare.intake import Intake, read_returns
from trialvault.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    from trialvault.prepare import link
    from trialvault.prepare.period import PeriodCut
    from trialvault.prepare.report import RuleCount
    from trialvault.seal import LaSigningKey
    from trialvault.study.model import StudyFile

FailOn = Literal["error", "query"]


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
    linkage: link.Linkage  # all zero when nothing was linked (validate only)
    risk: dict[str, Any]
    dropped_tables: list[str]
    dropped_columns: list[str]
    report_files: list[Path]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    years: dict[str, dict[int, str]] = field(default_factory=dict)
    previous_years: dict[str, list[int]] = field(default_factory=dict)
    rules_run: dict[str, int] = field(default_factory=dict)
    rules_not_run: dict[str, dict[str, str]] = field(default_factory=dict)
    by_rule: list[RuleCount] = field(default_factory=list)
    period_cut: PeriodCut | None = None
    refused_by: FailOn | None = None  # --fail-on stopped the package
    validate_only: bool = False

    @property
    def linkage_rate(self) -> float | None:
        return self.linkage.rate

    @property
    def rows_packaged(self) -> int:
        return sum(self.tables.values())

    @property
    def findings(self) -> dict[str, int]:
        """Findings reported, by DfE type (`error`, `query`)."""
        return {k: sum(r.rows for r in self.by_rule if r.kind == k) for k in ("error", "query")}

    @property
    def outcome(self) -> Literal["clean", "queries only", "errors"]:
        found = self.findings
        return "errors" if found["error"] else "queries only" if found["query"] else "clean"

    def fails(self, fail_on: FailOn | None) -> bool:
        """Whether `--fail-on fail_on` makes this run fail."""
        found = self.findings
        return fail_on is not None and (found["error"] > 0 or (
            fail_on == "query" and found["query"] > 0))


def check_recipient(recipient: str) -> str:
    """The recipient as an age X25519 public key, or an InputFileError saying what it is not."""
    import pyrage
    from pyrage import x25519

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
    if validate_only:  # the sealing code is not even imported
        return None
    from trialvault.prepare import minimise
    from trialvault.seal import PACKAGE_SUFFIX

    minimise.check_allowed(study, minimise.tables_for(formats))
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
    """Read one LA's returns with the hardened readers, keyed by format (no LA checks: see
    `intake.read_returns` for those)."""
    from trialvault.formats import read_cin_census, read_education, read_neet, read_ssda903
    from trialvault.prepare.intake import cin_files

    as_list = [ssda903] if isinstance(ssda903, Path) else list(ssda903)
    sources: dict[str, SourceTables] = {
        "ssda903": read_ssda903(as_list, limits=limits, year=ssda903_year),
        "cin_census": read_cin_census(
            cin_files([cin] if isinstance(cin, Path) else list(cin))[0], limits=limits),
    }
    if education:
        sources["education"] = read_education([education], limits=limits)
    if neet:
        sources["neet"] = read_neet([neet], limits=limits)
    return sources


def rules_not_run(intake: Intake, rules_run: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """Per format, the codes in force in the years read that did not run, and why."""
    from trialvault.spec.rules import load_rules

    flags = {"postcodes": "--postcodes", "providers": "--providers",
             "local_authority": "--postcodes or --providers"}
    out: dict[str, dict[str, str]] = {}
    for fmt, years in intake.years.items():
        ran = set(rules_run.get(fmt, []))
        ruleset = load_rules(fmt)
        current = [y for y in years if y not in intake.previous.get(fmt, set())]
        for year in current:
            for code in ruleset.codes_in(year):
                if code in ran:
                    continue
                rule = ruleset.rule(code, year)
                needs = sorted({flags.get(n, n) for n in rule.needs})
                out.setdefault(fmt, {})[code] = (f"needs {' and '.join(needs)}" if needs
                                                 else "not run")
    return out


def prepare_la(study: StudyFile, la_code: int, *, ssda903: Path | Sequence[Path] | None,
               cin: Path | Sequence[Path] | None, education: Path | None = None,
               neet: Path | None = None, recipient: str | None = None,
               out: Path | None = None, report_dir: Path, validate_only: bool = False,
               ssda903_year: int | None = None, extract_date: dt.date | None = None,
               limits: ReadLimits = DEFAULT_LIMITS,
               sign_key: LaSigningKey | None = None, previous: Path | None = None,
               postcodes: Path | None = None, providers: Path | None = None,
               fail_on: FailOn | None = None, xlsx: bool = True,
               origin: str | None = None,
               progress: ProgressCallback | None = None) -> PrepareResult:
    """Read, validate and report on one LA's returns; unless `validate_only`, also link,
    minimise and seal them.

    `ssda903`: a folder (CSV set, or per-year subfolders) or an XML file; `cin`: CIN census XML
    files or folders of them; `education`, `neet`: the UPN-keyed CSV exports; `previous`: last
    year's SSDA903 return (for the year-on-year rules only); `postcodes`, `providers`: reference
    data for the rules that need it. The LA's report (CSV, and XLSX unless `xlsx` is false) goes
    to `report_dir`; the package to `out`, encrypted to the age public key `recipient` and
    signed with the LA's `sign_key`. `origin`: what the LA declares the data to be (real or
    synthetic); files made by `trialvault synth` are recorded as synthetic whatever is declared
    (a declared `real` is refused for them), and nothing declared is recorded as unknown.
    `progress` hears each step by name (never a value).
    With `fail_on`, errors (or also queries) found mean no package (the result says so in
    `refused_by`; the CLI exits with its own code).
    Raises on hostile or malformed input, writing nothing.
    """
    from trialvault.prepare import report, validate
    from trialvault.spec.rules import RULE_FORMATS, load_rules

    started = time.perf_counter()
    tell = progress or no_progress
    steps = 3 if validate_only else 5
    recorded_origin = package_origin(origin, _paths(ssda903, cin, education, neet))
    if not validate_only and (not ssda903 or not cin):
        raise InputFileError("a package needs both returns: --ssda903 and --cin (to check one "
                             "return alone, use --validate-only)")
    formats = (["ssda903"] if ssda903 else []) + (["cin_census"] if cin else []) + (
        ["education"] if education else []) + (["neet"] if neet else [])
    recipient_key = _preflight(study, la_code, formats, validate_only, recipient, out)
    if sign_key is not None and sign_key.la_code != la_code:
        raise PolicyRefusal(f"--sign-key is LA {sign_key.la_code}'s key, not LA {la_code}'s: "
                            "an LA signs only its own packages")

    tell(0, steps, f"LA {la_code}: reading the returns")
    intake = read_returns(study, la_code, ssda903=ssda903, cin=cin, education=education,
                          neet=neet, previous=previous, postcodes=postcodes,
                          providers=providers, ssda903_year=ssda903_year, limits=limits)
    sources = intake.sources
    rows_in = sum(s.row_count for s in sources.values())
    small = rows_in < validate.SMALL_INPUT_ROWS
    xml_only = all(isinstance(t, ColumnTable) for s in sources.values() for t in s.tables.values())
    con = validate.connect(threads=1 if small else None, lean=small and xml_only)
    try:
        needed = {} if validate_only else _source_tables()
        # A package is built from every format's tables: a format not given is loaded empty.
        loaded = list(sources.values()) if validate_only else [
            sources.get(f) or SourceTables(format=f, tables={}, files=())
            for f in ("ssda903", "cin_census", "education", "neet")]
        tell(1, steps, f"LA {la_code}: running the DfE rules on {rows_in:,} rows")
        result = validate.validate_sources(
            con, loaded,
            {f: load_rules(f) for f in RULE_FORMATS if f in sources}, needed=needed,
            collect=False)
        tell(2, steps, f"LA {la_code}: writing the validation report")
        written = report.write_la_report(con, report_dir, leave_out=intake.previous, xlsx=xlsx)
        common = dict(
            la_code=la_code, files_read={f: list(s.files) for f, s in sources.items()},
            rows_read=intake.rows_read, issues=report.summary(written.by_rule,
                                                              result.rows_checked,
                                                              result.rules_run),
            report_files=written.paths, notes=list(intake.notes), years=intake.years,
            previous_years={f: sorted(y) for f, y in intake.previous.items()},
            rules_run={f: len(c) for f, c in result.rules_run.items()},
            rules_not_run=rules_not_run(intake, result.rules_run), by_rule=written.by_rule)
        checked = PrepareResult(package=None, package_id=None, rows_rejected=0, tables={},
                                linkage=_no_linkage(), risk={}, dropped_tables=[],
                                dropped_columns=[], validate_only=validate_only,
                                **common)  # type: ignore[arg-type]
        if validate_only or checked.fails(fail_on):
            return _with(checked, seconds=time.perf_counter() - started,
                         refused_by=None if validate_only or not checked.fails(fail_on)
                         else fail_on)
        tell(3, steps, f"LA {la_code}: linking and minimising")
        packaged = _package(con, study, la_code, intake, formats)
    finally:
        con.close()
    package_id = None
    if out is not None and recipient_key is not None:
        from trialvault.seal import write_package

        manifest = {
            "study_id": study.study.id, "spec_version": study.study.spec_version,
            "la_code": la_code, "extract_date": extract_date or dt.date.today(),
            "origin": recorded_origin,
            "dropped_columns": packaged.dropped.columns, "dropped_tables": packaged.dropped.tables,
            "linkage_rate": packaged.linkage.rate, "linkage": packaged.linkage.as_dict(),
            "risk_summary": packaged.risk, "validation_summary": checked.issues,
            "source_files": {f: list(s.files) for f, s in sources.items()},
            "collection_years": {f: [y for y in years if y not in intake.previous.get(f, set())]
                                 for f, years in intake.years.items()},
            "outside_data_period": {"rows": packaged.cut.rows,
                                    "children": packaged.cut.children},
        }
        tell(4, steps, f"LA {la_code}: sealing the package")
        package_id = write_package(out, [recipient_key], manifest, packaged.tables,
                                   report.package_csv(written.by_rule), sign_key=sign_key)
    return _with(checked, package=out, package_id=package_id, rows_rejected=packaged.rejected,
                 tables={name: t.num_rows for name, t in packaged.tables.items()},
                 linkage=packaged.linkage, risk=packaged.risk,
                 dropped_tables=packaged.dropped.tables,
                 dropped_columns=packaged.dropped.columns, period_cut=packaged.cut,
                 notes=[*checked.notes, *packaged.notes],
                 seconds=time.perf_counter() - started)


def _paths(*inputs: Path | Sequence[Path] | None) -> list[Path]:
    out: list[Path] = []
    for item in inputs:
        if isinstance(item, Path):
            out.append(item)
        elif item:
            out.extend(item)
    return out


def _no_linkage() -> link.Linkage:
    from trialvault.prepare.link import Linkage

    return Linkage(rows=0, rows_linked=0, pupils=0, pupils_linked=0, ambiguous_upns=0,
                   by_source={})


def _with(result: PrepareResult, **changes: Any) -> PrepareResult:
    import dataclasses

    return dataclasses.replace(result, **changes)


def _source_tables() -> dict[str, frozenset[str]]:
    from trialvault.prepare import minimise

    return dict(minimise.SOURCE_TABLES)


@dataclass(frozen=True)
class _Packaged:
    tables: dict[str, Any]
    linkage: link.Linkage
    risk: dict[str, Any]
    dropped: Any
    cut: PeriodCut
    rejected: int
    notes: list[str]


def _package(con: Any, study: StudyFile, la_code: int, intake: Intake,
             formats: list[str]) -> _Packaged:
    """Quarantine, cut to the data period, link, minimise and score the risk (in `con`)."""
    from trialvault.prepare import link, minimise, risk
    from trialvault.prepare.period import cut_to_period

    link.mark_rejected(con)
    rejected = con.execute("SELECT count(*) FROM validation.rejected").fetchone()
    period = study.data_period
    cut = cut_to_period(con, period.start, period.end, previous=intake.previous)
    notes = []
    if cut.total:
        by_table = ", ".join(f"{t} {n:,}" for t, n in sorted(cut.rows.items()))
        notes.append(f"outside the study's data period ({period.start} to {period.end}), not "
                     f"packaged: {cut.total:,} rows ({by_table}); {cut.children:,} children "
                     "with nothing left in it")
    if cut.dated_rows_left == 0:
        raise PolicyRefusal(f"nothing in these returns falls in the study's data period "
                            f"({period.start} to {period.end}): no package written (are these "
                            "the right files, or the right study?)")
    link.install_helpers(con)
    link.build_people(con)
    link.build_upn_links(con)
    linkage = link.link_pupils(con)
    tables = minimise.build_tables(con, la_code, minimise.tables_for(formats))
    summary = risk.risk_summary(tables["children"],
                                sizes=sorted({*risk.DEFAULT_SIZES, study.disclosure.threshold}))
    return _Packaged(tables=tables, linkage=linkage, risk=summary,
                     dropped=minimise.dropped_columns(intake.sources), cut=cut,
                     rejected=int(rejected[0]) if rejected else 0, notes=notes)
