"""CLI command: `trialvault console` serves the web console on this machine."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import StudyOption, VaultOption, console, err_console, guarded
from trialvault.console.security import is_loopback
from trialvault.errors import PolicyRefusal, TrialvaultError
from trialvault.study import load_study


@guarded
def serve(
    study: StudyOption,
    vault: VaultOption,
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback only unless "
                                      "--allow-remote)")] = "127.0.0.1",
    allow_remote: Annotated[bool, typer.Option("--allow-remote", help="Serve other machines "
                                               "too (NOT recommended)")] = False,
    idle_minutes: Annotated[int, typer.Option("--idle-minutes", help="Sign out after this "
                                              "many idle minutes")] = 15,
    responses_dir: Annotated[Path, typer.Option(
        "--responses-dir", help="Folder for sealed access responses (kept, and downloadable "
        "again, until destroyed)")] = Path("access-responses"),
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="Another Host header to answer (NAME:PORT), e.g. the name a "
        "reverse proxy uses; by default only the bound address and port (and localhost)")
    ] = None,
) -> None:
    """Serve the web console (holdings, rights, retention, audit, releases) on 127.0.0.1.

    Example: trialvault console --vault ./vault --port 8765
    """
    import uvicorn

    from trialvault.console import ConsoleSettings, build_console

    if not is_loopback(host) and not allow_remote:
        raise PolicyRefusal(f"refusing to bind {host}: the console serves this machine only "
                            "(use --allow-remote to override, with care)")
    if allow_remote:
        err_console.print("[bold yellow]warning:[/] --allow-remote: anyone who can reach this "
                          "port can try passwords; put it behind TLS and a firewall.")
    settings = ConsoleSettings(vault_dir=vault.absolute(), study=load_study(study),
                               study_path=study, idle_seconds=idle_minutes * 60,
                               allow_remote=allow_remote, host=host, port=port,
                               extra_hosts=tuple(allowed_host or ()),
                               responses_dir=responses_dir)
    check_vault(settings.vault_dir)
    sock = bind(host, port)
    console.print(f"console on http://{host}:{port}/ (Ctrl-C to stop)")
    server = uvicorn.Server(uvicorn.Config(build_console(settings).app(), log_level="warning",
                                           access_log=False))
    server.run(sockets=[sock])


def check_vault(vault: Path) -> None:
    """Refuse to start on a folder that is not a vault (every sign-in would then fail as a
    wrong password) or on a vault another process holds (exit 8 / 7, as the CLI's)."""
    from trialvault.trust import Keyring
    from trialvault.vault.session import vault_lock

    with vault_lock(vault, wait=0):
        Keyring.load(vault)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the console says where it is: a port in use is one
    clear error, not a success line followed by the server's traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use (another console?): "
                            "stop it, or choose another with --port N") from None
        raise PortInUse(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class PortInUse(TrialvaultError):
    """The console's address cannot be bound (exit code 7: busy, like a held vault)."""

    exit_code = 7


def register(app: typer.Typer) -> None:
    """Add the console command."""
    app.command("console")(serve)
