"""Child codes off the command line (issue 14): `rights new --child CODE` showed the code in
`ps` and shell history. Tried for real: the command runs as a process, and what `ps` would show
(its /proc cmdline and environment) is read while it waits for the code at a prompt.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trialvault.cli import app
from trialvault.rights import service
from trialvault.trust import FAST_TEST_KDF
from trialvault.vault import audit, init_vault
from trialvault.vault.session import FAILURE_LOG, open_vault

USER, PASSWORD = "dm", "the child code test passphrase"
CODE = "LA354-CHILD-7Q2"
runner = CliRunner()
TRIALVAULT = [sys.executable, "-c", "from trialvault.cli import app; app()"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    vault = tmp_path / "vault"
    init_vault(vault, USER, PASSWORD, kdf_params=FAST_TEST_KDF, study_id="nwd")
    return {"TRIALVAULT_VAULT": str(vault), "TRIALVAULT_PASSWORD": PASSWORD,
            "TRIALVAULT_USER": USER, "COLUMNS": "200"}


def _new(*child_args: str) -> list[str]:
    received = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    return ["rights", "new", "--type", "access", "--la", "354", "--received", received,
            "--channel", "post", *child_args]


def _children(env: dict[str, str]) -> list[str]:
    views = service.list_requests(service.Vault(Path(env["TRIALVAULT_VAULT"]), USER, PASSWORD),
                                  today=dt.date.today(), reveal=True)
    return [v.child for v in views]


def _nothing_logged(env: dict[str, str], code: str) -> None:
    vault = Path(env["TRIALVAULT_VAULT"])
    with open_vault(vault, USER, PASSWORD, command="test read", args={}, write=False) as s:
        entries = audit.read_entries(s.con)
    assert code not in json.dumps([[e.args, e.detail, e.error] for e in entries])
    if (vault / FAILURE_LOG).exists():
        assert code not in (vault / FAILURE_LOG).read_text(encoding="utf-8")


def test_child_file(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "code.txt"
    path.write_text(f"\n{CODE}\n", encoding="utf-8")
    result = runner.invoke(app, _new("--child-file", str(path)), env=env)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert _children(env) == [CODE]
    _nothing_logged(env, CODE)


def test_child_from_stdin_in_a_real_process(env: dict[str, str]) -> None:
    done = subprocess.run([*TRIALVAULT, *_new("--child", "-")], input=f"{CODE}\n", text=True,
                          capture_output=True, env={**os.environ, **env}, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert CODE not in done.stdout + done.stderr
    assert _children(env) == [CODE]


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _read_until(fd: int, text: bytes, seconds: float = 30) -> bytes:
    seen = b""
    deadline = time.monotonic() + seconds
    while text not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    return seen


def test_prompt_keeps_the_code_out_of_ps(env: dict[str, str]) -> None:
    """The code typed at the prompt: absent from the process's command line and environment
    while it runs, not echoed to the terminal, and registered."""
    leader, follower = pty.openpty()

    def own_terminal() -> None:  # the pty becomes the child's controlling terminal (/dev/tty)
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen([*TRIALVAULT, *_new()], stdin=follower, stdout=follower,
                               stderr=follower, env={**os.environ, **env}, close_fds=True,
                               preexec_fn=own_terminal)
    os.close(follower)
    try:
        # click prints the prompt text, then getpass turns echo off and prints the final space:
        # typing before that space would race the terminal settings.
        _read_until(leader, b"LA child code (not shown): ")
        assert CODE not in _cmdline(process.pid)
        assert CODE.encode() not in Path(f"/proc/{process.pid}/environ").read_bytes()
        os.write(leader, f"{CODE}\n".encode())
        _read_until(leader, b"Repeat for confirmation: ")
        os.write(leader, f"{CODE}\n".encode())
        shown = _read_until(leader, b"registered")
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert CODE.encode() not in shown  # hidden input: not echoed
    assert _children(env) == [CODE]
    _nothing_logged(env, CODE)


def test_child_on_the_command_line_still_works_but_warns(env: dict[str, str]) -> None:
    argv = _new("--child", CODE)
    assert CODE in argv  # what `ps` and the shell history would show: the attack of issue 14
    result = runner.invoke(app, argv, env=env)
    assert result.exit_code == 0, result.output
    assert "process list (ps)" in result.stderr and "--child-file" in result.stderr
    assert _children(env) == [CODE]


def test_a_bad_child_file_is_refused_without_echoing_it(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    path = tmp_path / "code.txt"
    for content in ("", "\n\n", f"{CODE}\nANOTHER-CODE-99\n", "x" * 200):
        path.write_text(content, encoding="utf-8")
        result = runner.invoke(app, _new("--child-file", str(path)), env=env)
        assert result.exit_code == 2, content
        assert CODE not in result.output and "ANOTHER-CODE-99" not in result.output
    path.write_bytes(b"\xff\xfe\x00bad")
    assert runner.invoke(app, _new("--child-file", str(path)), env=env).exit_code == 2
    assert runner.invoke(app, _new("--child-file", str(tmp_path / "absent.txt")),
                         env=env).exit_code == 2
    assert _children(env) == []


def test_no_terminal_and_no_code_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    result = runner.invoke(app, _new(), env=env)  # CliRunner's stdin is not a terminal
    assert result.exit_code == 2 and "--child-file" in result.output
    both = runner.invoke(app, _new("--child", "-", "--child-file", str(tmp_path / "x")),
                         env=env)
    assert both.exit_code == 2 and "once" in both.output
    assert _children(env) == []
