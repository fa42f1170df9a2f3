"""Progress when piped: a line per step, a heartbeat while a step runs, a line when done."""

from __future__ import annotations

import io
import re
import time

from trialvault.progress import no_progress, show_progress

LINE = re.compile(r"^progress: synth: (LA \d+|linking)( [\d,]+/[\d,]+ \(\d+%\)| [\d,]+)? "
                  r"\d+:\d\d:\d\d$")


def test_piped_progress_prints_steps_heartbeats_and_the_end() -> None:
    out = io.StringIO()
    with show_progress("synth", stream=out, interval=0.2, terminal=False) as progress:
        progress(0, 10, "LA 354")
        progress(1, 10, "LA 354")  # same step, within the interval: no new line
        time.sleep(0.55)  # a long step: the heartbeat repeats the state
        progress(10, 10, "LA 354")  # finished: always a line
        progress(0, None, "linking")  # a new step of unknown size
    lines = out.getvalue().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    assert lines[0].startswith("progress: synth: LA 354 0/10 (0%)")
    assert sum("1/10 (10%)" in line for line in lines) >= 1  # heartbeat lines
    assert any("10/10 (100%)" in line for line in lines)
    assert lines[-1].startswith("progress: synth: linking ")
    assert len(lines) <= 8


def test_nothing_is_printed_after_the_block_ends() -> None:
    out = io.StringIO()
    with show_progress("x", stream=out, interval=0.05, terminal=False) as progress:
        progress(1, 2, "step")
    written = out.getvalue()
    time.sleep(0.2)
    assert out.getvalue() == written


def test_the_terminal_bar_accepts_the_same_calls() -> None:
    out = io.StringIO()
    with show_progress("synth", stream=out, terminal=True) as progress:
        progress(0, None, "start")
        progress(5, 10, "LA 354")
    no_progress(1, 2, "ignored")
