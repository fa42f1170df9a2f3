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
from trialvault.disclose.example import half_years
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


def microdata(study: StudyFile, seed: int) -> tuple[pd.DataFrame, list]:  # type: ignore[type-arg]
    """Synthetic child rows: uneven LA sizes so that small cells, zeros and dominated cells
    all occur. Made up here, for this comparison only."""
    import datetime as dt

    rng = np.random.default_rng(seed)
    periods = half_years(dt.date(2020, 1, 1), dt.date(2022, 12, 31))
    sizes = dict(zip(study.la_codes, (420, 160, 70, 28, 9), strict=True))
    rows = []
    for la, n in sizes.items():
        for k in range(n * len(periods)):
            rows.append((str(la), periods[k % len(periods)].label))
    data = pd.DataFrame(rows, columns=["la", "period"])
    n = len(data)
    data["entered_care_12m"] = (rng.random(n) < 0.3).astype(int)
    data["residential_placement_12m"] = (rng.random(n) < 0.04).astype(int)
    data["cp_plan_12m"] = (rng.random(n) < 0.97).astype(int)
    moves = rng.poisson(0.4, n).astype(float)
    # One child dominates each of a few cells (dominance and p-ratio failures).
    for la, k, value in ((study.la_codes[0], 0, 2000.0), (study.la_codes[1], 1, 1000.0),
                         (study.la_codes[2], 2, 500.0), (study.la_codes[3], 3, 200.0)):
        at = data.index[(data["la"] == str(la)) & (data["period"] == periods[k].label)][0]
        moves[at] = value
    data["placement_moves_12m"] = moves
    return data, periods


def our_input(data: pd.DataFrame, periods: list, study: StudyFile) -> ResultsInput:  # type: ignore[type-arg]
    keys = ["la", "period"]
    cohort = data.groupby(keys).size().rename("n").reset_index()
    binary = pd.concat([data.groupby(keys)[o].agg(n="size", events="sum").reset_index()
                        .assign(outcome=o) for o in BINARY])
    mags = []
    for o in COUNTS:
        g = data.groupby(keys)[o]
        ev = pd.DataFrame({
            "n": g.size(), "total": g.sum(), "top1": g.max(),
            "top2": g.apply(lambda s: np.sort(s.to_numpy())[::-1][1:2].sum()),
            "top_n": g.apply(lambda s: np.sort(s.to_numpy())[::-1][:2].sum()),
            "minimum": g.min(), "maximum": g.max(), "negatives": (g.min() < 0).astype(int),
        }).reset_index().assign(outcome=o)
        mags.append(ev)
    fix = {"la": "la_code"}
    empty = pd.DataFrame()
    return ResultsInput(
        la_codes=list(study.la_codes), periods=periods,
        cohort=cohort.rename(columns=fix).astype({"la_code": int}),
        binary=binary.rename(columns=fix).astype({"la_code": int}),
        magnitude=pd.concat(mags).rename(columns=fix).astype({"la_code": int}),
        flow=pd.DataFrame(columns=["step", "label", "n"]),
        estimates=empty.reindex(columns=["outcome", "analysis", "estimate", "ci_low", "ci_high",
                                         "p_value", "ri_p_value", "dof"]),
        event_study=empty.reindex(columns=["outcome", "event_time", "estimate", "ci_low",
                                           "ci_high", "n"]))


@pytest.fixture(scope="module")
def acro_flags(tmp_path_factory: pytest.TempPathFactory, nwd_study: StudyFile
               ) -> tuple[dict, pd.DataFrame, list]:  # type: ignore[type-arg]
    if not ACRO_PYTHON.exists():
        pytest.skip(f"no ACRO environment at {ACRO_PYTHON}: python -m venv /tmp/acro-venv && "
                    "/tmp/acro-venv/bin/pip install acro (or set $ACRO_PYTHON)")
    folder = tmp_path_factory.mktemp("acro")
    data, periods = microdata(nwd_study, seed=11)
    data.to_csv(folder / "micro.csv", index=False)
    spec = ([{"name": "cohort", "subset": None, "values": None, "aggfunc": None}]
            + [{"name": f"events_{o}", "subset": o, "values": None, "aggfunc": None}
               for o in BINARY]
            + [{"name": f"mean_{o}", "subset": None, "values": o, "aggfunc": "mean"}
               for o in COUNTS])
    (folder / "spec.json").write_text(json.dumps(spec))
    run = subprocess.run([str(ACRO_PYTHON), str(HERE / "acro_runner.py"),
                          str(folder / "micro.csv"), str(folder / "spec.json"),
                          str(folder / "out.json")], capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((folder / "out.json").read_text()), data, periods


def test_our_primary_rules_flag_every_cell_acro_flags(acro_flags, nwd_study: StudyFile
                                                      ) -> None:  # type: ignore[no-untyped-def]
    acro, data, periods = acro_flags
    rules = nwd_study.disclosure
    ours_input = our_input(data, periods, nwd_study)
    released = check_results(ours_input, nwd_study)
    names = {str(code): nwd_study.la(code).name for code in nwd_study.la_codes}
    summary: dict[str, dict[str, int]] = {}
    for table, got in acro["tables"].items():
        keys = ["la", "period"]
        if table.startswith("mean_"):
            o = table.removeprefix("mean_")
            mag = ours_input.magnitude
            ev = mag[mag["outcome"] == o].set_index(["la_code", "period"])
            flags = magnitude_unsafe(MagnitudeEvidence(
                n=ev["n"].to_numpy(np.int64), total=ev["total"].to_numpy(float),
                top1=ev["top1"].to_numpy(float), top2=ev["top2"].to_numpy(float),
                top_n=ev["top_n"].to_numpy(float), minimum=ev["minimum"].to_numpy(float),
                maximum=ev["maximum"].to_numpy(float), negatives=ev["negatives"].to_numpy()),
                rules)
            mine = dict(zip([(str(la), p) for la, p in ev.index],
                            flags[THRESHOLD] | flags[DOMINANCE] | flags[P_RATIO]
                            | flags["all_same"], strict=True))
        else:
            sub = data if table == "cohort" else data[data[table.removeprefix("events_")] == 1]
            counts = sub.groupby(keys).size().reindex(
                pd.MultiIndex.from_product([sorted(data["la"].unique()),
                                            [p.label for p in periods]]), fill_value=0)
            small, zero = frequency_unsafe(counts.to_numpy(), rules)
            mine = dict(zip(counts.index, small | zero, strict=True))
        shown = released.output(table).table
        acro_cells = [(r, c) for r, cols in got["flags"].items() for c, checks in cols.items()
                      if checks]
        missed = [cell for cell in acro_cells if not mine[cell]]
        assert not missed, f"{table}: ACRO flags cells our rules pass: {missed}"
        not_hidden = [cell for cell in acro_cells if shown.loc[names[cell[0]], cell[1]] != "c"]
        assert not not_hidden, f"{table}: ACRO-flagged cells published: {not_hidden}"
        summary[table] = {"cells": len(mine), "acro_flagged": len(acro_cells),
                          "ours_flagged": int(sum(mine.values())),
                          "ours_only": int(sum(mine.values())) - len(acro_cells),
                          "suppressed_in_release": int((shown.drop(index="Total", columns="Total",
                                                                   errors="ignore") == "c")
                                                       .to_numpy().sum())}
    assert sum(s["acro_flagged"] for s in summary.values()) > 20  # the comparison has teeth
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "acro-crosscheck.json").write_text(json.dumps(
        {"acro_version": acro.get("acro_version"), "tables": summary}, indent=2))
