"""CLI commands of the study stage: check a study file, render its documents."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import StudyOption, console, guarded
from trialvault.study.documents import render
from trialvault.study.load import load_study, study_hash


class Document(StrEnum):
    notice = "notice"
    ropa = "ropa"
    lia = "lia"


class Format(StrEnum):
    md = "md"
    html = "html"


@guarded
def docs(
    document: Annotated[Document, typer.Argument(help="notice | ropa | lia")],
    study: StudyOption,
    fmt: Annotated[Format, typer.Option("--format", help="md or html")] = Format.md,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of stdout")] = None,
) -> None:
    """Render the privacy notice, the Article 30 record (ropa) or the legitimate interest
    assessment (lia) from the study file alone.

    Example: trialvault docs notice --study studies/no-wrong-door.toml --format html --out notice.html
    """
    text = render(load_study(study), document.value, fmt.value)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


@guarded
def check(study: StudyOption) -> None:
    """Validate a study file and summarise it; errors name each bad key.

    Example: trialvault check --study studies/no-wrong-door.toml
    """
    s = load_study(study)
    console.print(f"[green]ok[/] {study} — study '{s.study.id}', {len(s.local_authorities)} LAs, "
                  f"{len(s.categories)} categories ({len(s.allowed_fields)} fields), "
                  f"{len(s.analysis.outcomes)} outcomes, deletion due {s.retention.deletion_due}")
    console.print(f"sha256 {study_hash(study)}")
    if s.design.illustrative_schedule:
        console.print("[yellow]note:[/] the rollout schedule is marked illustrative")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("docs")(docs)
    app.command("check")(check)
