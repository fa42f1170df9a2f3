"""Rights desk timings on a real encrypted vault: access export and erasure (with re-key).

    python benchmarks/bench_rights.py            # scale 1: 2,000 children, ~52k stored rows
    python benchmarks/bench_rights.py --scale 30 # 60,000 children (the study's referred volume)

Builds a fresh vault in a temporary folder (real key slots with the default Argon2id cost, real
sealed packages, the vault's own ingest), then times, end to end through `rights.service`
(unlock, transaction, audit entry included):

- access:  `execute` of an access request (collect every row of one child from raw and
           harmonised, workbook + letter, seal with age), median of 3 children;
- erasure: `execute` of an erasure request (delete from every table, tombstone, rebuild
           harmonised, audit, then re-key = copy the database under a new key), median of 3.

Baselines in the same run: an empty read-only session (unlock with the default Argon2id cost +
attach + audit entry) and a bare `rekey`; the figures are reported as ratios to them, and
`*_work_s` is end-to-end minus those baselines (the request's own work). Targets (issue 6): erasure
< 30 s and access < 1 s at --scale 30. Writes benchmarks/out/bench_rights.json.
Synthetic rows are random values of the right types (no real data); one LA package each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trialvault.rights import service
from trialvault.seal import generate_identity, write_package
from trialvault.study import load_study
from trialvault.vault import evaluator_recipient, ingest_packages, init_vault, open_vault, rekey
from trialvault.vault.schema import TABLES, package_columns

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"
CHILDREN_PER_SCALE = 2000
# Rows per child and table: a plausible CSC history (2 referrals, 9 school terms, 6 NEET months).
ROWS_PER_CHILD = {"children": 1, "referrals": 2, "assessments": 2, "s47": 1, "cin_plans": 1,
                  "cp_plans": 1, "cla_episodes": 2, "missing": 1, "attendance": 9, "neet": 6}
USER, PASSWORD = "bench", "benchmark password (synthetic data only)"
REPEATS = 3


def _table(rng: np.random.Generator, name: str, la: int, children: np.ndarray) -> pa.Table:
    per = ROWS_PER_CHILD[name]
    ids = np.repeat(children, per)
    n = len(ids)
    day0 = np.datetime64("2019-01-01")
    cols: dict[str, pa.Array] = {}
    for col, kind in package_columns(name):
        if col == "la_code":
            cols[col] = pa.array(np.full(n, la, dtype=np.int32))
        elif col == "child_id":
            cols[col] = pa.array(ids.astype(str))
        elif col == "source_file":
            cols[col] = pa.array(np.full(n, f"{name}.csv"))
        elif col == "source_line":
            cols[col] = pa.array(np.arange(2, n + 2, dtype=np.int32))
        elif kind == "INTEGER":
            cols[col] = pa.array(rng.integers(0, 216, n, dtype=np.int32))
        elif kind == "DATE":
            cols[col] = pa.array(day0 + rng.integers(0, 7 * 365, n).astype("timedelta64[D]"))
        elif kind == "BOOLEAN":
            cols[col] = pa.array(rng.random(n) < 0.1)
        else:
            cols[col] = pa.array(rng.choice(np.array(["A1", "B2", "C2", "N4", "K2", "WBRI"]), n))
    return pa.table(cols)


def build_vault(folder: Path, scale: float, seed: int) -> tuple[Path, dict[str, Any]]:
    study = load_study(STUDY)
    rng = np.random.default_rng(seed)
    vault = folder / "vault"
    init_vault(vault, USER, PASSWORD, study_id=study.study.id)
    recipient = evaluator_recipient(vault)
    total = max(len(study.la_codes), round(CHILDREN_PER_SCALE * scale))
    per_la = total // len(study.la_codes)
    packages = []
    for la in study.la_codes:
        children = np.array([f"{la}-{i:07d}" for i in range(per_la)])
        tables = {t: _table(rng, t, la, children) for t in TABLES}
        path = folder / f"la{la}.tvpkg"
        write_package(path, [recipient], {"study_id": study.study.id, "spec_version":
                                          study.study.spec_version, "la_code": la,
                                          "extract_date": "2025-04-01"}, tables, b"")
        packages.append(path)
    t0 = time.perf_counter()
    report = ingest_packages(vault, USER, PASSWORD, packages, study=study)
    info = {"children": per_la * len(study.la_codes), "children_per_la": per_la,
            "raw_rows": sum(sum(p.rows.values()) for p in report.ingested),
            "ingest_seconds": round(time.perf_counter() - t0, 3)}
    return vault, info


CPU: dict[str, list[float]] = {}


def _timed(fn: Callable[[], Any], label: str = "") -> float:
    """Wall seconds of fn(); its process CPU seconds (all threads) go to CPU[label]."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    CPU.setdefault(label, []).append(time.process_time() - c0)
    return wall


def run(scale: float, seed: int) -> dict[str, Any]:
    study = load_study(STUDY)
    today = dt.date.today()
    la = study.la_codes[0]
    with tempfile.TemporaryDirectory(prefix="bench-rights-") as tmp:
        folder = Path(tmp)
        vault, info = build_vault(folder, scale, seed)
        info["vault_bytes"] = (vault / "vault.duckdb").stat().st_size
        v = service.Vault(vault, USER, PASSWORD)

        def empty_session() -> None:
            with open_vault(vault, USER, PASSWORD, command="bench", args={}, write=False):
                pass

        baseline = statistics.median(_timed(empty_session, "baseline") for _ in range(REPEATS))
        _, recipient = generate_identity()
        access, erasure = [], []
        for i in range(REPEATS):
            rid = service.new_request(v, study, type="access", la_code=la,
                                      child_id=f"{la}-{i:07d}", received=today,
                                      channel="email", note=None, today=today)
            access.append(_timed(lambda rid=rid: service.execute(
                v, study, rid, today=today, recipient=recipient, out_dir=folder / "out"),
                "access"))
        for i in range(REPEATS):
            rid = service.new_request(v, study, type="erasure", la_code=la,
                                      child_id=f"{la}-{100 + i:07d}", received=today,
                                      channel="post", note=None, today=today)
            erasure.append(_timed(lambda rid=rid: service.execute(v, study, rid, today=today),
                                  "erasure"))
        bare_rekey = _timed(lambda: rekey(vault, USER, PASSWORD), "rekey")
    access_s, erasure_s = statistics.median(access), statistics.median(erasure)
    return {
        "benchmark": "rights", "scale": scale, "seed": seed, **info,
        "baseline_empty_session_s": round(baseline, 3),
        "access_export_s": round(access_s, 3), "access_runs_s": [round(a, 3) for a in access],
        "access_vs_empty_session": round(access_s / baseline, 2),
        # The request's own work: end-to-end minus the cost of opening the vault at all.
        "access_work_s": round(access_s - baseline, 3),
        "erasure_with_rekey_s": round(erasure_s, 3),
        "erasure_runs_s": [round(e, 3) for e in erasure],
        "bare_rekey_s": round(bare_rekey, 3),
        "erasure_vs_bare_rekey": round(erasure_s / bare_rekey, 2),
        "erasure_work_s": round(erasure_s - bare_rekey - baseline, 3),
        "targets": {"access_export_s": 1.0, "erasure_with_rekey_s": 30.0},
        "meets_targets": {"access": access_s < 1.0, "erasure": erasure_s < 30.0},
        # CPU seconds of this process (all threads), less sensitive than wall time to other
        # work on a shared machine; and the load average while measuring.
        "access_cpu_s": round(statistics.median(CPU["access"]), 3),
        "erasure_cpu_s": round(statistics.median(CPU["erasure"]), 3),
        "baseline_cpu_s": round(statistics.median(CPU["baseline"]), 3),
        "bare_rekey_cpu_s": round(statistics.median(CPU["rekey"]), 3),
        "access_work_cpu_s": round(statistics.median(CPU["access"])
                                   - statistics.median(CPU["baseline"]), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help=f"size in units of {CHILDREN_PER_SCALE} children (default 1)")
    parser.add_argument("--seed", type=int, default=20200918)
    parser.add_argument("--out", type=Path, default=OUT / "bench_rights.json")
    args = parser.parse_args(argv)
    result = run(args.scale, args.seed)
    for key, value in result.items():
        print(f"{key:28} {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
