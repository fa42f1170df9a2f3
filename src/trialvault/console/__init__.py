"""The local web console for the data manager, the DPO, analysts and output checkers."""

from trialvault.console.app import Console, ConsoleSettings
from trialvault.console.pages_audit import add_audit_pages
from trialvault.console.pages_holdings import add_holdings_pages
from trialvault.console.pages_releases import add_release_pages
from trialvault.console.pages_retention import add_retention_pages
from trialvault.console.pages_rights import add_rights_pages

__all__ = ["Console", "ConsoleSettings", "build_console"]


def build_console(settings: ConsoleSettings, *, secret: str | None = None) -> Console:
    """A console with every page; `.app()` gives the ASGI app."""
    console = Console(settings, secret=secret)
    add_holdings_pages(console)
    add_rights_pages(console)
    add_retention_pages(console)
    add_release_pages(console)
    add_audit_pages(console)
    return console
