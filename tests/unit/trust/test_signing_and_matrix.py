"""Signatures over canonical JSON, and the role × domain matrix as documented."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from trialvault.trust import DOMAINS, ROLE_DOMAINS, ROLES, Signer, digest, verify

DOCS = Path(__file__).resolve().parents[3] / "docs" / "security.md"
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@given(json_values, json_values)
def test_signature_binds_purpose_and_body(body, other) -> None:  # type: ignore[no-untyped-def]
    signer = Signer.generate()
    sig = signer.sign("audit-entry", body)
    assert verify(signer.public, "audit-entry", body, sig)
    assert not verify(signer.public, "slot-certificate", body, sig)
    if digest(other) != digest(body):
        assert not verify(signer.public, "audit-entry", other, sig)
    assert not verify(Signer.generate().public, "audit-entry", body, sig)


def test_garbage_never_raises() -> None:
    assert not verify("not base64!", "x", {}, "also not")
    assert not verify("", "x", {}, "")


def test_matrix_rules() -> None:
    assert set(ROLE_DOMAINS) == set(ROLES)
    assert all("audit" in d for d in ROLE_DOMAINS.values())
    assert "child" not in ROLE_DOMAINS["output-checker"]
    assert "register" not in ROLE_DOMAINS["analyst"]
    assert "secrets" not in ROLE_DOMAINS["analyst"] | ROLE_DOMAINS["dpo"] \
        | ROLE_DOMAINS["output-checker"]


def test_security_doc_states_the_matrix() -> None:
    """docs/security.md has a table row per role with ✓ exactly where the code grants."""
    text = DOCS.read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| role |"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    assert cols == list(DOMAINS)
    for role in ROLES:
        row = next(line for line in text.splitlines() if re.match(rf"\|\s*{role}\s*\|", line))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        granted = {d for d, c in zip(cols, cells, strict=True) if c.startswith("✓")}
        assert granted == set(ROLE_DOMAINS[role]), role
