"""Time to check a release of realistic size, and what the protection costs.

    python benchmarks/bench_disclose.py                 # scale 1: the study's target sample
    python benchmarks/bench_disclose.py --scale 30      # 30x the children
    python benchmarks/bench_disclose.py --period analysis   # quarterly tables (more cells)

Input: synthetic aggregate results (`trialvault.disclose.example.example_results`) for the NWD
study: five LAs × the study's table periods, five binary outcomes (one rare, one near-universal,
one defined for a subset), three magnitude outcomes, estimates and an event study. Timed:
`check_results` (primary rules, secondary suppression over all linked count tables, rounding,
integer audit, magnitude/model/series rules) — CPU seconds, best of `--repeat`. Baseline in the
same run: the primary rules alone on the same tables (what ACRO does, no secondary suppression);
the full check is reported as a ratio to it. Also reported: LP solves, cells suppressed (primary
and secondary), and the narrowest feasible range the audit proved. Writes
benchmarks/out/bench_disclose.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from trialvault.disclose.check import check_results
from trialvault.disclose.example import example_results, half_years
from trialvault.disclose.frequency import build_group
from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.disclose.protect import primary_cells
from trialvault.disclose.rules import MagnitudeEvidence, magnitude_unsafe
from trialvault.study import StudyFile, load_study

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"


def periods_for(study: StudyFile, kind: str) -> list[Period]:
    last = dt.date(study.data_period.last_year - 1, 12, 31)
    if kind == "half-year":
        return half_years(study.data_period.start, last)
    out = []
    for year in range(study.data_period.first_year, last.year + 1):
        for q in range(4):
            out.append(Period(f"{year} Q{q + 1}", dt.date(year, 3 * q + 1, 1)))
    return out


def primary_only(results: ResultsInput, study: StudyFile) -> int:
    """The baseline: every primary rule on the same tables, nothing else. Returns cells hit."""
    rules = study.disclosure
    group, _ = build_group(results, [study.la(c).name for c in results.la_codes])
    hit = len(primary_cells(group, rules, rounding=True))
    m = results.magnitude
    flags = magnitude_unsafe(MagnitudeEvidence(
        n=m["n"].to_numpy(np.int64), total=m["total"].to_numpy(float),
        top1=m["top1"].to_numpy(float), top2=m["top2"].to_numpy(float),
        top_n=m["top_n"].to_numpy(float), minimum=m["minimum"].to_numpy(float),
        maximum=m["maximum"].to_numpy(float), negatives=m["negatives"].to_numpy(np.int64)),
        rules)
    return hit + int(np.any(np.stack(list(flags.values())), axis=0).sum())


def cpu(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        clock = time.process_time()
        out = fn()
        best = min(best, time.process_time() - clock)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--period", choices=["half-year", "analysis"], default="half-year",
                        help="table columns: the study's half-years, or analysis quarters")
    args = parser.parse_args()
    study = load_study(STUDY)
    results = example_results(study, seed=args.seed, scale=args.scale,
                              periods=periods_for(study, args.period))
    base_s, base_hits = cpu(lambda: primary_only(results, study), args.repeat)
    full_s, release = cpu(lambda: check_results(results, study), args.repeat)
    counts = [o for o in release.outputs if o.kind == "counts"]
    suppressed = [c for o in release.outputs for c in o.changes if c.action == "suppressed"]
    audits = [o.audit for o in counts if o.audit.get("narrowest_range") is not None]
    figures = {
        "scale": args.scale, "period": args.period, "seed": args.seed,
        "cohort": int(results.cohort["n"].sum()),
        "count_cells": sum(o.table.size for o in counts),
        "outputs": len(release.outputs),
        "primary_only_cpu_s": round(base_s, 4), "primary_cells_flagged": base_hits,
        "full_check_cpu_s": round(full_s, 3), "ratio_full_to_primary": round(full_s / base_s, 1),
        "suppressed_cells": len(suppressed),
        "secondary_cells": sum(c.rule == "secondary" for c in suppressed),
        "all_protected": all(o.audit["all_protected"] for o in counts),
        "narrowest_proven_range": min((a["narrowest_range"] for a in audits), default=None),
        "threshold": study.disclosure.threshold,
    }
    for key, value in figures.items():
        print(f"{key:26} {value}")
    OUT.mkdir(parents=True, exist_ok=True)
    name = "bench_disclose.json" if args.scale == 1 and args.period == "half-year" else (
        f"bench_disclose_scale{args.scale:g}_{args.period}.json")
    (OUT / name).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
