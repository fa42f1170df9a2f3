"""CLI commands of the disclose stage: the `release` and `runs` groups (thin: parse, call the
library, print).

Every command takes `--vault DIR` and acts as `--user` (default `$TRIALVAULT_USER`, else the
vault's only user), with the password from `$TRIALVAULT_PASSWORD` or a hidden prompt. A
reviewer runs `release review` as themselves, with their own password. Release and run ids may
be shortened to a unique prefix (a release's random part, e.g. `1a2b`, will do).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from trialvault.cli_common import (
    DryRunOption,
    UserOption,
    VaultOption,
    YesOption,
    acting_user,
    confirm,
    console,
    err_console,
    guarded,
    note,
    password_from_env_or_prompt,
)
from trialvault.errors import PolicyRefusal
from trialvault.output import (
    Column,
    FormatOption,
    JsonOption,
    Listing,
    emit,
    emit_json,
    output_format,
    utc,
)

if TYPE_CHECKING:
    from trialvault.disclose.release import ReleaseRecord

release_app = typer.Typer(help="Request, review and write out disclosure-checked releases "
                               "(two-person rule).", no_args_is_help=True)
runs_app = typer.Typer(help="Evaluation runs stored in the vault.", no_args_is_help=True)

ReleaseArg = Annotated[str, typer.Argument(
    help="Release id (REL-...), or a unique prefix of it or of its last part (e.g. 1a2b).")]


def _said(record: ReleaseRecord) -> str:
    """The returning or rejecting reviewer's comment, as the requester must read it."""
    last = record.last_comment
    if last is None:
        return ""
    return f"{last['reviewer']} ({last['decision']}, {last['reviewed_at'][:16]}): " \
           f"{last['comment']}"


@release_app.command("request")
@guarded
def request_cmd(
    vault: VaultOption, user: UserOption = None,
    study: Annotated[Path | None, typer.Option(
        "--study", help="Study file to check against the run's. Optional: the rules always "
        "come from the study file stored with the evaluation run; a different one is "
        "refused.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Evaluation run id or a unique "
                                            "prefix (`trialvault runs list`). Default: the "
                                            "latest run.")] = None,
    note: Annotated[str, typer.Option("--note", help="Context for the reviewers.")] = "",
    resubmit: Annotated[str | None, typer.Option(
        "--resubmit", help="Answer a returned release (its id): a new request linked to it. "
        "Say in --note what you changed.")] = None,
) -> None:
    """Build a release from an evaluation run under the study file in force for that run:
    every output through the disclosure rules (suppression, secondary suppression, rounding,
    non-zero contributors, dominance, cluster-level dof), checked together with the study's
    earlier releases, stored and signed in the vault, pending review by other people.

    A returned release is answered with `--resubmit ID`: its reviewers' comments are shown,
    and the same run with nothing changed since keeps the checks already made. The new
    release id alone goes to stdout (the summary to stderr), so a script can keep it.

    Example:

        trialvault release request --vault vault --user ana --note "final analysis"

        trialvault release request --resubmit 1a2b --note "context added as asked"
    """
    from trialvault.disclose.release import request_release, show_release
    from trialvault.progress import show_progress

    who = acting_user(vault, user)
    password = password_from_env_or_prompt()
    if resubmit:
        returned, _ = show_release(vault, who, password, resubmit)
        if returned.last_comment:
            note_text = _said(returned)
            err_console.print(f"answering {returned.release_id}, returned by {note_text}",
                              markup=False, highlight=False, soft_wrap=True)
        resubmit = returned.release_id
    with show_progress("release request") as progress:
        release_id = request_release(vault, who, password, study, run_id=run, note=note,
                                     resubmits=resubmit, progress=progress)
    record, checked = show_release(vault, who, password, release_id)
    # The summary goes to stderr and the new id alone to stdout, so a script can keep it:
    # RELEASE="$(trialvault release request …)".
    err_console.print(f"[bold green]release requested[/]: {release_id} (disclosure status "
                      f"{checked.status}, {len(checked.outputs)} outputs, run "
                      f"{record.run_id[:8]}{', resubmits ' + resubmit if resubmit else ''}); "
                      f"{record.required} reviewer(s) must now run `trialvault release review "
                      f"{release_id}`", soft_wrap=True)
    typer.echo(release_id)


@release_app.command("review")
@guarded
def review_cmd(
    release_id: ReleaseArg,
    vault: VaultOption, user: UserOption = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the release.")] = False,
    return_: Annotated[bool, typer.Option("--return", help="Return it to the requester.")] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it (final: the requester "
                                         "cannot resubmit; asks for confirmation).")] = False,
    comment: Annotated[str, typer.Option("--comment", help="Why (required; the requester "
                                         "reads it).")] = "",
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Review a pending release as a different user (role output-checker) with your own
    password: approve, return (the requester answers with `release request --resubmit`) or
    reject (final). The requester can never review their own release.

    Example: trialvault release review 1a2b --user oli --approve --comment "tables checked"
    """
    from trialvault.disclose.release import review_release, show_release

    chosen = [d for d, on in (("approve", approve), ("return", return_), ("reject", reject))
              if on]
    if len(chosen) != 1:
        raise PolicyRefusal("choose exactly one of --approve, --return, --reject")
    who, password = acting_user(vault, user), password_from_env_or_prompt()
    if dry_run or chosen[0] == "reject":
        record, _ = show_release(vault, who, password, release_id)
        console.print(f"would record: {chosen[0]} of release {record.release_id} (status "
                      f"{record.status}, {len(record.approvals)} of {record.required} "
                      f"approvals) by {who}", highlight=False)
        if dry_run:
            return
        release_id = record.release_id
        confirm(f"Reject release {release_id} for good?", yes=yes, what="rejecting a release")
    record = review_release(vault, who, password, release_id, chosen[0],  # type: ignore[arg-type]
                            comment)
    console.print(f"release {record.release_id}: {chosen[0]} recorded; status "
                  f"[bold]{record.status}[/]" + (" — the requester answers with `trialvault "
                                                  "release request --resubmit "
                                                  f"{record.release_id}`"
                                                  if record.status == "returned" else ""))


RELEASES = Listing("release-list", "Release requests with their status and the latest "
                   "return or rejection comment", (
                       Column("release", "release"), Column("status", "status"),
                       Column("checks", "checks"), Column("study", "study"),
                       Column("run", "run", description="the run id's first 8 characters"),
                       Column("requested_by", "requested by"),
                       Column("requested_at", "requested at", "datetime"),
                       Column("approvals", "approvals", "integer"),
                       Column("approved_by", "approved by",
                              description="users who approved, comma-separated"),
                       Column("resubmits", "resubmits", nullable=True),
                       Column("resubmitted_as", "resubmitted as", nullable=True),
                       Column("comment", "last comment", nullable=True, wrap=True,
                              description="the latest return or rejection: reviewer, "
                              "decision, time and comment")))


def release_rows(records: list[ReleaseRecord]) -> list[dict[str, Any]]:
    return [{"release": r.release_id, "status": r.status, "checks": r.check_status,
             "study": r.study_id, "run": r.run_id[:8], "requested_by": r.requested_by,
             "requested_at": utc(r.requested_at), "approvals": len(r.approvals),
             "approved_by": ",".join(r.approvals), "resubmits": r.resubmits,
             "resubmitted_as": r.resubmitted_as, "comment": _said(r) or None}
            for r in records]


@release_app.command("list")
@guarded
def list_cmd(vault: VaultOption, user: UserOption = None, fmt: FormatOption = None,
             as_json: JsonOption = False) -> None:
    """List the release requests with their status, approvals and the latest return or
    rejection comment (what the requester must answer).

    Example: trialvault release list --vault vault --json
    """
    from trialvault.disclose.release import release_list

    chosen = output_format(fmt, as_json)
    records = release_list(vault, acting_user(vault, user), password_from_env_or_prompt())
    emit(RELEASES, release_rows(records), chosen)
    if not records and chosen.value == "table":
        note("no releases yet")


class ShowFormat(StrEnum):
    md = "md"
    json = "json"


@release_app.command("show")
@guarded
def show_cmd(
    release_id: ReleaseArg,
    vault: VaultOption, user: UserOption = None,
    fmt: Annotated[ShowFormat, typer.Option(
        "--format", help="md (default) or json (docs/json-schemas/release-show.schema.json).",
        case_sensitive=False)] = None,  # type: ignore[assignment]
    as_json: JsonOption = False,
    public: Annotated[bool, typer.Option("--public", help="Show what would leave the vault "
                                         "instead of the reviewers' checking report.")] = False,
) -> None:
    """Print a release's checking report (for reviewers; it never leaves the vault): every
    output, rule applied, each suppressed cell with its true value and reason, which cell
    protects which, the audit, the comparison with earlier releases, the reviews with their
    comments, and then every output as it would be released.

    Example: trialvault release show 1a2b --vault vault
    """
    from trialvault.disclose.checking import (
        outputs_markdown,
        render_markdown,
        render_public_markdown,
    )
    from trialvault.disclose.release import show_release

    if as_json and fmt not in (None, ShowFormat.json):
        raise typer.BadParameter("--json and --format md disagree: give one",
                                 param_hint="--json")
    record, checked = show_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                                   release_id)
    meta = {**record.meta(), "approvals": [
        {"reviewer": r["reviewer"], "reviewed_at": r["reviewed_at"]}
        for r in record.reviews if r["decision"] == "approve"]}
    if as_json or fmt == ShowFormat.json:
        body = checked.public_json() if public else {**checked.public_json(),
                                                     **checked.internal_json()}
        emit_json({"release": record.meta(), **body})
        return
    text = (render_public_markdown(checked, meta) if public
            else render_markdown(checked, record.meta()))
    console.print(text.rstrip("\n") + "\n\n" + outputs_markdown(checked), markup=False,
                  highlight=False, soft_wrap=True)


@release_app.command("verify")
@guarded
def verify_cmd(
    release_id: ReleaseArg,
    vault: VaultOption, user: UserOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a release as `release write` does: the audit log, the stored content against the
    signed hash, the requester's and every reviewer's signature against the certificates the
    audit log introduced, distinct people, slots made before the request, enough approvals.
    Exit 5 when something does not verify, 6 when approvals are missing (with `--json`, after
    the report: docs/json-schemas/release-verify.schema.json).

    Example: trialvault release verify 1a2b --vault vault
    """
    from trialvault.disclose.release import verify_release
    from trialvault.errors import IntegrityError

    found = verify_release(vault, acting_user(vault, user), password_from_env_or_prompt(),
                           release_id)
    if as_json:
        emit_json({"release_id": found.release_id, "ok": found.ok, "required": found.required,
                   "approvals": [{"reviewer": a["reviewer"], "reviewed_at": a["reviewed_at"]}
                                 for a in found.approvals],
                   "rejected_by": found.rejected_by, "problems": found.problems,
                   "reasons": found.reasons()})
    for a in ([] if as_json else found.approvals):
        console.print(f"approval by {a['reviewer']} at {a['reviewed_at']}: signature verifies",
                      markup=False, highlight=False)
    if found.problems:
        raise IntegrityError("; ".join(found.problems))
    if not found.ok:
        raise PolicyRefusal("; ".join(found.reasons()))
    if not as_json:
        console.print(f"release {found.release_id}: request and {len(found.approvals)} "
                      "approval(s) verify")


@release_app.command("write")
@guarded
def write_cmd(
    release_id: ReleaseArg,
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
    from trialvault.progress import show_progress

    who, password = acting_user(vault, user), password_from_env_or_prompt()
    with show_progress("release write") as progress:
        progress(0, None, "verifying the audit log and every signature, then writing")
        report = write_release(vault, who, password, release_id, out)
    console.print(f"[bold green]release written[/]: {out} (report: {report})")


RUNS = Listing("runs-list", "Evaluation runs stored in the vault (newest last)", (
    Column("run", "run", description="the run id's first 8 characters (a unique prefix "
           "names it anywhere a run id is asked for)"),
    Column("run_id", "run id"), Column("created_at", "created (UTC)", "datetime"),
    Column("study", "study"), Column("seed", "seed", "integer"),
    Column("cohort", "cohort", "integer"), Column("excluded", "excluded", "integer",
                                                   description="children left out (restriction"
                                                   " or objection)"),
    Column("releases", "releases", wrap=True, description="release requests made from the "
           "run, comma-separated")))


@runs_app.command("list")
@guarded
def runs_list_cmd(vault: VaultOption, user: UserOption = None, fmt: FormatOption = None,
                  as_json: JsonOption = False) -> None:
    """List the evaluation runs (id, when, study, cohort size, releases made from each); a
    release request takes one with `--run` (a unique prefix of its id will do).

    Example: trialvault runs list --vault vault
    """
    from trialvault.disclose.runs import runs_list

    chosen = output_format(fmt, as_json)
    rows = runs_list(vault, acting_user(vault, user), password_from_env_or_prompt())
    emit(RUNS, [{"run": r.run_id[:8], "run_id": r.run_id, "created_at": utc(r.created_at),
                 "study": r.study_id, "seed": r.seed, "cohort": r.cohort_size,
                 "excluded": r.excluded_children, "releases": ", ".join(r.releases)}
                for r in rows], chosen)
    if not rows and chosen.value == "table":
        note("no evaluation runs yet: run `trialvault evaluate`")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(release_app, name="release")
    app.add_typer(runs_app, name="runs")
