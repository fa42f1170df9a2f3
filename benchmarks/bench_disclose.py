"""Time to check a release of realistic size, what the protection costs, and what a second
release (after one child left the data) costs when checked jointly with the first.

    python benchmarks/bench_disclose.py                  # scale 0.25 of the target sample
    python benchmarks/bench_disclose.py --scale 1        # the study's target sample
    python benchmarks/bench_disclose.py --period year    # yearly tables (fewer cells)

Input: a made-up cohort (`trialvault.disclose.example`) for the NWD study, aggregated by the
same code a release uses: five LAs × the study's table periods × condition, every outcome of
the study, baseline characteristics, estimates and an event study. Timed (CPU seconds, best of
`--repeat`): `check_results` — primary rules, secondary suppression over all linked count
tables, rounding, the integer audit, means, models. Baseline in the same run: the primary rules
alone on the same tables (what ACRO does, no secondary suppression); the full check is reported
as a ratio to it. Then the same results minus one child checked against the first release
(`earlier=`): its ratio to the single check. Writes benchmarks/out/bench_disclose*.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trialvault.disclose.across import Earlier
from trialvault.disclose.check import check_results
from trialvault.disclose.example import example_results
from trialvault.disclose.frequency import build_group
from trialvault.disclose.inputs import ResultsInput
from trialvault.disclose.protect import primary_cells
from trialvault.disclose.rules import MagnitudeEvidence, magnitude_unsafe
from trialvault.study import StudyFile, load_study

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"


def primary_only(results: ResultsInput, study: StudyFile) -> int:
    """The baseline: every primary rule on the same tables, nothing else. Returns cells hit."""
    rules = study.disclosure
    group, _ = build_group(results, study, [study.la(c).name for c in results.la_codes])
    hit = len(primary_cells(group, rules, rounding=True))
    m = results.magnitude
    flags = magnitude_unsafe(MagnitudeEvidence(
        n=m["n"].to_numpy(np.int64), total=m["total"].to_numpy(float),
        top1=m["top1"].to_numpy(float), top2=m["top2"].to_numpy(float),
        top_n=m["top_n"].to_numpy(float), minimum=m["minimum"].to_numpy(float),
        maximum=m["maximum"].to_numpy(float), negatives=m["negatives"].to_numpy(np.int64),
        nonzero=m["nonzero"].to_numpy(np.int64)), rules)
    return hit + int(np.any(np.stack(list(flags.values())), axis=0).sum())


def minus_one_child(results: ResultsInput) -> ResultsInput:
    """The same release after the largest stratum lost one child who had no outcome value."""
    strata = results.strata.copy()
    k = int(strata["n"].idxmax())
    strata.loc[k, "n"] -= 1
    key = tuple(strata.loc[k, ["la_code", "period", "exposed"]])
    out = results.outcomes.copy()
    hit = out[["la_code", "period", "exposed"]].apply(tuple, axis=1) == key
    for i in out.index[hit]:
        col = "undefined" if out.loc[i, "undefined"] > 0 else "missing" if \
            out.loc[i, "missing"] > 0 else "measured"
        out.loc[i, col] -= 1
        if col == "measured" and out.loc[i, "events"] > out.loc[i, "measured"]:
            out.loc[i, "events"] -= 1
    base = results.baseline.copy()
    for char in base["characteristic"].unique():
        rows = base[(base["characteristic"] == char) & (base["exposed"] == key[2])
                    & (base["n"] > 0)].index
        base.loc[rows[0], "n"] -= 1
    return replace(results, strata=strata, outcomes=out, baseline=base)


def cpu(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        clock = time.process_time()
        out = fn()
        best = min(best, time.process_time() - clock)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--period", choices=["half-year", "year"], default="half-year")
    args = parser.parse_args()
    study = load_study(STUDY)
    study = study.replace(disclosure=study.disclosure.replace(table_period=args.period))
    results = example_results(study, seed=args.seed, scale=args.scale)
    base_s, base_hits = cpu(lambda: primary_only(results, study), args.repeat)
    full_s, release = cpu(lambda: check_results(results, study), args.repeat)
    earlier = Earlier.from_internal("REL-1", release.internal_json())
    later = minus_one_child(results)
    joint_s, second = cpu(lambda: check_results(later, study, earlier=[earlier]), args.repeat)
    counts = [o for o in release.outputs if o.kind == "counts"]
    cells = [c for r in release.reviews.values() for c in r.cells]
    suppressed = [c for c in cells if c.action == "suppressed"]
    findings = [f for r in release.reviews.values() for f in r.audit]
    widths = [f["high"] - f["low"] for f in findings if f["high"] is not None]
    figures = {
        "scale": args.scale, "period": args.period, "seed": args.seed,
        "main_analysis": int(results.strata["n"].sum()),
        "count_cells": sum(o.table.size for o in counts), "outputs": len(release.outputs),
        "primary_only_cpu_s": round(base_s, 4), "primary_cells_flagged": base_hits,
        "full_check_cpu_s": round(full_s, 3), "ratio_full_to_primary": round(full_s / base_s, 1),
        "suppressed_cells": len(suppressed),
        "secondary_cells": sum(c.rule == "secondary" for c in suppressed),
        "all_protected": all(f["protected"] for f in findings),
        "narrowest_proven_range": min(widths, default=None),
        "second_release_cpu_s": round(joint_s, 3),
        "ratio_second_to_first": round(joint_s / full_s, 2),
        "second_release_jointly_protected": all(a["all_protected"] for a in second.across),
        "threshold": study.disclosure.threshold,
    }
    for key, value in figures.items():
        print(f"{key:34} {value}")
    OUT.mkdir(parents=True, exist_ok=True)
    name = "bench_disclose.json" if args.scale == 0.25 and args.period == "half-year" else (
        f"bench_disclose_scale{args.scale:g}_{args.period}.json")
    (OUT / name).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
