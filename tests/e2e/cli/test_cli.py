"""The CLI: every command has --help, is named in the README, and refuses bad input cleanly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from trialvault.cli import app

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()


def _command_paths(cmd: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # Typer vendors click; a group is anything with sub-commands.
    paths = [prefix] if prefix else []
    if hasattr(cmd, "commands"):
        for name, sub in cmd.commands.items():
            paths += _command_paths(sub, (*prefix, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_there_are_commands() -> None:
    assert ("demo",) in COMMANDS and ("docs",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    cmd: Any = typer.main.get_command(app)
    for part in path:
        cmd = cmd.commands[part]
    if not hasattr(cmd, "commands"):
        assert "Example" in (cmd.help or ""), f"'{' '.join(path)}' help has no example"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"trialvault {' '.join(path)}" in readme


def test_broken_study_exits_2_naming_the_key(tmp_path: Path) -> None:
    text = (REPO / "studies" / "no-wrong-door.toml").read_text(encoding="utf-8")
    broken = tmp_path / "s.toml"
    broken.write_text(text.replace('name = "Luke Eastwood"\n', ""), encoding="utf-8")
    result = runner.invoke(app, ["check", "--study", str(broken)])
    assert result.exit_code == 2
    assert "dpo.name" in result.output


def test_docs_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "notice.html"
    result = runner.invoke(app, ["docs", "notice", "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Wycliffe House" in out.read_text(encoding="utf-8")
