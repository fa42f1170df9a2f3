"""Progress of long steps: the library reports through a callback, the CLI shows it.

Library side (never prints): a long function takes `progress: ProgressCallback | None = None`
and calls `progress(done, total, description)` as it goes; `total=None` when the amount of work
is not known (a step of a pipeline). Descriptions name steps, tables, LAs and counts only, never
a child's code or value (they are shown on screens and kept in CI logs).

CLI side: `with show_progress("prepare") as progress: library_call(..., progress=progress)`.
On a terminal that is a rich progress bar on stderr; piped or redirected, one line on stderr
when a step starts and then every `interval` seconds while it runs:

    progress: prepare: LA 354 12/40 (30%) 0:00:12

stdout stays for results, so `--format json` output is never mixed with progress.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import IO, Protocol


class ProgressCallback(Protocol):
    def __call__(self, done: int, total: int | None, description: str) -> None: ...


def no_progress(done: int, total: int | None, description: str) -> None:
    """The callback to use when nobody is watching."""


@contextlib.contextmanager
def show_progress(label: str, *, stream: IO[str] | None = None, interval: float = 5.0,
                  terminal: bool | None = None) -> Iterator[ProgressCallback]:
    """A callback that shows progress on `stream` (stderr) while the block runs."""
    out = stream or sys.stderr
    on_terminal = _is_terminal(out) if terminal is None else terminal
    if on_terminal:
        with _rich_bar(label, out) as callback:
            yield callback
    else:
        lines = _LineProgress(label, out, interval)
        try:
            yield lines
        finally:
            lines.stop()


@contextlib.contextmanager
def _rich_bar(label: str, out: IO[str]) -> Iterator[ProgressCallback]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=out), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None, description: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{label}: {description}")

        yield update


class _LineProgress:
    """One line per new step and then at most one every `interval` seconds (a heartbeat thread
    repeats the current state, so a single long query still shows the command is alive)."""

    def __init__(self, label: str, out: IO[str], interval: float) -> None:
        self.label, self.out, self.interval = label, out, interval
        self.started = time.monotonic()
        self.state: tuple[int, int | None, str] | None = None
        self.last_line = 0.0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._heartbeat, daemon=True,
                                       name=f"progress-{label}")
        self.thread.start()

    def __call__(self, done: int, total: int | None, description: str) -> None:
        with self.lock:
            new_step = self.state is None or self.state[2] != description
            self.state = (done, total, description)
            finished = total is not None and done >= total
            if new_step or finished or time.monotonic() - self.last_line >= self.interval:
                self._write()

    def _heartbeat(self) -> None:
        while not self.stopped.wait(self.interval / 2):
            with self.lock:
                if self.state is not None and time.monotonic() - self.last_line >= self.interval:
                    self._write()

    def _write(self) -> None:
        assert self.state is not None
        done, total, description = self.state
        elapsed = int(time.monotonic() - self.started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        amount = ""
        if total:
            amount = f" {done:,}/{total:,} ({100 * done // total}%)"
        elif done:
            amount = f" {done:,}"
        self.out.write(f"progress: {self.label}: {description}{amount} {clock}\n")
        self.out.flush()
        self.last_line = time.monotonic()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def _is_terminal(out: IO[str]) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
