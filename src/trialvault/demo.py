"""`trialvault demo`: run every stage that exists on synthetic data, into a fresh folder."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command."""
