"""The data subject's side of an access response, at the LA: `trialvault keygen` makes the
age key pair the response is sealed to, `trialvault rights open-response` opens it. Neither
needs a vault or a password: the key file is the secret (0600, never overwritten).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trialvault.cli_common import console, guarded, note
from trialvault.errors import PolicyRefusal


@guarded
def open_response(
    sealed: Annotated[Path, typer.Argument(help="The sealed access response "
                                           "(access-request-N.zip.age).")],
    key: Annotated[Path, typer.Option("--key", help="The key file made by `trialvault "
                                      "keygen` for this person.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the workbook and "
                                      "letter.")],
) -> None:
    """Open a sealed access response with the person's key (at the LA, with the person; no
    vault). Writes the workbook and the covering letter into a new folder.

    Example: trialvault rights open-response access-request-3.zip.age --key access-key.txt
    --out my-information
    """
    from trialvault.files import write_atomic
    from trialvault.rights.export import open_access_response, read_identity

    members = open_access_response(sealed, read_identity(key))
    if out.exists() and any(out.iterdir()):
        raise PolicyRefusal(f"{out} exists and is not empty: choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(members.items()):
        write_atomic(out / name, data)
        console.print(f"{out / name}", highlight=False, soft_wrap=True)


@guarded
def keygen(out: Annotated[Path, typer.Option(
        "--out", help="Key file to create (never overwritten; readable by you only). Keep it "
        "safe: it is the only way to open the response.")]) -> None:
    """Make the age key pair a data subject's access response is sealed to.

    Run at the LA, for and with the person. Prints the public key (age1…): send it with the
    request, and the DPO seals the response to it (`rights execute ID --recipient age1…`).
    The secret key stays in the file (age-keygen's format, so `age --decrypt -i FILE` opens
    the response too, as does `trialvault rights open-response`).

    Example: trialvault keygen --out access-key.txt
    """
    from trialvault.rights.export import new_access_key

    public = new_access_key(out)
    typer.echo(public)
    note(f"secret key written to {out} (owner-only file); send the public key above to the "
         "evaluator's DPO with the request")
