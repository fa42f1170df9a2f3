"""Cross-check with ACRO: on the same tables, every cell ACRO flags is flagged by our primary
rules and shown as suppressed in our released tables.

ACRO pins its own pandas, so it runs in a separate virtual environment (`$ACRO_PYTHON`, default
/tmp/acro-venv/bin/python) via `acro_runner.py`; the test skips, saying how to make it, when
that environment is absent. The comparison is written to test-artifacts/acro-crosscheck.json.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialvault.disclose import ResultsInput, check_results
from trialvault.disclose.aggregate import aggregate_cohort, main_mask, period_of, table_months
from trialvault.disclose.check import MEANS
from trialvault.disclose.example import example_cohort
from trialvault.disclose.inputs import ESTIMATE_COLUMNS, EVENT_STUDY_COLUMNS
from trialvault.disclose.rules import (
    DOMINANCE,
    P_RATIO,
    THRESHOLD,
    MagnitudeEvidence,
    frequency_unsafe,
    magnitude_unsafe,
)
from trialvault.study.model import StudyFile

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parents[2] / "test-artifacts"
ACRO_PYTHON = Path(os.environ.get("ACRO_PYTHON", "/tmp/acro-venv/bin/python"))
BINARY = ("entered_care_12m", "residential_placement_12m", "cp_plan_12m")
COUNTS = ("placement_moves_12m",)


def study_for(nwd: StudyFile) -> StudyFile:
    keep = [o for o in nwd.analysis.outcomes if o.id in (*BINARY, *COUNTS)]
    return nwd.replace(
        analysis=nwd.analysis.replace(outcomes=keep),
        disclosure=nwd.disclosure.replace(table_period="year"))


def microdata(study: StudyFile, seed: int) -> pd.DataFrame:
    """Made-up main-analysis rows (no codes): uneven LA sizes so that small cells, zeros and
    dominated cells all occur, with a few children dominating the count outcome."""
    cohort = example_cohort(study, seed=seed, scale=0.06)
    cohort = cohort[main_mask(cohort, study)].copy()
    cohort["tperiod"] = pd.to_datetime(cohort["index_date"]).dt.date.map(
        lambda d: period_of(d, table_months(study)).label)
    moves = cohort["placement_moves_12m"].copy()
    first = moves.dropna().index[:2]
    moves.loc[first] = [4000.0, 1500.0]  # two children dominate their condition's mean
    cohort["placement_moves_12m"] = moves
    return cohort


def our_input(cohort: pd.DataFrame, study: StudyFile) -> ResultsInput:
    agg = aggregate_cohort(cohort, study, removed=[("r", "Removed", 300)])
    empty = pd.DataFrame()
    return ResultsInput(study.la_codes, agg.periods, agg.strata, agg.outcomes, agg.magnitude,
                        agg.baseline, agg.flow, empty.reindex(columns=ESTIMATE_COLUMNS),
                        empty.reindex(columns=EVENT_STUDY_COLUMNS))


@pytest.fixture(scope="module")
def acro_flags(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile
               ) -> tuple[dict, pd.DataFrame, StudyFile]:  # type: ignore[type-arg]
    if not ACRO_PYTHON.exists():
        pytest.skip(f"no ACRO environment at {ACRO_PYTHON}: python -m venv /tmp/acro-venv && "
                    "/tmp/acro-venv/bin/pip install acro (or set $ACRO_PYTHON)")
    study = study_for(nwd_study)
    folder = tmp_path_factory.mktemp("acro")
    data = microdata(study, seed=11)
    out: dict = {"tables": {}}  # type: ignore[type-arg]
    # Counts: LA × period; means: one row ("all") × condition, as the release shows them.
    counts = pd.DataFrame({"la": data["la_code"].astype(str), "period": data["tperiod"],
                           **{o: data[o].fillna(0).astype(int) for o in BINARY}})
    means = pd.DataFrame({"la": "all", "period": data["exposed"].map(
        {0: "Unexposed", 1: "Exposed"}), **{o: data[o] for o in COUNTS}}).dropna()
    for name, frame, spec in (
            ("counts", counts, [{"name": "cohort", "subset": None, "values": None,
                                 "aggfunc": None}]
             + [{"name": f"events_{o}", "subset": o, "values": None, "aggfunc": None}
                for o in BINARY]),
            ("means", means, [{"name": f"mean_{o}", "subset": None, "values": o,
                               "aggfunc": "mean"} for o in COUNTS])):
        frame.to_csv(folder / f"{name}.csv", index=False)
        (folder / f"{name}.json").write_text(json.dumps(spec))
        run = subprocess.run([str(ACRO_PYTHON), str(HERE / "acro_runner.py"),
                              str(folder / f"{name}.csv"), str(folder / f"{name}.json"),
                              str(folder / f"{name}-out.json")], capture_output=True,
                             text=True, timeout=600, check=False)
        assert run.returncode == 0, run.stderr[-2000:]
        got = json.loads((folder / f"{name}-out.json").read_text())
        out["tables"].update(got["tables"])
        out["acro_version"] = got.get("acro_version")
    return out, data, study


def test_our_primary_rules_flag_every_cell_acro_flags(acro_flags) -> None:  # type: ignore[no-untyped-def]
    acro, data, study = acro_flags
    rules = study.disclosure
    ours = our_input(data, study)
    released = check_results(ours, study)
    names = {str(code): study.la(code).name for code in study.la_codes}
    titles = {o.id: o.title for o in study.analysis.outcomes}
    summary: dict[str, dict[str, int]] = {}
    for table, got in acro["tables"].items():
        if table.startswith("mean_"):
            o = table.removeprefix("mean_")
            mag = ours.magnitude[ours.magnitude["outcome"] == o].set_index("exposed")
            flags = magnitude_unsafe(MagnitudeEvidence(
                n=mag["n"].to_numpy(np.int64), total=mag["total"].to_numpy(float),
                top1=mag["top1"].to_numpy(float), top2=mag["top2"].to_numpy(float),
                top_n=mag["top_n"].to_numpy(float), minimum=mag["minimum"].to_numpy(float),
                maximum=mag["maximum"].to_numpy(float), negatives=mag["negatives"].to_numpy(),
                nonzero=mag["nonzero"].to_numpy(np.int64)), rules)
            hit = flags[THRESHOLD] | flags[DOMINANCE] | flags[P_RATIO] | flags["all_same"]
            mine = {("all", "Unexposed" if e == 0 else "Exposed"): bool(h)
                    for e, h in zip(mag.index, hit, strict=True)}
            shown = released.output(MEANS).table
            where = {cell: (titles[o], cell[1]) for cell in mine}
        else:
            sub = data if table == "cohort" else data[data[table.removeprefix("events_")] == 1]
            counts = sub.groupby([sub["la_code"].astype(str), "tperiod"]).size().reindex(
                pd.MultiIndex.from_product([sorted(data["la_code"].astype(str).unique()),
                                            [p.label for p in ours.periods]]), fill_value=0)
            small, zero = frequency_unsafe(counts.to_numpy(), rules)
            mine = dict(zip(counts.index, small | zero, strict=True))
            shown = released.output(table).table
            where = {cell: (names[cell[0]], cell[1]) for cell in mine}
        acro_cells = [(r, c) for r, cols in got["flags"].items() for c, checks in cols.items()
                      if checks]
        missed = [cell for cell in acro_cells if not mine[cell]]
        assert not missed, f"{table}: ACRO flags cells our rules pass: {missed}"
        not_hidden = [cell for cell in acro_cells if shown.loc[where[cell]] != "c"]
        assert not not_hidden, f"{table}: ACRO-flagged cells published: {not_hidden}"
        summary[table] = {"cells": len(mine), "acro_flagged": len(acro_cells),
                          "ours_flagged": int(sum(mine.values())),
                          "ours_only": int(sum(mine.values())) - len(acro_cells)}
    assert sum(s["acro_flagged"] for s in summary.values()) > 20  # the comparison has teeth
    assert summary["mean_placement_moves_12m"]["acro_flagged"] >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "acro-crosscheck.json").write_text(json.dumps(
        {"acro_version": acro.get("acro_version"), "tables": summary}, indent=2))
