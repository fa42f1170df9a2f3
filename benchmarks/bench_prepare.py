"""Prepare throughput on synthetic LAs, and our validation against the public validators.

    python benchmarks/bench_prepare.py              # synthetic scale 1, all five LAs
    python benchmarks/bench_prepare.py --scale 30   # the big size (generated once, cached)

1. Throughput: `prepare_la` (read, validate, link, minimise, risk, seal) on each LA of the
   synthetic returns (`trialvault.synth.generate_files`, cached under benchmarks/out/), in input
   rows per second.
2. Against the public validators, in the same run, on the same public fake files: the SSDA903
   CSVs their `run-offline` reads and the CIN census `fake_CIN_data.xml`. Both sides are timed
   in-process from reading the files to having every rule's findings (interpreter start-up and
   imports excluded), best of --repeat runs; the ratio is theirs / ours (target >= 10).
   The validators run in the virtual environments `../shared/tools/peer-validators` makes.

Prints the figures and writes benchmarks/out/bench_prepare.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from trialvault.formats import read_cin_census, read_ssda903
from trialvault.prepare import prepare_la
from trialvault.prepare.validate import SMALL_INPUT_ROWS, connect, load_tables, rule_tables, run_rules
from trialvault.seal import generate_identity
from trialvault.spec.rules import load_rules
from trialvault.study import load_study

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
EXTERNAL = REPO.parent / "shared" / "external"
STUDY = REPO / "studies" / "no-wrong-door.toml"
PEER_903_FILES = ("ad1", "episodes", "header", "missing", "oc2", "oc3",
                  "placed_for_adoption_errors", "previous_permanence", "reviews", "uasc",
                  "sw_episodes")

_PEER_903_TIMING = r"""
import importlib, io, contextlib, json, logging, sys, time, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
from lac_validator import lac_validator
from lac_validator.utils import process_uploaded_files
folder, repeat = sys.argv[1], int(sys.argv[2])
names = sys.argv[3].split(",")
reg = importlib.import_module("lac_validator.rules.lac2022_23").registry
selected = [c for c in sys.argv[4].split(",") if c in reg] if len(sys.argv) > 4 else None
times = []
for _ in range(repeat):
    start = time.perf_counter()
    files = process_uploaded_files({"This year": [f"{folder}/{n}.csv" for n in names]})
    with contextlib.redirect_stdout(io.StringIO()):
        lac_validator.LacValidator(metadata={"collectionYear": "2023",
                                             "localAuthority": "E09000027"},
                                   files=files, registry=reg, selected_rules=selected)
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": min(times), "rules": len(selected) if selected else len(reg)}))
"""

_PEER_CIN_TIMING = r"""
import importlib, json, logging, sys, time, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import xml.etree.ElementTree as ET
from cin_validator import cin_validator
path, repeat = sys.argv[1], int(sys.argv[2])
reg = importlib.import_module("cin_validator.rules.cin2022_23").registry
selected = [c for c in sys.argv[3].split(",") if c in reg] if len(sys.argv) > 3 else None
times = []
for _ in range(repeat):
    start = time.perf_counter()
    root = ET.parse(path).getroot()
    data = cin_validator.process_data(cin_validator.convert_data(root))
    cin_validator.CinValidator(data, reg, selected_rules=selected)
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": min(times), "rules": len(selected) if selected else len(reg)}))
"""


def synthetic_data(scale: float, seed: int, folder: Path | None) -> tuple[Path, float | None]:
    """The synthetic returns (generated once per scale and seed, then reused)."""
    if folder is not None:
        return folder, None
    folder = OUT / f"synth_scale{scale:g}_seed{seed}"
    if (folder / "truth.json").exists():
        return folder, None
    from trialvault.synth import generate_files

    start = time.perf_counter()
    if folder.exists():
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    generate_files(load_study(STUDY), folder, seed=seed, scale=scale, error_rate=0.01)
    return folder, time.perf_counter() - start


def throughput(data: Path, las: list[int]) -> dict[str, Any]:
    study = load_study(STUDY)
    _, recipient = generate_identity()
    per_la = {}
    with tempfile.TemporaryDirectory() as tmp:
        for la in las:
            folder = data / str(la)
            start = time.perf_counter()
            result = prepare_la(study, la, ssda903=folder / "ssda903",
                                cin=sorted((folder / "cin_census").glob("*.xml")),
                                education=folder / "education.csv", neet=folder / "neet.csv",
                                recipient=recipient, out=Path(tmp) / f"{la}.tvpkg",
                                report_dir=Path(tmp) / f"report_{la}")
            seconds = time.perf_counter() - start
            rows = sum(result.rows_read.values())
            per_la[str(la)] = {"rows_read": rows, "rows_packaged": result.rows_packaged,
                               "issues": result.issues["issues"], "seconds": round(seconds, 2),
                               "rows_per_second": round(rows / seconds),
                               "linkage_rate": result.linkage_rate}
            print(f"  LA {la}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s "
                  f"({result.issues['issues']:,} issues, linkage {result.linkage_rate})")
    rows = sum(v["rows_read"] for v in per_la.values())
    seconds = sum(v["seconds"] for v in per_la.values())
    return {"las": per_la, "rows_read": rows, "seconds": round(seconds, 2),
            "rows_per_second": round(rows / seconds) if seconds else None}


def _ours(fmt: str, paths: list[Path], repeat: int) -> dict[str, Any]:
    ruleset = load_rules(fmt)
    times = []
    issues = 0
    for _ in range(repeat):
        start = time.perf_counter()
        source = (read_ssda903(paths, year=2023) if fmt == "ssda903"
                  else read_cin_census(paths))
        con = connect(threads=1 if source.row_count < SMALL_INPUT_ROWS else None)
        columns = load_tables(con, source, only=rule_tables(ruleset))
        run_rules(con, ruleset, tables=columns)
        found = con.execute("SELECT count(*) FROM validation.issues").fetchone()
        con.close()
        times.append(time.perf_counter() - start)
        issues = int(found[0]) if found else 0
    return {"seconds": round(min(times), 3), "rules": len(ruleset.rules), "issues": issues}


def _peer(kind: str, script: str, args: list[str]) -> dict[str, Any]:
    root = Path(os.environ.get("PEER_VENVS", "/tmp/peer-validators"))
    python = root / ("v903" if kind == "903" else "vcin") / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"no peer venv at {python}: run ../shared/tools/peer-validators "
                         f"{kind} ... once to create it (or pass --skip-peer)")
    start = time.perf_counter()
    done = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True,
                          check=True, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    result = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    result["wall_seconds_incl_startup"] = round(wall, 2)
    result["seconds"] = round(float(result["seconds"]), 3)
    return result


def against_peers(repeat: int) -> dict[str, Any]:
    """Both validators on the same files: the peers with all their rules, and with only the
    rule codes we implement too (the like-for-like ratio)."""
    out: dict[str, Any] = {}
    codes_903 = ",".join(load_rules("ssda903").codes)
    codes_cin = ",".join(load_rules("cin_census").codes)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ssda903"
        folder.mkdir()
        for name in PEER_903_FILES:
            (folder / f"{name}.csv").symlink_to(EXTERNAL / "ssda903" / f"{name}.csv")
        common = [str(folder), str(repeat), ",".join(PEER_903_FILES)]
        peer_all = _peer("903", _PEER_903_TIMING, common)
        peer_same = _peer("903", _PEER_903_TIMING, [*common, codes_903])
        ours = _ours("ssda903", [folder], repeat)
    out["ssda903"] = {"input": "ssda903 fake CSVs (11 files)", "peer_all_rules": peer_all,
                      "peer_same_rules": peer_same, "ours": ours}
    cin = EXTERNAL / "cin_census" / "fake_CIN_data.xml"
    out["cin_census"] = {"input": "fake_CIN_data.xml",
                         "peer_all_rules": _peer("cin", _PEER_CIN_TIMING, [str(cin), str(repeat)]),
                         "peer_same_rules": _peer("cin", _PEER_CIN_TIMING,
                                                  [str(cin), str(repeat), codes_cin]),
                         "ours": _ours("cin_census", [cin], repeat)}
    for fmt, r in out.items():
        ours_s = r["ours"]["seconds"]
        r["ratio_all_rules"] = round(r["peer_all_rules"]["seconds"] / ours_s, 1)
        r["ratio_same_rules"] = round(r["peer_same_rules"]["seconds"] / ours_s, 1)
        print(f"  {fmt}: ours {ours_s:.2f} s ({r['ours']['rules']} rules); public validator "
              f"{r['peer_all_rules']['seconds']:.2f} s with all {r['peer_all_rules']['rules']} "
              f"rules ({r['ratio_all_rules']}x), {r['peer_same_rules']['seconds']:.2f} s with "
              f"the {r['peer_same_rules']['rules']} rules we share ({r['ratio_same_rules']}x)")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="existing synthetic output folder to use")
    parser.add_argument("--la", type=int, action="append", help="only these LAs (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs against the peers")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                              "scale": args.scale, "seed": args.seed,
                              "cpus": os.cpu_count()}
    if not args.skip_synthetic:
        data, generated = synthetic_data(args.scale, args.seed, args.data)
        las = args.la or [int(p.name) for p in sorted(data.iterdir()) if p.name.isdigit()]
        print(f"prepare throughput, synthetic scale {args.scale:g} ({data}):")
        result["generation_seconds"] = generated
        result["throughput"] = throughput(data, las)
        t = result["throughput"]
        print(f"  total: {t['rows_read']:,} rows in {t['seconds']:.1f} s = "
              f"{t['rows_per_second']:,} rows/s")
    if not args.skip_peer:
        print(f"validation against the public validators (best of {args.repeat}):")
        result["against_peers"] = against_peers(args.repeat)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_prepare.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
