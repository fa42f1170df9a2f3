"""Bound approvals: who asked for a release and who approved it, proven by signatures.

A request and every review are signed (Ed25519, the acting user's key from their key slot)
over a body that names the hash of exactly what was checked — the public outputs, the
reviewers' checking report and the study model whose rules were applied. `verify_release`
re-derives everything from the vault and refuses a release unless:

- the stored content still hashes to what the requester signed and the reviewers approved (an
  edit of the stored JSON, with or without its unkeyed hash rewritten, fails here);
- each signature verifies against the signer's certificate: a key slot introduced by the signed
  audit log (`init`, `migrate`, `users add`; removed users' certificates stay there), never a
  certificate the key ring alone presents;
- the request is anchored in the audit log (its `release request` entry names the content hash);
- the approving reviewers hold the reviewer role, are distinct registered people (the slots'
  person ids), none of them the requester's person, and each slot was introduced before the
  request's audit entry (a slot made after the request cannot review it);
- at least `disclosure.reviewers_required` such approvals exist, and no valid rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

from trialvault.trust import digest, verify

REQUEST_PURPOSE = "release-request"
APPROVAL_PURPOSE = "release-approval"
REQUEST_FORMAT = "trialvault-release-request/1"
REVIEW_FORMAT = "trialvault-release-review/1"
# Audit commands whose entries introduce key-slot certificates (vault.audit.CERT_COMMANDS).
_ROOT_COMMANDS = ("init", "migrate")
_CERT_COMMANDS = ("init", "migrate", "users add", "users remove")


def content_hash(public: dict[str, Any], internal: dict[str, Any], study_json: str) -> str:
    """SHA-256 of exactly what reviewers check: outputs, checking report, study model."""
    return digest({"public": public, "internal": internal, "study": study_json})


@dataclass(frozen=True)
class Certificate:
    slot_id: str
    user: str
    person: str
    role: str
    sign_pub: str
    created_at: str
    introduced_seq: int  # audit entry that introduced it


def audited_certificates(con: duckdb.DuckDBPyConnection) -> dict[str, Certificate]:
    """Certificates of every key slot the signed audit log introduced (slot id → first
    introduction), read the way `audit verify` learns its signers: a root entry's own
    certificates, then only those a data manager's successful entry carries."""
    rows = con.execute(
        "SELECT seq, phase, slot_id, command, args, detail, result FROM audit.entries "
        "WHERE command IN (?, ?, ?, ?) ORDER BY seq", list(_CERT_COMMANDS)).fetchall()
    import json

    known: dict[str, Certificate] = {}
    for seq, phase, slot_id, command, args, detail, result in rows:
        certs = (json.loads(args).get("certs") if phase == "begin" else
                 json.loads(detail).get("certs") if result == "ok" else None)
        if not certs:
            continue
        signer = known.get(str(slot_id))
        if command not in _ROOT_COMMANDS and (signer is None or signer.role != "data-manager"):
            continue
        for c in certs:
            if not isinstance(c, dict) or str(c.get("slot_id")) in known:
                continue
            known[str(c["slot_id"])] = Certificate(
                str(c["slot_id"]), str(c.get("user")), str(c.get("person")),
                str(c.get("role")), str(c.get("sign_pub")), str(c.get("created_at")),
                int(seq))
    return known


def request_body(*, vault_id: str, release_id: str, run_id: str, study_id: str,
                 study_sha256: str, content_sha256: str, user: str, slot_id: str, person: str,
                 requested_at: str, audit_begin_seq: int, data_origin: str) -> dict[str, Any]:
    return {"format": REQUEST_FORMAT, "vault_id": vault_id, "release_id": release_id,
            "run_id": run_id, "study_id": study_id, "study_sha256": study_sha256,
            "content_sha256": content_sha256, "requested_by": user, "slot_id": slot_id,
            "person": person, "requested_at": requested_at, "audit_begin_seq": audit_begin_seq,
            "data_origin": data_origin}


def review_body(*, request: dict[str, Any], decision: str, comment: str, user: str,
                slot_id: str, person: str, reviewed_at: str, audit_begin_seq: int
                ) -> dict[str, Any]:
    return {"format": REVIEW_FORMAT, "vault_id": request["vault_id"],
            "release_id": request["release_id"], "request_sha256": digest(request),
            "content_sha256": request["content_sha256"], "decision": decision,
            "comment": comment, "reviewer": user, "slot_id": slot_id, "person": person,
            "reviewed_at": reviewed_at, "audit_begin_seq": audit_begin_seq}


@dataclass
class Verification:
    """What `verify_release` found: valid approvals and every reason to refuse."""

    approvals: list[dict[str, Any]] = field(default_factory=list)
    rejected_by: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    required: int = 0
    release_id: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.rejected_by and \
            len(self.approvals) >= self.required

    def reasons(self) -> list[str]:
        out = list(self.problems)
        if self.rejected_by:
            out.append(f"rejected or returned by {', '.join(self.rejected_by)}")
        if len(self.approvals) < self.required:
            out.append(f"{len(self.approvals)} valid approval(s) of the {self.required} the "
                       "study requires")
        return out


def check_request(request: dict[str, Any], signature: str, *, certs: dict[str, Certificate],
                  content_sha256: str, anchors: dict[str, int], requester_roles: tuple[str, ...]
                  ) -> list[str]:
    """Problems with a stored request (empty when its signature and anchor hold)."""
    problems = []
    if request.get("format") != REQUEST_FORMAT:
        return ["the request is not signed (made before signed releases, or planted)"]
    if request.get("content_sha256") != content_sha256:
        problems.append("the stored outputs, checking report or study differ from what was "
                        "requested (edited after the request)")
    cert = certs.get(str(request.get("slot_id")))
    if cert is None:
        problems.append("the requester's key slot was never introduced by the audit log")
    else:
        if not verify(cert.sign_pub, REQUEST_PURPOSE, request, signature):
            problems.append("the request's signature does not verify against the requester's "
                            "certificate")
        if cert.user != request.get("requested_by") or cert.person != request.get("person"):
            problems.append("the request names another user or person than its certificate")
        if cert.role not in requester_roles:
            problems.append(f"the requester's slot is {cert.role}, not "
                            f"{' or '.join(requester_roles)}")
    if anchors.get(content_sha256) is None:
        problems.append("no `release request` entry of the audit log names this content")
    return problems


def check_reviews(request: dict[str, Any], reviews: list[dict[str, Any]], *,
                  certs: dict[str, Certificate], request_seq: int | None,
                  reviewer_roles: tuple[str, ...], required: int) -> Verification:
    """Valid approvals of a request: see the module doc for every condition."""
    out = Verification(required=required)
    requester = certs.get(str(request.get("slot_id")))
    persons: set[str] = set()
    for r in reviews:
        body, signature = r.get("body"), str(r.get("signature") or "")
        who = str(r.get("reviewer"))
        if not isinstance(body, dict) or body.get("format") != REVIEW_FORMAT:
            out.problems.append(f"review by {who}: not signed")
            continue
        cert = certs.get(str(body.get("slot_id")))
        if cert is None:
            out.problems.append(f"review by {who}: the key slot was never introduced by the "
                                "audit log")
            continue
        if not verify(cert.sign_pub, APPROVAL_PURPOSE, body, signature):
            out.problems.append(f"review by {who}: signature does not verify against "
                                f"{cert.user}'s certificate")
            continue
        if body.get("request_sha256") != digest(request) or \
                body.get("content_sha256") != request.get("content_sha256"):
            out.problems.append(f"review by {cert.user}: approved other content than is stored "
                                "now (changed after the review)")
            continue
        if body.get("decision") != "approve":
            out.rejected_by.append(cert.user)
            continue
        if cert.role not in reviewer_roles:
            out.problems.append(f"approval by {cert.user}: slot role {cert.role}, not "
                                f"{' or '.join(reviewer_roles)}")
            continue
        if requester is not None and cert.person == requester.person:
            out.problems.append(f"approval by {cert.user}: the same person as the requester")
            continue
        if cert.person in persons:
            out.problems.append(f"approval by {cert.user}: person {cert.person!r} has already "
                                "approved (one person, one approval)")
            continue
        if request_seq is None or cert.introduced_seq >= request_seq:
            out.problems.append(f"approval by {cert.user}: the key slot was made after the "
                                "request and may not review it")
            continue
        persons.add(cert.person)
        out.approvals.append({"reviewer": cert.user, "person": cert.person,
                              "slot_id": cert.slot_id, "reviewed_at": body.get("reviewed_at"),
                              "sign_pub": cert.sign_pub, "signature": signature,
                              "body_sha256": digest(body)})
    return out


def request_anchors(con: duckdb.DuckDBPyConnection, release_id: str) -> dict[str, int]:
    """content_sha256 → begin seq of each successful `release request` entry of a release."""
    import json

    rows = con.execute(
        "SELECT begin_seq, detail FROM audit.entries WHERE command = 'release request' AND "
        "phase = 'end' AND result = 'ok'").fetchall()
    out: dict[str, int] = {}
    for begin_seq, detail in rows:
        d = json.loads(detail)
        if d.get("release_id") == release_id and d.get("content_sha256"):
            out[str(d["content_sha256"])] = int(begin_seq)
    return out


def digest_of(obj: Any) -> str:
    """SHA-256 of a JSON value's canonical form."""
    return digest(obj)


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
