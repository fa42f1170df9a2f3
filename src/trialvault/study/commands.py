"""CLI commands of the study stage: check a study file, render its documents.

Imports of the study model and the templates happen inside the commands, so listing or
helping these commands stays cheap.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from trialvault.cli_common import StudyOption, console, guarded, note
from trialvault.output import FormatOption, JsonOption, OutputFormat, emit_json, output_format


class Document(StrEnum):
    notice = "notice"
    ropa = "ropa"
    lia = "lia"


class DocumentFormat(StrEnum):
    md = "md"
    html = "html"


@guarded
def docs(
    document: Annotated[Document, typer.Argument(help="notice | ropa | lia")],
    study: StudyOption,
    fmt: Annotated[DocumentFormat, typer.Option("--format", help="md or html")
                   ] = DocumentFormat.md,
    out: Annotated[Path | None, typer.Option("--out", help="Write to this file instead of "
                                             "stdout.")] = None,
) -> None:
    """Render the privacy notice, the Article 30 record (ropa) or the legitimate interest
    assessment (lia) from the study file alone.

    Every section the ICO's templates ask for is filled from the study file; a missing or
    broken value stops the command naming the study-file key.

    Example: trialvault docs notice --study studies/no-wrong-door.toml --format html
    --out notice.html
    """
    from trialvault.files import write_atomic
    from trialvault.study.documents import render
    from trialvault.study.load import load_study

    text = render(load_study(study), document.value, fmt.value)
    if out is None:
        typer.echo(text, nl=False)
    else:
        write_atomic(out, text.encode("utf-8"))
        note(f"wrote {out}")


@guarded
def check(study: StudyOption, fmt: FormatOption = None, as_json: JsonOption = False) -> None:
    """Validate a study file and summarise it; errors name each bad key.

    Example: trialvault check --study studies/no-wrong-door.toml --json
    """
    chosen = output_format(fmt, as_json)
    if chosen is OutputFormat.csv:
        raise typer.BadParameter("check reports one study, not rows: use table or json",
                                 param_hint="--format")
    summary = study_summary(study)
    if chosen is OutputFormat.json:
        emit_json(summary)
        for text in summary["notes"]:
            note(text)
        return
    console.print(f"[green]ok[/] {study} — study '{summary['study_id']}', "
                  f"{len(summary['local_authorities'])} LAs, {summary['categories']} categories "
                  f"({summary['fields']} fields), {summary['outcomes']} outcomes, deletion due "
                  f"{summary['deletion_due']}", highlight=False)
    console.print(f"sha256 {summary['sha256']}", highlight=False)
    for text in summary["notes"]:
        note(text)


def study_summary(path: Path) -> dict[str, Any]:
    """The `check` report (schema: docs/json-schemas/check.schema.json)."""
    from trialvault.study.load import load_study, study_hash

    s = load_study(path)
    notes = ["the rollout schedule is marked illustrative"] if s.design.illustrative_schedule \
        else []
    return {
        "study_file": str(path),
        "sha256": study_hash(path),
        "study_id": s.study.id,
        "title": s.study.title,
        "local_authorities": [{"name": la.name, "dfe_code": la.dfe_code,
                               "ons_code": la.ons_code} for la in s.local_authorities],
        "categories": len(s.categories),
        "fields": len(s.allowed_fields),
        "outcomes": len(s.analysis.outcomes),
        "deletion_due": s.retention.deletion_due,
        "illustrative_schedule": s.design.illustrative_schedule,
        "notes": notes,
    }


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("docs")(docs)
    app.command("check")(check)
