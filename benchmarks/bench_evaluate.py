"""Full evaluation time on the five-LA synthetic trial, and its coverage against the truth.

    python benchmarks/bench_evaluate.py                       # scale 1 (the study's volumes)
    python benchmarks/bench_evaluate.py --scale 30            # 30x the children (30 copies)
    python benchmarks/bench_evaluate.py --coverage-seeds 50   # + coverage / null rejection

Timing: simulates the synthetic trial (`trialvault.synth.simulate`, fault-free), loads its
harmonised tables into an in-memory DuckDB and times `run_evaluation` for every outcome of the
NWD study: cohort + outcome SQL, logit and LPM fits, randomisation inference over all 120
assignments, wild cluster bootstrap with 999 Webb draws, Callaway–Sant'Anna (target: < 60 s at
scale 1). Baseline in the same run: one cluster-robust OLS fit of the primary outcome on the
same design (the naive analysis); the full evaluation is reported as a ratio to it.

Coverage (`--coverage-seeds N`): for seeds 1..N, a trial with the risk difference `--effect`
planted on the primary outcome and one with no effect, each evaluated for the primary outcome;
reports how often each 95% CI covers the planted value (target >= 90%) and how often p < 0.05
with no effect (target about 5%). Writes benchmarks/out/bench_evaluate*.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import statsmodels.api as sm

from trialvault.evaluate.cohort import build_analysis_table
from trialvault.evaluate.design import build_design
from trialvault.evaluate.results import package_versions
from trialvault.evaluate.run import run_evaluation
from trialvault.evaluate.summary import render_summary
from trialvault.evaluate.validation import (
    coverage_summary,
    load_harmonised_tables,
    simulate,
    truth_run,
)
from trialvault.study import StudyFile, load_study

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"
TARGET_SECONDS = 60.0
TARGET_COVERAGE = 0.90


def time_evaluation(study: StudyFile, *, scale: float, seed: int, effect: float,
                    copies: int = 1) -> dict[str, Any]:
    primary = study.analysis.primary_outcome.id
    clock = time.perf_counter()
    world = simulate(study, seed=seed, scale=scale, effects={primary: effect})
    tables = world.harmonised()
    simulate_s = time.perf_counter() - clock
    con = duckdb.connect()
    load_harmonised_tables(con, tables)
    del world, tables
    if copies > 1:
        # k copies of the world with distinct child codes: k times the rows and the cohort.
        for (name,) in con.execute("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = 'harmonised'").fetchall():
            con.execute(f"CREATE OR REPLACE TABLE harmonised.{name} AS SELECT * REPLACE "
                        "(child_id || '~' || CAST(r.i AS VARCHAR) AS child_id) "
                        f"FROM harmonised.{name} CROSS JOIN range({copies}) AS r(i)")
    rows = {str(name): int(n) for name, n in con.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables() "
        "WHERE schema_name = 'harmonised'").fetchall()}

    clock = time.perf_counter()
    res = run_evaluation(con, study, seed=seed)
    evaluate_s = time.perf_counter() - clock

    # Baseline: the naive analysis (one cluster-robust OLS of the primary outcome).
    analysis = build_analysis_table(con, study).analysis
    design = build_design(analysis, primary, list(study.analysis.covariates))
    clock = time.perf_counter()
    sm.OLS(design.y, np.column_stack([design.x, design.W])).fit(
        cov_type="cluster", cov_kwds={"groups": design.cluster})
    baseline_s = time.perf_counter() - clock
    con.close()

    stages: dict[str, float] = {}
    for key, seconds in res.timings.items():
        stage = key.split(":")[0]
        stages[stage] = stages.get(stage, 0.0) + seconds
    return {
        "scale": scale * copies, "data": (f"{copies} copies of the synthetic world at scale "
                                          f"{scale:g} (child codes made distinct)"
                                          if copies > 1 else f"synthetic world, scale {scale:g}"),
        "seed": seed, "planted_effect": effect, "harmonised_rows": rows,
        "cohort": res.cohort_size, "simulate_s": round(simulate_s, 2),
        "evaluate_s": round(evaluate_s, 2), "baseline_naive_ols_s": round(baseline_s, 3),
        "ratio_to_baseline": round(evaluate_s / baseline_s, 1),
        "target_s": TARGET_SECONDS, "within_target": evaluate_s < TARGET_SECONDS,
        "stages_s": {k: round(v, 2) for k, v in sorted(stages.items())},
        "ri_assignments": int(res.few_cluster.query("method == 'randomisation'")["replicates"]
                              .max()),
        "wcb_draws": int(res.few_cluster.query("method == 'wild_cluster_bootstrap'")
                         ["replicates"].max()),
        "summary": render_summary(res),
    }


def _one(args: tuple[StudyFile, int, float, float]) -> dict[str, Any]:
    study, seed, effect, scale = args
    return truth_run(study, seed=seed, effect=effect, scale=scale)


def coverage(study: StudyFile, seeds: int, *, effect: float, scale: float, jobs: int
             ) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": seeds, "scale": scale, "planted_effect": effect}
    for label, value in (("planted", effect), ("null", 0.0)):
        # The study is read once (in main) and handed over, never re-read per task.
        tasks = [(study, s, value, scale) for s in range(1, seeds + 1)]
        clock = time.perf_counter()
        if jobs > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                runs = []
                for i, run in enumerate(pool.map(_one, tasks), 1):
                    runs.append(run)
                    print(f"  {label} seed {run['seed']} ({i}/{seeds}) done", file=sys.stderr)
        else:
            runs = []
            for i, task in enumerate(tasks, 1):
                runs.append(_one(task))
                print(f"  {label} seed {task[1]} ({i}/{seeds}) done", file=sys.stderr)
        frame = pd.DataFrame(runs)
        out[label] = {**coverage_summary(frame), "wall_s": round(time.perf_counter() - clock, 1),
                      "runs": frame.round(6).to_dict(orient="records")}
    out["targets"] = {"coverage_min": TARGET_COVERAGE, "null_rejection_about": 0.05}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="data size; an integer > 1 copies the scale-1 world that many times "
                    "(distinct child codes) unless --simulate-scale")
    ap.add_argument("--simulate-scale", action="store_true",
                    help="simulate at --scale directly (slow at 30: the generator, not the "
                    "evaluation, then dominates)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--effect", type=float, default=0.05,
                    help="risk difference planted on the primary outcome (default 0.05)")
    ap.add_argument("--coverage-seeds", type=int, default=0)
    ap.add_argument("--coverage-scale", type=float, default=1.0)
    ap.add_argument("--jobs", type=int, default=1, help="processes for the coverage runs")
    ap.add_argument("--skip-timing", action="store_true")
    args = ap.parse_args()

    study = load_study(STUDY)
    report: dict[str, Any] = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "packages": package_versions()}
    if not args.skip_timing:
        copies = 1
        sim_scale = args.scale
        if args.scale > 1 and args.scale == int(args.scale) and not args.simulate_scale:
            copies, sim_scale = int(args.scale), 1.0
        timing = time_evaluation(study, scale=sim_scale, seed=args.seed, effect=args.effect,
                                 copies=copies)
        report["timing"] = timing
        print(timing.pop("summary"))
        print(json.dumps(timing, indent=2))
    if args.coverage_seeds:
        cov = coverage(study, args.coverage_seeds, effect=args.effect, scale=args.coverage_scale,
                       jobs=args.jobs)
        report["coverage"] = cov
        for label in ("planted", "null"):
            print(label, json.dumps({k: v for k, v in cov[label].items() if k != "runs"},
                                    indent=2))
    OUT.mkdir(parents=True, exist_ok=True)
    name = "bench_evaluate" + ("" if args.scale == 1 else f"_scale{args.scale:g}")
    name += "_coverage" if args.coverage_seeds else ""
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
