"""CLI commands of the evaluate stage (thin: parse, call the library, print)."""

from __future__ import annotations

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

SeedOption = Annotated[
    int | None,
    typer.Option("--seed", help="Seed of the wild bootstrap's weights. Default: the study "
                 "file's analysis.seed.", show_default=False),
]


@guarded
def evaluate(study: StudyOption, vault: VaultOption, user: UserOption = None,
             seed: SeedOption = None,
             engine: Annotated[str, typer.Option(
                 "--engine", help="Where the cohort and outcome SQL runs: duckdb (default) or "
                 "spark; the models run here either way.")] = "duckdb",
             spark_master: Annotated[str | None, typer.Option(
                 "--spark-master", help="Spark master URL (local[2], spark://…, sc://…); "
                 "default local[2].")] = None) -> None:
    """Evaluate the study inside the vault: cohort and outcomes (SQL), Hussey & Hughes models
    (odds ratio, risk difference), randomisation inference over every allowed assignment of LAs
    to steps, wild cluster bootstrap (Webb weights), Callaway–Sant'Anna sensitivity analysis.

    Results and their provenance (audit head, study file hash, package versions, seed) are
    stored in the vault as a run (`trialvault runs list`); nothing leaves the vault: ask for a
    release with `trialvault release request`. Children with an active restriction or
    objection are left out and counted.

    Example: TRIALVAULT_PASSWORD=... trialvault evaluate --study studies/no-wrong-door.toml
    --vault vault --user ana
    """
    from trialvault.evaluate.run import evaluate_vault
    from trialvault.evaluate.summary import render_summary
    from trialvault.progress import show_progress

    who = acting_user(vault, user)
    runner = None
    if engine != "duckdb":
        from trialvault.engines import make_engine

        runner = make_engine(engine, spark_master=spark_master)
    password = password_from_env_or_prompt()
    try:
        # The library reports no steps yet: a heartbeat shows the command is alive.
        with show_progress("evaluate") as progress:
            progress(0, None, "cohort, outcomes, models and sensitivity analyses")
            results = evaluate_vault(vault, who, password, study, seed=seed, engine=runner)
    finally:
        if runner is not None:
            runner.close()
    console.print(render_summary(results), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("evaluate")(evaluate)
