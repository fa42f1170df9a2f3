"""Across releases: a new release is protected jointly with every earlier one of the study.

Two releases of one study count mostly the same children. An intruder who holds both can
difference them (before and after an erasure, say): a cell suppressed in one may be published
in the other, and two rounded views of one margin narrow it. So each earlier release's count
structure is kept in the vault (its atoms with their true values, and every cell: its atoms and
the interval it showed, or that it was suppressed), and a new release is checked in a *joint*
group:

- atoms of the later data `y`, plus per atom what only the earlier release counted `r` (children
  erased, restricted or re-coded since) and what only the later counts `a` (new data). The
  intruder's model is the narrowest one the truth fits: removals only (r >= 0, no a) when no
  count grew, additions only when none shrank, else both;
- the new release's cells (suppressible) and the earlier release's published cells (fixed, with
  the intervals it showed);
- what must stay protected: every unsafe quantity and suppressed cell of *both* releases.

Secondary suppression (`protect.protect_group`) then suppresses more cells of the new release
until the joint audit proves every target's range. Means of count outcomes are compared in
closed form (`mean_revealed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from trialvault.disclose.protect import (
    CellId,
    LinkedGroup,
    Protection,
    Target,
    Unsafe,
    audit_group,
    protect_group,
    secure_exactly,
    shown_value,
    unsafe_quantities,
)
from trialvault.disclose.rules import (
    ACROSS,
    SECONDARY,
    THRESHOLD,
    ZERO,
    frequency_unsafe,
    rounding_interval,
)
from trialvault.study.model import Disclosure

if TYPE_CHECKING:
    from trialvault.disclose.frequency import CountTables

STRUCTURE_FORMAT = "trialvault-release-structure/1"


def group_to_json(tables: CountTables, rules: Disclosure) -> dict[str, Any]:
    """The count group as released: atoms (true values: vault only), cells and identities."""
    g = tables.group
    labels = g.atom_labels
    cells = []
    for c in g.cells:
        rule = tables.protection.suppressed.get(c.id)
        interval = None
        if rule is None:
            shown = shown_value(c.value, rules, tables.rounding)
            interval = list(rounding_interval(shown, rules.rounding_base) if tables.rounding
                            else (shown, shown))
        cells.append({"id": list(c.id), "atoms": [labels[a] for a in c.atoms],
                      "interval": interval, "rule": rule})
    return {"format": STRUCTURE_FORMAT,
            "atoms": [[lb, v, s] for lb, v, s in zip(labels, g.atom_values,
                                                      g.atom_sensitivity, strict=True)],
            "cells": cells,
            "identities": [[[labels[a] for a in left], [labels[a] for a in right]]
                           for left, right in g.identities]}


@dataclass
class Earlier:
    """An earlier release of the study, as its stored structure describes it."""

    release_id: str
    structure: dict[str, Any]
    magnitude: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_internal(cls, release_id: str, internal: dict[str, Any]) -> Earlier | None:
        structure = internal.get("structure") or {}
        if structure.get("format") != STRUCTURE_FORMAT:
            return None
        return cls(release_id, structure, list(structure.get("magnitude", [])))

    def same_data(self, tables: CountTables) -> bool:
        """The same counts as the new release (e.g. an earlier request of the same run).

        With its suppressions kept (they are, before anything else), the new release then
        publishes a subset of what this one did about the very same counts, so the joint
        intruder learns nothing this release's own audit did not already rule out."""
        mine = dict(zip(tables.group.atom_labels, tables.group.atom_values, strict=True))
        theirs = {str(lb): int(v) for lb, v, _ in self.structure["atoms"]}
        return mine == theirs

    def data_key(self) -> str:
        """Identifies the counts this release was built from."""
        from trialvault.trust import digest

        return digest(sorted((str(lb), int(v)) for lb, v, _ in self.structure["atoms"]))

    def suppressed_ids(self) -> list[CellId]:
        return [(str(c["id"][0]), str(c["id"][1]), str(c["id"][2]))
                for c in self.structure["cells"] if c["interval"] is None]


@dataclass
class _Joint:
    group: LinkedGroup
    targets: list[Target]
    model: str


def _joint(tables: CountTables, earlier: Earlier, rules: Disclosure) -> _Joint:
    g = tables.group
    n_val = dict(zip(g.atom_labels, g.atom_values, strict=True))
    e_atoms = {str(lb): (int(v), str(s)) for lb, v, s in earlier.structure["atoms"]}
    shared = [lb for lb in g.atom_labels if lb in e_atoms]
    diff = np.array([e_atoms[lb][0] - n_val[lb] for lb in shared], dtype=np.int64)
    model = ("removals only" if (diff >= 0).all() else
             "additions only" if (diff <= 0).all() else "removals and additions")
    j = LinkedGroup(f"joint:{earlier.release_id}")
    n_map: dict[str, list[int]] = {}
    e_map: dict[str, list[int]] = {}
    for lb in g.atom_labels:
        xn = n_val[lb]
        if lb not in e_atoms:
            n_map[lb] = [j.add_atom(xn, f"later|{lb}", "none")]
            continue
        xe = e_atoms[lb][0]
        if model == "removals only":
            y = j.add_atom(xn, f"y|{lb}", "none")
            n_map[lb], e_map[lb] = [y], [y, j.add_atom(xe - xn, f"r|{lb}", "none")]
        elif model == "additions only":
            y = j.add_atom(xe, f"y|{lb}", "none")
            e_map[lb], n_map[lb] = [y], [y, j.add_atom(xn - xe, f"a|{lb}", "none")]
        else:
            y = j.add_atom(min(xe, xn), f"y|{lb}", "none")
            n_map[lb] = [y, j.add_atom(xn - min(xe, xn), f"a|{lb}", "none")]
            e_map[lb] = [y, j.add_atom(xe - min(xe, xn), f"r|{lb}", "none")]
    for lb, (xe, _) in e_atoms.items():
        if lb not in e_map:
            e_map[lb] = [j.add_atom(xe, f"earlier|{lb}", "none")]

    def expand(mapping: dict[str, list[int]], labels: Sequence[str]) -> list[int]:
        return [a for lb in labels for a in mapping[lb]]

    for c in g.cells:
        j.add_cell(c.id, expand(n_map, [g.atom_labels[a] for a in c.atoms]), margin=c.margin)
    for left, right in g.identities:
        j.add_identity(expand(n_map, [g.atom_labels[a] for a in left]),
                       expand(n_map, [g.atom_labels[a] for a in right]))
    for left_l, right_l in earlier.structure["identities"]:
        j.add_identity(expand(e_map, left_l), expand(e_map, right_l))
    targets: list[Target] = []
    for u in unsafe_quantities(g, rules, rounding=tables.rounding):
        atoms = frozenset(expand(n_map, [g.atom_labels[a] for a in u.atoms]))
        targets.append((Unsafe(atoms, u.rule, u.label, u.value, u.table), rules.threshold))
    for c in g.cells:
        if c.id in tables.protection.suppressed:
            atoms = frozenset(expand(n_map, [g.atom_labels[a] for a in c.atoms]))
            targets.append((Unsafe(atoms, tables.protection.suppressed[c.id], " / ".join(c.id),
                                   c.value, c.id[0]), 1))
    values = np.array([v for v, _ in e_atoms.values()], dtype=np.int64)
    small, zero = frequency_unsafe(values, rules, rounding=False)
    for k, (lb, (xe, sens)) in enumerate(e_atoms.items()):
        if sens != "none" and (small[k] or (zero[k] and sens == "full")):
            targets.append((Unsafe(frozenset(e_map[lb]), THRESHOLD if small[k] else ZERO,
                                   f"release {earlier.release_id}: {lb}", xe, "earlier"),
                            rules.threshold))
    for cell in earlier.structure["cells"]:
        atoms = frozenset(expand(e_map, cell["atoms"]))
        table, row, col = (str(x) for x in cell["id"])
        if cell["interval"] is None:
            need = rules.threshold if cell["rule"] in (THRESHOLD, ZERO) else 1
            value = int(sum(e_atoms[lb][0] for lb in cell["atoms"]))
            targets.append((Unsafe(atoms, str(cell["rule"]), f"release {earlier.release_id}: "
                                   f"{table} / {row} / {col}", value, table), need))
        else:
            lo, hi = (int(x) for x in cell["interval"])
            j.add_cell((f"{earlier.release_id}:{table}", row, col), sorted(atoms), margin=False,
                       fixed=True, interval=(lo, hi))
    return _Joint(j, targets, model)


def representatives(earlier: Sequence[Earlier]) -> list[Earlier]:
    """The first release of each distinct set of counts. A later release of the same counts
    kept every suppression of the first (it was checked against it), so it publishes a subset
    of what the first did: the first one's joint check covers it."""
    seen: set[str] = set()
    out = []
    for e in earlier:
        key = e.data_key()
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def protect_jointly(tables: CountTables, earlier: Earlier, rules: Disclosure,
                    protection: Protection, *, rounding: bool) -> None:
    """Suppress more cells of the new release until, together with `earlier`, every target
    of both keeps its range (adds to the shared `protection`)."""
    joint = _joint(tables, earlier, rules)
    local = Protection(suppressed=dict(protection.suppressed),
                       points=protection.points)
    protect_group(joint.group, rules, local, rounding=rounding, extra=joint.targets)
    _merge(protection, local, earlier)


def audit_jointly(tables: CountTables, earlier: Earlier, rules: Disclosure, *,
                  rounding: bool, repair: bool = False) -> dict[str, Any]:
    """The joint integer audit: each target's range with both releases in hand. With
    `repair`, unprotected targets are first secured exactly (more suppression)."""
    joint = _joint(tables, earlier, rules)
    found = audit_group(joint.group, tables.protection.suppressed, rules, rounding=rounding,
                        points=tables.protection.points.get(joint.group.name),
                        extra=joint.targets)
    if repair and not all(f.protected for f in found):
        local = Protection(suppressed=dict(tables.protection.suppressed),
                           points=tables.protection.points)
        secure_exactly(joint.group, found, rules, local, rounding=rounding,
                       extra=joint.targets)
        _merge(tables.protection, local, earlier)
    widths = [f.high - f.low for f in found]
    return {"release_id": earlier.release_id, "intruder_model": joint.model,
            "quantities": len(found), "all_protected": all(f.protected for f in found),
            "narrowest_range": min(widths) if widths else None,
            "unprotected": [f.to_json() for f in found if not f.protected]}


def _merge(protection: Protection, local: Protection, earlier: Earlier) -> None:
    for cid, rule in local.suppressed.items():
        if cid not in protection.suppressed:
            protection.suppressed[cid] = SECONDARY if rule not in (THRESHOLD, ZERO) else rule
            protection.secondary_for[cid] = (f"with release {earlier.release_id}: "
                                             f"{local.secondary_for.get(cid, '')}")
    protection.lp_solves += local.lp_solves


def mean_revealed(earlier: Sequence[Earlier], outcome: str, exposed: int, n: int, shown: str,
                  kind: str) -> str | None:
    """ACROSS when publishing this mean, beside an earlier release's mean of the same cell,
    would prove that the children who left (or joined) between them had a non-zero total."""
    if not shown:
        return None
    scale = 100.0 if kind == "rate" else 1.0
    half = (0.05 if kind == "rate" else 0.005) / scale
    mean = float(shown) / scale
    for e in earlier:
        for m in e.magnitude:
            if m["outcome"] != outcome or int(m["exposed"]) != exposed:
                continue
            try:
                other = float(str(m["shown"])) / scale
            except ValueError:
                continue  # suppressed there
            n_e = int(m["n"])
            lo_n, hi_n = (mean - half) * n, (mean + half) * n
            lo_e, hi_e = (other - half) * n_e, (other + half) * n_e
            # Whichever release has more children counts the others plus some: their total
            # is proven non-zero when the intervals cannot meet.
            if (n_e > n and lo_e > hi_n) or (n > n_e and lo_n > hi_e):
                return ACROSS
    return None
