"""Help text that reads well at 80 columns and examples that paste into a shell.

Each stage writes its commands' help as docstrings; this module tidies the built Click commands
once, when the CLI loads them, so every command follows the same rules without each stage
re-implementing them:

- flags show no value placeholder (Typer would print `<bool>`), repeatable options show the
  value's type and "(repeatable)" instead of `<list[Path]>`;
- prose paragraphs are re-flowed (a docstring's hard line breaks would otherwise survive into
  the rendered help and break lines mid-sentence);
- `Example:` paragraphs become indented shell blocks whose continued lines end in ` \\`, at most
  `EXAMPLE_WIDTH` characters wide, so they fit an 80-column terminal and paste as one command.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, get_args

from typer import _click

HELP_OPTION_NAMES = ["-h", "--help"]
EXAMPLE_WIDTH = 68  # + 4 columns of indent + the panel's margins < 80
FOOTER = "Exit codes and output formats: docs/cli.md."
_EXAMPLE_HEAD = re.compile(r"^(Examples?):\s*(.*)$", re.DOTALL)
_TOKEN = re.compile(r'"[^"]*"|\'[^\']*\'|\S+')
_STARTS_COMMAND = re.compile(r"^([A-Z_][A-Z0-9_]*=\S*\s+)*trialvault\b")


def tidy(command: _click.Command) -> None:
    """Tidy `command` and every sub-command in place (idempotent)."""
    if getattr(command, "_trialvault_tidy", False):
        return
    command.help = tidy_help_text(command.help or "") or None
    for param in command.params:
        tidy_param(param)
    help_option = command.get_help_option(_click.Context(command,
                                                         help_option_names=HELP_OPTION_NAMES))
    if help_option is not None:
        help_option.metavar = ""
    command._trialvault_tidy = True  # type: ignore[attr-defined]
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)


def tidy_param(param: Any) -> None:
    """A flag shows no value placeholder; a repeatable value shows its type, not `list[…]`."""
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or not descriptor.is_list:
        return
    (inner,) = get_args(descriptor.annotation) or (str,)
    label = "path" if descriptor.is_path else getattr(inner, "__name__", str(inner)).lower()
    if param.param_type_name == "option":
        if param.metavar is None:
            param.metavar = f"<{label}> (repeatable)"
    else:
        # An argument's name column already says "NAME..."; Typer reads its type column from
        # display_type_rich alone (no metavar), so give this instance its own.
        param.display_type_rich = lambda ctx, shown=f"<{label}>": shown


def tidy_help_text(text: str) -> str:
    """Re-flow prose paragraphs and turn examples into pasteable shell blocks."""
    paragraphs = _paragraphs(text)
    out: list[str] = []
    i = 0
    while i < len(paragraphs):
        para = paragraphs[i]
        head = _EXAMPLE_HEAD.match(para.strip()) if not _indented(para) else None
        if head:
            label, rest = head.group(1), head.group(2).strip()
            commands = [" ".join(rest.split())] if rest else []
            # An "Example:" line followed by indented blocks: those blocks are the commands.
            while i + 1 < len(paragraphs) and _indented(paragraphs[i + 1]):
                i += 1
                commands += _commands_in_block(paragraphs[i])
            out.append(f"{label}:")
            if commands:
                out.append("\n".join("    " + line for cmd in commands
                                     for line in format_command(cmd)))
        elif _indented(para):
            out.append(para)
        else:
            out.append(" ".join(para.split()))
        i += 1
    if len(out) > 1:
        # Typer renders the paragraphs after the first through `inspect.cleandoc`, which strips
        # the indent shared by all their lines but the first: a closing prose line keeps the
        # example block indented (and says where exit codes and formats are documented).
        out.append(FOOTER)
    return "\n\n".join(out)


def _paragraphs(text: str) -> list[str]:
    lines = _dedent(text).split("\n")
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


def _dedent(text: str) -> str:
    # A docstring's first line has no indent and the rest share one (inspect.cleandoc's rule).
    return inspect.cleandoc(text)


def _indented(paragraph: str) -> bool:
    return all(line.startswith((" ", "\t")) for line in paragraph.split("\n"))


def _commands_in_block(block: str) -> list[str]:
    commands: list[str] = []
    for raw in block.split("\n"):
        line = raw.strip().removesuffix("\\").strip()
        if not line:
            continue
        if _STARTS_COMMAND.match(line) or not commands:
            commands.append(line)
        else:
            commands[-1] += " " + line
    return commands


def format_command(command: str, width: int = EXAMPLE_WIDTH) -> list[str]:
    """One shell command as lines of at most `width` characters, continued with ` \\`.

    Lines break before an option (`--name`) where possible, so each option stays with its value.
    """
    tokens = _TOKEN.findall(command)
    # Group each option with the value that follows it: "--cin a.xml" is one unit. One value
    # only: the options take one each (repeatable ones repeat the flag), and the words after
    # it are arguments that may go on the next line.
    units: list[str] = []
    for token in tokens:
        if (units and not token.startswith("-") and units[-1].startswith("-")
                and " " not in units[-1]):
            units[-1] += " " + token
        else:
            units.append(token)
    lines: list[str] = []
    current = ""
    for unit in units:
        candidate = f"{current} {unit}" if current else unit
        indent = "  " if lines else ""
        if current and len(indent + candidate) + 2 > width:
            lines.append(current)
            current = unit
        else:
            current = candidate
    if current:
        lines.append(current)
    return [("  " if n else "") + line + (" \\" if n < len(lines) - 1 else "")
            for n, line in enumerate(lines)]
