"""CLI of the design stage: `trialvault design power|simulate|randomise|verify` (thin).

The library (numpy, SciPy, the generator) is imported inside the commands, so `--help` stays
cheap.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from trialvault.cli_common import (
    StudyOption,
    UserOption,
    acting_user,
    console,
    guarded,
    note,
    password_from_env_or_prompt,
    warning,
)
from trialvault.errors import IntegrityError, UsageError
from trialvault.output import JsonOption, emit_json

design_app = typer.Typer(help="Power, MDES and the verifiable randomisation of the rollout.",
                         no_args_is_help=True)


class CorrelationChoice(StrEnum):
    block_exchangeable = "block_exchangeable"
    exponential_decay = "exponential_decay"


class CohortChoice(StrEnum):
    cross_sectional = "cross_sectional"
    closed = "closed"


def _when(text: str, option: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: expected an ISO date or date-time, e.g. "
                                 "2026-03-07T20:00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@design_app.command("power")
@guarded
def power(
    study: StudyOption,
    outcome: Annotated[str | None, typer.Option(
        "--outcome", help="Outcome id (default: the primary outcome).")] = None,
    effect: Annotated[float | None, typer.Option(
        "--effect", help="Effect to detect: risk difference (binary) or mean difference; "
        "gives the power.")] = None,
    target: Annotated[float | None, typer.Option(
        "--power", help="Power to reach; gives the minimum detectable effect (MDES). Default: "
        "the study's target power.")] = None,
    baseline: Annotated[float | None, typer.Option(
        "--baseline", help="Control risk P0 of a binary outcome (default: the study's).")] = None,
    sd: Annotated[float | None, typer.Option(
        "--sd", help="SD of one observation (outcomes that are not binary).")] = None,
    icc: Annotated[float | None, typer.Option(
        "--icc", help="Within-period intracluster correlation, in [0, 1).")] = None,
    cac: Annotated[float | None, typer.Option(
        "--cac", help="Cluster autocorrelation, in [0, 1]; 1 = Hussey & Hughes.")] = None,
    correlation: Annotated[CorrelationChoice | None, typer.Option(
        "--correlation", help="block_exchangeable (Hooper) or exponential_decay (Kasza).")
    ] = None,
    cohort: Annotated[CohortChoice | None, typer.Option(
        "--cohort", help="cross_sectional (new children each period) or closed.")] = None,
    iac: Annotated[float | None, typer.Option(
        "--iac", help="Individual autocorrelation of a closed cohort.")] = None,
    per_cluster_period: Annotated[float | None, typer.Option(
        "--per-cluster-period", help="Expected members per cluster and period (default: the "
        "study's volumes per LA).")] = None,
    alpha: Annotated[float | None, typer.Option(
        "--alpha", help="Two-sided significance level (default: the study's).")] = None,
    df: Annotated[float | None, typer.Option(
        "--df", help="Use a t test with these degrees of freedom (default: Wald z).")] = None,
    design_matrix: Annotated[Path | None, typer.Option(
        "--design-matrix", help="CSV of 0/1 rows, one per cluster, one column per period "
        "(empty = not observed); default: the study's rollout.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Power for an effect, or the minimum detectable effect (MDES) for a power, of the
    study's design (GLS on the cluster-period means).

    Example: trialvault design power --effect -0.03 --icc 0.01 --cac 0.9
    """
    from trialvault.design.analytic import analyse
    from trialvault.design.matrix import from_study, read_csv, volumes
    from trialvault.design.statement import assumptions_of, primary_baseline
    from trialvault.study import load_study

    s = load_study(study)
    out = next((o for o in s.analysis.outcomes if o.id == (outcome or
                                                          s.analysis.primary_outcome.id)), None)
    if out is None:
        raise UsageError(f"--outcome {outcome}: not an outcome of the study ("
                         + ", ".join(o.id for o in s.analysis.outcomes) + ")")
    a = assumptions_of(s, icc=icc, cac=cac, alpha=alpha, df=df,
                       correlation=correlation.value if correlation else None,
                       cohort=cohort.value if cohort else None, iac=iac)
    design = read_csv(design_matrix) if design_matrix else from_study(s)
    for text in design.notes:
        note(text)
    m = volumes(design, s, per_cluster_period)
    if out.kind == "binary":
        if sd is not None:
            raise UsageError(f"{out.id} is binary: give --baseline, not --sd")
        p0 = baseline if baseline is not None else (
            primary_baseline(s) if out.primary else
            (s.synth.base_rates.get(out.id) if s.synth else None))
        if p0 is None:
            raise UsageError(f"give --baseline (the control risk of {out.id})")
        sd_value = None
    else:
        if sd is None and not (out.primary and s.design.power and s.design.power.sd):
            raise UsageError(f"{out.id} is a {out.kind}: give --sd (SD of one observation)")
        p0, sd_value = None, sd if sd is not None else s.design.power.sd  # type: ignore[union-attr]
    if effect is None and target is None:
        target = s.design.power.target_power if s.design.power else 0.8
    result = analyse(design, m, a, baseline=p0, sd=sd_value, effect=effect, power=target)
    if as_json:
        emit_json(result.as_json())
        return
    n_clusters, n_periods = design.shape
    console.print(f"design: {n_clusters} clusters × {n_periods} periods ({design.source}), "
                  f"{result.total_n:,.0f} observations", markup=False)
    console.print(f"method: {result.method}", markup=False)
    if result.power is not None and result.mdes is None:
        console.print(f"power {result.power:.4f} for effect {result.effect:+g}", markup=False)
    else:
        console.print(f"MDES {result.mdes:.4f} at power {result.power:g}", markup=False)
    console.print(f"variance of the estimator {result.variance:.6g} (SE "
                  f"{result.variance ** 0.5:.4g}); design effect {result.design_effect:.3f}",
                  markup=False)


@design_app.command("simulate")
@guarded
def simulate(
    study: StudyOption,
    effect: Annotated[list[str], typer.Option(
        "--effect", help="Planted effect NAME=VALUE (as trialvault synth); repeatable; the "
        "primary outcome is required.")],
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Departure from the model NAME=VALUE (as trialvault synth); "
        "repeatable.")] = None,
    reps: Annotated[int, typer.Option("--reps", help="Trials with the effect planted.")] = 200,
    null_reps: Annotated[int | None, typer.Option(
        "--null-reps", help="Trials with no effect, for the size (default: --reps).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="First trial's seed.")] = 1,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel processes (default: the CPU "
                                      "count).")] = 0,
    full: Annotated[bool, typer.Option(
        "--full", help="Generate case histories and derive the cohort by SQL (slow); default: "
        "the generator's cohort-level path.")] = False,
    fixed_order: Annotated[bool, typer.Option(
        "--fixed-order", help="Keep the study file's rollout order in every trial (power for "
        "that order); default: each trial draws the order, as the trial will.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Power, coverage and size of the plan's primary analysis by simulation with the
    project's own generator (synth → cohort → primary analysis, in parallel).

    Example: trialvault design simulate --effect entered_care_12m=-0.03 --reps 200
    """
    from trialvault.design.simulate import simulate_power
    from trialvault.progress import show_progress
    from trialvault.study import load_study
    from trialvault.synth.commands import parse_effects

    s = load_study(study)
    with show_progress("design simulate") as progress:
        result = simulate_power(s, effects=parse_effects(effect),
                                scenario=parse_effects(scenario or [], "--scenario"),
                                reps=reps, null_reps=null_reps, seed=seed,
                                jobs=jobs or os.cpu_count() or 1, full=full,
                                draw_order=not fixed_order, progress=progress)
    if result.failed:
        warning(f"{result.failed} trial(s) could not be analysed and are left out")
    if as_json:
        emit_json(result.as_json())
        return
    console.print(f"method: {result.method}", markup=False)
    console.print(f"power {result.power:.3f} (MC SE {result.mc_se_power:.3f}) over "
                  f"{result.reps} trials; coverage {result.coverage:.3f}; size {result.size:.3f} "
                  f"over {result.null_reps} null trials; mean estimate "
                  f"{result.mean_estimate:+.4f} vs estimand {result.mean_estimand:+.4f}; "
                  f"{result.seconds:.0f} s", markup=False)


@design_app.command("randomise")
@guarded
def randomise(
    study: StudyOption,
    do_commit: Annotated[bool, typer.Option(
        "--commit", help="Draw a secret seed; print its SHA-256 commitment and timestamp.")
    ] = False,
    reveal: Annotated[str | None, typer.Option(
        "--reveal", metavar="SEED", help="The committed seed (hex) to reveal.")] = None,
    beacon: Annotated[str | None, typer.Option(
        "--beacon", help="The public value named in advance (e.g. a lottery draw).")] = None,
    beacon_at: Annotated[str | None, typer.Option(
        "--beacon-at", help="When the public value was fixed (ISO date-time, UTC).")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="With --commit: also write seed, commitment and time to this file (kept "
        "private).")] = None,
    vault: Annotated[Path | None, typer.Option(
        "--vault", help="Audit the commitment or the reveal in this vault.")] = None,
    user: UserOption = None,
) -> None:
    """Randomise the rollout order verifiably: --commit first, then --reveal with the beacon.

    Example: trialvault design randomise --reveal SEED --beacon "7 12 23 31 44 58"
    --beacon-at 2026-03-07T20:00:00Z
    """
    from trialvault.design import randomise as r
    from trialvault.study import load_study

    s = load_study(study)
    if do_commit == (reveal is not None):
        raise UsageError("give --commit, or --reveal SEED with --beacon and --beacon-at")
    if do_commit:
        c = r.commit(s.study.id)
        stamp = c.committed_at.isoformat().replace("+00:00", "Z")
        detail = {"commitment": c.commitment, "committed_at": stamp, "study": s.study.id}
        _audit(vault, user, "design randomise --commit", detail)
        if out is not None:
            from trialvault.files import write_atomic

            write_atomic(out, json.dumps({**detail, "seed": c.seed}, indent=1).encode())
            os.chmod(out, 0o600)
            note(f"wrote {out} (holds the secret seed: keep it private until the reveal)")
        console.print(f"commitment {c.commitment}\ncommitted_at {stamp}\n"
                      f"seed {c.seed}", markup=False)
        note("publish the commitment and time now; keep the seed secret until the beacon is "
             "fixed. Paste into [design.randomisation]: commitment = \"…\", committed_at = …")
        return
    if not beacon or not beacon_at:
        raise UsageError("--reveal needs --beacon VALUE and --beacon-at WHEN")
    when = _when(beacon_at, "--beacon-at")
    draw = r.reveal(s, seed=str(reveal), beacon=beacon, beacon_at=when)
    _audit(vault, user, "design randomise --reveal",
           {"study": s.study.id, "order": list(draw.order), "rejected_draws": draw.rejected_draws,
            "beacon_at": when.isoformat()})
    console.print("order: " + " → ".join(str(la) for la in draw.order)
                  + f" (rejected draws: {draw.rejected_draws})", markup=False)
    console.print(r.toml_snippet(s, draw, seed=str(reveal), beacon=beacon, beacon_at=when),
                  markup=False)


def _audit(vault: Path | None, user: str | None, command: str, detail: dict[str, Any]) -> None:
    """Record the step in the vault's signed audit log (no seed: it is secret until revealed)."""
    if vault is None:
        return
    from trialvault.vault import open_vault

    name = acting_user(vault, user)
    password = password_from_env_or_prompt()
    with open_vault(vault, name, password, command=command, args=detail, write=True) as session:
        session.record(detail=detail)
    note(f"recorded in the audit log of {vault}")


@design_app.command("verify")
@guarded
def verify(study: StudyOption, as_json: JsonOption = False) -> None:
    """Recompute the rollout order from the study file's commitment, seed and beacon and
    compare it with the study file's rollout.

    Example: trialvault design verify --study studies/no-wrong-door.toml
    """
    from trialvault.design.randomise import verify_rollout
    from trialvault.study import load_study

    result = verify_rollout(load_study(study))
    if as_json:
        emit_json({"ok": result.ok, "checks": [
            {"check": c, "passed": ok, "detail": d} for c, ok, d in result.checks],
            "order": list(result.draw.order) if result.draw else None,
            "rejected_draws": result.draw.rejected_draws if result.draw else None})
    else:
        for check, ok, detail in result.checks:
            console.print(f"{'ok  ' if ok else 'FAIL'} {check}: {detail}", markup=False)
    if not result.ok:
        raise IntegrityError("the rollout does not verify: "
                             + "; ".join(c for c, ok, _ in result.checks if not ok))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(design_app, name="design")
