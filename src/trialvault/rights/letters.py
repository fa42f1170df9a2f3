"""Letters to the person, written for a young reader, from what was actually done.

Every sentence that states a fact about the person's data is a `Claim` built from a recorded
action (an erasure's `rights.erasure_actions`, a correction's overlay row, a flag, the rows an
access response holds), so a letter cannot promise more than the vault did; a test renders every
letter type and checks each claim against the vault. Letters are plain English: records counted
once (as the local authority sent them, not again for the research copy), no table names, no
package, run or release ids, codes given with their meaning. The request number stays: it is the
reference the person quotes back. No child code ever appears.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from trialvault.rights.register import RightsRequest
from trialvault.study.model import StudyFile

if TYPE_CHECKING:
    from trialvault.rights.erasure import Action


@dataclass(frozen=True)
class Claim:
    """One statement of a letter and what it rests on (kind of action and the count)."""

    text: str
    kind: str
    count: int


@functools.cache
def plain_words() -> dict[str, Any]:
    text = resources.files("trialvault.rights").joinpath("templates", "plain_words.yaml"
                                                          ).read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def long_date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def table_words(table: str, count: int) -> str:
    words = plain_words()["tables"].get(table, {"one": "record", "many": "records"})
    return _n(count, words["one"], words["many"])


def field_words(column: str) -> str:
    return str(plain_words()["fields"].get(column, column.replace("_", " ")))


# --- erasure --------------------------------------------------------------------------------

def erasure_claims(actions: Iterable[Action]) -> list[Claim]:
    """The claims of an erasure letter, in order, from the recorded actions."""
    acts = list(actions)

    def total(kind: str, *, prefix: str | None = None, verbs: tuple[str, ...] = ()) -> int:
        return sum(a.count for a in acts if a.kind == kind
                   and (prefix is None or a.place.startswith(prefix))
                   and (not verbs or a.action in verbs))

    claims: list[Claim] = []
    records = total("table", prefix="raw.")
    copies = total("table", prefix="harmonised.")
    if records:
        claims.append(Claim(
            f"We deleted all {_n(records, 'record', 'records')} about you that your local "
            "authority had sent us" + (", and every copy of them we had made for the research."
                                       if copies else "."), "table", records))
    elif copies:
        claims.append(Claim(f"We deleted {_n(copies, 'record', 'records')} about you that we "
                            "had made for the research.", "table", copies))
    notes = total("validation")
    if notes:
        claims.append(Claim(
            f"We deleted {_n(notes, 'note', 'notes')} about you from the checks your local "
            "authority ran on its files before sending them.", "validation", notes))
    flags = total("table", prefix="meta.rights_flags")
    if flags:
        claims.append(Claim("We deleted our note that your information must not be used: it "
                            "is not needed any more, because the information itself is gone.",
                            "table", flags))
    files = total("package", verbs=("destroyed", "already gone"))
    if files:
        claims.append(Claim(
            f"We deleted {_n(files, 'file', 'files')} your local authority had sent us that "
            "included you.", "package", files))
    sent = total("access_response", verbs=("destroyed", "already gone"))
    if sent:
        claims.append(Claim(f"We deleted our copy of the {_n(sent, 'file', 'files')} we made "
                            "when you asked for a copy of your information.",
                            "access_response", sent))
    copies_out = total("export") + total("backup") + sum(
        a.count for a in acts if a.kind in ("package", "access_response")
        and a.action.startswith("marked to destroy"))
    if copies_out:
        claims.append(Claim(
            f"{_n(copies_out, 'copy', 'copies')} of the research data (such as a back-up) "
            f"{'was' if copies_out == 1 else 'were'} made before you asked, and we cannot take "
            "your information out of a copy, so we will destroy "
            f"{'it' if copies_out == 1 else 'them'}. Until then "
            f"{'it is' if copies_out == 1 else 'they are'} locked away and not used: the only "
            "way to open one is to put it back into the research database, and doing that "
            "deletes your information again before anyone can use it.", "copies", copies_out))
    if total("tombstone"):
        claims.append(Claim(
            "We kept a one-way code made from the number your local authority uses for you. "
            "It cannot be turned back into that number, but if the local authority sends us "
            "your information again by mistake, the code lets us spot it and leave it out.",
            "tombstone", 1))
    if total("rekey"):
        claims.append(Claim(
            "Then we locked the research database again with new keys, so the deleted records "
            "cannot be got back from the database we use.",
            "rekey", 1))
    outputs = total("output")
    if outputs:
        claims.append(Claim(
            f"Before you asked, your information had been used, together with many other "
            f"children's, in {_n(outputs, 'piece of work', 'pieces of work')} that "
            "produced results about groups of children. Those results do not say anything "
            "about you on your own, so we cannot take your part out of them.", "output",
            outputs))
    closed = sum(1 for a in acts if a.kind == "close")
    if closed:
        claims.append(Claim(
            f"You had {_n(closed, 'other request', 'other requests')} open with us. We have "
            f"closed {'it' if closed == 1 else 'them'}, because there is nothing left to act "
            "on, and we will write to you about "
            f"{'it' if closed == 1 else 'each one'}.", "close", closed))
    return claims


def erasure_outcome(actions: Iterable[Action]) -> str:
    return "\n\n".join(c.text for c in erasure_claims(actions))


# --- the other outcomes ---------------------------------------------------------------------

def rectification_claims(table: str, column: str, old: str | None, new: str,
                         records: int) -> list[Claim]:
    from trialvault.vault.overlay import code_meaning

    def shown(value: str | None) -> str:
        if value is None:
            return "nothing"
        meaning = code_meaning(table, column, value)
        return f"\"{meaning}\"" if meaning else f"\"{value}\""

    return [
        Claim(f"We corrected {field_words(column)} in "
              + (f"the {plain_words()['tables'][table]['one']}" if records == 1 else
                 f"all {table_words(table, records)}")
              + f": it now says {shown(new)} instead of {shown(old)}.", "correction", records),
        Claim("We will keep this correction. If your local authority sends us the old "
              "information again, we will correct it again; if they send something different, "
              "a person here will check it with them.", "overlay", 1),
        Claim("We keep the old information only in our record of corrections, so that we can "
              "show what was changed and why.", "history", 1),
    ]


def flag_claims(kind: str, since: dt.date, *, analysis_copies: int = 0) -> list[Claim]:
    if kind == "restriction":
        claims = [Claim(f"From {long_date(since)} we do not use your information in any part "
                        "of the research. We still keep it safely, and we will tell you before "
                        "we ever start using it again.", "flag", 1)]
    else:
        claims = [Claim(f"From {long_date(since)} we no longer use your information in the "
                        "research. We would only use it again if we had very strong reasons "
                        "that outweigh yours; we would write those reasons down and tell you "
                        "first.", "flag", 1)]
    if analysis_copies:
        claims.append(Claim(
            f"{_n(analysis_copies, 'copy', 'copies')} of the research data made for analysis "
            "before you asked included your information. We will destroy "
            f"{'it' if analysis_copies == 1 else 'them'}; any new copy leaves you out.",
            "copies", analysis_copies))
    return claims


def access_claims(counts: dict[str, int]) -> list[Claim]:
    raw = {t.split(".", 1)[1]: n for t, n in counts.items() if t.startswith("raw.") and n}
    if not raw:
        return [Claim("We looked in every part of the research database and we do not hold "
                      "any records about you.", "access", 0)]
    total = sum(raw.values())
    lines = "\n".join(f"- {table_words(t, n)}" for t, n in raw.items())
    return [Claim(f"We hold {_n(total, 'record', 'records')} about you:\n\n{lines}", "access",
                  total)]


def sealed_claim(file_name: str, recipient: str) -> str:
    """How an access response is locked and how to open it (the outcome letter, sent apart
    from the locked file): the file, the tool, the public key it is locked to."""
    return (f"We sent it to you as one locked file, `{file_name}`, with a covering letter "
            "inside. It is locked (encrypted with age, https://age-encryption.org, X25519) "
            "so that only the key made for you with your local authority can open it. That "
            f"key's public part is `{recipient}`. To open the file, whoever keeps your key "
            f"file runs `age --decrypt -i KEY-FILE {file_name} > "
            f"{file_name.removesuffix('.age')}` (or `trialvault rights open-response "
            f"{file_name} --key KEY-FILE --out FOLDER`) and then opens the zip. If the key "
            "file is lost, ask us and we will send a new copy locked to a new key.")


# --- rendering ------------------------------------------------------------------------------

TITLES = {
    ("erasure", "completed"): "We have deleted your information",
    ("rectification", "completed"): "We have corrected your information",
    ("restriction", "completed"): "We have stopped using your information",
    ("objection", "completed"): "We have stopped using your information",
    ("access", "completed"): "We have sent you a copy of your information",
}
VERBS = {"access": "send you a copy of your information",
         "rectification": "correct your information",
         "erasure": "delete your information",
         "restriction": "stop using your information for a while",
         "objection": "stop using your information"}


def _environment() -> jinja2.Environment:
    loader = jinja2.FunctionLoader(
        lambda name: resources.files("trialvault.rights").joinpath("templates", name).read_text(
            encoding="utf-8"))
    env = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True)
    env.filters["long_date"] = long_date
    return env


def _la_name(study: StudyFile, la_code: int) -> str:
    try:
        return study.la(la_code).name
    except KeyError:
        return "your local authority"


def outcome_letter(study: StudyFile, req: RightsRequest, *, today: dt.date) -> str:
    """The letter telling the person what was decided (no child code, no internal id)."""
    if req.state == "completed":
        title = TITLES.get((req.type, req.state), "We have done what you asked")
        body = req.outcome or ""
    elif req.state == "closed":
        title = "About your other request"
        body = (f"You asked us to {VERBS[req.type]}. Before we could do that, we deleted all "
                "your information, as you asked us to in another request. So there is nothing "
                f"left for us to {VERBS[req.type].split(' your')[0]}. Our letter about deleting "
                "your information explains what we did.")
    elif req.exemption is not None:
        title = "We could not do what you asked"
        body = (f"You asked us to {VERBS[req.type]}. We thought carefully about your request "
                "on its own, and decided we cannot do it, because doing it would stop the "
                "research from working or badly harm it. The law allows this for research "
                "that protects people's information carefully "
                f"({req.exemption.basis}).\n\nOur reason: {req.exemption.reason}\n\n"
                f"This was decided by {req.exemption.decided_by} on "
                f"{long_date(req.exemption.decided_on)}. The research keeps the safeguards UK "
                "GDPR Article 89(1) asks for: your information is only used for this research, "
                "with names and addresses removed, and the results we publish are about groups "
                "of children and never about one person.")
    elif req.state == "refused":
        title = "We could not do what you asked"
        body = f"You asked us to {VERBS[req.type]}. We could not do it. Our reason: {req.outcome}"
    else:
        title = "We are still working on your request"
        body = "We have not finished yet. We will write to you again when we have."
    return _environment().get_template("outcome_letter.md.j2").render(
        study=study, req=req, today=today, title=title, body=body,
        la_name=_la_name(study, req.la_code))


def access_letter(study: StudyFile, req: RightsRequest, counts: dict[str, int],
                  corrections: list[dict[str, Any]], *, workbook_name: str,
                  outputs: int, today: dt.date) -> str:
    held = access_claims(counts)
    fixed = [rectification_claims(c["table"], c["column"], c["old"], c["new"], 1)[0].text
             for c in corrections]
    return _environment().get_template("access_letter.md.j2").render(
        study=study, req=req, today=today, held=held[0].text, has_records=bool(held[0].count),
        corrections=fixed, outputs=outputs, workbook_name=workbook_name,
        la_name=_la_name(study, req.la_code))
