"""CLI of the LA signing keys: `la keygen` and `la pubkey` (at the LA), `la trust`,
`la trusted` and `la retire` (the data manager, in the vault's secrets domain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import (
    DryRunOption,
    StudyOption,
    UserOption,
    VaultOption,
    YesOption,
    acting_user,
    confirm,
    console,
    guarded,
    key_line,
    note,
    password_from_env_or_prompt,
    warning,
)
from trialvault.errors import NotFound, PolicyRefusal
from trialvault.output import Column, FormatOption, JsonOption, Listing, emit, output_format, utc
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


@la_app.command("trust")
@guarded
def trust(
    key: Annotated[str, typer.Argument(help="The LA's public key line "
                                       "(trialvault-la-ed25519:<la>:<base64>), or the file "
                                       "holding it (`la pubkey KEY > la-354.pub` at the LA).")],
    la: Annotated[int, typer.Option("--la", help="DfE code of the LA the key belongs to.")],
    vault: VaultOption, study: StudyOption, user: UserOption = None,
    fingerprint: Annotated[str | None, typer.Option(
        "--fingerprint", help="The fingerprint the LA read to you by phone (`la pubkey "
        "--fingerprint` at the LA): the key is refused unless it matches.")] = None,
) -> None:
    """Register an LA's public signing key in the vault (a data manager; audited). Give the
    fingerprint the LA read to you by phone with --fingerprint: a key that does not match it
    (changed on the way) is refused. From now on ingest accepts that LA's packages only when
    signed with this key.

    Example: trialvault la trust "trialvault-la-ed25519:354:..." --la 354
    --fingerprint "1a2b 3c4d 5e6f 7a8b 9c0d"
    """
    from trialvault.seal.keys import parse_public_key
    from trialvault.study import load_study
    from trialvault.vault.la_keys import trust_la_key

    key = key_line(key, prefix="trialvault-la-ed25519:", option="KEY")
    given = parse_public_key(key, source="the LA public key")
    if fingerprint is None:
        warning(f"no --fingerprint given: check {given.fingerprint()} with LA {la} by phone "
                "before any package is ingested")
    elif _plain(fingerprint) != _plain(given.fingerprint()):
        raise PolicyRefusal(f"the key's fingerprint is {given.fingerprint()}, not the one the "
                            "LA read to you: it changed on the way; ask the LA to send it "
                            "again (nothing registered)")
    name = acting_user(vault, user)
    public = trust_la_key(vault, name, password_from_env_or_prompt(), la, key,
                          study=load_study(study))
    console.print(f"[green]trusted[/] LA {la} key, fingerprint {public.fingerprint()}",
                  soft_wrap=True)


def _plain(fingerprint: str) -> str:
    return "".join(fingerprint.split()).lower()


TRUSTED = Listing("la-trusted", "LA signing keys registered in the vault", (
    Column("la", "LA", "integer"), Column("fingerprint", "fingerprint"),
    Column("state", "state", description="trusted or retired"),
    Column("registered_at", "registered (UTC)", "datetime"),
    Column("registered_by", "registered by"),
    Column("retired_at", "retired (UTC)", "datetime", nullable=True)))


@la_app.command("trusted")
@guarded
def trusted(vault: VaultOption, user: UserOption = None, fmt: FormatOption = None,
            as_json: JsonOption = False) -> None:
    """List the LA keys the vault trusts (LA, fingerprint, who registered it, retired).

    Example: trialvault la trusted --vault vault
    """
    from trialvault.vault.la_keys import list_la_keys

    chosen = output_format(fmt, as_json)
    keys = list_la_keys(vault, acting_user(vault, user), password_from_env_or_prompt())
    emit(TRUSTED, [{"la": k.la_code, "fingerprint": k.fingerprint,
                    "state": "retired" if k.retired_at else "trusted",
                    "registered_at": utc(k.registered_at), "registered_by": k.registered_by,
                    "retired_at": utc(k.retired_at)} for k in keys], chosen)
    if not keys and chosen.value == "table":
        note("no LA keys registered yet (`trialvault la trust`)")


@la_app.command("retire")
@guarded
def retire(
    fingerprint: Annotated[str, typer.Argument(help="The key's fingerprint as `la trusted` "
                                               "shows it, or its first characters (at least "
                                               "4; quote it if it has spaces).")],
    vault: VaultOption, user: UserOption = None,
    dry_run: DryRunOption = False, yes: YesOption = False,
) -> None:
    """Stop trusting an LA key (lost, leaked or replaced); later packages signed with it are
    refused. Shows the key and asks first (`--yes` in scripts).

    Example: trialvault la retire "1a2b 3c4d" --vault vault
    """
    from trialvault.short_ids import resolve
    from trialvault.vault.la_keys import list_la_keys, retire_la_key

    name, password = acting_user(vault, user), password_from_env_or_prompt()
    trusted = {_plain(k.fingerprint): k for k in list_la_keys(vault, name, password)
               if not k.retired_at}
    k = trusted[resolve(_plain(fingerprint), trusted, what="trusted LA key",
                        listed_by="`trialvault la trusted`")]
    console.print(f"{'would retire' if dry_run else 'retiring'} LA {k.la_code}'s key "
                  f"{k.fingerprint} (registered {k.registered_at} by {k.registered_by}): "
                  "packages signed with it are refused from then on", highlight=False,
                  soft_wrap=True)
    if dry_run:
        return
    confirm("Retire it?", yes=yes, what="retiring an LA key")
    n = retire_la_key(vault, name, password, k.fingerprint)
    if not n:  # pragma: no cover - listed as trusted a moment ago
        raise NotFound("no trusted key has that fingerprint (see `trialvault la trusted`)")
    console.print(f"[green]retired[/] {n} key(s)")


def register(app: typer.Typer) -> None:
    """Add the `la` group."""
    app.add_typer(la_app, name="la")
