"""Count tables of a release: one linked group of hidden counts, protected together, published.

Atoms (hidden non-negative counts) of the main analysis population:
- per stratum (LA × table period × exposed): the children `C`; per binary outcome its events
  `E`, non-events `N`, missing `M` (expected but not measured) and undefined `U`, tied by the
  identity `C = E + N + M + U` every reader knows (M and U only where the design allows them);
- per condition (exposed or not): for count/rate outcomes the children measured `D`, missing
  and undefined (`sum of C over the condition = D + M + U`), and each baseline category
  (the categories of one characteristic add up to the condition's children);
- the children outside the main analysis, by flow step.

Published tables, each cell a sum of atoms: the CONSORT flow, children by LA × period and by
LA × condition, per binary outcome its events (and children measured) by LA × period,
outcomes by condition, missing outcomes by condition, baseline characteristics by condition.
One group, because an intruder combines every table at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trialvault.disclose.aggregate import can_be_undefined, has_expected
from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.outputs import CellReview, CheckedOutput, OutputReview, RuleResult
from trialvault.disclose.protect import (
    TOTAL,
    AuditFinding,
    Cell,
    CellId,
    LinkedGroup,
    Protection,
    Target,
    audit_group,
    protect_group,
    shown_value,
)
from trialvault.disclose.rules import (
    ACROSS,
    ROUNDING,
    SECONDARY,
    THRESHOLD,
    ZERO,
    Status,
    describe,
)
from trialvault.study.model import Disclosure, StudyFile

# How much of an atom is itself sensitive. Small counts always are; a zero only where it says
# something about every child in a class (every child had, or did not have, the outcome).
FULL, SMALL_ONLY, NONE = "full", "small", "none"

FLOW, COHORT, ALLOCATION = "flow", "cohort", "allocation"
BY_CONDITION, MISSING_DATA, BASELINE = "outcomes_by_condition", "missing_data", "baseline"
CONDITIONS = ("Unexposed", "Exposed")
COUNT_COLUMN = "Children"
NOT_APPLICABLE = "z"  # GSS symbol: a cell the design rules out


def events_table(outcome: str) -> str:
    return f"events_{outcome}"


def denominators_table(outcome: str) -> str:
    return f"denominators_{outcome}"


@dataclass
class Layout:
    """One published table: row labels (and the LA code of each LA row), columns, margins."""

    rows: list[str]
    cols: list[str]
    margins: bool
    row_keys: list[str] = field(default_factory=list)


@dataclass
class CountTables:
    """The protected count tables of one release, ready to publish."""

    group: LinkedGroup
    layout: dict[str, Layout]
    protection: Protection
    findings: dict[str, list[AuditFinding]]  # table → audit findings about its quantities
    rounding: bool

    @property
    def cells(self) -> dict[CellId, Cell]:
        return {c.id: c for c in self.group.cells}


def flow_labels(results: ResultsInput) -> tuple[str, str, str]:
    return ("Children with a social-care event in the data", "Cohort (eligible children)",
            "Main analysis")


def outcome_rows(study: StudyFile, results: ResultsInput) -> tuple[list[str], list[str]]:
    """Row labels of the outcomes-by-condition and missing-data tables."""
    present = set(results.outcomes["outcome"])
    by_cond: list[str] = []
    missing: list[str] = []
    for o in study.analysis.outcomes:
        if o.id not in present:
            continue
        by_cond.append(f"{o.title}: children measured")
        if o.kind == "binary":
            by_cond.append(f"{o.title}: children with the outcome")
        if has_expected(o.id):
            missing += [f"{o.title}: children expected to have it", f"{o.title}: missing"]
    return by_cond, missing


def build_group(results: ResultsInput, study: StudyFile, row_names: list[str]
                ) -> tuple[LinkedGroup, dict[str, Layout]]:
    """Every count table of the release as one linked group (see the module doc)."""
    las, periods = results.la_codes, results.period_labels
    g = LinkedGroup("release")
    codes = [str(c) for c in las]
    name_of = dict(zip(las, row_names, strict=True))
    strata = results.strata.set_index(["la_code", "period", "exposed"])["n"]
    c_atom: dict[tuple[int, str, int], int] = {}
    for (la, p, e), n in strata.items():
        if n < 0:
            raise ValueError("results input: a negative count")
        c_atom[(int(la), str(p), int(e))] = g.add_atom(
            int(n), f"C|{la}|{p}|{int(e)}", FULL, COHORT)

    def strata_of(la: int | None = None, p: str | None = None, e: int | None = None
                  ) -> list[tuple[int, str, int]]:
        return [k for k in c_atom if (la is None or k[0] == la) and (p is None or k[1] == p)
                and (e is None or k[2] == e)]

    layout: dict[str, Layout] = {}
    g.add_table(COHORT, row_names, periods,
                [[[c_atom[k] for k in strata_of(la, p)] for p in periods] for la in las],
                margins=True)
    layout[COHORT] = Layout(row_names, list(periods), True, [*codes, TOTAL])
    g.add_table(ALLOCATION, row_names, list(CONDITIONS),
                [[[c_atom[k] for k in strata_of(la, e=e)] for e in (0, 1)] for la in las],
                margins=True)
    layout[ALLOCATION] = Layout(row_names, list(CONDITIONS), True, [*codes, TOTAL])

    flow = results.flow.reset_index(drop=True)
    flow_atoms = [g.add_atom(int(n), f"F|{step}", SMALL_ONLY, FLOW)
                  for step, n in zip(flow["step"], flow["n"], strict=True)]
    start, cohort_label, main_label = flow_labels(results)
    all_c = list(c_atom.values())
    before = [a for a, s in zip(flow_atoms, flow["stage"], strict=True) if s == "before_cohort"]
    inside = [a for a, s in zip(flow_atoms, flow["stage"], strict=True) if s == "in_cohort"]
    flow_rows = [start]
    g.add_cell((FLOW, start, COUNT_COLUMN), [*all_c, *flow_atoms], margin=True)
    for label, atom in zip(flow["label"], flow_atoms, strict=True):
        if atom in inside:
            continue
        g.add_cell((FLOW, str(label), COUNT_COLUMN), [atom], margin=False)
        flow_rows.append(str(label))
    g.add_cell((FLOW, cohort_label, COUNT_COLUMN), [*all_c, *inside], margin=True)
    flow_rows.append(cohort_label)
    for label, atom in zip(flow["label"], flow_atoms, strict=True):
        if atom in inside:
            g.add_cell((FLOW, str(label), COUNT_COLUMN), [atom], margin=False)
            flow_rows.append(str(label))
    g.add_cell((FLOW, main_label, COUNT_COLUMN), all_c, margin=True)
    flow_rows.append(main_label)
    del before
    layout[FLOW] = Layout(flow_rows, [COUNT_COLUMN], False)

    by_cond_rows, missing_rows = outcome_rows(study, results)
    outcomes = {o.id: o for o in study.analysis.outcomes}
    frame = results.outcomes.set_index(["outcome", "la_code", "period", "exposed"])
    for oid in dict.fromkeys(results.outcomes["outcome"]):
        o = outcomes[str(oid)]
        rows = frame.loc[str(oid)]
        undefined_ok, missing_ok = can_be_undefined(study, o.id), has_expected(o.id)
        if (not undefined_ok and rows["undefined"].sum() > 0) or (
                not missing_ok and rows["missing"].sum() > 0):
            raise ValueError(f"results input: outcome '{o.id}' has children the design says "
                             "cannot lack it")
        if o.kind == "binary":
            _binary(g, o.id, o.title, rows, c_atom, las, periods, name_of, layout, codes,
                    undefined_ok, missing_ok)
        else:
            _by_condition_only(g, o.id, o.title, rows, c_atom, undefined_ok, missing_ok)
    _baseline(g, results, c_atom)
    layout[BY_CONDITION] = Layout(by_cond_rows, list(CONDITIONS), False)
    layout[MISSING_DATA] = Layout(missing_rows, list(CONDITIONS), False)
    base_rows = [f"{t}: {c}" for t, c in results.baseline[["title", "category"]]
                 .drop_duplicates().itertuples(index=False)]
    layout[BASELINE] = Layout(base_rows, list(CONDITIONS), False)
    return g, layout


def _binary(g: LinkedGroup, oid: str, title: str, rows: pd.DataFrame,
            c_atom: dict[tuple[int, str, int], int], las: Sequence[int], periods: Sequence[str],
            name_of: dict[int, str], layout: dict[str, Layout], codes: list[str],
            undefined_ok: bool, missing_ok: bool) -> None:
    ev_t, den_t = events_table(oid), denominators_table(oid)
    partial = undefined_ok or missing_ok
    cells_measured = None
    e_atom: dict[tuple[int, str, int], int] = {}
    n_atom: dict[tuple[int, str, int], int] = {}
    m_atom: dict[tuple[int, str, int], int] = {}
    for key, stratum in c_atom.items():
        r = rows.loc[key]
        measured, events = int(r["measured"]), int(r["events"])
        if events > measured:
            raise ValueError(f"results input: outcome '{oid}' has more events than children")
        la, p, e = key
        here = f"{oid}|{la}|{p}|{e}"
        e_atom[key] = g.add_atom(events, f"E|{here}", FULL, ev_t)
        n_atom[key] = g.add_atom(measured - events, f"N|{here}", FULL, ev_t)
        g.hints[n_atom[key]] = (ev_t, name_of[la], p)
        parts = [e_atom[key], n_atom[key]]
        if missing_ok:
            m_atom[key] = g.add_atom(int(r["missing"]), f"M|{here}", SMALL_ONLY, den_t)
            g.hints[m_atom[key]] = (den_t, name_of[la], p)
            parts.append(m_atom[key])
        if undefined_ok:
            u = g.add_atom(int(r["undefined"]), f"U|{here}", SMALL_ONLY, den_t)
            g.hints[u] = (den_t, name_of[la], p)
            parts.append(u)
        g.add_identity([stratum], parts)
    names = [name_of[la] for la in las]

    def cells(atoms: dict[tuple[int, str, int], int], *extra: dict[tuple[int, str, int], int]
              ) -> list[list[list[int]]]:
        return [[[m[k] for m in (atoms, *extra) for k in atoms if k[0] == la and k[1] == p]
                 for p in periods] for la in las]

    # No per-stratum table of children measured: where the outcome does not apply to every
    # main-analysis child (care leavers) or is missing for some, it would pin small counts of
    # those children in nearly every cell. They are published by condition instead.
    del partial, cells_measured
    g.add_table(ev_t, names, periods, cells(e_atom), margins=True)
    layout[ev_t] = Layout(names, list(periods), True, [*codes, TOTAL])
    for e, cond in enumerate(CONDITIONS):
        mine = [k for k in c_atom if k[2] == e]
        g.add_cell((BY_CONDITION, f"{title}: children measured", cond),
                   [a for k in mine for a in (e_atom[k], n_atom[k])], margin=False)
        g.add_cell((BY_CONDITION, f"{title}: children with the outcome", cond),
                   [e_atom[k] for k in mine], margin=False)
        if missing_ok:
            g.add_cell((MISSING_DATA, f"{title}: children expected to have it", cond),
                       [a for k in mine for a in (e_atom[k], n_atom[k], m_atom[k])],
                       margin=False)
            g.add_cell((MISSING_DATA, f"{title}: missing", cond), [m_atom[k] for k in mine],
                       margin=False)


def _by_condition_only(g: LinkedGroup, oid: str, title: str, rows: pd.DataFrame,
                       c_atom: dict[tuple[int, str, int], int], undefined_ok: bool,
                       missing_ok: bool) -> None:
    """Count/rate outcomes: children measured (and missing) by condition only; no per-stratum
    table is published, so per-condition atoms carry the same information."""
    for e, cond in enumerate(CONDITIONS):
        mine = [k for k in c_atom if k[2] == e]
        sub = rows.loc[[k for k in mine]] if mine else rows.iloc[0:0]
        d = g.add_atom(int(sub["measured"].sum()), f"D|{oid}|{e}", SMALL_ONLY, BY_CONDITION)
        parts = [d]
        m = None
        if missing_ok:
            m = g.add_atom(int(sub["missing"].sum()), f"M|{oid}|{e}", SMALL_ONLY, MISSING_DATA)
            parts.append(m)
        if undefined_ok:
            parts.append(g.add_atom(int(sub["undefined"].sum()), f"U|{oid}|{e}", SMALL_ONLY,
                                    BY_CONDITION))
        g.add_identity([c_atom[k] for k in mine], parts)
        g.add_cell((BY_CONDITION, f"{title}: children measured", cond), [d], margin=False)
        if m is not None:
            g.add_cell((MISSING_DATA, f"{title}: children expected to have it", cond), [d, m],
                       margin=False)
            g.add_cell((MISSING_DATA, f"{title}: missing", cond), [m], margin=False)


def _baseline(g: LinkedGroup, results: ResultsInput, c_atom: dict[tuple[int, str, int], int]
              ) -> None:
    base = results.baseline
    for char, part in base.groupby("characteristic", sort=False):
        for e, cond in enumerate(CONDITIONS):
            rows = part[part["exposed"] == e]
            atoms = []
            for title, cat, n in zip(rows["title"], rows["category"], rows["n"], strict=True):
                a = g.add_atom(int(n), f"B|{char}|{cat}|{e}", FULL, BASELINE)
                g.add_cell((BASELINE, f"{title}: {cat}", cond), [a], margin=False)
                atoms.append(a)
            g.add_identity([c_atom[k] for k in c_atom if k[2] == e], atoms)


def protect_counts(results: ResultsInput, study: StudyFile, row_names: list[str], *,
                   rounding: bool = True, protection: Protection | None = None,
                   ) -> CountTables:
    """Primary and secondary suppression over every count table, then the integer audit."""
    group, layout = build_group(results, study, row_names)
    protection = protection or Protection()
    protect_group(group, study.disclosure, protection, rounding=rounding)
    return CountTables(group, layout, protection, {}, rounding)


def audit_counts(tables: CountTables, rules: Disclosure, extra: Sequence[Target] = ()) -> None:
    """The integer audit of the group as published (fills `tables.findings`)."""
    tables.findings = {}
    for f in audit_group(tables.group, tables.protection.suppressed, rules,
                         rounding=tables.rounding,
                         points=tables.protection.points.get(tables.group.name), extra=extra):
        tables.findings.setdefault(f.table, []).append(f)


def publish(tables: CountTables, table: str, rules: Disclosure, *, title: str, context: str,
            row_title: str, col_title: str) -> tuple[CheckedOutput, OutputReview]:
    """One protected count table as text (public) and its review (stays in the vault)."""
    lay = tables.layout[table]
    out_rows = [*lay.rows, TOTAL] if lay.margins else lay.rows
    out_cols = [*lay.cols, TOTAL] if lay.margins else lay.cols
    text = pd.DataFrame("", index=pd.Index(out_rows, name=row_title), columns=out_cols,
                        dtype=object)
    cells = tables.cells
    reviews: list[CellReview] = []
    counts = {THRESHOLD: 0, ZERO: 0, SECONDARY: 0, ACROSS: 0, ROUNDING: 0}
    for r in out_rows:
        for c in out_cols:
            cell = cells[(table, r, c)]
            if not cell.atoms:  # the design rules it out (e.g. exposed before any step)
                text.loc[r, c] = NOT_APPLICABLE
                continue
            rule = tables.protection.suppressed.get(cell.id)
            if rule is not None:
                text.loc[r, c] = rules.suppression_symbol
                counts[rule] += 1
                reviews.append(CellReview(r, c, cell.value, rules.suppression_symbol,
                                          "suppressed", rule, describe(rule, rules),
                                          tables.protection.secondary_for.get(cell.id, "")))
                continue
            shown = shown_value(cell.value, rules, tables.rounding)
            text.loc[r, c] = str(shown)
            if shown != cell.value:
                counts[ROUNDING] += 1
            reviews.append(CellReview(r, c, cell.value, str(shown),
                                      "rounded" if shown != cell.value else "published",
                                      ROUNDING if shown != cell.value else "", ""))
    found = tables.findings.get(table, [])
    results = [RuleResult(code, describe(code, rules), "review" if k else "pass", k)
               for code, k in counts.items() if code != ROUNDING or tables.rounding]
    status: Status = ("review" if any(counts[k] for k in (THRESHOLD, ZERO, SECONDARY, ACROSS))
                      else "pass")
    if found and not all(f.protected for f in found):
        status = "fail"
    out = CheckedOutput(table, title, "counts", context, text, rules.suppression_symbol,
                        withheld=status == "fail", row_keys=list(lay.row_keys))
    review = OutputReview(table, status, results, reviews,
                          [f.to_json() for f in found])
    return out, review


def strata_matrix(results: ResultsInput) -> np.ndarray:
    """Children per LA × period (exposure summed), for tests and benchmarks."""
    wide = results.strata.pivot_table(index="la_code", columns="period", values="n",
                                      aggfunc="sum")
    return wide.reindex(index=results.la_codes, columns=results.period_labels).fillna(0
                                                                                    ).to_numpy()
