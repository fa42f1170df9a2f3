"""Help text tidying: prose re-flowed, examples turned into pasteable shell blocks."""

from __future__ import annotations

import shlex

from hypothesis import given
from hypothesis import strategies as st

from trialvault.cli_help import EXAMPLE_WIDTH, format_command, tidy_help_text


def test_examples_become_indented_blocks_with_continuations() -> None:
    text = tidy_help_text("""Do a thing.

    Example: trialvault prepare --study studies/no-wrong-door.toml --la 354
    --ssda903 returns/ssda903 --cin returns/cin_2023.xml --cin returns/cin_2024.xml
    --recipient age1qqqq --out 354.tvpkg
    """)
    block = text.split("Example:\n\n", 1)[1].split("\n\n")[0].split("\n")
    assert len(block) > 1
    assert all(line.startswith("    ") for line in block)
    assert all(line.endswith(" \\") for line in block[:-1]) and not block[-1].endswith("\\")
    assert all(len(line) <= 4 + EXAMPLE_WIDTH for line in block)


def test_prose_is_reflowed_and_code_blocks_kept() -> None:
    text = tidy_help_text("Summary.\n\nA sentence broken\nover two lines.\n\n    keep\n    this")
    assert "A sentence broken over two lines." in text
    assert "    keep\n    this" in text


def test_two_commands_in_one_block_stay_two_commands() -> None:
    text = tidy_help_text("S.\n\nExample:\n\n    trialvault a --x 1\n    trialvault b --y 2")
    assert "trialvault a --x 1\n    trialvault b --y 2" in text


_word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789./_="), min_size=1,
                max_size=20)


@given(st.lists(st.tuples(st.sampled_from(["--a", "--bee", "--cin", "--out", "x"]), _word),
                max_size=12))
def test_a_formatted_command_pastes_back_to_the_same_words(parts: list[tuple[str, str]]) -> None:
    command = "trialvault cmd " + " ".join(f"{flag} {value}" for flag, value in parts)
    lines = format_command(command)
    pasted = " ".join(line.removesuffix(" \\") for line in lines)
    assert shlex.split(pasted) == shlex.split(command)
    assert all(len(line) <= EXAMPLE_WIDTH for line in lines if len(line.split()) > 2)
