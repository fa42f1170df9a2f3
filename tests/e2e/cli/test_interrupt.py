"""Ctrl-C: one line on stderr, exit code 130, no traceback, nothing half-written (issue 20)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trialvault.errors import EXIT_INTERRUPTED

TRIALVAULT = [sys.executable, "-c", "from trialvault.cli import app; app()"]


def _default_sigint() -> None:
    """Run in the child before exec: a shell starts background jobs with SIGINT ignored, and a
    Python started so never turns Ctrl-C into KeyboardInterrupt (POSIX, as intended for
    background jobs); the test is about a foreground command, so the child gets the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("the command did not reach the point to interrupt in time")
        time.sleep(0.05)


def _one_interrupt_line(stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: interrupted"), stderr
    assert "Traceback" not in stderr


def test_ctrl_c_during_synth_leaves_no_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "synthetic"
    partial = tmp_path / ".synthetic.partial"
    proc = subprocess.Popen([*TRIALVAULT, "synth", "--out", str(out), "--scale", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "80"}, preexec_fn=_default_sigint)
    try:
        _wait_for(lambda: partial.exists() and any(partial.rglob("*.csv")), timeout=60)
        time.sleep(0.3)  # well inside writing files
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    _one_interrupt_line(stderr)
    assert not out.exists() and not partial.exists()


def test_ctrl_c_during_a_duckdb_query_is_one_line_and_130(tmp_path: Path) -> None:
    """DuckDB turns SIGINT into `RuntimeError: Query interrupted`; commands map it like Ctrl-C.

    DuckDB 1.4 leaves the query's worker threads running after that error until
    `con.interrupt()` is called (duckdb/duckdb#15925): code that owns a connection calls it
    before closing, as this block does, or the exit waits for the whole query.
    """
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import pathlib, sys
        import duckdb, typer
        from trialvault.cli_common import guarded

        @guarded
        def long_query() -> None:
            con = duckdb.connect()
            pathlib.Path({str(ready)!r}).touch()
            try:
                con.execute("SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"
                            ).fetchall()
            finally:
                con.interrupt()
                con.close()

        try:
            long_query()
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)
    try:
        _wait_for(ready.exists, timeout=60)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    _one_interrupt_line(stderr)
