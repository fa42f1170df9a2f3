"""Operating characteristics of the primary analysis under data that break the model.

    nice -n 10 python benchmarks/bench_operating.py --reps 200 --jobs 2 --full 4
    nice -n 10 python benchmarks/bench_operating.py --reps 20 --full 1   # quick look

For every scenario (a named departure of `trialvault synth --scenario`, at the trial's scale:
scale 1 ≈ 18,000 children), `--reps` trials are drawn with the fast cohort-level path
(`trialvault.synth.simulate_cohort`: the generator's outcome model without case histories) with
the primary effect planted, and `--reps` with no effect (once per distinct null: base, ramp and
the large effects share theirs, since with no effect planted their data are the same). Each
trial is analysed by every estimator × inference method, the candidates for the plan's primary
inference included. Reported per method: bias and empirical SE of the estimate against the
estimand (the mean effect among exposed children, from the truth), mean reported SE, median CI
width, coverage of the 95% CI, power (p < 0.05 with the effect planted) and the rejection rate
at 5% with no planted effect (size).

`--order random` (the default) draws the rollout order of each trial afresh, as the trial
does (`design randomise`): randomisation inference is exact over that draw, and every method is
measured over the same draws. `--order fixed` keeps the study file's order for every trial.

`--full N` also runs N trials per scenario through the whole pipeline (case histories →
harmonised tables → cohort SQL → the plan's primary analysis), including the `in_care_moves`
and `missing_neet` scenarios that only the histories can express, and compares their estimates
with the fast path's. Writes docs/operating-characteristics.md and
benchmarks/out/bench_operating.json; prints the wall time. Targets (issue 17): the primary
inference covers 93–97% and rejects ≤ 6% with no effect under every scenario.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from trialvault.design.simulate import with_drawn_order
from trialvault.evaluate.bootstrap import wild_cluster_bootstrap
from trialvault.evaluate.design import build_design
from trialvault.evaluate.headline import (
    estimate_effects,
    model_rows,
    prepare_model,
    randomisation_effect,
)
from trialvault.evaluate.results import package_versions
from trialvault.evaluate.small_sample import cluster_robust_contrast
from trialvault.study import StudyFile, load_study
from trialvault.synth import simulate_cohort

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "no-wrong-door.toml"
DOC = REPO / "docs" / "operating-characteristics.md"
OUT = REPO / "benchmarks" / "out"
PRIMARY = "entered_care_12m"
# name -> (planted effect, scenario settings, description)
SCENARIOS: dict[str, tuple[float, dict[str, float], str]] = {
    "base": (-0.04, {}, "the model's own assumptions (constant effect)"),
    "la_period": (-0.04, {"la_period_sd": 0.04}, "LA × quarter random variation, SD 0.04"),
    "ramp": (-0.06, {"effect_ramp_quarters": 8}, "effect builds to −0.06 over 8 quarters"),
    "effect_by_la": (-0.04, {"effect_la_sd": 0.02}, "effect differs by LA, SD 0.02"),
    "la_trends": (-0.04, {"la_trend_sd": 0.04}, "LA-specific linear trends, SD 0.04"),
    "large_negative": (-0.10, {}, "planted −0.10 (clipped at 0 for low-risk children)"),
    "large_positive": (0.10, {}, "planted +0.10"),
}
# Scenarios only the full pipeline can express (case histories, NEET file).
FULL_ONLY: dict[str, tuple[float, dict[str, float], str]] = {
    "in_care_moves": (-0.04, {"in_care_moves": 1.0},
                      "children in care for years with placement changes in the window"),
    "missing_neet": (-0.04, {"missing_neet": 0.3}, "informative missingness of NEET records"),
}
# Scenarios whose null trials are the same data: with no effect planted, a ramp or a large
# effect changes nothing, so their size is measured once, on base's null trials.
NULL_OF: dict[str, str] = {name: ("base" if name in ("ramp", "large_negative", "large_positive")
                                  else name) for name in {**SCENARIOS, **FULL_ONLY}}
# effect_by_la's "null" trials still carry LA deviations from the zero effect: the mean effect
# among exposed children is not zero, so their rejection rate is not a size.
NOT_A_TRUE_NULL = ("effect_by_la",)
MODEL_BASED = ("cr2", "lmm_satterthwaite", "lmm_kenward_roger", "model_hc1")
# Candidates for the primary inference of the plan's estimand (exposure-time model).
CANDIDATES = ("cr2", "cr2_t4", "cr3_t4", "cr3_bm", "lmm_satterthwaite", "lmm_kenward_roger",
              "randomisation", "randomisation_constant_shift", "randomisation_profile_shift",
              "randomisation_t_constant_shift", "randomisation_t_profile_shift")
TARGET_COVERAGE = (0.93, 0.97)
TARGET_SIZE = 0.06


def _row(model: str, method: str, r: Any) -> dict[str, Any]:
    return {"model": model, "method": method, "estimate": r.estimate,
            "se": getattr(r, "se", np.nan), "ci_low": r.ci_low, "ci_high": r.ci_high,
            "p_value": r.p_value}


def analyse(frame: pd.DataFrame, study: StudyFile, *, seed: int,
            only_primary: bool = False, few: bool = True) -> list[dict[str, Any]]:
    """Every estimator × method on one trial's analysis table (or the plan's primary only).
    The costly sensitivity methods (the immediate model's mixed models, the wild bootstrap)
    run only when `few` (the first `--reps-few` trials): the candidates for the primary run on
    every trial."""
    a = study.analysis
    rows = model_rows(frame, PRIMARY, study)
    free = model_rows(frame, PRIMARY, study, transition=False)
    out: list[dict[str, Any]] = []
    if only_primary:
        if a.primary_inference == "randomisation":
            r = randomisation_effect(free, PRIMARY, study)
        else:
            prepared = prepare_model(rows, PRIMARY, study)
            (r,), _ = estimate_effects(prepared, PRIMARY, study,
                                       methods=(a.primary_inference,))
        return [_row(a.primary_model, a.primary_inference, r)]
    for model in ("immediate", "exposure_time"):
        prepared = prepare_model(rows, PRIMARY, study, model=model)
        methods = MODEL_BASED if (few or model == "exposure_time") else ("cr2", "model_hc1")
        for r in estimate_effects(prepared, PRIMARY, study, model=model,
                                  methods=methods)[0]:
            out.append(_row(model, r.method, r))
        if model == "exposure_time":
            for method, adjustment, reference in (
                    ("cr2_t4", "CR2", "clusters_minus_1"), ("cr3_t4", "CR3", "clusters_minus_1"),
                    ("cr3_bm", "CR3", "bell_mccaffrey")):
                test = cluster_robust_contrast(prepared.X, prepared.y, prepared.cluster,
                                               prepared.contrast, alpha=a.alpha,
                                               adjustment=adjustment, reference=reference)
                out.append(_row(model, method, test))
    for shift in ("constant", "profile"):
        for statistic, name in (("estimate", f"randomisation_{shift}_shift"),
                                ("t", f"randomisation_t_{shift}_shift")):
            r = randomisation_effect(free, PRIMARY, study, model="exposure_time", shift=shift,
                                     statistic=statistic)
            out.append(_row("exposure_time", name, r))
    out.append(_row("immediate", "randomisation",
                    randomisation_effect(free, PRIMARY, study, model="immediate")))
    if not few:
        return out
    design = build_design(rows, PRIMARY, list(a.covariates))
    wb = wild_cluster_bootstrap(design, draws=999, weights="webb",
                                rng=np.random.default_rng(seed), alpha=a.alpha)
    out.append({**_row("immediate", "wild_cluster_bootstrap", wb), "se": np.nan})
    return out


def one_trial(task: tuple[StudyFile, str, int, bool, str, bool]) -> list[dict[str, Any]]:
    study, name, seed, null, order, few = task
    effect, scenario, _ = {**SCENARIOS, **FULL_ONLY}[name]
    if order == "random":
        study = with_drawn_order(study, seed)
    with threadpool_limits(limits=1, user_api="blas"):
        frame, truth = simulate_cohort(study, seed=seed,
                                       effects={PRIMARY: 0.0 if null else effect},
                                       scenario=scenario)
        rows = analyse(frame, study, seed=seed, few=few)
    target = float(truth["estimand"]["value"] or 0.0)
    return [{"scenario": name, "seed": seed, "null": null, "estimand": target, **r}
            for r in rows]


def full_trial(task: tuple[StudyFile, str, int, str]) -> list[dict[str, Any]]:
    """One trial through case histories, harmonised tables and the cohort SQL."""
    import duckdb

    from trialvault.evaluate.cohort import build_analysis_table
    from trialvault.evaluate.validation import load_harmonised_tables
    from trialvault.synth import simulate

    study, name, seed, order = task
    effect, scenario, _ = {**SCENARIOS, **FULL_ONLY}[name]
    if order == "random":
        study = with_drawn_order(study, seed)
    with threadpool_limits(limits=1, user_api="blas"):
        world = simulate(study, seed=seed, effects={PRIMARY: effect}, scenario=scenario)
        truth = world.truth()
        con = duckdb.connect()
        load_harmonised_tables(con, world.harmonised())
        analysis = build_analysis_table(con, study).analysis
        con.close()
        rows = analyse(analysis, study, seed=seed, only_primary=True)
    groups = analysis["cohort_group"].value_counts().to_dict()
    return [{"scenario": name, "seed": seed, "null": False, "path": "full",
             "estimand": float(truth["estimand"]["value"]),
             "looked_after_at_index": int(groups.get("looked_after", 0)),
             "care_leavers": int(groups.get("care_leaver", 0)), **r} for r in rows]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (scenario, model, method), planted in runs[~runs["null"]].groupby(
            ["scenario", "model", "method"]):
        null = runs[runs["null"] & (runs["scenario"] == NULL_OF[str(scenario)])
                    & (runs["model"] == model) & (runs["method"] == method)]
        err = planted["estimate"] - planted["estimand"]
        covered = (planted["ci_low"] <= planted["estimand"]) & (
            planted["estimand"] <= planted["ci_high"])
        width = planted["ci_high"] - planted["ci_low"]
        out.append({"scenario": scenario, "model": model, "method": method,
                    "trials": len(planted), "estimand": planted["estimand"].mean(),
                    "bias": err.mean(), "empirical_se": planted["estimate"].std(ddof=1),
                    "mean_se": planted["se"].mean(), "ci_width": width.median(),
                    "unbounded": int((~np.isfinite(width)).sum()),
                    "coverage": covered.mean(), "power": (planted["p_value"] < 0.05).mean(),
                    "null_from": NULL_OF[str(scenario)], "null_trials": len(null),
                    "size": (null["p_value"] < 0.05).mean() if len(null) else np.nan})
    return pd.DataFrame(out)


def meets(r: pd.Series) -> bool:
    """Issue 17's targets for one scenario's row (size only where the null is a true one)."""
    lo, hi = TARGET_COVERAGE
    size_ok = (r["scenario"] in NOT_A_TRUE_NULL or np.isnan(r["size"])
               or r["size"] <= TARGET_SIZE)
    return bool(lo <= r["coverage"] <= hi and size_ok)


def candidates(table: pd.DataFrame) -> pd.DataFrame:
    """Per candidate for the primary inference (exposure-time model): worst cases over the
    scenarios and the scenarios where a target is missed."""
    out = []
    for method in CANDIDATES:
        g = table[(table["model"] == "exposure_time") & (table["method"] == method)]
        if g.empty:
            continue
        true_null = g[~g["scenario"].isin(NOT_A_TRUE_NULL)]
        missed = [str(r["scenario"]) for _, r in g.iterrows() if not meets(r)]
        out.append({"method": method, "coverage_min": g["coverage"].min(),
                    "coverage_max": g["coverage"].max(),
                    "size_max": true_null.drop_duplicates("null_from")["size"].max(),
                    "power_base": float(g.loc[g["scenario"] == "base", "power"].iloc[0])
                    if (g["scenario"] == "base").any() else np.nan,
                    "width_base": float(g.loc[g["scenario"] == "base", "ci_width"].iloc[0])
                    if (g["scenario"] == "base").any() else np.nan,
                    "missed": ", ".join(missed) or "none"})
    return pd.DataFrame(out)


def _pct(v: float) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1%}"


def _num(v: float, fmt: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return "∞" if math.isinf(v) else format(v, fmt)


def write_doc(table: pd.DataFrame, full: pd.DataFrame, meta: dict[str, Any],
              study: StudyFile, doc: Path = DOC) -> None:
    a = study.analysis
    reps = meta["reps"]
    mc_cov = math.sqrt(0.95 * 0.05 / reps)
    order = ("drawn afresh for every trial (as the trial randomises it)"
             if meta["order"] == "random" else "the study file's, the same for every trial")
    lines = [
        "# Operating characteristics of the primary analysis",
        "",
        "Generated by `benchmarks/bench_operating.py` — do not edit by hand.",
        f"Run {meta['when']}; seeds {meta.get('first_seed', 1)} onwards; {reps} planted "
        f"trials per scenario and {reps} null trials per "
        f"distinct null (the immediate model's mixed models and the wild bootstrap: the first "
        f"{meta['reps_few']}); rollout order {order}; cohort ≈ {meta['cohort']:,} children "
        f"(scale 1); wall time {meta['wall_s'] / 60:.1f} min on {meta['jobs']} process(es) "
        "(nice).",
        "",
        f"Plan: estimand `{a.estimand}`, primary model `{a.primary_model}`, primary inference "
        f"`{a.primary_inference}`"
        + (f" (statistic `{a.randomisation_statistic}`, test inversion of a "
           f"`{a.randomisation_shift}` shift)"
           if a.primary_inference == "randomisation" else "")
        + ". Targets (issue 17): coverage 93–97% and size ≤ 6% for the primary inference in "
        "every scenario.",
        "",
        "Bias and SEs are against the estimand of each trial (truth: the mean effect among "
        "exposed children after clipping, ramp and LA deviations). Size = share of null trials "
        "(no planted effect) with p < 0.05; base, ramp, large_negative and large_positive share "
        "one set of null trials (with no effect planted their data are the same), so their "
        "size is one measurement. `effect_by_la` is not a true null: its null trials keep the "
        "LA deviations (SD 0.02) around a zero mean, so the realised mean effect among the "
        "exposed is not zero and its 'size' is a rejection rate of a real (small) effect; the "
        "size target does not apply there (its coverage target does).",
        "",
        f"Monte Carlo error: with {reps} trials a coverage near 95% has a standard error of "
        f"{mc_cov:.1%} and a size near 5% one of {math.sqrt(0.05 * 0.95 / reps):.1%}; an exactly "
        f"calibrated method lands outside 93–97% in about "
        f"{_outside(reps):.0%} of scenarios by chance. Randomisation inference's p-values are "
        "multiples of 1/120 (the orderings of five LAs): with no effect an exact test has "
        "p < 0.05 in 5/120 = 4.2% of trials.",
        "",
        "## Candidates for the primary inference (exposure-time model, the plan's estimand)",
        "",
        "| method | coverage (min–max over scenarios) | size (max over true nulls) | "
        "power in base | median CI width in base | scenarios missing a target |",
        "|---|---|---|---|---|---|",
    ]
    for _, c in candidates(table).iterrows():
        mark = " (plan)" if c["method"] == a.primary_inference and \
            a.primary_model == "exposure_time" else ""
        lines.append(f"| {c['method']}{mark} | {_pct(c['coverage_min'])}–"
                     f"{_pct(c['coverage_max'])} | {_pct(c['size_max'])} | "
                     f"{_pct(c['power_base'])} | {_num(c['width_base'])} | {c['missed']} |")
    lines += [
        "",
        "Methods: `cr2` CR2 with Bell–McCaffrey df; `cr2_t4` CR2 with t(G − 1 = 4); `cr3_t4` "
        "/ `cr3_bm` CR3 (cluster jackknife) with t(4) / Bell–McCaffrey df; `lmm_*` the nested "
        "exchangeable mixed model with Satterthwaite or Kenward–Roger df; `randomisation` "
        "exact randomisation inference over the 120 orderings of the five LAs with the "
        "plan's statistic and shift (the CI by test inversion); `randomisation_constant_shift` "
        "/ `randomisation_profile_shift` the exposure-time model's estimate of the estimand as "
        "the statistic with the two inversions (a constant shift τ; τ plus the observed "
        "exposure-time profile's deviations from its mean, so a ramp keeps its shape); "
        "`randomisation_t_*` the same with the studentised statistic (the estimate over its "
        "CR0 cluster-robust SE under the same assignment), which stays valid for a weak null "
        "when effects differ between children and LAs (Wu & Ding 2021).",
        "",
        "## Every estimator × method",
        "",
        "| scenario | model | method | trials | estimand | bias | empirical SE | mean SE | "
        "CI width | coverage | power | size |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.sort_values(["scenario", "model", "method"]).iterrows():
        flag = ""
        if (r["model"], r["method"]) == (a.primary_model, a.primary_inference):
            flag = " ✅" if meets(r) else " ❌"
        size = _pct(r["size"]) + (" (not a null)" if r["scenario"] in NOT_A_TRUE_NULL else "")
        width = _num(r["ci_width"]) + (f" ({r['unbounded']} unbounded)"
                                       if r["unbounded"] else "")
        lines.append(
            f"| {r['scenario']} | {r['model']} | {r['method']}{flag} | {r['trials']} | "
            f"{r['estimand']:.4f} | {r['bias']:+.4f} | {r['empirical_se']:.4f} | "
            f"{_num(r['mean_se'])} | {width} | {_pct(r['coverage'])} | {_pct(r['power'])} | "
            f"{size} |")
    lines += ["", "Scenarios:", ""]
    for name, (effect, scenario, text) in {**SCENARIOS, **FULL_ONLY}.items():
        lines.append(f"- `{name}`: {text} (planted {effect:+.2f}; `--scenario` "
                     f"{', '.join(f'{k}={v:g}' for k, v in scenario.items()) or 'none'})")
    if not full.empty:
        lines += ["", "## Full pipeline against the fast path", "",
                  "Trials through case histories, harmonised tables and the cohort SQL "
                  "(primary model and inference), beside the fast path's mean for the same "
                  "scenario:", "",
                  "| scenario | trials | mean estimate | mean estimand | fast-path mean "
                  "estimate | children looked after at index (mean) | covered |",
                  "|---|---|---|---|---|---|---|"]
        for name, g in full.groupby("scenario"):
            fast = table[(table["scenario"] == name) & (table["model"] == a.primary_model)
                         & (table["method"] == a.primary_inference)]
            fast_mean = (fast["estimand"] + fast["bias"]).iloc[0] if len(fast) else np.nan
            covered = ((g["ci_low"] <= g["estimand"]) & (g["estimand"] <= g["ci_high"])).mean()
            lines.append(f"| {name} | {len(g)} | {g['estimate'].mean():.4f} | "
                         f"{g['estimand'].mean():.4f} | {_num(fast_mean)} | "
                         f"{g['looked_after_at_index'].mean():.0f} | {covered:.0%} |")
    lines += ["", "Notes written with the run are in benchmarks/out/bench_operating.json.", ""]
    doc.write_text("\n".join(lines), encoding="utf-8")


def _outside(reps: int) -> float:
    """P(an exactly calibrated 95% interval's measured coverage falls outside 93–97%)."""
    from scipy import stats

    lo, hi = TARGET_COVERAGE
    inside = (stats.binom.cdf(math.floor(hi * reps + 1e-9), reps, 0.95)
              - stats.binom.cdf(math.ceil(lo * reps - 1e-9) - 1, reps, 0.95))
    return float(1 - inside)


def run_trials(args: argparse.Namespace, study: StudyFile
               ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    jobs = max(1, min(args.jobs, 2, os.cpu_count() or 1))
    started = time.perf_counter()
    nulls = sorted({NULL_OF[s] for s in args.scenarios})
    seeds = range(args.first_seed, args.first_seed + args.reps)
    few = args.first_seed + args.reps_few
    tasks = [(study, name, seed, False, args.order, seed < few)
             for name in args.scenarios for seed in seeds]
    tasks += [(study, name, seed, True, args.order, seed < few) for name in nulls
              for seed in seeds]
    full_tasks = [(study, name, 1000 + args.first_seed - 1 + seed, args.order)
                  for name in [*args.scenarios, *FULL_ONLY] for seed in range(args.full)]
    rows: list[dict[str, Any]] = []
    full_rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for i, part in enumerate(pool.map(one_trial, tasks, chunksize=4), 1):
            rows += part
            if i % 50 == 0:
                print(f"  {i}/{len(tasks)} fast trials, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)
        for part in pool.map(full_trial, full_tasks):
            full_rows += part
    cohort = int(simulate_cohort(study, seed=1)[1]["cohort"]["n"])
    meta = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "reps": args.reps,
            "reps_few": args.reps_few, "first_seed": args.first_seed, "order": args.order,
            "jobs": jobs, "wall_s": time.perf_counter() - started, "cohort": cohort,
            "packages": package_versions()}
    return pd.DataFrame(rows), pd.DataFrame(full_rows), meta


def pooled(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Earlier runs (their JSON and the runs CSV beside it) as one run; seeds must differ."""
    metas = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    runs = pd.concat([pd.read_csv(p.with_name(p.stem + "_runs.csv.gz")) for p in paths],
                     ignore_index=True)
    if runs.duplicated(["scenario", "seed", "null", "model", "method"]).any():
        raise SystemExit("pooled runs share seeds: pool runs made with different --first-seed")
    if len({m["order"] for m in metas}) != 1:
        raise SystemExit("pooled runs differ in --order")
    full = pd.DataFrame([r for m in metas for r in m.get("full_pipeline", [])])
    meta = {**metas[-1], "when": ", ".join(m["when"] for m in metas),
            "reps": sum(m["reps"] for m in metas),
            "reps_few": sum(m["reps_few"] for m in metas),
            "wall_s": sum(m["wall_s"] for m in metas), "pooled": len(metas)}
    return runs, full, meta


def plan_method(study: StudyFile) -> str:
    """The bench's name of the plan's randomisation inference (its statistic and shift)."""
    a = study.analysis
    t = "t_" if a.randomisation_statistic == "t" else ""
    return f"randomisation_{t}{a.randomisation_shift}_shift"


def with_plan_alias(runs: pd.DataFrame, study: StudyFile) -> pd.DataFrame:
    """The exposure-time model's `randomisation` rows are those of the plan's statistic and
    shift (so a changed plan needs no rerun: every variant is in every run)."""
    et = runs["model"] == "exposure_time"
    alias = runs[et & (runs["method"] == plan_method(study))].assign(method="randomisation")
    return pd.concat([runs[~(et & (runs["method"] == "randomisation"))], alias],
                     ignore_index=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--reps-few", type=int, default=50,
                    help="trials (per scenario, planted and null) that also run the costly "
                         "sensitivity methods: the immediate model's mixed models and the wild "
                         "bootstrap")
    ap.add_argument("--full", type=int, default=4, help="full-pipeline trials per scenario")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--order", choices=("random", "fixed"), default="random")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--first-seed", type=int, default=1,
                    help="seed of the first trial (a second run with other seeds can be pooled)")
    ap.add_argument("--tag", default="", help="suffix of the output files in benchmarks/out")
    ap.add_argument("--doc", type=Path, default=DOC,
                    help="the page to write (another name for a replication run with other "
                         "seeds, kept beside the main one)")
    ap.add_argument("--pool", nargs="+", metavar="JSON", default=None,
                    help="write the doc from earlier runs' outputs (bench_operating*.json, each "
                         "beside its runs CSV) pooled, without running trials")
    args = ap.parse_args()
    study = load_study(STUDY)
    if args.pool:
        runs, full, meta = pooled([Path(p) for p in args.pool])
    else:
        runs, full, meta = run_trials(args, study)
        OUT.mkdir(parents=True, exist_ok=True)
        # Every trial's row, so the table can be recomputed (other targets, a pooled run, a
        # changed plan) without a rerun.
        runs.to_csv(OUT / f"bench_operating{args.tag}_runs.csv.gz", index=False)
    runs = with_plan_alias(runs, study)
    table = summarise(runs)
    write_doc(table, full, meta, study, args.doc)
    (OUT / f"bench_operating{args.tag}.json").write_text(json.dumps(
        {**meta, "summary": table.to_dict("records"),
         "candidates": candidates(table).to_dict("records"),
         "full_pipeline": full.to_dict("records")}, indent=1, default=str), encoding="utf-8")
    with pd.option_context("display.width", 220, "display.max_rows", 500):
        print(candidates(table).to_string())
    print(f"wall time {meta['wall_s']:.0f} s with {meta['jobs']} process(es); wrote {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
