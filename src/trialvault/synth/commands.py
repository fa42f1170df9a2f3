"""CLI commands of the synth stage (thin: parse, call the library, print)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import StudyOption, console, guarded
from trialvault.study import load_study
from trialvault.synth.files import generate_files
from trialvault.synth.params import OUTCOMES, SCENARIOS


def parse_effects(values: list[str], option: str = "--effect") -> dict[str, float]:
    """`NAME=VALUE` pairs to a dict; a bad pair is a usage error naming it."""
    effects: dict[str, float] = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name or number != number:
            raise typer.BadParameter(f"{option} {item!r}: expected NAME=NUMBER")
        if name in effects:
            raise typer.BadParameter(f"{option} {name} given twice")
        effects[name] = number
    return effects


def synth(
    study: StudyOption,
    out: Annotated[Path, typer.Option("--out", help="Output folder (new or empty).")],
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    scale: Annotated[float, typer.Option("--scale", help="Volume multiplier (30 ~ England).")
                     ] = 1.0,
    effect: Annotated[list[str] | None, typer.Option(
        "--effect", help="Planted effect NAME=VALUE (risk difference for binary outcomes, "
        "ratio for counts and rates); repeatable. Names: " + ", ".join(OUTCOMES) + ".")] = None,
    error_rate: Annotated[float, typer.Option(
        "--error-rate", help="Share of rows given a realistic fault (0-0.5).")] = 0.0,
    scenario: Annotated[list[str] | None, typer.Option(
        "--scenario", help="Departure from the model NAME=VALUE; repeatable. Names: "
        + "; ".join(f"{k} ({v})" for k, v in SCENARIOS.items()) + ".")] = None,
) -> None:
    """Generate synthetic LA files (SSDA903, CIN census, education, NEET, Ofsted providers) with
    known effects.

    Example: trialvault synth --out synthetic --seed 7 --effect entered_care_12m=-0.03
    --effect unauthorised_absence_rate=0.8 --error-rate 0.01 --scenario la_period_sd=0.04
    --scenario effect_ramp_quarters=8
    """
    effects = parse_effects(effect or [])
    scenarios = parse_effects(scenario or [], "--scenario")
    study_file = load_study(study)
    from trialvault.progress import show_progress

    # On stderr (a bar on a terminal, progress lines when piped): stdout keeps the summary.
    with show_progress("synth") as progress:
        summary = generate_files(study_file, out, seed=seed, scale=scale, effects=effects,
                                 error_rate=error_rate, progress=progress, scenario=scenarios)
    console.print(
        f"wrote {summary.rows:,} rows for {summary.children:,} children in "
        f"{len(summary.la_codes)} LAs, collection years {summary.collection_years[0]}-"
        f"{summary.collection_years[-1]}; cohort {summary.cohort:,}; faults {summary.faults:,}; "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s) -> {out}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("synth")(guarded(synth))
