"""Property tests: no released count table lets an intruder solve a suppressed cell, or narrow
any small quantity (a small cell, or non-events hidden behind cohort and events tables) to less
than the threshold. The intruder (`intruder.py`) reads only the published text and solves the
margins with integer programs; it shares no code with the protector."""

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

from trialvault.disclose.frequency import protect_counts, publish
from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.disclose.protect import TOTAL
from trialvault.study.model import Disclosure


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("intruder.py"))
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


intruder = _load("disclose_intruder")


def make_results(cohort: np.ndarray, outcomes: dict[str, tuple[np.ndarray, np.ndarray]],
                 removed: list[int]) -> ResultsInput:
    """A results input from arrays: cohort[i, j]; per outcome (denominators, events)."""
    las = [100 + i for i in range(cohort.shape[0])]
    periods = [Period(f"P{j}", dt.date(2020, 1, 1) + dt.timedelta(days=j)) for j in
               range(cohort.shape[1])]
    co = pd.DataFrame([(la, p.label, int(cohort[i, j])) for i, la in enumerate(las)
                       for j, p in enumerate(periods)], columns=["la_code", "period", "n"])
    bi = pd.DataFrame([(o, la, p.label, int(d[i, j]), int(e[i, j]))
                       for o, (d, e) in outcomes.items() for i, la in enumerate(las)
                       for j, p in enumerate(periods)],
                      columns=["outcome", "la_code", "period", "n", "events"])
    total = int(cohort.sum())
    flow = pd.DataFrame([("start", "Start", total + sum(removed)),
                         *[(f"r{k}", f"Removed {k}", r) for k, r in enumerate(removed)],
                         ("end", "Cohort", total)], columns=["step", "label", "n"])
    empty = pd.DataFrame(columns=["outcome"])
    return ResultsInput(
        las, periods, co, bi,
        pd.DataFrame(columns=["outcome", "la_code", "period", "n", "total", "top1", "top2",
                              "top_n", "minimum", "maximum", "negatives"]),
        flow,
        empty.reindex(columns=["outcome", "analysis", "estimate", "ci_low", "ci_high",
                               "p_value", "ri_p_value", "dof"]),
        empty.reindex(columns=["outcome", "event_time", "estimate", "ci_low", "ci_high", "n"]))


@st.composite
def releases(draw: st.DrawFn) -> tuple[ResultsInput, Disclosure]:
    rows = draw(st.integers(1, 4))
    cols = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    small = draw(st.floats(0.0, 1.0))  # share of cells drawn small
    big = rng.integers(10, 90, size=(rows, cols))
    cohort = np.where(rng.random((rows, cols)) < small, rng.integers(0, 12, size=(rows, cols)),
                      big)
    outcomes = {}
    for k in range(draw(st.integers(0, 2))):
        partial = draw(st.booleans())
        denom = cohort - (rng.binomial(cohort, 0.3) if partial else 0)
        risk = draw(st.sampled_from([0.02, 0.2, 0.5, 0.9, 0.99]))
        outcomes[f"o{k}"] = (denom, rng.binomial(denom, risk))
    removed = [int(x) for x in rng.integers(0, 30, size=draw(st.integers(0, 3)))]
    rules = Disclosure(threshold=draw(st.sampled_from([3, 5, 10])),
                       rounding_base=draw(st.sampled_from([1, 3, 5, 10])),
                       zeros_disclosive=draw(st.booleans()))
    return make_results(cohort, outcomes, removed), rules


def published(results: ResultsInput, rules: Disclosure) -> tuple[dict[str, pd.DataFrame], list[str]]:
    rows = [f"LA {c}" for c in results.la_codes]
    tables = protect_counts(results, rules, rows, rounding=rules.rounding_base > 1)
    return {name: publish(tables, name, rules, title=name, context="", row_title="LA",
                          col_title="Period").table for name in tables.layout
            if tables.layout[name][0]}, rows


def _truth(results: ResultsInput, rows: list[str]) -> dict[str, pd.DataFrame]:
    """True interior values per table (test side), keyed like the published tables."""
    def wide(frame: pd.DataFrame, col: str) -> pd.DataFrame:
        w = frame.pivot_table(index="la_code", columns="period", values=col, aggfunc="sum")
        w = w.reindex(index=results.la_codes, columns=results.period_labels).fillna(0)
        w.index = rows
        return w.astype(int)

    out = {"cohort": wide(results.cohort, "n")}
    for o, frame in results.binary.groupby("outcome"):
        out[f"events_{o}"] = wide(frame, "events")
        out[f"denominators_{o}"] = wide(frame, "n")
    return out


def check_release_is_safe(results: ResultsInput, rules: Disclosure) -> None:
    tables, rows = published(results, rules)
    base = rules.rounding_base
    symbol = rules.suppression_symbol
    outcomes = [str(o) for o in results.binary["outcome"].drop_duplicates()]
    it, grids = intruder.attack(tables, rows, results.period_labels, outcomes, base=base,
                                symbol=symbol)
    # 1. No published count lies strictly between 0 and the threshold.
    for name, table in tables.items():
        for text in table.to_numpy().ravel():
            if text != symbol:
                assert int(text) == 0 or int(text) >= rules.threshold, (name, text)
                assert int(text) != 0 or not rules.zeros_disclosive, (name, text)
    # 2. No suppressed cell can be solved from what is published.
    for (name, r, c), expr in it.cells.items():
        if str(tables[name].loc[r, c]) == symbol:
            lo, hi = it.range_of(expr)
            assert hi - lo >= 1, f"{name} {r} {c} solvable: [{lo}, {hi}]"
    # 3. Every small quantity, published or hidden, keeps a range of at least the threshold.
    truth = _truth(results, rows)

    def unsafe(v: int, *, zero_counts: bool) -> bool:
        return 0 < v < rules.threshold or (v == 0 and zero_counts and rules.zeros_disclosive)

    targets: list[tuple[str, dict[int, float]]] = []
    for r in rows:
        for c in results.period_labels:
            for name in ("cohort", *[f"events_{o}" for o in outcomes]):
                if unsafe(int(truth[name].loc[r, c]), zero_counts=True):
                    targets.append((f"{name} {r} {c}", {grids[name][(r, c)]: 1.0}))
            for o in outcomes:
                den_grid = grids.get(f"denominators_{o}", grids["cohort"])
                ev, den = grids[f"events_{o}"][(r, c)], den_grid[(r, c)]
                non = int(truth[f"denominators_{o}"].loc[r, c] - truth[f"events_{o}"].loc[r, c])
                if unsafe(non, zero_counts=True):
                    targets.append((f"non-events {o} {r} {c}", {den: 1.0, ev: -1.0}))
                undefined = int(truth["cohort"].loc[r, c] - truth[f"denominators_{o}"].loc[r, c])
                if unsafe(undefined, zero_counts=False) and f"denominators_{o}" in grids:
                    targets.append((f"undefined {o} {r} {c}",
                                    {grids["cohort"][(r, c)]: 1.0, den: -1.0}))
    for (label, _), var in grids.get("flow", {}).items():
        v = int(results.flow.set_index("label").loc[label, "n"])
        if unsafe(v, zero_counts=False):
            targets.append((f"flow {label}", {var: 1.0}))
    for label, expr in targets:
        lo, hi = it.range_of(expr)
        assert hi - lo >= rules.threshold, f"{label}: intruder narrows it to [{lo}, {hi}]"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(releases())
def test_no_suppressed_cell_or_small_quantity_is_recoverable(case: tuple[ResultsInput, Disclosure]
                                                             ) -> None:
    results, rules = case
    check_release_is_safe(results, rules)


def test_single_small_cell_gets_a_complement_in_its_row_and_column() -> None:
    cohort = np.array([[3, 50, 60], [40, 45, 55], [35, 30, 70]])
    results = make_results(cohort, {}, [])
    rules = Disclosure()
    tables, _ = published(results, rules)
    t = tables["cohort"]
    assert t.loc["LA 100", "P0"] == "c"
    assert (t.loc["LA 100", ["P0", "P1", "P2"]] == "c").sum() >= 2
    assert (t.loc[["LA 100", "LA 101", "LA 102"], "P0"] == "c").sum() >= 2
    assert t.loc[TOTAL, TOTAL] == "390"  # totals from the true counts, then rounded
    check_release_is_safe(results, rules)


def test_nearly_everyone_with_the_outcome_hides_the_events_cell() -> None:
    # 148 of 150 children had the outcome: publishing cohort and events would reveal the 2
    # who did not. The events cell must go, with complements.
    cohort = np.array([[150, 120], [130, 140]])
    events = np.array([[148, 60], [70, 65]])
    results = make_results(cohort, {"o": (cohort, events)}, [])
    tables, _ = published(results, Disclosure())
    assert tables["events_o"].loc["LA 100", "P0"] == "c"
    assert tables["cohort"].loc["LA 100", "P0"] != "c"
    check_release_is_safe(results, Disclosure())


def test_zero_events_are_suppressed_only_when_zeros_are_disclosive() -> None:
    cohort = np.array([[150, 120], [130, 140]])
    events = np.array([[0, 60], [70, 65]])
    results = make_results(cohort, {"o": (cohort, events)}, [])
    assert published(results, Disclosure(zeros_disclosive=True))[0]["events_o"].loc[
        "LA 100", "P0"] == "c"
    assert published(results, Disclosure(zeros_disclosive=False))[0]["events_o"].loc[
        "LA 100", "P0"] == "0"


def test_small_flow_step_is_suppressed_with_a_complement() -> None:
    cohort = np.array([[150, 120], [130, 140]])
    results = make_results(cohort, {}, [3, 200])
    unrounded = Disclosure(rounding_base=1)  # rounding noise alone would not protect it here
    tables, _ = published(results, unrounded)
    flow = tables["flow"]["n"]
    assert flow["Removed 0"] == "c"
    assert (flow == "c").sum() >= 2
    check_release_is_safe(results, unrounded)


def test_inconsistent_counts_are_refused() -> None:
    cohort = np.array([[15, 12]])
    results = make_results(cohort, {"o": (cohort, np.array([[16, 1]]))}, [])
    with pytest.raises(ValueError, match="events > n"):
        published(results, Disclosure())
