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
    vault: VaultOption, user: UserOption = None,
    study: Annotated[Path | None, typer.Option(
        "--study", help="Study file to check against the run's. Optional: the rules always "
        "come from the study file stored with the evaluation run; a different one is "
        "refused.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Evaluation run id. Default: the "
                                            "latest run.")] = None,
    note: Annotated[str, typer.Option("--note", help="Context for the reviewers.")] = "",
) -> None:
    """Build a release from an evaluation run under the study file in force for that run:
    every output through the disclosure rules (suppression, secondary suppression, rounding,
    non-zero contributors, dominance, cluster-level dof), checked together with the study's
    earlier releases, stored and signed in the vault, pending review by other people.

    Example: TRIALVAULT_PASSWORD=... trialvault release request --vault vault --user ana
    --note "final analysis"
    """
    from trialvault.disclose.release import request_release, show_release

    who = acting_user(vault, user)
    password = password_from_env_or_prompt()
    release_id = request_release(vault, who, password, study, run_id=run, note=note)
    record, checked = show_release(vault, who, password, release_id)
    console.print(f"[bold green]release requested[/]: {release_id} (disclosure status "
                  f"{checked.status}, {len(checked.outputs)} outputs); {record.required} "
                  f"reviewer(s) must now run `trialvault release review {release_id}`")


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
    public: Annotated[bool, typer.Option("--public", help="Show what would leave the vault "
                                         "instead of the reviewers' checking report.")] = False,
) -> None:
    """Print a release's checking report (for reviewers; it never leaves the vault): every
    output, rule applied, each suppressed cell with its true value and reason, which cell
    protects which, the audit and the comparison with earlier releases.

    Example: TRIALVAULT_PASSWORD=... trialvault release show REL-20261125-1a2b3c4d --vault vault
    """
    from trialvault.disclose.checking import render_markdown, render_public_markdown
    from trialvault.disclose.release import show_release

    record, checked = show_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                                   release_id)
    meta = {**record.meta(), "approvals": [
        {"reviewer": r["reviewer"], "reviewed_at": r["reviewed_at"]}
        for r in record.reviews if r["decision"] == "approve"]}
    if fmt == "json":
        body = checked.public_json() if public else {**checked.public_json(),
                                                     **checked.internal_json()}
        text = json.dumps({"release": record.meta(), **body}, indent=2)
    elif fmt == "md":
        text = (render_public_markdown(checked, meta) if public
                else render_markdown(checked, record.meta()))
    else:
        raise PolicyRefusal(f"unknown format {fmt!r}: md or json")
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@release_app.command("verify")
@guarded
def verify_cmd(
    release_id: Annotated[str, typer.Argument(help="Release id (REL-...).")],
    vault: VaultOption, user: UserOption = None,
) -> None:
    """Check a release as `release write` does: the audit log, the stored content against the
    signed hash, the requester's and every reviewer's signature against the certificates the
    audit log introduced, distinct people, slots made before the request, enough approvals.
    Exit 5 when something does not verify, 6 when approvals are missing.

    Example: TRIALVAULT_PASSWORD=... trialvault release verify REL-20261125-1a2b3c4d --vault vault
    """
    from trialvault.disclose.release import verify_release
    from trialvault.errors import IntegrityError

    found = verify_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                           release_id)
    for a in found.approvals:
        console.print(f"approval by {a['reviewer']} at {a['reviewed_at']}: signature verifies",
                      markup=False, highlight=False)
    if found.problems:
        raise IntegrityError("; ".join(found.problems))
    if not found.ok:
        raise PolicyRefusal("; ".join(found.reasons()))
    console.print(f"release {release_id}: request and {len(found.approvals)} approval(s) verify")


@release_app.command("write")
@guarded
def write_cmd(
    release_id: Annotated[str, typer.Argument(help="Release id (REL-...).")],
    vault: VaultOption, user: UserOption = None,
    out: Annotated[Path, typer.Option("--out", help="New (or empty) folder for the release.")
                   ] = Path("release"),
) -> None:
    """Write an approved release to a new folder after verifying every signature: the HTML
    report, the privacy notice, the published tables (CSV), the disclosure-control note (rules
    in words; the checking report stays in the vault) and a manifest of SHA-256 hashes.

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
