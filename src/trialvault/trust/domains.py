"""Trust domains: what the vault holds, split by who may decrypt it (the role × domain matrix).

Each domain is encrypted under its own random 256-bit key; a key slot carries only the keys of
the domains its role is granted. A domain is one or more DuckDB files, each attached in a
session under a fixed catalog name (so SQL reads `rights.requests`, `results.runs`, ...). A role
that is not granted a domain cannot attach its files: the key is not in its slot.

This table is the single source of the matrix: `docs/security.md` states it and a test checks
that the document and this module agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["data-manager", "analyst", "output-checker", "dpo"]
ROLES: tuple[Role, ...] = ("data-manager", "analyst", "output-checker", "dpo")
DomainName = Literal["child", "register", "secrets", "outputs", "audit"]


@dataclass(frozen=True)
class Domain:
    name: DomainName
    catalogs: tuple[str, ...]
    """DuckDB catalog names (see `catalog_file`); the child domain's catalog is `vault`, the
    default catalog, so `raw.x`, `harmonised.x` and `meta.x` resolve there."""
    holds: str


DOMAINS: dict[str, Domain] = {d.name: d for d in (
    Domain("child", ("vault",),
           "child-level rows: raw and harmonised tables, packages with their validation lines, "
           "rights flags (restricted/objecting children), which children each release counted"),
    Domain("register", ("rights",),
           "the rights register (requests naming children, letters' free text), tombstones and "
           "the tombstone key, rectifications, the registry of key-slot certificates"),
    Domain("secrets", ("secrets",),
           "the evaluator's age identity (it decrypts every package an LA sends) and the "
           "trusted LA signing keys"),
    Domain("outputs", ("results", "releases"),
           "aggregates only: evaluation results, release requests, reviews and approvals"),
    Domain("audit", ("audit",),
           "the signed audit log and the vault's facts (id, study, format version)"),
)}
DOMAIN_ORDER: tuple[str, ...] = tuple(DOMAINS)

ROLE_DOMAINS: dict[str, frozenset[str]] = {
    "data-manager": frozenset({"child", "register", "secrets", "outputs", "audit"}),
    "analyst": frozenset({"child", "outputs", "audit"}),
    "output-checker": frozenset({"outputs", "audit"}),
    "dpo": frozenset({"child", "register", "outputs", "audit"}),
}
# Managing key slots means signing certificates; only these roles' certificates may issue them.
SLOT_ISSUER_ROLES: frozenset[str] = frozenset({"data-manager"})
# Re-keying re-wraps keys for everyone; it needs the slot registry (register domain) to check
# every slot first, so only roles holding it may.
REKEY_ROLES: tuple[str, ...] = ("data-manager", "dpo")


def catalog_file(catalog: str) -> str:
    """The file of a catalog inside the vault folder (`vault` → `child.duckdb`: the name says
    what it holds; 0.1.0's single database was `vault.duckdb`)."""
    return "child.duckdb" if catalog == "vault" else f"{catalog}.duckdb"


def catalogs_for(domains: frozenset[str] | set[str]) -> list[tuple[str, str]]:
    """(catalog, domain) pairs for the held domains, in a fixed order."""
    return [(c, d) for d in DOMAIN_ORDER if d in domains for c in DOMAINS[d].catalogs]


def domain_of_catalog(catalog: str) -> str:
    for domain in DOMAINS.values():
        if catalog in domain.catalogs:
            return domain.name
    raise KeyError(catalog)


def domains_for(role: str) -> frozenset[str]:
    try:
        return ROLE_DOMAINS[role]
    except KeyError:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}") from None
