"""Property tests: no released count table lets an intruder solve a suppressed cell, or narrow
any small quantity (a small cell, or a count hidden behind published tables: non-events,
missing or undefined children, a baseline category) to less than the threshold. The intruder
(`intruder.py`) reads only the published text and solves integer programs; it shares no code
with the protector."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialvault.disclose.aggregate import can_be_undefined, has_expected
from trialvault.disclose.frequency import audit_counts, flow_labels, protect_counts, publish
from trialvault.disclose.inputs import (
    ESTIMATE_COLUMNS,
    EVENT_STUDY_COLUMNS,
    MAGNITUDE_COLUMNS,
    Period,
    ResultsInput,
)
from trialvault.disclose.protect import TOTAL
from trialvault.study.model import Disclosure, StudyFile


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("intruder.py"))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


intruder = _load("disclose_intruder")
# entered care: binary, undefined for care leavers; NEET: binary, missing for some; moves: count.
OUTCOMES = ("entered_care_12m", "neet_16_17", "placement_moves_12m")


def mini_study(nwd: StudyFile, rules: Disclosure, n_las: int, outcomes: tuple[str, ...]
               ) -> StudyFile:
    las = nwd.local_authorities[:n_las]
    codes = {la.dfe_code for la in las}
    design = nwd.design.replace(rollout=[s for s in nwd.design.rollout
                                                       if s.la in codes])
    keep = [o for o in nwd.analysis.outcomes if o.id in outcomes]
    return nwd.replace(
        local_authorities=las,
        design=design,
        analysis=nwd.analysis.replace(outcomes=keep),
        disclosure=rules)


def make_results(study: StudyFile, strata: dict[tuple[int, str, int], int],
                 outcome_counts: dict[str, dict[tuple[int, str, int], tuple[int, int, int]]],
                 baseline: dict[str, list[tuple[str, int, int]]], flow: list[int]
                 ) -> ResultsInput:
    """From literal counts. outcome_counts[o][stratum] = (measured, events, missing)."""
    periods = sorted({p for _, p, _ in strata})
    strata_df = pd.DataFrame([(la, p, e, n) for (la, p, e), n in strata.items()],
                             columns=["la_code", "period", "exposed", "n"])
    rows = []
    for o, per in outcome_counts.items():
        for key, n in strata.items():
            measured, events, missing = per[key]
            rows.append((o, *key, measured, events, missing, n - measured - missing))
    outcomes = pd.DataFrame(rows, columns=["outcome", "la_code", "period", "exposed",
                                           "measured", "events", "missing", "undefined"])
    base = pd.DataFrame([(char, char.title(), cat, e, n) for char, cats in baseline.items()
                         for cat, n0, n1 in cats for e, n in ((0, n0), (1, n1))],
                        columns=["characteristic", "title", "category", "exposed", "n"])
    flow_df = pd.DataFrame([("r0", "Removed", "before_cohort", flow[0]),
                            ("la", "Set aside", "in_cohort", flow[1])],
                           columns=["step", "label", "stage", "n"])
    empty = pd.DataFrame()
    return ResultsInput(
        study.la_codes, [Period(p, dt.date(2020, 1, 1) + dt.timedelta(days=30 * k))
                         for k, p in enumerate(periods)], strata_df, outcomes,
        empty.reindex(columns=MAGNITUDE_COLUMNS), base, flow_df,
        empty.reindex(columns=ESTIMATE_COLUMNS), empty.reindex(columns=EVENT_STUDY_COLUMNS))


@st.composite
def releases(draw: st.DrawFn, nwd: StudyFile) -> tuple[ResultsInput, StudyFile]:
    n_las = draw(st.integers(1, 3))
    n_periods = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    small = draw(st.floats(0.0, 1.0))  # share of strata drawn small
    keys = [(la.dfe_code, f"P{j}", e) for la in nwd.local_authorities[:n_las]
            for j in range(n_periods) for e in ((0, 1) if (j + la.dfe_code) % 3 == 0 else
                                                ((j + la.dfe_code) % 2,))]
    strata = {k: int(rng.integers(0, 12)) if rng.random() < small else int(rng.integers(10, 90))
              for k in keys}
    chosen = tuple(o for o in OUTCOMES if draw(st.booleans()))
    counts: dict[str, dict[tuple[int, str, int], tuple[int, int, int]]] = {}
    for o in chosen:
        risk = draw(st.sampled_from([0.02, 0.2, 0.5, 0.98]))
        per = {}
        for k, n in strata.items():
            undefined = int(rng.binomial(n, 0.1)) if o == "entered_care_12m" else 0
            missing = int(rng.binomial(n, 0.3)) if o == "neet_16_17" else 0
            if o == "neet_16_17":
                undefined = int(rng.binomial(n - missing, 0.3))
            measured = n - undefined - missing
            per[k] = (measured, int(rng.binomial(measured, risk)), missing)
        counts[o] = per
    total = {e: sum(n for k, n in strata.items() if k[2] == e) for e in (0, 1)}
    yes = {e: int(rng.binomial(total[e], draw(st.sampled_from([0.03, 0.5])))) for e in (0, 1)}
    baseline = {"flag": [("Yes", yes[0], yes[1]), ("No", total[0] - yes[0], total[1] - yes[1])]}
    rules = Disclosure(threshold=draw(st.sampled_from([3, 5, 10])),
                       rounding_base=draw(st.sampled_from([1, 3, 5])),
                       zeros_disclosive=draw(st.booleans()))
    study = mini_study(nwd, rules, n_las, chosen)
    flow = [int(rng.integers(0, 30)), int(rng.integers(0, 30))]
    return make_results(study, strata, counts, baseline, flow), study


def published(results: ResultsInput, study: StudyFile) -> tuple[dict[str, pd.DataFrame], bool]:
    rules = study.disclosure
    names = [study.la(c).name for c in results.la_codes]
    tables = protect_counts(results, study, names, rounding=rules.rounding_base > 1)
    audit_counts(tables, rules)
    out = {}
    protected = True
    for name, lay in tables.layout.items():
        if not lay.rows:
            continue
        table, review = publish(tables, name, rules, title=name, context="", row_title="",
                                col_title="")
        out[name] = table.table
        protected &= review.status != "fail"
    return out, protected


def check_release_is_safe(results: ResultsInput, study: StudyFile) -> None:
    rules = study.disclosure
    tables, protected = published(results, study)
    assert protected
    specs = [intruder.OutcomeSpec(o.id, o.title, o.kind == "binary", has_expected(o.id),
                                  can_be_undefined(study, o.id)) for o in study.analysis.outcomes]
    strata = [tuple(k) for k in results.strata[["la_code", "period", "exposed"]].itertuples(
        index=False, name=None)]
    base = [(t, list(part["category"].drop_duplicates())) for t, part in
            results.baseline.groupby("title", sort=False)]
    it = intruder.attack(tables, strata=strata,
                         la_names={c: study.la(c).name for c in results.la_codes},
                         periods=results.period_labels, outcomes=specs, baseline=base,
                         flow=list(zip(results.flow["label"], results.flow["stage"],
                                       strict=True)),
                         flow_labels=flow_labels(results), base=rules.rounding_base,
                         symbol=rules.suppression_symbol)
    symbol = rules.suppression_symbol
    # 1. No published count lies strictly between 0 and the threshold.
    for name, table in tables.items():
        for text in table.to_numpy().ravel():
            if text not in (symbol, "z"):
                assert int(text) == 0 or int(text) >= rules.threshold, (name, text)
                assert int(text) != 0 or not rules.zeros_disclosive, (name, text)
    # 2. No suppressed cell can be solved from what is published.
    for (name, r, c), expr in it.cells.items():
        if str(tables[name].loc[r, c]) == symbol:
            lo, hi = it.range_of(expr)
            assert hi - lo >= 1, f"{name} {r} {c} solvable: [{lo}, {hi}]"
    # 3. Every small quantity, published or hidden, keeps a range of at least the threshold.
    truth = _truth(results, study)

    def unsafe(v: int, *, zeros: bool) -> bool:
        return 0 < v < rules.threshold or (v == 0 and zeros and rules.zeros_disclosive)

    checked = 0
    for name, (value, zeros) in truth.items():
        if name in it.vars and unsafe(value, zeros=zeros):
            lo, hi = it.range_of({it.vars[name]: 1.0})
            assert hi - lo >= rules.threshold, f"{name}={value}: narrowed to [{lo}, {hi}]"
            checked += 1


def _truth(results: ResultsInput, study: StudyFile) -> dict[str, tuple[int, bool]]:
    """True value of each intruder variable and whether a zero there is sensitive."""
    out: dict[str, tuple[int, bool]] = {}
    for r in results.strata.itertuples(index=False):
        out[f"C|{(r.la_code, r.period, r.exposed)}"] = (int(r.n), True)
    kinds = {o.id: o.kind for o in study.analysis.outcomes}
    for r in results.outcomes.itertuples(index=False):
        s = (r.la_code, r.period, r.exposed)
        if kinds[r.outcome] == "binary":
            out[f"E|{r.outcome}|{s}"] = (int(r.events), True)
            out[f"N|{r.outcome}|{s}"] = (int(r.measured - r.events), True)
            out[f"M|{r.outcome}|{s}"] = (int(r.missing), False)
            out[f"U|{r.outcome}|{s}"] = (int(r.undefined), False)
    for o, part in results.outcomes.groupby("outcome"):
        if kinds[str(o)] != "binary":
            for e, sub in part.groupby("exposed"):
                out[f"D|{o}|{e}"] = (int(sub["measured"].sum()), False)
                out[f"M|{o}|{e}"] = (int(sub["missing"].sum()), False)
                out[f"U|{o}|{e}"] = (int(sub["undefined"].sum()), False)
    for r in results.baseline.itertuples(index=False):
        out[f"B|{r.title}|{r.category}|{r.exposed}"] = (int(r.n), True)
    for r in results.flow.itertuples(index=False):
        out[f"F|{r.label}"] = (int(r.n), False)
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_suppressed_cell_or_small_quantity_is_recoverable(data: st.DataObject,
                                                             nwd_study: StudyFile) -> None:
    results, study = data.draw(releases(nwd_study))
    check_release_is_safe(results, study)


def _one_outcome(nwd: StudyFile, strata: dict[tuple[int, str, int], int],
                 events: dict[tuple[int, str, int], int], rules: Disclosure
                 ) -> tuple[ResultsInput, StudyFile]:
    study = mini_study(nwd, rules, 2, ("cp_plan_12m",))
    counts = {"cp_plan_12m": {k: (n, events[k], 0) for k, n in strata.items()}}
    total = {e: sum(n for k, n in strata.items() if k[2] == e) for e in (0, 1)}
    return make_results(study, strata, counts, {"flag": [("Yes", total[0], total[1]),
                                                          ("No", 0, 0)]}, [200, 300]), study


def test_nearly_everyone_with_the_outcome_hides_the_events_cell(nwd_study: StudyFile) -> None:
    # 148 of 150 children had the outcome: publishing cohort and events would reveal the 2
    # who did not (cp_plan applies to every main-analysis child: no undefined children).
    strata = {(354, "P0", 0): 150, (354, "P1", 1): 120, (807, "P0", 0): 130,
              (807, "P1", 0): 140}
    events = {(354, "P0", 0): 148, (354, "P1", 1): 60, (807, "P0", 0): 70, (807, "P1", 0): 65}
    results, study = _one_outcome(nwd_study, strata, events, Disclosure())
    tables, _ = published(results, study)
    assert tables["events_cp_plan_12m"].loc["Rochdale", "P0"] == "c"
    check_release_is_safe(results, study)


def test_zero_events_are_suppressed_only_when_zeros_are_disclosive(nwd_study: StudyFile
                                                                   ) -> None:
    strata = {(354, "P0", 0): 150, (354, "P1", 1): 120, (807, "P0", 0): 130,
              (807, "P1", 0): 140}
    events = {(354, "P0", 0): 0, (354, "P1", 1): 60, (807, "P0", 0): 70, (807, "P1", 0): 65}
    on, study_on = _one_outcome(nwd_study, strata, events, Disclosure(zeros_disclosive=True))
    off, study_off = _one_outcome(nwd_study, strata, events, Disclosure(zeros_disclosive=False))
    assert published(on, study_on)[0]["events_cp_plan_12m"].loc["Rochdale", "P0"] == "c"
    assert published(off, study_off)[0]["events_cp_plan_12m"].loc["Rochdale", "P0"] == "0"


def test_single_small_cell_gets_a_complement_and_totals_come_from_true_counts(
        nwd_study: StudyFile) -> None:
    strata = {(354, "P0", 0): 3, (354, "P1", 1): 50, (807, "P0", 0): 40, (807, "P1", 0): 45}
    events = dict.fromkeys(strata, 0)
    results, study = _one_outcome(nwd_study, strata, events,
                                  Disclosure(zeros_disclosive=False))
    t = published(results, study)[0]["cohort"]
    assert t.loc["Rochdale", "P0"] == "c"
    assert (t.loc[["Rochdale", "Redcar & Cleveland"], "P0"] == "c").sum() >= 2
    assert t.loc[TOTAL, TOTAL] == "140"
    check_release_is_safe(results, study)


def test_inconsistent_counts_are_refused(nwd_study: StudyFile) -> None:
    strata = {(354, "P0", 0): 15, (807, "P0", 0): 12}
    results, study = _one_outcome(nwd_study, strata, {(354, "P0", 0): 16, (807, "P0", 0): 1},
                                  Disclosure())
    with pytest.raises(ValueError, match="more events than children"):
        published(results, study)
