"""CLI of the LA's signing key: `trialvault la keygen` and `trialvault la pubkey`.

The vault side of the ceremony (`la trust`, a data manager registering an LA's public key) is
added to the same `la` group by the vault stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import console, guarded, note, password_from_env_or_prompt
from trialvault.seal.keys import LaSigningKey, read_public_key, write_key_file

PASSPHRASE_ENV = "TRIALVAULT_LA_PASSPHRASE"

la_app = typer.Typer(help="LA signing keys: make one, print its public key, register it.",
                     no_args_is_help=True)


def la_passphrase(*, confirm: bool = False) -> str:
    """The LA key's passphrase: $TRIALVAULT_LA_PASSPHRASE (scripts) or a hidden prompt."""
    return password_from_env_or_prompt("LA key passphrase", confirm=confirm, env=PASSPHRASE_ENV)


@la_app.command("keygen")
@guarded
def keygen(
    la: Annotated[int, typer.Option("--la", help="DfE code of your LA.")],
    out: Annotated[Path, typer.Option("--out", help="Key file to create (never overwritten); "
                                      "keep it at the LA.")],
) -> None:
    """Make your LA's signing key (Ed25519), encrypted under a passphrase you choose.

    The passphrase comes from a prompt (asked twice) or $TRIALVAULT_LA_PASSPHRASE; it needs 12+
    characters and must be hard to guess. Prints the public key line to send to the evaluator
    and a fingerprint to read to them by phone: they register the key with `trialvault la
    trust`, and from then on ingest accepts your LA's packages only when `prepare --sign-key`
    signed them with this key.

    Example: trialvault la keygen --la 354 --out la-354.key
    """
    key = LaSigningKey.generate(la)
    write_key_file(out, key, la_passphrase(confirm=True))
    console.print(key.public.line(), highlight=False, soft_wrap=True)
    note(f"key written to {out} (owner-only file); fingerprint {key.public.fingerprint()}. "
         "Send the line above to the evaluator and read them the fingerprint by phone.")


@la_app.command("pubkey")
@guarded
def pubkey(
    key_file: Annotated[Path, typer.Argument(help="The LA key file made by `la keygen`.")],
    fingerprint: Annotated[bool, typer.Option("--fingerprint", help="Print the fingerprint "
                                              "(to read aloud) instead of the key.")] = False,
) -> None:
    """Print an LA key file's public key line (no passphrase needed).

    Example: trialvault la pubkey la-354.key
    """
    public = read_public_key(key_file)
    console.print(public.fingerprint() if fingerprint else public.line(), highlight=False,
                  soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the `la` group."""
    app.add_typer(la_app, name="la")
