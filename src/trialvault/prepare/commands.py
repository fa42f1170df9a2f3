"""CLI commands of the prepare stage (thin: parse, call the library, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from trialvault.cli_common import StudyOption, console, guarded, warning
from trialvault.errors import InputFileError, PolicyRefusal
from trialvault.prepare.pipeline import PrepareResult, prepare_la
from trialvault.seal import LaSigningKey
from trialvault.study import StudyFile, load_study


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
    ssda903: Annotated[Path, typer.Option(
        "--ssda903", help="SSDA903 return: a folder of CSVs (or of per-year subfolders such as "
        "2023/) or the XML file.")],
    cin: Annotated[list[Path], typer.Option(
        "--cin", help="CIN census XML; give it once per collection year.")],
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
        "next to the package, or ./validation-report.")] = None,
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
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", help="Your LA's key file (`trialvault la keygen`): signs the package so "
        "the evaluator can check it came from you. Passphrase from a prompt or "
        "$TRIALVAULT_LA_PASSPHRASE.")] = None,
) -> None:
    """Validate, link, minimise and seal one LA's returns into a package for the evaluator.

    Reads the SSDA903 and CIN census returns (and optionally the education and NEET exports),
    checks them against the DfE validation rules, links education/NEET rows to children by UPN
    and drops the UPN, keeps only the fields the study declares, and encrypts the package to
    the evaluator's key. The LA keeps the validation report. Hostile or malformed files stop
    the run with the file, line and rule named, and no package is written.

    Example:

        trialvault prepare --study studies/no-wrong-door.toml --la 354
          --ssda903 returns/ssda903 --cin returns/cin_2023.xml --cin returns/cin_2024.xml
          --education returns/education.csv --neet returns/neet.csv
          --recipient age1... --sign-key la-354.key --out 354.tvpkg
    """
    loaded = load_study(study)
    key = _signing_key(sign_key, la, validate_only)
    if engine != "duckdb":
        _validate_on(engine, spark_master, loaded, la, validate_only=validate_only,
                     ssda903=ssda903,
                     cin=cin, education=education, neet=neet,
                     report_dir=report_dir or Path("validation-report"),
                     ssda903_year=ssda903_year)
        return
    if report_dir is None:
        report_dir = (out.parent / f"{out.stem}-validation" if out is not None
                      else Path("validation-report"))
    result = prepare_la(loaded, la, ssda903=ssda903, cin=cin, education=education, neet=neet,
                        recipient=_recipient(recipient), out=out, report_dir=report_dir,
                        validate_only=validate_only, ssda903_year=ssda903_year,
                        sign_key=key)
    _print(result)


def _signing_key(path: Path | None, la: int, validate_only: bool) -> LaSigningKey | None:
    """The LA's signing key, unlocked before any return is read (a wrong passphrase or another
    LA's key stops the run at once)."""
    from trialvault.seal import load_signing_key
    from trialvault.seal.commands import la_passphrase

    if path is None:
        if not validate_only:
            warning("the package will not be signed (no --sign-key): the evaluator's ingest "
                    "refuses unsigned packages")
        return None
    key = load_signing_key(path, la_passphrase())
    if key.la_code != la:
        raise PolicyRefusal(f"{path} is LA {key.la_code}'s key, not LA {la}'s: an LA signs only "
                            "its own packages")
    return key


def _validate_on(engine_name: str, spark_master: str | None, study: StudyFile, la: int, *,
                 validate_only: bool,
                 ssda903: Path, cin: list[Path], education: Path | None, neet: Path | None,
                 report_dir: Path, ssda903_year: int | None) -> None:
    from trialvault.engines import make_engine
    from trialvault.prepare.on_engine import validate_la_on_engine

    if not validate_only:
        raise PolicyRefusal(f"--engine {engine_name} runs the validation only: add "
                            "--validate-only (sealing a package runs on the default engine)")
    engine = make_engine(engine_name, spark_master=spark_master)
    try:
        result = validate_la_on_engine(engine, study, la, ssda903=ssda903, cin=cin, education=education,
                                       neet=neet, report_dir=report_dir,
                                       ssda903_year=ssda903_year)
    finally:
        engine.close()
    checked = ", ".join(f"{fmt} {n:,}" for fmt, n in result.rows_checked.items())
    console.print(f"validated on {engine_name}: {checked} rows; "
                  f"{result.issue_count:,} issues from "
                  f"{sum(len(r) for r in result.rules_run.values())} rules")
    console.print(f"report: {report_dir}", highlight=False)


def _print(result: PrepareResult) -> None:
    read = ", ".join(f"{fmt} {n:,}" for fmt, n in result.rows_read.items())
    console.print(f"LA {result.la_code}: read {read} rows in {result.seconds:.1f} s")
    severities = result.issues.get("by_severity", {})
    console.print(f"validation: {result.issues.get('issues', 0):,} issues "
                  f"({severities.get('reject', 0):,} reject, {severities.get('warn', 0):,} warn); "
                  f"{result.rows_rejected:,} rows quarantined")
    rate = result.linkage.rate
    console.print("linkage (education/NEET rows to a child by UPN): "
                  + ("no rows to link" if rate is None else
                     f"{rate:.1%} of rows, {result.linkage.pupils_linked:,} of "
                     f"{result.linkage.pupils:,} pupils"))
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
    else:
        console.print("validate only: no package written")
