"""The CLI: every command has readable --help with a pasteable example, is named in the README,
starts fast without importing the heavy stages, and refuses bad input cleanly."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from trialvault import cli
from trialvault.cli import app, command_tree
from trialvault.cli_help import EXAMPLE_WIDTH
from trialvault.errors import EXIT_CODES, TrialvaultError

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()
HEAVY = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "pyarrow")


def _command_paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix] if prefix else []
    for name, sub in getattr(cmd, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


TREE = command_tree()
COMMANDS = _command_paths(TREE)


def _command(path: tuple[str, ...]) -> Any:
    cmd: Any = TREE
    for part in path:
        cmd = cmd.commands[part]
    return cmd


def _help(path: tuple[str, ...], flag: str = "--help") -> str:
    result = runner.invoke(app, [*path, flag], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


def test_there_are_commands() -> None:
    assert ("demo",) in COMMANDS and ("docs",) in COMMANDS and ("rights", "list") in COMMANDS


def test_the_lazy_command_table_names_exactly_what_the_stages_register() -> None:
    """`cli.COMMANDS` lists commands without importing stages: it must match them."""
    for module_name in cli.STAGE_MODULES:
        module = __import__(module_name, fromlist=["register"])
        staging = typer.Typer()
        module.register(staging)
        registered = set(typer.main.get_group(staging).commands)
        listed = {e.name for e in cli.COMMANDS if e.module == module_name}
        assert registered == listed, (
            f"{module_name} registers {sorted(registered)} but cli.COMMANDS lists "
            f"{sorted(listed)} for it: add or remove Entry(...) lines in cli.py")


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "Usage" in text
    assert _help(path, "-h") == text
    if not hasattr(_command(path), "commands"):
        assert "Example" in text, f"'{' '.join(path)}' help has no example"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_shows_no_python_types(path: tuple[str, ...]) -> None:
    text = _help(path)
    for bad in ("<bool>", "<list[", "<NoneType>", "<Optional"):
        assert bad not in text, f"'{' '.join(path)} --help' shows {bad}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_breaks_no_word_at_80_columns(path: tuple[str, ...]) -> None:
    """Each word of the help source appears whole in the help rendered at 80 columns."""
    text = _help(path)
    cmd = _command(path)
    source = " ".join([cmd.help or "", *[getattr(p, "help", "") or "" for p in cmd.params]])
    rendered = set(re.findall(r"[^\s│╭╮╰╯─]+", text))
    broken = sorted({w for w in re.findall(r"[^\s│]+", source)
                     if w not in rendered and len(w) > 1})
    assert not broken, f"'{' '.join(path)} --help' at 80 columns splits {broken}"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_examples_paste_into_a_shell(path: tuple[str, ...]) -> None:
    """Example blocks: every continued line ends in ' \\', each fits 80 columns."""
    lines = _help(path).split("\n")
    for i, line in enumerate(lines):
        if line.strip() not in ("Example:", "Examples:"):
            continue
        block = []
        for following in lines[i + 2:]:
            if not following.strip():
                break
            block.append(following.rstrip())
        assert block, f"'{' '.join(path)}': empty example"
        assert block[0].strip().startswith(("trialvault", "TRIALVAULT_")), block
        for n, code in enumerate(block):
            assert len(code) <= 4 + 4 + EXAMPLE_WIDTH
            continued = n < len(block) - 1
            next_is_new = continued and block[n + 1].strip().startswith("trialvault")
            if continued and not next_is_new:
                assert code.endswith(" \\"), f"'{' '.join(path)}' example line: {code!r}"
            if not continued:
                assert not code.endswith("\\"), code


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"trialvault {' '.join(path)}" in readme


def test_help_and_version_import_no_heavy_library() -> None:
    """`--help` and `--version` must not import the data stack (start-up < 0.5 s)."""
    probe = ("import sys; sys.argv = ['trialvault', '{flag}']\n"
             "from trialvault.cli import app\n"
             "try:\n    app()\n"
             "except SystemExit:\n    pass\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    for flag in ("--help", "--version", "-h"):
        done = subprocess.run([sys.executable, "-c", probe.replace("{flag}", flag)],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "COLUMNS": "80"})
        assert "trialvault" in done.stdout, done.stderr
        assert done.stderr.strip().splitlines()[-1] == "[]", (flag, done.stderr)


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("trialvault ")


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2 and "No such command" in result.output


@pytest.mark.parametrize("args,says", [
    (["check", "--bogus"], "No such option: --bogus (see 'trialvault check -h')"),
    (["--bogus"], "No such option: --bogus (see 'trialvault -h')"),
    (["prepare", "--la", "354"], "Missing option '--ssda903'"),
])
def test_usage_errors_are_one_error_line(args: list[str], says: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and says in result.stderr
    assert "╭" not in result.stderr and "Error:" not in result.stderr


def _table_rows(text: str, heading: str) -> list[list[str]]:
    section = text.split(heading, 1)[1]
    rows = []
    for line in section.split("\n")[1:]:
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
        elif rows and not line.startswith("|"):
            break
    return rows[1:]  # without the header row


@pytest.mark.parametrize("doc,heading", [("README.md", "## Exit codes"),
                                         ("docs/cli.md", "## Exit codes")])
def test_exit_code_tables_match_the_code(doc: str, heading: str) -> None:
    rows = _table_rows((REPO / doc).read_text(encoding="utf-8"), heading)
    assert [(int(r[0]), r[1]) for r in rows] == [(c.code, c.name) for c in EXIT_CODES]


def test_every_error_class_has_a_documented_code() -> None:
    import trialvault.errors as errors

    codes = {c.code for c in EXIT_CODES}
    classes = [v for v in vars(errors).values()
               if isinstance(v, type) and issubclass(v, TrialvaultError)]
    assert len(classes) >= 9
    assert all(cls.exit_code in codes for cls in classes)
    assert len({c.code for c in EXIT_CODES}) == len(EXIT_CODES)


def test_broken_study_exits_2_naming_the_key(tmp_path: Path) -> None:
    text = (REPO / "studies" / "no-wrong-door.toml").read_text(encoding="utf-8")
    broken = tmp_path / "s.toml"
    broken.write_text(text.replace('name = "Luke Eastwood"\n', ""), encoding="utf-8")
    result = runner.invoke(app, ["check", "--study", str(broken)])
    assert result.exit_code == 2
    assert "dpo.name" in result.output
    assert result.output.startswith("error: ")


def test_docs_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "notice.html"
    result = runner.invoke(app, ["docs", "notice", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wycliffe House" in out.read_text(encoding="utf-8")
