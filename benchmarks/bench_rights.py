"""Erasing one child from a large vault, re-key included, vs the same work on plaintext DuckDB.

    python benchmarks/bench_rights.py              # scale 1: 10,000 children, ~260k rows
    nice -n 10 python benchmarks/bench_rights.py --scale 20   # 100,000 children, ~5.2M rows

Builds a fresh vault in a temporary folder (real key slots with the default Argon2id cost, one
real sealed package per study LA, the vault's own ingest), then times, end to end through
`rights.service` (every step's unlock, transaction and audit entries included):

- preview: `erasure_preview` (the `--dry-run`: counts per place);
- erasure: `execute` of an erasure request — start (tombstone), delete the child's rows and
  validation lines, settle the register and the inventory, re-key every domain the DPO holds
  (copy each under a fresh key), complete — median of `--repeats` children;
- access:  `execute` of an access request (collect, workbook, letter, seal), for reference.

Baseline in the same run: the same erasure on a plaintext DuckDB copy of the child data (the
vault's tables copied into an unencrypted file): delete the child's rows from every table, then
rewrite the database into a fresh file (`COPY FROM DATABASE`, what the re-key does, so the
deleted rows are in no live file). Also a bare `rekey` and an empty session (unlock + audit), so
the request's own work can be told apart. Writes benchmarks/out/bench_rights.json.
Synthetic rows are random values of the right types (no real data).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from trialvault.rights import service
from trialvault.seal import generate_identity, write_package
from trialvault.study import load_study
from trialvault.trust import Keyring, catalog_file
from trialvault.vault import (
    add_user,
    evaluator_recipient,
    ingest_packages,
    init_vault,
    open_vault,
    rekey,
    store,
)
from trialvault.vault.schema import TABLES, package_columns

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
STUDY = REPO / "studies" / "no-wrong-door.toml"
CHILDREN_PER_LA_PER_SCALE = 2000
# Rows per child and table: a plausible CSC history (2 referrals, 9 school terms, 6 NEET months).
ROWS_PER_CHILD = {"children": 1, "referrals": 2, "assessments": 2, "s47": 1, "cin_plans": 1,
                  "cp_plans": 1, "cla_episodes": 2, "missing": 1, "attendance": 9, "neet": 6}
DM, DM_PW = "bench", "benchmark vault passphrase (synthetic)"
DPO, DPO_PW = "dpo", "the dpo benchmark passphrase"


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


def _validation(la: int, n_children: int) -> bytes:
    """A validation CSV naming one child in twenty, as an LA's issue report does."""
    lines = ["file,year,line,child,rule,severity,format,table"]
    lines += [f"episodes.csv,2025,{i + 2},C{la}-{i},103,error,ssda903,episodes"
              for i in range(0, n_children, 20)]
    return ("\n".join(lines) + "\n").encode()


def build_vault(root: Path, scale: float) -> tuple[Path, int, list[int]]:
    study = load_study(STUDY)
    vault = root / "vault"
    init_vault(vault, DM, DM_PW, study_id=study.study.id)
    add_user(vault, DM, DM_PW, DPO, DPO_PW, "dpo")
    recipient = evaluator_recipient(vault)
    rng = np.random.default_rng(20261201)
    n_children = int(CHILDREN_PER_LA_PER_SCALE * scale)
    (root / "packages").mkdir()
    paths, rows = [], 0
    for la in study.la_codes:
        tables = {t: _table(rng, t, la, n_children) for t in TABLES}
        rows += sum(t.num_rows for t in tables.values())
        path = root / "packages" / f"{la}.tvpkg"
        write_package(path, [recipient], {"study_id": study.study.id,
                                          "spec_version": study.study.spec_version,
                                          "la_code": la, "extract_date": dt.date(2025, 3, 31)},
                      tables, _validation(la, n_children))
        paths.append(path)
    ingest_packages(vault, DM, DM_PW, paths, study=study)
    return vault, rows, list(study.la_codes)


def plaintext_copy(vault: Path, target: Path) -> None:
    """The child domain's tables in an unencrypted DuckDB file (the baseline's database)."""
    keys = Keyring.load(vault).unlock(DM, DM_PW).domain_keys
    con = store.connect_file(vault / catalog_file("vault"), keys["child"],
                             temp_dir=vault / store.TEMP_DIR_NAME)
    try:
        store.attach(con, target, None, "plain")
        con.execute("COPY FROM DATABASE vault TO plain")
        con.execute("CHECKPOINT plain")
    finally:
        con.close()


def plaintext_erasure(db: Path, la: int, child: str, fresh: Path) -> float:
    """Delete the child everywhere in a plaintext DuckDB file, then rewrite it (seconds)."""
    start = time.perf_counter()
    con = store.connect_file(db, None, temp_dir=db.parent / "tmp-plain", alias="plain")
    try:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_columns() WHERE database_name = "
            "'plain' GROUP BY ALL HAVING list_contains(list(column_name), 'child_id') AND "
            "list_contains(list(column_name), 'la_code')").fetchall()
        con.execute("BEGIN TRANSACTION")
        for schema, table in tables:
            con.execute(f'DELETE FROM "{schema}"."{table}" WHERE la_code = ? AND child_id = ?',
                        [la, child])
        con.execute("COMMIT")
        store.attach(con, fresh, None, "fresh")
        con.execute("COPY FROM DATABASE plain TO fresh")
        con.execute("CHECKPOINT fresh")
    finally:
        con.close()
    return time.perf_counter() - start


def _empty_session(vault: Path) -> None:
    with open_vault(vault, DPO, DPO_PW, command="bench", args={}, write=False):
        pass


def _time(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    study = load_study(STUDY)
    today = dt.date.today()
    with tempfile.TemporaryDirectory(prefix="bench-rights-") as tmp:
        root = Path(tmp)
        build_s, (vault, rows, las) = _time(lambda: build_vault(root, args.scale))
        db_bytes = sum(p.stat().st_size for p in vault.glob("*.duckdb"))
        plain_db = root / "plain.duckdb"
        plaintext_copy(vault, plain_db)
        dpo = service.Vault(vault, DPO, DPO_PW)
        session_s, _ = _time(lambda: _empty_session(vault))
        bare_rekey_s, _ = _time(lambda: rekey(vault, DPO, DPO_PW))
        erase_s, preview_s, plain_s, deleted = [], [], [], []
        for i in range(args.repeats):
            la, child = las[i % len(las)], f"C{las[i % len(las)]}-{20 * i}"
            rid = service.new_request(dpo, study, type="erasure", la_code=la, child_id=child,
                                      received=today, channel="email", note=None, today=today)
            t, plan = _time(lambda rid=rid: service.erasure_preview(dpo, rid))
            preview_s.append(t)
            t, report = _time(lambda rid=rid: service.execute(dpo, study, rid, today=today))
            if report.state != "completed" or report.rekey is None:
                raise RuntimeError("benchmark erasure did not complete")
            erase_s.append(t)
            deleted.append(sum(report.rows_touched.values()))
            plain_s.append(plaintext_erasure(plain_db, la, child, root / f"fresh-{i}.duckdb"))
            del plan
        _identity, recipient = generate_identity()
        rid = service.new_request(dpo, study, type="access", la_code=las[0],
                                  child_id=f"C{las[0]}-7", received=today, channel="email",
                                  note=None, today=today)
        access_s, _ = _time(lambda: service.execute(dpo, study, rid, today=today,
                                                    recipient=recipient, out_dir=root / "out"))
    erase, plain = statistics.median(erase_s), statistics.median(plain_s)
    result = {
        "scale": args.scale, "las": len(las),
        "children": int(CHILDREN_PER_LA_PER_SCALE * args.scale) * len(las), "rows": rows,
        "vault_db_bytes": db_bytes, "build_s": round(build_s, 1), "repeats": args.repeats,
        "erasure_s": [round(t, 2) for t in erase_s], "erasure_median_s": round(erase, 2),
        "rows_deleted_per_erasure": deleted,
        "preview_s": [round(t, 2) for t in preview_s],
        "plaintext_erasure_s": [round(t, 2) for t in plain_s],
        "plaintext_erasure_median_s": round(plain, 2),
        "ratio_vault_to_plaintext": round(erase / plain, 2),
        "bare_rekey_s": round(bare_rekey_s, 2), "empty_session_s": round(session_s, 2),
        "access_s": round(access_s, 2),
        "python": sys.version.split()[0], "cpus": __import__("os").cpu_count(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_rights.json").write_text(json.dumps(result, indent=2) + "\n",
                                           encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
