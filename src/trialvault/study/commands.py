"""CLI commands of the study stage: check a study file, render its documents."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
