"""CLI commands of the prepare stage (thin: parse, call the library, print)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from trialvault.cli_common import StudyOption, console, guarded
from trialvault.errors import (
    InputFileError,
    PolicyRefusal,
    ReturnHasErrors,
    ReturnHasQueries,
    UsageError,
)

if TYPE_CHECKING:
    from trialvault.prepare.pipeline import PrepareResult
    from trialvault.seal import LaSigningKey
    from trialvault.study import StudyFile


class FailOn(StrEnum):
    error = "error"
    query = "query"


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("prepare")(prepare_command)


def _recipient(value: str | None) -> str | None:
    """An age public key given directly, or read from a file (first line that is not a comment)."""
    if value is None or value.strip().startswith("age1"):
        return value
    path = Path(value)
    if not path.is_file():
        raise InputFileError("--recipient is neither an age public key (age1…) nor a file")
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.strip()
    raise InputFileError("recipient file holds no key", file=str(path))


@guarded
def prepare_command(
    study: StudyOption,
    la: Annotated[int, typer.Option("--la", help="DfE code of the LA whose returns these are.")],
    ssda903: Annotated[Path | None, typer.Option(
        "--ssda903", help="SSDA903 return: a folder of CSVs (or of per-year subfolders such as "
        "2023/) or the XML file.")] = None,
    cin: Annotated[list[Path] | None, typer.Option(
        "--cin", help="CIN census XML file, or a folder of them; give it once per file or "
        "folder. A package needs both returns; --validate-only checks either alone.")] = None,
    education: Annotated[Path | None, typer.Option(
        "--education", help="Education CSV (attendance, FSM, pupil premium), keyed by UPN.")] = None,
    neet: Annotated[Path | None, typer.Option(
        "--neet", help="NEET CSV (NCCIS monthly activity), keyed by UPN.")] = None,
    recipient: Annotated[str | None, typer.Option(
        "--recipient", help="The evaluator's age public key (age1…), or a file holding it.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Package to write (a new *.tvpkg file).")] = None,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", help="Where the LA's validation report (CSV + XLSX) goes. Default: "
        "next to the package, or validation-report in the current folder")] = None,
    validate_only: Annotated[bool, typer.Option(
        "--validate-only", help="Read and validate, write the report, seal nothing.")] = False,
    ssda903_year: Annotated[int | None, typer.Option(
        "--ssda903-year", help="Collection year (ending 31 March) of a single SSDA903 return "
        "not in a year folder. Default: from the latest episode start.")] = None,
    engine: Annotated[str, typer.Option(
        "--engine", help="Where the validation rules run: duckdb (default) or spark "
        "(with --validate-only).")] = "duckdb",
    spark_master: Annotated[str | None, typer.Option(
        "--spark-master", help="Spark master URL (local[2], spark://…, sc://…); "
        "default local[2].")] = None,
    previous: Annotated[Path | None, typer.Option(
        "--previous", help="Last year's SSDA903 return (folder or XML), read only for the "
        "year-on-year rules; its own findings are not reported and it is not packaged.")] = None,
    postcodes: Annotated[Path | None, typer.Option(
        "--postcodes", help="Postcode directory extract (CSV: pcd, oseast1m, osnrth1m, laua, "
        "cty) for the placement-area rules.")] = None,
    providers: Annotated[Path | None, typer.Option(
        "--providers", help="Ofsted provider list (CSV, as the providers table of the SSDA903 "
        "layout) for the URN rules.")] = None,
    fail_on: Annotated[FailOn | None, typer.Option(
        "--fail-on", help="Exit 9 if the return has DfE errors (error), or also 10 if it has "
        "queries only (query); no package is written then. Default: exit 0 after a full run "
        "whatever the findings.")] = None,
    no_xlsx: Annotated[bool, typer.Option(
        "--no-xlsx", help="Write the report as CSV only. Default: also a workbook (a summary "
        "by rule and up to 100 findings per rule; the CSV holds every finding).")] = False,
    origin: Annotated[str | None, typer.Option(
        "--origin", help="What the returns are: real (your LA's returns) or synthetic. Files "
        "made by `trialvault synth` are recorded as synthetic. Default: unknown (the "
        "evaluator's report then says SYNTHETIC DATA).")] = None,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="Your LA's key file (`trialvault la keygen`), needed to seal a "
        "package: it signs the package so the evaluator can check it came from you. The "
        "passphrase is asked for, or read from $TRIALVAULT_LA_PASSPHRASE")] = None,
) -> None:
    """Validate, link, minimise and seal one LA's returns into a package for the evaluator.

    Reads the SSDA903 and CIN census returns (and optionally the education and NEET exports),
    checks them against every DfE validation rule of their collection years, links
    education/NEET rows to children by UPN and drops the UPN, keeps only the fields the study
    declares and the rows in its data period, and encrypts the package to the evaluator's key.
    The LA keeps the validation report (a row per finding, with the value); the package holds
    counts by rule only. Hostile or malformed files, two files of one table, or another LA's
    return stop the run with the file named, and no package is written. `--validate-only` is
    the quick check to run on every draft of a return.

    Example:

        trialvault prepare --study studies/no-wrong-door.toml --la 354
          --ssda903 returns/ssda903 --cin returns/cin_2023.xml --cin returns/cin_2024.xml
          --education returns/education.csv --neet returns/neet.csv
          --recipient age1... --sign-key la-354.key --out 354.tvpkg

        trialvault prepare --study studies/no-wrong-door.toml --la 354 --validate-only
          --ssda903 returns/ssda903/2025 --previous returns/ssda903/2024 --cin returns/cin
          --fail-on error
    """
    from trialvault.prepare.pipeline import prepare_la

    if engine != "duckdb" and not validate_only:
        raise PolicyRefusal(f"--engine {engine} runs the validation only: add --validate-only "
                            "(sealing a package runs on the default engine)")
    _check_inputs(validate_only=validate_only, ssda903=ssda903, cin=cin, recipient=recipient,
                  out=out, sign_key=sign_key)
    from trialvault.study import load_study  # not for --help: its models take 0.15 s to build

    loaded = load_study(study)
    key = _signing_key(sign_key, la)
    if engine != "duckdb":
        _validate_on(engine, spark_master, loaded, la,
                     ssda903=ssda903,
                     cin=cin, education=education, neet=neet,
                     report_dir=report_dir or Path("validation-report"),
                     ssda903_year=ssda903_year, previous=previous, postcodes=postcodes,
                     providers=providers)
        return
    if report_dir is None:
        report_dir = (out.parent / f"{out.stem}-validation" if out is not None
                      else Path("validation-report"))
    chosen: Literal["error", "query"] | None = (
        "error" if fail_on == FailOn.error else "query" if fail_on == FailOn.query else None)
    from trialvault.progress import show_progress

    with _lean_arrow(), show_progress("prepare") as progress:
        result = prepare_la(loaded, la, ssda903=ssda903, cin=cin, education=education,
                            neet=neet, recipient=_recipient(recipient), out=out,
                            report_dir=report_dir, validate_only=validate_only,
                            ssda903_year=ssda903_year, sign_key=key, previous=previous,
                            postcodes=postcodes, providers=providers, fail_on=chosen,
                            xlsx=not no_xlsx, origin=origin, progress=progress)
    _print(result)
    _exit_on_findings(result, chosen)


def _exit_on_findings(result: PrepareResult, fail_on: str | None) -> None:
    """`--fail-on`: exit 9 for errors, 10 for queries only (with `query`); else 0."""
    if not result.fails(fail_on):  # type: ignore[arg-type]
        return
    found = result.findings
    if found["error"]:
        raise ReturnHasErrors(f"the return has {found['error']:,} DfE errors"
                              + ("" if result.package is not None or
                                 not result.refused_by else "; no package written")
                              + f" (--fail-on {fail_on}); see the report")
    raise ReturnHasQueries(f"the return has {found['query']:,} DfE queries and no errors"
                           + ("" if not result.refused_by else "; no package written")
                           + " (--fail-on query); see the report")


class _PandasAbsent:
    """An import hook under which `import pandas` fails as if pandas were not installed."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is not used by trialvault prepare", name=name)


@contextlib.contextmanager
def _lean_arrow() -> Iterator[None]:
    """Arrow and DuckDB without pandas, and Arrow on the system allocator, while the LA's
    command runs (benchmarks/bench_prepare.py: about 36 MB and 0.4-0.7 s less per run).

    pyarrow and DuckDB import pandas (about 40 MB, 0.3 s) only to ask whether an object is a
    pandas one; nothing in `prepare` makes or needs pandas objects (a subprocess test runs the
    whole command, sealing included, under this hook). Both record "no pandas" and carry on.
    The hook is removed when the block ends, and pyarrow imports pandas again for whatever
    needs it later (`to_pandas`). jemalloc keeps freed memory for reuse; the system allocator
    gives it back (peak RSS). pyarrow itself is imported only if a reader needs it (the CSV
    returns): Arrow reads the allocator's name from the environment when it first allocates."""
    import os
    import sys

    if "pyarrow" in sys.modules:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    pool_before = os.environ.get(_ARROW_POOL)
    os.environ[_ARROW_POOL] = "system"
    hook = None if "pandas" in sys.modules else _PandasAbsent()  # a test runner may have it
    if hook is not None:
        sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        if hook is not None:
            sys.meta_path.remove(hook)
        if pool_before is None:
            os.environ.pop(_ARROW_POOL, None)
        else:
            os.environ[_ARROW_POOL] = pool_before


_ARROW_POOL = "ARROW_DEFAULT_MEMORY_POOL"


def _check_inputs(*, validate_only: bool, **given: object) -> None:
    """Usage errors (exit 2) before anything is read. A package needs both returns, the
    evaluator's key, a file name and the LA's signing key (the evaluator's ingest refuses
    unsigned packages, so sealing without one would only waste the run); `--validate-only`
    needs at least one return."""
    if validate_only:
        if not given["ssda903"] and not given["cin"]:
            raise UsageError("Missing option '--ssda903' or '--cin': --validate-only checks "
                             "at least one return")
        return
    for name, value in given.items():
        if not value:
            option = "--" + name.replace("_", "-")
            raise UsageError(f"Missing option '{option}': sealing a package needs --ssda903, "
                             "--cin, --recipient, --out and --sign-key (to check the returns "
                             "only, use --validate-only)")


def _signing_key(path: Path | None, la: int) -> LaSigningKey | None:
    """The LA's signing key, unlocked before any return is read (a wrong passphrase or another
    LA's key stops the run at once)."""
    if path is None:  # --validate-only: nothing to sign (and the sealing code not imported)
        return None
    from trialvault.seal import load_signing_key
    from trialvault.seal.commands import la_passphrase

    key = load_signing_key(path, la_passphrase())
    if key.la_code != la:
        raise PolicyRefusal(f"{path} is LA {key.la_code}'s key, not LA {la}'s: an LA signs only "
                            "its own packages")
    return key


def _validate_on(engine_name: str, spark_master: str | None, study: StudyFile, la: int, *,
                 ssda903: Path | None, cin: list[Path] | None, education: Path | None,
                 neet: Path | None,
                 report_dir: Path, ssda903_year: int | None, previous: Path | None,
                 postcodes: Path | None, providers: Path | None) -> None:
    from trialvault.engines import make_engine
    from trialvault.prepare.on_engine import validate_la_on_engine

    engine = make_engine(engine_name, spark_master=spark_master)
    try:
        result = validate_la_on_engine(engine, study, la, ssda903=ssda903, cin=cin,
                                       education=education, neet=neet, report_dir=report_dir,
                                       ssda903_year=ssda903_year, previous=previous,
                                       postcodes=postcodes, providers=providers)
    finally:
        engine.close()
    checked = ", ".join(f"{fmt} {n:,}" for fmt, n in result.rows_checked.items())
    console.print(f"validated on {engine_name}: {checked} rows; "
                  f"{result.issue_count:,} issues from "
                  f"{sum(len(r) for r in result.rules_run.values())} rules")
    console.print(f"report: {report_dir}", highlight=False)


def _print(result: PrepareResult) -> None:
    read = ", ".join(f"{fmt} {n:,}" for fmt, n in result.rows_read.items())
    console.print(f"LA {result.la_code}: read {read} rows in {result.seconds:.1f} s",
                  highlight=False)
    for fmt, files in result.files_read.items():
        console.print(f"  {fmt}: {', '.join(files)}", highlight=False)
    for fmt, years in result.years.items():
        for year, how in years.items():
            context = (" - last year's return, for the year-on-year rules only"
                       if year in result.previous_years.get(fmt, []) else "")
            console.print(f"  {fmt} collection year {year} (from {how}){context}",
                          highlight=False)
    ran = ", ".join(f"{fmt} {n}" for fmt, n in result.rules_run.items())
    console.print(f"rules run: {ran}", highlight=False)
    for fmt, skipped in result.rules_not_run.items():
        reasons: dict[str, list[str]] = {}
        for code, why in skipped.items():
            reasons.setdefault(why, []).append(code)
        for why, codes in reasons.items():
            console.print(f"  {fmt}: not run ({why}): {', '.join(sorted(codes))}",
                          highlight=False)
    earliest = min(result.years.get("ssda903", {}) or [0])
    if earliest and not result.previous_years.get("ssda903") and \
            earliest - 1 not in result.years.get("ssda903", {}):
        console.print(f"  ssda903: the year-on-year rules had no {earliest - 1} return to "
                      "compare with (give last year's with --previous)", highlight=False)
    found = result.findings
    console.print(f"validation: {result.outcome} - {found['error']:,} errors, "
                  f"{found['query']:,} queries ({sum(found.values()):,} findings from "
                  f"{len(result.by_rule)} rules)", highlight=False)
    if not result.validate_only and result.refused_by is None:
        console.print(f"  {result.rows_rejected:,} rows quarantined (not packaged)",
                      highlight=False)
        rate = result.linkage.rate
        console.print("linkage (education/NEET rows to a child by UPN): "
                      + ("no rows to link" if rate is None else
                         f"{rate:.1%} of rows, {result.linkage.pupils_linked:,} of "
                         f"{result.linkage.pupils:,} pupils"))
        from rich.table import Table

        table = Table("package table", "rows", title=None)
        for name, rows in result.tables.items():
            table.add_row(name, f"{rows:,}")
        console.print(table)
        console.print(f"re-identification risk: k = {result.risk.get('k_anonymity')}, "
                      f"{result.risk.get('unique_records', 0):,} sample-unique records on "
                      f"{', '.join(result.risk.get('quasi_identifiers', []))}")
        console.print(f"dropped: {len(result.dropped_tables)} tables, "
                      f"{len(result.dropped_columns)} columns (listed in the manifest)")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    for path in result.report_files:
        console.print(f"report: {path}", highlight=False)
    if result.package is not None:
        console.print(f"[green]package {result.package_id} written to {result.package}[/]",
                      highlight=False)
    elif result.refused_by is not None:
        console.print(f"no package written (--fail-on {result.refused_by})")
    else:
        console.print("validate only: no package written")
