"""`trialvault demo`: run every stage that exists, on synthetic data, into a fresh folder.

The demo uses the NWD study file and data the project generates; no real data is involved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import StudyOption, console, guarded
from trialvault.errors import PolicyRefusal
from trialvault.study import StudyFile, load_study
from trialvault.study.documents import render


@dataclass
class DemoRun:
    """What the demo made: the folder and the named artefacts in it."""

    folder: Path
    artefacts: dict[str, Path] = field(default_factory=dict)


def fresh_folder(parent: Path, now: dt.datetime) -> Path:
    folder = parent / f"demo-{now:%Y%m%d-%H%M%S}"
    n = 1
    while folder.exists():
        n += 1
        folder = parent / f"demo-{now:%Y%m%d-%H%M%S}-{n}"
    return folder


def write_documents(study: StudyFile, folder: Path) -> dict[str, Path]:
    docs_dir = folder / "documents"
    docs_dir.mkdir(parents=True)
    made: dict[str, Path] = {}
    for kind in ("notice", "ropa", "lia"):
        for fmt in ("md", "html"):
            path = docs_dir / f"{kind}.{fmt}"
            path.write_text(render(study, kind, fmt), encoding="utf-8")
            made[f"{kind}.{fmt}"] = path
    return made


def run_demo(study: StudyFile, folder: Path) -> DemoRun:
    """Run the pipeline's stages in order into `folder` (which must not exist yet)."""
    if folder.exists():
        raise PolicyRefusal(f"{folder} already exists: the demo writes only into a fresh folder")
    folder.mkdir(parents=True)
    run = DemoRun(folder)
    run.artefacts.update(write_documents(study, folder))
    return run


@guarded
def demo(
    study: StudyOption,
    out: Annotated[Path | None, typer.Option("--out", help="Folder to create (must not exist). "
                                             "Default: ./demo-<timestamp>")] = None,
) -> None:
    """Run every stage on synthetic data into a fresh folder and say where it is.

    Example: trialvault demo
    """
    folder = out or fresh_folder(Path.cwd(), dt.datetime.now())
    run = run_demo(load_study(study), folder)
    console.print(f"[bold green]demo finished[/]: {len(run.artefacts)} files in {run.folder}")
    for name, path in run.artefacts.items():
        console.print(f"  {name:24} {path}")


def register(app: typer.Typer) -> None:
    """Add the demo command."""
    app.command("demo")(demo)
