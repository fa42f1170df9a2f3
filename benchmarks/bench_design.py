"""Speed of the design stage: `design power` latency and `design simulate` throughput.

    nice -n 10 python benchmarks/bench_design.py                # power + 20 reps, extrapolated
    nice -n 10 python benchmarks/bench_design.py --reps 200     # the full target run

Targets (issue 18): `trialvault design power` answers in < 1 s; `trialvault design simulate`
with 200 reps at the NWD scale (scale 1, ~18,000 children a trial) finishes within 10 minutes
on 2 cores. A run of `--reps N` draws N trials with the effect planted and N with none (the
size), so 200 reps are 400 trials; with fewer reps the wall time is extrapolated linearly
(the trials are independent) and the output says so.

Baselines in the same run: `trialvault --version` as a process (start-up cost every command
pays) for the power latency; one trial in one process for the simulation (its parallel
speed-up). Writes benchmarks/out/bench_design.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "no-wrong-door.toml"
OUT = REPO / "benchmarks" / "out"
POWER_TARGET_S = 1.0
SIMULATE_TARGET_S = 600.0
TARGET_REPS = 200


def _process_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed: {done.stderr}")
    return statistics.median(times)


def bench_power(runs: int) -> dict[str, float]:
    from trialvault.design.analytic import Assumptions, analyse
    from trialvault.design.matrix import from_study, volumes
    from trialvault.study import load_study

    cli = ["trialvault"]
    version = _process_seconds([*cli, "--version"], runs)
    power_cli = _process_seconds([*cli, "design", "power", "--study", str(STUDY), "--json"],
                                 runs)
    study = load_study(STUDY)
    design = from_study(study)
    m = volumes(design, study, None)
    start = time.perf_counter()
    for _ in range(20):
        analyse(design, m, Assumptions(icc=0.01, cac=0.9), baseline=0.08, power=0.8)
    library = (time.perf_counter() - start) / 20
    return {"version_s": version, "power_cli_s": power_cli, "power_library_s": library,
            "ratio_to_startup": power_cli / version}


def bench_simulate(reps: int, jobs: int) -> dict[str, float]:
    from trialvault.design.simulate import simulate_power
    from trialvault.study import load_study

    study = load_study(STUDY)
    effects = {"entered_care_12m": -0.03}
    start = time.perf_counter()
    simulate_power(study, effects=effects, reps=1, null_reps=0, seed=999, jobs=1)
    one = time.perf_counter() - start
    result = simulate_power(study, effects=effects, reps=reps, seed=1, jobs=jobs)
    trials = result.reps + result.null_reps
    per_trial = result.seconds / max(trials, 1)
    return {"reps": reps, "trials": trials, "jobs": jobs, "wall_s": result.seconds,
            "one_trial_one_process_s": one, "speedup": one / per_trial,
            "estimated_wall_s_200_reps": per_trial * 2 * TARGET_REPS,
            "estimated_wall_s_200_reps_no_null": per_trial * TARGET_REPS,
            "power": result.power, "coverage": result.coverage, "size": result.size,
            "failed": result.failed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="process runs for the power latency")
    args = ap.parse_args()
    jobs = max(1, min(args.jobs, os.cpu_count() or 1))
    power = bench_power(args.runs)
    print(f"design power: {power['power_cli_s']:.2f} s as a command "
          f"({power['ratio_to_startup']:.2f}x `trialvault --version`, "
          f"{power['version_s']:.2f} s); library call {1000 * power['power_library_s']:.1f} ms; "
          f"target < {POWER_TARGET_S:.0f} s: "
          f"{'ok' if power['power_cli_s'] < POWER_TARGET_S else 'MISSED'}")
    sim = bench_simulate(args.reps, jobs)
    measured = "measured" if args.reps >= TARGET_REPS else (
        f"extrapolated from {args.reps} reps ({sim['trials']} trials)")
    print(f"design simulate: {sim['trials']} trials in {sim['wall_s']:.0f} s on {jobs} "
          f"process(es) ({sim['speedup']:.2f}x one process); 200 reps + 200 null trials: "
          f"{sim['estimated_wall_s_200_reps'] / 60:.1f} min ({measured}); 200 reps without "
          f"null trials {sim['estimated_wall_s_200_reps_no_null'] / 60:.1f} min; target "
          f"{SIMULATE_TARGET_S / 60:.0f} min: "
          f"{'ok' if sim['estimated_wall_s_200_reps'] <= SIMULATE_TARGET_S else 'MISSED'}")
    print(f"  power {sim['power']:.2f}, coverage {sim['coverage']:.2f}, size {sim['size']:.2f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_design.json").write_text(json.dumps(
        {"power": power, "simulate": sim, "simulate_basis": measured}, indent=1),
        encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
