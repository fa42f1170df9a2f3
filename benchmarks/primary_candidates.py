"""Candidates for the plan's primary inference, measured side by side on the same trials.

    nice -n 10 python benchmarks/primary_candidates.py --reps 60 --jobs 2
    nice -n 10 python benchmarks/primary_candidates.py --reps 60 --order random

The exposure-time model's estimate of the estimand (the mean effect among exposed children)
with each inference candidate of issue 17's follow-up:

- `cr2_bm`: CR2 standard error, Bell–McCaffrey df (the plan's primary until now);
- `cr2_t4`: CR2 standard error, t with G − 1 = 4 df;
- `cr3_t4`: CR3 (the cluster jackknife, Bell & McCaffrey's A_g = (I − H_gg)^{-1}), t(G − 1);
- `cr3_bm`: CR3 standard error with the Bell–McCaffrey df of CR2;
- `ri_constant`, `ri_profile`: randomisation inference over the 120 orderings with the estimand's
  estimate as the statistic, CI by inverting a constant shift / a shift of the estimated
  exposure-time profile (`trialvault.evaluate.randomisation.randomisation_estimand`);
- `lmm_satterthwaite`, `lmm_kenward_roger`: the nested exchangeable mixed model.

`--order fixed` draws every trial with the study's rollout; `--order random` draws the rollout
order afresh for each trial (as the trial itself does: randomisation inference is exact over
that draw). Null trials are drawn once per distinct null data-generating process (base, ramp and
the large effects share theirs: no effect planted means the same data). Writes
benchmarks/out/primary_candidates_<order>.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from trialvault.evaluate.headline import (
    estimate_effects,
    model_rows,
    prepare_model,
    randomisation_effect,
)
from trialvault.study import StudyFile, load_study
from trialvault.synth import simulate_cohort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_operating import NULL_OF, PRIMARY, SCENARIOS, permuted_study

REPO = Path(__file__).resolve().parents[1]
STATISTICS = ["estimate", "t"]
OUT = REPO / "benchmarks" / "out"


def cr_variants(X: np.ndarray, y: np.ndarray, cluster: np.ndarray, c: np.ndarray
                ) -> dict[str, tuple[float, float, float]]:
    """(estimate, se, df) of c'β for CR2 (BM df) and CR3; CR3's df = CR2's BM df."""
    q, r = np.linalg.qr(X)
    coef = np.linalg.solve(r, q.T @ y)
    resid = y - X @ coef
    mc = np.linalg.solve(r, np.linalg.solve(r.T, c))
    out: dict[str, list[float]] = {"cr2": [], "cr3": []}
    P2, Qp = [], []
    for g in np.unique(cluster):
        rows = cluster == g
        qg = q[rows]
        s2, vecs = np.linalg.eigh(qg.T @ qg)
        live = s2 > 1e-12
        s = np.sqrt(s2[live])
        u = (qg @ vecs[:, live]) / s
        one_minus = 1.0 - s * s
        ok = one_minus > 1e-8
        v = X[rows] @ mc
        uv = u.T @ v
        f2 = np.where(ok, 1.0 / np.sqrt(np.clip(one_minus, 1e-300, None)), 0.0)
        f3 = np.where(ok, 1.0 / np.clip(one_minus, 1e-300, None), 0.0)
        p2 = v + u @ ((f2 - 1.0) * uv)
        p3 = v + u @ ((f3 - 1.0) * uv)
        out["cr2"].append(float(p2 @ resid[rows]))
        out["cr3"].append(float(p3 @ resid[rows]))
        P2.append(float(p2 @ p2))
        Qp.append(qg.T @ p2)
    Qm = np.asarray(Qp)
    G = np.diag(P2) - Qm @ Qm.T
    df = float(np.trace(G) ** 2 / np.sum(G * G))
    est = float(c @ coef)
    return {k: (est, float(np.sqrt(np.sum(np.square(v)))), df) for k, v in out.items()}


def _row(name: str, est: float, se: float, crit: float, df: float) -> dict[str, Any]:
    t = abs(est) / se
    return {"method": name, "estimate": est, "se": se, "ci_low": est - crit * se,
            "ci_high": est + crit * se, "p_value": float(2 * stats.t.sf(t, df))}


def analyse(frame: pd.DataFrame, study: StudyFile, lmm: bool) -> list[dict[str, Any]]:
    rows = model_rows(frame, PRIMARY, study)
    prepared = prepare_model(rows, PRIMARY, study, model="exposure_time")
    v = cr_variants(prepared.X, prepared.y, prepared.cluster, prepared.contrast)
    G = len(np.unique(prepared.cluster))
    out = []
    est, se2, bm = v["cr2"]
    _, se3, _ = v["cr3"]
    t4 = float(stats.t.ppf(0.975, G - 1))
    out.append(_row("cr2_bm", est, se2, float(stats.t.ppf(0.975, bm)), bm))
    out.append(_row("cr2_t4", est, se2, t4, G - 1))
    out.append(_row("cr3_t4", est, se3, t4, G - 1))
    out.append(_row("cr3_bm", est, se3, float(stats.t.ppf(0.975, bm)), bm))
    free = model_rows(frame, PRIMARY, study, transition=False)
    for statistic in STATISTICS:
        for shift in ("constant", "profile"):
            r = randomisation_effect(free, PRIMARY, study, model="exposure_time", shift=shift,
                                     statistic=statistic)
            name = f"ri_{shift}" if statistic == "estimate" else f"ri_t_{shift}"
            out.append({"method": name, "estimate": r.estimate, "se": np.nan,
                        "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value})
    if lmm:
        methods: tuple[str, ...] = ("lmm_satterthwaite",)
        try:
            from trialvault.evaluate.mixed import kenward_roger  # noqa: F401
            methods += ("lmm_kenward_roger",)
        except ImportError:
            pass
        for r in estimate_effects(prepared, PRIMARY, study, model="exposure_time",
                                  methods=methods)[0]:
            out.append({"method": r.method, "estimate": r.estimate, "se": r.se,
                        "ci_low": r.ci_low, "ci_high": r.ci_high, "p_value": r.p_value})
    return out


def one_trial(task: tuple[StudyFile, str, int, bool, str, bool]) -> list[dict[str, Any]]:
    study, name, seed, null, order, lmm = task
    effect, scenario, _ = SCENARIOS[name]
    if order == "random":
        study = permuted_study(study, seed)
    with threadpool_limits(limits=1, user_api="blas"):
        frame, truth = simulate_cohort(study, seed=seed,
                                       effects={PRIMARY: 0.0 if null else effect},
                                       scenario=scenario)
        rows = analyse(frame, study, lmm)
    target = float(truth["estimand"]["value"] or 0.0)
    return [{"scenario": name, "seed": seed, "null": null, "estimand": target, **r}
            for r in rows]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (scenario, method), g in runs[~runs["null"]].groupby(["scenario", "method"]):
        covered = (g["ci_low"] <= g["estimand"]) & (g["estimand"] <= g["ci_high"])
        null = runs[runs["null"] & (runs["scenario"] == NULL_OF[scenario])
                    & (runs["method"] == method)]
        out.append({"scenario": scenario, "method": method, "trials": len(g),
                    "bias": (g["estimate"] - g["estimand"]).mean(),
                    "emp_se": g["estimate"].std(ddof=1), "mean_se": g["se"].mean(),
                    "coverage": covered.mean(), "width": (g["ci_high"] - g["ci_low"]).median(),
                    "power": (g["p_value"] < 0.05).mean(),
                    "null_trials": len(null), "size": (null["p_value"] < 0.05).mean()})
    return pd.DataFrame(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=60)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--order", choices=("fixed", "random"), default="fixed")
    ap.add_argument("--lmm", action="store_true", help="also the mixed model (slower)")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--statistics", nargs="*", default=STATISTICS)
    args = ap.parse_args()
    STATISTICS[:] = args.statistics
    study = load_study(REPO / "studies" / "no-wrong-door.toml")
    seeds = range(args.first_seed, args.first_seed + args.reps)
    nulls = sorted({NULL_OF[s] for s in args.scenarios})
    tasks = [(study, s, seed, False, args.order, args.lmm) for s in args.scenarios
             for seed in seeds]
    tasks += [(study, s, seed, True, args.order, args.lmm) for s in nulls for seed in seeds]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
        for i, part in enumerate(pool.map(one_trial, tasks, chunksize=2), 1):
            rows += part
            if i % 50 == 0:
                print(f"  {i}/{len(tasks)} trials, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)
    runs = pd.DataFrame(rows)
    table = summarise(runs)
    OUT.mkdir(parents=True, exist_ok=True)
    tag = f"{args.order}_{args.first_seed}_{args.reps}_{'-'.join(args.statistics)}"
    runs.to_csv(OUT / f"primary_candidates_{tag}.csv", index=False)
    (OUT / f"primary_candidates_{tag}.json").write_text(json.dumps(
        {"reps": args.reps, "order": args.order, "first_seed": args.first_seed,
         "wall_s": time.perf_counter() - started, "summary": table.to_dict("records")},
        indent=1), encoding="utf-8")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table.to_string(float_format=lambda x: f"{x:.4f}"))
    print(f"wall {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
