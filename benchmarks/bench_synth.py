"""Synthetic data generation: rows/s, wall and CPU time, peak memory.

    python benchmarks/bench_synth.py              # scale 1: five LAs, collection years 2019-2026
    python benchmarks/bench_synth.py --scale 30   # ~ all of England (needs ~7 GB of disk)

Times `trialvault.synth.generate_files` (simulate + render every file + truth.json, streaming to
a temporary folder that is deleted afterwards) and reports rows written per second, wall and
process CPU seconds (CPU time is less disturbed by a busy machine) and the peak resident memory
of the process (`resource.getrusage`). Memory stays flat with scale because one chunk of
children is in memory at a time: compare the peak at --scale 1 and --scale 30.

Baseline in the same run: pandas writing the same number of rows of 10 short string columns to
CSV (the cost floor of any CSV writer here); the generator is reported as a ratio to it. At the
default scale the in-memory `simulate` (used by the evaluation's coverage runs) is timed too.
Targets (issue 3): scale 1 in under a minute. Writes benchmarks/out/bench_synth[_scaleX].json.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialvault.study import load_study
from trialvault.synth import generate_files, simulate

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def baseline_csv(rows: int, folder: Path) -> float:
    """Seconds pandas needs to write `rows` rows of 10 short string columns, in 100k chunks."""
    rng = np.random.default_rng(0)
    block = pd.DataFrame({f"C{i}": rng.integers(0, 10**8, size=100_000).astype(str)
                          for i in range(10)})
    started = time.perf_counter()
    with (folder / "baseline.csv").open("w", newline="") as fh:
        left = rows
        while left > 0:
            part = block if left >= len(block) else block.iloc[:left]
            part.to_csv(fh, header=False, index=False)
            left -= len(part)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--error-rate", type=float, default=0.01)
    parser.add_argument("--study", type=Path, default=REPO / "studies" / "no-wrong-door.toml")
    args = parser.parse_args(argv)
    study = load_study(args.study)
    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:
        rss_before = peak_rss_mb()
        cpu0 = cpu_seconds()
        started = time.perf_counter()

        def progress(done: int, total: int, what: str) -> None:
            # Interim figures, so a long --scale 30 run shows memory staying flat as it goes.
            if done % max(1, total // 20) == 0 or done == total:
                print(f"  {done}/{total} chunks ({what}): {time.perf_counter() - started:.0f} s "
                      f"wall, {cpu_seconds() - cpu0:.0f} s CPU, peak RSS {peak_rss_mb():.0f} MB",
                      flush=True)

        summary = generate_files(study, tmp / "out", seed=args.seed, scale=args.scale,
                                 effects={"entered_care_12m": -0.03}, error_rate=args.error_rate,
                                 progress=progress)
        cpu = cpu_seconds() - cpu0
        rss_generate = peak_rss_mb()
        disk = sum(p.stat().st_size for p in (tmp / "out").rglob("*") if p.is_file())
        shutil.rmtree(tmp / "out")
        base = baseline_csv(summary.rows, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    figures: dict[str, Any] = {
        "scale": args.scale, "seed": args.seed, "error_rate": args.error_rate,
        "rows": summary.rows, "children": summary.children, "cohort": summary.cohort,
        "faults": summary.faults, "wall_s": round(summary.seconds, 2), "cpu_s": round(cpu, 2),
        "rows_per_s": round(summary.rows_per_second), "disk_mb": round(disk / 2**20, 1),
        "peak_rss_mb_before": round(rss_before, 1), "peak_rss_mb": round(rss_generate, 1),
        "baseline_csv_s": round(base, 2),
        "ratio_to_baseline": round(summary.seconds / base, 2) if base else None,
        "target_scale1_under_60s": summary.seconds < 60 if args.scale == 1 else None,
    }
    if args.scale == 1:
        started = time.perf_counter()
        world = simulate(study, seed=args.seed, scale=1.0)
        harmonised = world.harmonised()
        figures["simulate_harmonised_s"] = round(time.perf_counter() - started, 2)
        figures["harmonised_rows"] = sum(t.num_rows for t in harmonised.values())
    for key, value in figures.items():
        print(f"{key:>26}: {value}")
    OUT.mkdir(parents=True, exist_ok=True)
    name = "bench_synth.json" if args.scale == 1 else f"bench_synth_scale{args.scale:g}.json"
    (OUT / name).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
