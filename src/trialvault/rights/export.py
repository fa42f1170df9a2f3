"""Letters and the sealed access response.

The access response (workbook + covering letter) is built in memory and written only as an age
ciphertext to the recipient key given on the command line: no plaintext copy touches the disk.
Outcome letters carry no child code and no data value (only the request reference, dates, the
decision and its reasons), so they may be printed or written in the clear.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from importlib import resources
from pathlib import Path

import jinja2
import pyrage
from pyrage import x25519

from trialvault import files
from trialvault.errors import InputFileError
from trialvault.rights.actions import AccessBundle
from trialvault.rights.register import RightsRequest
from trialvault.spreadsheets import add_sheet, new_workbook
from trialvault.study.model import StudyFile

SEALED_SUFFIX = ".zip.age"


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.rights").joinpath("templates", name).read_text(
            encoding="utf-8"))
    env = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["lower_first"] = lambda text: text[:1].lower() + text[1:]
    return env


def _la_name(study: StudyFile, la_code: int) -> str:
    try:
        return study.la(la_code).name
    except KeyError:
        return f"local authority {la_code}"


def right_title(study: StudyFile, right: str) -> str:
    for r in study.rights.rights:
        if r.id == right:
            return r.title.removeprefix("Your ").removeprefix("right ").strip()
    return right


def access_letter(study: StudyFile, req: RightsRequest, bundle: AccessBundle, *,
                  workbook_name: str, today: dt.date) -> str:
    return _environment().get_template("access_letter.md.j2").render(
        study=study, req=req, counts=bundle.row_counts, outputs=bundle.outputs,
        workbook_name=workbook_name, la_name=_la_name(study, req.la_code), today=today)


def outcome_letter(study: StudyFile, req: RightsRequest, *, today: dt.date,
                   outcome_text: str | None = None) -> str:
    """The letter telling the person what was decided (no child code, no data values)."""
    return _environment().get_template("outcome_letter.md.j2").render(
        study=study, req=req, today=today, right_title=right_title(study, req.type),
        outcome_text=outcome_text or req.outcome or "")


def access_workbook(bundle: AccessBundle) -> bytes:
    """One sheet per table (rows as stored, lineage included), plus packages and outputs.

    Built in memory (`spreadsheets.new_workbook`): no plaintext copy of the child's rows on
    disk. Every string is stored as text, never as a formula or link: a child code such as
    `=HYPERLINK(...)` from an LA's file stays inert in the workbook the person opens.
    """
    buffer = io.BytesIO()
    wb = new_workbook(buffer, default_date_format="yyyy-mm-dd", remove_timezone=True)
    header = wb.add_format({"bold": True})
    for name, (cols, rows) in bundle.tables.items():
        add_sheet(wb, name, cols, rows, header_format=header)
    pkg_cols = ["package_id", "la_code", "extract_date", "file_name", "ingested_at"]
    add_sheet(wb, "packages", pkg_cols, [[p.get(c) for c in pkg_cols] for p in bundle.packages],
              header_format=header)
    out_cols = ["output", "kind", "id", "basis"]
    add_sheet(wb, "outputs", out_cols, [[o.get(c) for c in out_cols] for o in bundle.outputs],
              header_format=header)
    wb.close()
    return buffer.getvalue()


def seal_access_response(req: RightsRequest, recipient: str, *, workbook: bytes,
                         letter: str) -> tuple[str, bytes]:
    """(file name, age ciphertext) of the workbook and letter zipped in memory."""
    parsed = x25519.Recipient.from_str(check_recipient(recipient))
    stem = f"access-request-{req.request_id}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{stem}.xlsx", workbook)
        zf.writestr(f"{stem}-covering-letter.md", letter)
    return f"{stem}{SEALED_SUFFIX}", pyrage.encrypt(buffer.getvalue(), [parsed])


def write_atomic(out_dir: Path, name: str, data: bytes) -> Path:
    """Write `data` to out_dir/name via a temporary file and a rename (all or nothing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return files.write_atomic(out_dir / name, data)


def check_recipient(recipient: str) -> str:
    """The recipient if it is an age X25519 public key (age1…); else a clear error."""
    try:
        x25519.Recipient.from_str(recipient.strip())
    except Exception:  # pyrage raises its own error types for a malformed key
        raise InputFileError("the recipient is not an age public key (age1…)",
                             rule="recipient") from None
    return recipient.strip()


def new_access_key(path: Path, *, now: dt.datetime | None = None) -> str:
    """Make an age X25519 key pair for a data subject's access response (what `age-keygen`
    writes: two comment lines, then the secret key) in a new file only its owner can read;
    return the public key. The file is never overwritten: an existing key may be the only
    way to open a response already sent."""
    import os

    identity = x25519.Identity.generate()
    public = str(identity.to_public())
    made = (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# created: {made}\n# public key: {public}\n{identity}\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputFileError("a key file already exists there: it is never overwritten "
                             "(choose another --out)", file=str(path)) from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    return public


def read_identity(path: Path) -> str:
    """The secret key line of an age identity file (refusing anything else)."""
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read the key file ({type(exc).__name__})",
                             file=str(path)) from None
    keys = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if len(keys) != 1:
        raise InputFileError("not an age key file (one AGE-SECRET-KEY- line expected)",
                             file=str(path))
    return keys[0]


def open_access_response(path: Path, identity: str) -> dict[str, bytes]:
    """Decrypt a sealed access response in memory: {member name: bytes} (for the recipient)."""
    try:
        plain = pyrage.decrypt(path.read_bytes(), [x25519.Identity.from_str(identity.strip())])
    except OSError as exc:
        raise InputFileError(f"cannot read it ({type(exc).__name__})", file=str(path)) from None
    except Exception:  # pyrage: not age, or sealed to another key
        raise InputFileError("this key does not open it (not an age file, or sealed to "
                             "another key)", file=str(path)) from None
    with zipfile.ZipFile(io.BytesIO(plain)) as zf:
        names = zf.namelist()
        if any(Path(n).name != n or n.startswith(".") for n in names):
            raise InputFileError("unexpected member names (not a trialvault access response)",
                                 file=str(path))
        return {name: zf.read(name) for name in names}
