"""Start-up time of the `trialvault` command: `--help`, `--version` and one stage's help.

    python benchmarks/bench_startup.py               # 15 runs each, median wall time
    python benchmarks/bench_startup.py --runs 30

Each case is a fresh `python -c "from trialvault.cli import app; app()" ARGS` process (what the
installed `trialvault` script runs), timed wall-clock from spawn to exit. Baseline in the same
run: `python -c pass` (interpreter start-up alone), so the ratio shows what trialvault itself
adds on this machine whatever its load. Target (issue 20): `--help` and `--version` under 0.5 s.
Also reported: which heavy libraries each case imported. Writes
benchmarks/out/bench_startup.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
HEAVY = ("duckdb", "pandas", "numpy", "scipy", "statsmodels", "matplotlib", "pyarrow")
CASES: dict[str, list[str]] = {
    "--help": ["--help"],
    "--version": ["--version"],
    "check --help": ["check", "--help"],
    "rights --help": ["rights", "--help"],
    "evaluate --help": ["evaluate", "--help"],
}
RUN_CLI = "import sys; from trialvault.cli import app; app()"
PROBE = ("import sys; sys.argv = ['trialvault', *{args!r}]\n"
         "from trialvault.cli import app\n"
         "try:\n    app()\nexcept SystemExit:\n    pass\n"
         f"print(','.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")


def _time(argv: list[str], runs: int) -> list[float]:
    env = {**os.environ, "COLUMNS": "80"}
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       env=env)
        times.append(time.perf_counter() - started)
    return times


def _heavy_imports(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                          text=True, check=True)
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return [m for m in last.split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()
    baseline = _time([sys.executable, "-c", "pass"], options.runs)
    base = statistics.median(baseline)
    results = {"python -c pass": {"median_s": round(base, 4), "ratio": 1.0, "heavy": []}}
    print(f"{'case':<18} {'median s':>9} {'ratio':>7}  heavy imports")
    print(f"{'python -c pass':<18} {base:>9.3f} {1.0:>7.1f}")
    for name, args in CASES.items():
        median = statistics.median(_time([sys.executable, "-c", RUN_CLI, *args], options.runs))
        heavy = _heavy_imports(args)
        results[name] = {"median_s": round(median, 4), "ratio": round(median / base, 2),
                         "heavy": heavy}
        print(f"{name:<18} {median:>9.3f} {median / base:>7.1f}  {', '.join(heavy) or '-'}")
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_startup.json").write_text(json.dumps({
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "runs": options.runs, "cpus": os.cpu_count(), "results": results,
        "target_s": {"--help": 0.5, "--version": 0.5},
    }, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
