"""CLI commands of the disclose stage: the `release` group (thin: parse, call the library, print).

Every command takes `--vault DIR` and acts as `--user` (default `$TRIALVAULT_USER`, else the
vault's only user or first data-manager), with the password from `$TRIALVAULT_PASSWORD` or a
hidden prompt. A reviewer runs `release review` as themselves, with their own password.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import (
    StudyOption,
    UserOption,
    VaultOption,
    acting_user,
    console,
    guarded,
    password_from_env_or_prompt,
)
from trialvault.errors import PolicyRefusal

release_app = typer.Typer(help="Request, review and write out disclosure-checked releases "
                               "(two-person rule).", no_args_is_help=True)




@release_app.command("request")
@guarded
def request_cmd(
    study: StudyOption, vault: VaultOption, user: UserOption = None,
    run: Annotated[str | None, typer.Option("--run", help="Evaluation run id. Default: the "
                                            "latest run of the study.")] = None,
    note: Annotated[str, typer.Option("--note", help="Context for the reviewer.")] = "",
) -> None:
    """Build a release from an evaluation run: every output through the disclosure rules
    (suppression, secondary suppression, rounding, dominance, residual dof), stored in the
    vault with its checking report, pending review by a different person.

    Example: TRIALVAULT_PASSWORD=... trialvault release request --vault vault --user ana
    --note "final analysis"
    """
    from trialvault.disclose.release import request_release, show_release

    who = acting_user(vault, user)
    password = password_from_env_or_prompt()
    release_id = request_release(vault, who, password, study, run_id=run, note=note)
    _, checked = show_release(vault, who, password, release_id)
    console.print(f"[bold green]release requested[/]: {release_id} (disclosure status "
                  f"{checked.status}, {len(checked.outputs)} outputs); a reviewer must now run "
                  f"`trialvault release review {release_id}`")


@release_app.command("review")
@guarded
def review_cmd(
    release_id: Annotated[str, typer.Argument(help="Release id (REL-...).")],
    vault: VaultOption, user: UserOption = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the release.")] = False,
    return_: Annotated[bool, typer.Option("--return", help="Return it to the requester.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it.")] = False,
    comment: Annotated[str, typer.Option("--comment", help="Why (required).")] = "",
) -> None:
    """Review a pending release as a different user (role output-checker) with your own
    password: approve, return or reject. The requester can never review their own release.

    Example: TRIALVAULT_PASSWORD=... trialvault release review REL-20261125-1a2b3c4d
    --vault vault --user olu --approve --comment "tables and figures checked"
    """
    from trialvault.disclose.release import review_release

    chosen = [d for d, on in (("approve", approve), ("return", return_), ("reject", reject))
              if on]
    if len(chosen) != 1:
        raise PolicyRefusal("choose exactly one of --approve, --return, --reject")
    record = review_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                            release_id, chosen[0], comment)  # type: ignore[arg-type]
    console.print(f"release {release_id}: {chosen[0]} recorded; status [bold]{record.status}[/]")


@release_app.command("list")
@guarded
def list_cmd(vault: VaultOption, user: UserOption = None) -> None:
    """List the release requests in the vault with their status.

    Example: TRIALVAULT_PASSWORD=... trialvault release list --vault vault
    """
    from trialvault.disclose.release import release_list

    records = release_list(vault, acting_user(vault, user), password_from_env_or_prompt())
    if not records:
        console.print("no releases yet")
    # One line per release (no table: ids and dates must survive narrow terminals and grep).
    for r in records:
        console.print(f"{r.release_id}  {r.status:9}  checks={r.check_status:6}  "
                      f"study={r.study_id}  run={r.run_id[:8]}  requested_by={r.requested_by}  "
                      f"at={r.requested_at}  approved_by={','.join(r.approvals) or '-'}",
                      markup=False, highlight=False, soft_wrap=True)


@release_app.command("show")
@guarded
def show_cmd(
    release_id: Annotated[str, typer.Argument(help="Release id (REL-...).")],
    vault: VaultOption, user: UserOption = None,
    fmt: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
) -> None:
    """Print a release's checking report: every output, rule applied and cell changed.

    Example: TRIALVAULT_PASSWORD=... trialvault release show REL-20261125-1a2b3c4d --vault vault
    """
    from trialvault.disclose.checking import render_markdown
    from trialvault.disclose.release import show_release

    record, checked = show_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                                   release_id)
    if fmt == "json":
        text = json.dumps({"release": record.meta(), **checked.to_json()}, indent=2)
    elif fmt == "md":
        text = render_markdown(checked, record.meta())
    else:
        raise PolicyRefusal(f"unknown format {fmt!r}: md or json")
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@release_app.command("write")
@guarded
def write_cmd(
    release_id: Annotated[str, typer.Argument(help="Release id (REL-...).")],
    vault: VaultOption, user: UserOption = None,
    out: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the release.")
                   ] = Path("release"),
) -> None:
    """Write an approved release to a new folder: the HTML report, the privacy notice, the
    checked tables (CSV), the checking report and a manifest of SHA-256 file hashes.

    Example: TRIALVAULT_PASSWORD=... trialvault release write REL-20261125-1a2b3c4d
    --vault vault --user ana --out release-1
    """
    from trialvault.disclose.release import write_release

    report = write_release(vault, acting_user(vault, user), password_from_env_or_prompt(), release_id,
                           out)
    console.print(f"[bold green]release written[/]: {out} (report: {report})")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(release_app, name="release")
