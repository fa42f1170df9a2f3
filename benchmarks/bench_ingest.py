"""Ingest into the encrypted vault vs the same code on a plaintext DuckDB file, in one run.

    python benchmarks/bench_ingest.py             # scale 1: 10,000 children, ~260k rows
    python benchmarks/bench_ingest.py --scale 30  # 300,000 children, ~7.8M rows

Seals one package per study LA (random values of the right types; no real data), then times
the vault's own ingest code (`trialvault.vault.ingest.ingest_into`: decrypt + verify packages,
re-validate, load raw, rebuild harmonised) followed by COMMIT and CHECKPOINT (where DuckDB
encrypts and writes the blocks), on two stores that differ only in the storage layer's key:
AES-256-GCM encrypted vs plaintext. The two alternate, `--repeats` times each (fresh file each
time); the medians give the ratio (target <= 1.15) and rows/s. Process CPU time (all threads)
is reported too: a busy machine disturbs that ratio less. A last run goes end to end through
`ingest_packages` on a real vault (default Argon2id unlock, audit entry) for reference.
Writes benchmarks/out/bench_ingest.json.
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
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trialvault.seal import generate_identity, write_package
from trialvault.study import StudyFile, load_study
from trialvault.trust import DEFAULT_KDF, DOMAINS
from trialvault.vault import evaluator_recipient, ingest_packages, init_vault, open_vault, store
from trialvault.vault.admin import EVALUATOR_IDENTITY, TOMBSTONE_KEY, create_catalogs
from trialvault.vault.ingest import ingest_into
from trialvault.vault.schema import TABLES, package_columns

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"
CHILDREN_PER_LA_PER_SCALE = 2000
# Rows per child and table: a plausible CSC history (2 referrals, 9 school terms, 6 NEET months).
ROWS_PER_CHILD = {"children": 1, "referrals": 2, "assessments": 2, "s47": 1, "cin_plans": 1,
                  "cp_plans": 1, "cla_episodes": 2, "missing": 1, "attendance": 9, "neet": 6}
TARGET_RATIO = 1.15
BENCH_PASSWORD = "benchmark vault passphrase"


def _table(rng: np.random.Generator, name: str, la: int, n_children: int) -> pa.Table:
    ids = np.repeat(np.arange(n_children), ROWS_PER_CHILD[name])
    n = len(ids)
    cols: dict[str, pa.Array] = {}
    for col, kind in package_columns(name):
        if col == "la_code":
            cols[col] = pa.array(np.full(n, la, np.int32))
        elif col == "child_id":
            cols[col] = pa.array(np.char.add(f"C{la}-", ids.astype(str)).tolist(), pa.string())
        elif col == "source_file":
            cols[col] = pa.array(np.full(n, f"{name}.csv").tolist(), pa.string())
        elif col == "source_line":
            cols[col] = pa.array(np.arange(2, n + 2, dtype=np.int32))
        elif kind == "DATE":
            days = rng.integers(0, 2555, n) + np.datetime64("2019-01-01")
            cols[col] = pa.array(days.astype("datetime64[D]"), pa.date32())
        elif kind == "INTEGER":
            cols[col] = pa.array(rng.integers(0, 216, n).astype(np.int32))
        elif kind == "BOOLEAN":
            cols[col] = pa.array(rng.random(n) < 0.3)
        else:
            codes = np.array(["N1", "N2", "C2", "K2", "WBRI", "P", "S", "E11", "RC1", "A"])
            cols[col] = pa.array(codes[rng.integers(0, len(codes), n)].tolist(), pa.string())
    return pa.table(cols)


def make_packages(folder: Path, study: StudyFile, recipient: str, scale: float
                  ) -> tuple[list[Path], int]:
    rng = np.random.default_rng(20260205)
    n_children = int(CHILDREN_PER_LA_PER_SCALE * scale)
    paths, rows = [], 0
    for la in study.la_codes:
        tables = {t: _table(rng, t, la, n_children) for t in TABLES}
        rows += sum(t.num_rows for t in tables.values())
        path = folder / f"{la}.tvpkg"
        write_package(path, [recipient], {"study_id": study.study.id,
                                          "spec_version": study.study.spec_version,
                                          "la_code": la, "extract_date": dt.date(2025, 3, 31)},
                      tables, b"rule,severity,file,line\n")
        paths.append(path)
    return paths, rows


def _keys(encrypted: bool) -> dict[str, bytes | None]:
    return {d: (os.urandom(32) if encrypted else None) for d in DOMAINS}


def _fresh_store(folder: Path, keys: dict[str, bytes | None], identity: str) -> None:
    """The vault's domain files with their schema and secrets, built the way `init` does."""
    folder.mkdir()
    (folder / store.TEMP_DIR_NAME).mkdir()
    con = store.connect(folder, keys, sandbox=False, create=True)
    try:
        create_catalogs(con)
        con.execute("INSERT INTO audit.vault_info VALUES ('bench', NULL, 'now', 'bench', "
                    "'bench')")
        con.execute("INSERT INTO secrets.secrets VALUES (?, ?)", [EVALUATOR_IDENTITY, identity])
        con.execute("INSERT INTO rights.secrets VALUES (?, ?)",
                    [TOMBSTONE_KEY, os.urandom(32).hex()])
    finally:
        con.close()


def time_ingest(folder: Path, keys: dict[str, bytes | None], identity: str,
                packages: list[Path], study: StudyFile) -> tuple[float, float]:
    """Wall seconds and process CPU seconds (all threads) of one ingest into a fresh store."""
    _fresh_store(folder, keys, identity)
    start, cpu = time.perf_counter(), time.process_time()
    con = store.connect(folder, keys)
    try:
        con.execute("BEGIN TRANSACTION")
        report = ingest_into(con, packages, study=study, user="bench")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if len(report.ingested) != len(packages):
        raise RuntimeError("benchmark ingest skipped a package")
    return elapsed, cpu


def _unlock_times(vault: Path, runs: int = 5) -> tuple[float, float]:
    """Median seconds of a whole read-only session, and of the Argon2id derivation alone."""
    from argon2.low_level import Type, hash_secret_raw

    sessions, kdfs = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        with open_vault(vault, "bench", BENCH_PASSWORD, command="bench unlock", args={},
                        write=False):
            pass
        sessions.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        hash_secret_raw(BENCH_PASSWORD.encode(), os.urandom(16), DEFAULT_KDF.time_cost,
                        DEFAULT_KDF.memory_cost, DEFAULT_KDF.parallelism, 32, Type.ID)
        kdfs.append(time.perf_counter() - t0)
    return round(statistics.median(sessions), 3), round(statistics.median(kdfs), 3)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    study = load_study(STUDY)
    identity, recipient = generate_identity()
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp)
        (root / "packages").mkdir()
        t0 = time.perf_counter()
        packages, rows = make_packages(root / "packages", study, recipient, args.scale)
        seal_s = time.perf_counter() - t0
        package_bytes = sum(p.stat().st_size for p in packages)
        times: dict[str, list[float]] = {"encrypted": [], "plaintext": []}
        cpus: dict[str, list[float]] = {"encrypted": [], "plaintext": []}
        for i in range(args.repeats):
            # Alternate the order so drift in machine load hits both sides alike.
            order = ["encrypted", "plaintext"] if i % 2 == 0 else ["plaintext", "encrypted"]
            for mode in order:
                wall, cpu = time_ingest(root / f"{mode}-{i}", _keys(mode == "encrypted"),
                                        identity, packages, study)
                times[mode].append(wall)
                cpus[mode].append(cpu)
        vault = root / "vault"
        init_vault(vault, "bench", BENCH_PASSWORD, study_id=study.study.id)
        recipient2 = evaluator_recipient(vault)
        (root / "p2").mkdir()
        packages2, _ = make_packages(root / "p2", study, recipient2, args.scale)
        t0 = time.perf_counter()
        ingest_packages(vault, "bench", BENCH_PASSWORD, packages2, study=study)
        end_to_end = time.perf_counter() - t0
        db_bytes = sum(p.stat().st_size for p in vault.glob("*.duckdb"))
        unlock_s, kdf_s = _unlock_times(vault)
    enc, plain = statistics.median(times["encrypted"]), statistics.median(times["plaintext"])
    enc_cpu = statistics.median(cpus["encrypted"])
    plain_cpu = statistics.median(cpus["plaintext"])
    result = {
        "scale": args.scale, "las": len(study.la_codes),
        "children": int(CHILDREN_PER_LA_PER_SCALE * args.scale) * len(study.la_codes),
        "rows": rows, "package_bytes": package_bytes, "seal_s": round(seal_s, 3),
        "repeats": args.repeats,
        "encrypted_s": [round(t, 3) for t in times["encrypted"]],
        "plaintext_s": [round(t, 3) for t in times["plaintext"]],
        "encrypted_median_s": round(enc, 3), "plaintext_median_s": round(plain, 3),
        "ratio_encrypted_to_plaintext": round(enc / plain, 3),
        "encrypted_cpu_s": [round(t, 3) for t in cpus["encrypted"]],
        "plaintext_cpu_s": [round(t, 3) for t in cpus["plaintext"]],
        "cpu_ratio_encrypted_to_plaintext": round(enc_cpu / plain_cpu, 3),
        "target_ratio": TARGET_RATIO, "meets_target": enc / plain <= TARGET_RATIO,
        "rows_per_s_encrypted": round(rows / enc), "rows_per_s_plaintext": round(rows / plain),
        "end_to_end_ingest_packages_s": round(end_to_end, 3),
        "end_to_end_rows_per_s": round(rows / end_to_end), "vault_db_bytes": db_bytes,
        "unlock_open_session_s": unlock_s, "argon2id_alone_s": kdf_s,
        "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"ingest, scale {args.scale}: {result['children']:,} children, {rows:,} rows in "
          f"{len(packages)} packages ({package_bytes:,} bytes sealed in {seal_s:.1f} s)")
    print(f"  encrypted vault : median {enc:.2f} s  {result['rows_per_s_encrypted']:,} rows/s  "
          f"runs {result['encrypted_s']}")
    print(f"  plaintext DuckDB: median {plain:.2f} s  {result['rows_per_s_plaintext']:,} rows/s  "
          f"runs {result['plaintext_s']}")
    print(f"  ratio encrypted/plaintext = {enc / plain:.3f} wall (target <= {TARGET_RATIO}: "
          f"{'met' if result['meets_target'] else 'NOT met'}); {enc_cpu / plain_cpu:.3f} in "
          f"process CPU time ({enc_cpu:.2f} s vs {plain_cpu:.2f} s)")
    print(f"  end to end `ingest_packages` (unlock + audit): {end_to_end:.2f} s, "
          f"{result['end_to_end_rows_per_s']:,} rows/s; vault.duckdb {db_bytes:,} bytes")
    print(f"  unlock (open_vault + close, read-only, default Argon2id): median {unlock_s:.3f} s;"
          f" Argon2id alone {kdf_s:.3f} s (the rest: unsealing keys, verifying certificates, "
          "attaching the domain files, two signed audit entries)")
    print(f"  wrote {OUT / 'bench_ingest.json'} (load average {result['load_average_1m']})")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
