"""`trialvault prepare` from the command line: a package from good input; hostile input stops
with file, line and rule named, a non-zero exit, and nothing written."""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from trialvault.prepare import commands
from trialvault.seal import LaSigningKey, generate_identity, read_package, write_key_file
from trialvault.seal.commands import PASSPHRASE_ENV
from trialvault.trust import FAST_TEST_KDF

runner = CliRunner()
PASSPHRASE = "rochdale keeps its signing key safe"
HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n1,1,01/01/2010,WBRI,A354123456789,,\n"
EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,"
            "PL_POST,URN\n1,01/06/2022,S,C2,N1,U1,PR1,,,,,,\n")
CIN = """<?xml version="1.0" encoding="UTF-8"?>
<Message><Header><CollectionDetails><Collection>CIN</Collection><Year>2023</Year>
<ReferenceDate>2023-03-31</ReferenceDate></CollectionDetails><Source><SourceLevel>L</SourceLevel>
<LEA>354</LEA><SoftwareCode>x</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>
<DateTime>2023-05-01T00:00:00</DateTime></Source></Header><Children><Child><ChildIdentifiers>
<LAchildID>1</LAchildID><UPN>A354123456789</UPN><PersonBirthDate>2010-01-01</PersonBirthDate>
<GenderCurrent>1</GenderCurrent></ChildIdentifiers><ChildCharacteristics><Ethnicity>WBRI</Ethnicity>
</ChildCharacteristics><CINdetails><CINreferralDate>2022-05-01</CINreferralDate>
<ReferralSource>1A</ReferralSource><PrimaryNeedCode>N1</PrimaryNeedCode>
<ReferralNFA>false</ReferralNFA></CINdetails></Child></Children></Message>
"""


def app() -> typer.Typer:
    # The prepare command exactly as registered on the real CLI, without the other stages.
    application = typer.Typer()
    commands.register(application)

    @application.callback()
    def main() -> None:
        """test app"""

    return application


@pytest.fixture()
def inputs(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "ssda903"
    folder.mkdir()
    (folder / "header.csv").write_text(HEADER)
    (folder / "episodes.csv").write_text(EPISODES)
    cin = tmp_path / "cin.xml"
    cin.write_text(CIN)
    return {"ssda903": folder, "cin": cin, "out": tmp_path / "pkg.tvpkg",
            "report": tmp_path / "report", "key": tmp_path / "recipient.txt",
            "sign_key": _sign_key_file(tmp_path)}


def _sign_key_file(folder: Path) -> Path:
    path = folder / "la-354.key"
    write_key_file(path, LaSigningKey.generate(354), PASSPHRASE, kdf=FAST_TEST_KDF)
    return path


def run(inputs: dict[str, Path], recipient: str, *extra: str) -> tuple[int, str]:
    args = ["prepare", "--la", "354", "--ssda903", str(inputs["ssda903"]), "--cin",
            str(inputs["cin"]), "--recipient", recipient, "--out", str(inputs["out"]),
            "--report-dir", str(inputs["report"]), "--sign-key", str(inputs["sign_key"]),
            *extra]
    result = runner.invoke(app(), args, env={PASSPHRASE_ENV: PASSPHRASE})
    return result.exit_code, result.output


def test_prepare_writes_a_package(inputs: dict[str, Path]) -> None:
    identity, recipient = generate_identity()
    inputs["key"].write_text(f"# evaluator key\n{recipient}\n")
    code, output = run(inputs, str(inputs["key"]))
    assert code == 0, output
    assert "written to" in output and "validation:" in output
    package = read_package(inputs["out"], identity)
    assert package.tables["cla_episodes"].num_rows == 1
    assert (inputs["report"] / "validation_issues.xlsx").exists()


def test_help_has_an_example() -> None:
    result = runner.invoke(app(), ["prepare", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def bomb(inputs: dict[str, Path]) -> None:
    inputs["cin"].write_text('<?xml version="1.0"?>\n<!DOCTYPE m [<!ENTITY a "aaaa">'
                             '<!ENTITY b "&a;&a;&a;&a;">]>\n<Message>&b;</Message>\n')


def long_line(inputs: dict[str, Path]) -> None:
    # Longer than the 1 MiB line limit; the streaming limit itself is tested with a lazily
    # generated 2 GB stream in tests/unit/formats/test_limits.py.
    with (inputs["ssda903"] / "episodes.csv").open("a") as handle:
        handle.write("1," + "9" * (2 * 1024 * 1024) + "\n")


def utf16(inputs: dict[str, Path]) -> None:
    (inputs["ssda903"] / "header.csv").write_bytes(codecs.BOM_UTF16_LE
                                                  + HEADER.encode("utf-16-le"))


def truncated(inputs: dict[str, Path]) -> None:
    inputs["cin"].write_text(CIN[: len(CIN) // 2])


def extra_columns(inputs: dict[str, Path]) -> None:
    (inputs["ssda903"] / "header.csv").write_text(HEADER + "2,1,01/01/2011,WBRI,UN1,,,SURPLUS\n")


@pytest.mark.parametrize(("spoil", "where", "rule"), [
    (bomb, "cin.xml, line 2", "xml-forbidden"),
    (long_line, "episodes.csv, line 3", "line-length"),
    (utf16, "header.csv", "encoding"),
    (truncated, "cin.xml, line", "xml-syntax"),
    (extra_columns, "header.csv, line 3", "columns"),
], ids=["xml-bomb", "long-line", "utf16", "truncated-xml", "extra-columns"])
def test_hostile_input_is_refused_and_nothing_is_written(
        inputs: dict[str, Path], spoil: Callable[[dict[str, Path]], None], where: str,
        rule: str) -> None:
    spoil(inputs)
    _, recipient = generate_identity()
    code, output = run(inputs, recipient)
    assert code == 3, output
    flat = " ".join(output.split())
    assert where in flat and f"rule {rule}" in flat
    assert "SURPLUS" not in flat and "999999" not in flat
    assert not inputs["out"].exists() and not inputs["report"].exists()
    assert not list(inputs["out"].parent.glob("*.tmp"))


@pytest.mark.parametrize("left_out", ["--recipient", "--out", "--sign-key", "--cin"])
def test_sealing_without_an_input_is_a_usage_error(inputs: dict[str, Path],
                                                   left_out: str) -> None:
    _, recipient = generate_identity()
    given = {"--ssda903": str(inputs["ssda903"]), "--cin": str(inputs["cin"]),
             "--recipient": recipient, "--out": str(inputs["out"]),
             "--sign-key": str(inputs["sign_key"])}
    del given[left_out]
    args = ["prepare", "--la", "354", "--report-dir", str(inputs["report"]),
            *(part for pair in given.items() for part in pair)]
    result = runner.invoke(app(), args, env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 2, result.output
    assert f"Missing option '{left_out}'" in result.output and "--validate-only" in result.output
    assert not inputs["out"].exists() and not inputs["report"].exists()


def test_validate_only_needs_no_key_and_writes_no_package(inputs: dict[str, Path]) -> None:
    result = runner.invoke(app(), ["prepare", "--la", "354", "--ssda903",
                                   str(inputs["ssda903"]), "--cin", str(inputs["cin"]),
                                   "--report-dir", str(inputs["report"]), "--validate-only"])
    assert result.exit_code == 0 and "no package written" in result.output
    assert (inputs["report"] / "validation_issues.csv").exists()
    assert not inputs["out"].exists()


def test_no_xlsx_writes_the_csv_only(inputs: dict[str, Path]) -> None:
    result = runner.invoke(app(), ["prepare", "--la", "354", "--cin", str(inputs["cin"]),
                                   "--report-dir", str(inputs["report"]), "--validate-only",
                                   "--no-xlsx"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in inputs["report"].iterdir()) == ["validation_issues.csv"]


def test_registered_on_the_real_cli() -> None:
    from trialvault.cli import app as real_app

    result = runner.invoke(real_app, ["prepare", "--help"])
    assert result.exit_code == 0 and "--validate-only" in result.output


# The installed command in its own interpreter: `prepare` holds pandas back while it runs
# (commands._lean_arrow), which a test runner that has pandas loaded never exercises.
_FRESH = """
import atexit, sys
atexit.register(lambda: print("pandas loaded:", "pandas" in sys.modules, file=sys.stderr))
atexit.register(lambda: print("arrow or numpy loaded:",
                              "pyarrow" in sys.modules or "numpy" in sys.modules,
                              file=sys.stderr))
atexit.register(lambda: print("also loaded:", sorted(
    m for m in ("pydantic", "xlsxwriter", "hashlib") if m in sys.modules), file=sys.stderr))
from trialvault.cli import app
app(prog_name="trialvault")
"""


@pytest.mark.parametrize("validate_only", [False, True], ids=["seal", "validate-only"])
def test_the_command_runs_without_pandas_in_a_fresh_process(inputs: dict[str, Path],
                                                            validate_only: bool) -> None:
    identity, recipient = generate_identity()
    args = ["prepare", "--la", "354", "--ssda903", str(inputs["ssda903"]), "--cin",
            str(inputs["cin"]), "--report-dir", str(inputs["report"])]
    args += (["--validate-only"] if validate_only else
             ["--recipient", recipient, "--out", str(inputs["out"]),
              "--sign-key", str(inputs["sign_key"])])
    env = {**os.environ, PASSPHRASE_ENV: PASSPHRASE}
    done = subprocess.run([sys.executable, "-c", _FRESH, *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pandas loaded: False" in done.stderr
    # Piped, progress is one line per step on stderr (stdout keeps the summary).
    steps = ["reading the returns", "running the DfE rules", "writing the validation report"]
    steps += [] if validate_only else ["linking and minimising", "sealing the package"]
    for step in steps:
        assert f"LA 354: {step}" in done.stderr, (step, done.stderr)
    assert "reading the returns" not in done.stdout
    assert (inputs["report"] / "validation_issues.xlsx").exists()
    if not validate_only:
        assert read_package(inputs["out"], identity).tables["cla_episodes"].num_rows == 1


def test_checking_a_cin_census_alone_loads_neither_arrow_nor_numpy(inputs: dict[str, Path]
                                                                   ) -> None:
    # About 45 MB of the LA's peak memory (benchmarks/bench_prepare.py): the XML reader keeps
    # Python columns, DuckDB loads them from JSON text and writes the CSV report itself. Nor
    # pydantic (typer 0.28, msgspec models: 10 MB), xlsxwriter (the report's workbook is written
    # as plain XML: 1.6 MB) or hashlib (OpenSSL's libcrypto: 3.6 MB; nothing is hashed).
    args = ["prepare", "--la", "354", "--cin", str(inputs["cin"]), "--report-dir",
            str(inputs["report"]), "--validate-only"]
    done = subprocess.run([sys.executable, "-c", _FRESH, *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "arrow or numpy loaded: False" in done.stderr
    assert "pandas loaded: False" in done.stderr
    assert "also loaded: []" in done.stderr
    report = (inputs["report"] / "validation_issues.csv").read_text(encoding="utf-8-sig")
    assert report.startswith("file,line,record,year,child,rule,type,message,value")
    assert (inputs["report"] / "validation_issues.xlsx").exists()
