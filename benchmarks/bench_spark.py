"""DuckDB vs Spark local[2]: the same validation rules and cohort/outcome derivations.

    python benchmarks/bench_spark.py                  # scale 0.2 (a quick run)
    python benchmarks/bench_spark.py --scale 1        # the study's target sample
    python benchmarks/bench_spark.py --scale 30       # ≈ all of England (needs time and disk)

Input: synthetic data (`trialvault.synth`): `generate_files` writes the statutory files of every
LA (validation input, read by the real readers); `simulate(...).harmonised()` gives the
harmonised tables (derivation input). Each timed job runs in a fresh subprocess so peak memory
is its own: peak RSS (VmHWM) of the Python process plus, for Spark, of its JVM. Timed:

- validation: every LA's SSDA903 and CIN census returns, typed and checked by all rules
  (`engines.validation.validate_on_engine`); the findings of both engines are compared;
- derivations: cohort.sql + outcomes.sql (`engines.evaluation.build_analysis_on_engine`); the
  analysis tables of both engines are compared.

Spark's session start is reported apart (paid once per job on a cluster). Writes
benchmarks/out/bench_spark.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

from trialvault.cli_common import DEFAULT_STUDY

OUT = Path(__file__).resolve().parent / "out"


def _peak_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _engine(name: str) -> tuple[Any, float, int | None]:
    from trialvault.engines import DuckDBEngine

    if name == "duckdb":
        return DuckDBEngine(), 0.0, None
    from trialvault.engines.spark_engine import SparkEngine, spark_session

    start = time.perf_counter()
    spark = spark_session("local[2]", conf={"spark.driver.memory": "6g"})
    jvm_pid = int(spark._jvm.java.lang.ProcessHandle.current().pid())
    return SparkEngine(spark), time.perf_counter() - start, jvm_pid


def _job(kind: str, engine_name: str, data: str, scale: float, seed: int,
         queue: mp.Queue) -> None:  # type: ignore[type-arg]
    from trialvault.study import load_study

    study = load_study(DEFAULT_STUDY)
    engine, startup, jvm = _engine(engine_name)
    if kind == "validation":
        from trialvault.engines.validation import validate_on_engine
        from trialvault.formats import read_cin_census, read_ssda903
        from trialvault.spec.rules import load_rules

        rulesets = {f: load_rules(f) for f in ("ssda903", "cin_census")}
        start = time.perf_counter()
        issues = 0
        by_rule: dict[str, int] = {}
        rows = 0
        for la_dir in sorted(p for p in Path(data).iterdir() if p.is_dir()):
            sources = [read_ssda903(sorted((la_dir / "ssda903").iterdir())),
                       read_cin_census(sorted((la_dir / "cin_census").glob("*.xml")))]
            rows += sum(s.row_count for s in sources)
            result = validate_on_engine(engine, sources, rulesets)
            issues += result.issue_count
            for fmt, counts in result.counts().items():
                for rule, n in counts.items():
                    by_rule[f"{fmt}:{rule}"] = by_rule.get(f"{fmt}:{rule}", 0) + n
        seconds = time.perf_counter() - start
        summary: dict[str, Any] = {"rows": rows, "issues": issues, "by_rule": by_rule}
    else:
        from trialvault.engines.evaluation import build_analysis_on_engine, excluded_table
        from trialvault.synth import simulate

        tables = simulate(study, seed=seed, scale=scale).harmonised()
        for name, table in tables.items():
            engine.load_table(f"harmonised.{name}", table.select(
                [c for c in table.column_names if c not in ("source_file", "source_line")]))
        start = time.perf_counter()
        built = build_analysis_on_engine(engine, study, excluded=excluded_table([]))
        seconds = time.perf_counter() - start
        analysis = built.analysis.sort_values(["la_code", "child_id"])
        summary = {"rows": sum(t.num_rows for t in tables.values()),
                   "cohort": len(analysis),
                   "checksum": analysis[["la_code", "child_id", "index_date", "exposed",
                                         "entered_care_12m", "placement_moves_12m"]]
                   .astype(str).to_numpy().tolist()}
    peak = _peak_kib() + (_peak_kib(jvm) if jvm else 0)
    engine.close()
    queue.put({"seconds": seconds, "startup_seconds": startup, "peak_mib": peak / 1024,
               **summary})


def run(kind: str, engine: str, data: str, scale: float, seed: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_job, args=(kind, engine, data, scale, seed, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return dict(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20200918)
    args = parser.parse_args()
    from trialvault.study import load_study
    from trialvault.synth import generate_files

    study = load_study(DEFAULT_STUDY)
    report: dict[str, Any] = {"scale": args.scale, "seed": args.seed, "spark_master": "local[2]"}
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        files = Path(tmp) / "files"
        start = time.perf_counter()
        generate_files(study, files, seed=args.seed, scale=args.scale)
        report["generate_seconds"] = round(time.perf_counter() - start, 1)
        for kind in ("validation", "derivations"):
            out = {e: run(kind, e, str(files), args.scale, args.seed) for e in ("duckdb", "spark")}
            if kind == "validation":
                same = out["duckdb"]["by_rule"] == out["spark"]["by_rule"]
            else:
                same = out["duckdb"].pop("checksum") == out["spark"].pop("checksum")
            for e in out:
                out[e].pop("by_rule", None)
            report[kind] = {**out, "identical": same,
                            "spark_over_duckdb": round(out["spark"]["seconds"]
                                                       / max(out["duckdb"]["seconds"], 1e-9), 2)}
            for e, r in out.items():
                print(f"{kind:12s} {e:7s} {r['seconds']:8.1f} s  peak {r['peak_mib']:7.0f} MiB"
                      f"  rows {r['rows']:>9}" + (f"  (Spark start {r['startup_seconds']:.1f} s)"
                                                  if e == "spark" else ""))
            print(f"{kind:12s} identical results: {same}; Spark/DuckDB time "
                  f"{report[kind]['spark_over_duckdb']}")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_spark.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
