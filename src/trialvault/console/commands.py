"""CLI command: `trialvault console` serves the web console on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from trialvault.cli_common import StudyOption, VaultOption, console, err_console, guarded
from trialvault.console.security import is_loopback
from trialvault.errors import PolicyRefusal
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
                               extra_hosts=tuple(allowed_host or ()))
    console.print(f"console on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(build_console(settings).app(), host=host, port=port, log_level="warning",
                access_log=False)


def register(app: typer.Typer) -> None:
    """Add the console command."""
    app.command("console")(serve)
