"""The LA's command against the public validators' command, side by side in one run.

    python benchmarks/bench_prepare.py                    # x1, x5, x20; clean-synthetic counts
    python benchmarks/bench_prepare.py --scales 1 --skip-synthetic
    python benchmarks/bench_prepare.py --throughput       # also prepare_la on synthetic LAs

1. **Commands, wall time and peak memory.** For each scale (x1 = the public fake returns in
   ../shared/external; xN = N copies of every child under new child codes):
   - SSDA903: `trialvault prepare --validate-only --ssda903 DIR` against
     `../shared/tools/peer-validators 903 DIR` (the 11 CSVs the public validator's run-offline
     reads; its adoption-placement table is placed_for_adoption_errors.csv);
   - CIN census: `trialvault prepare --validate-only --cin FILE` against
     `../shared/tools/peer-validators cin FILE` (fake_CIN_data.xml, its LEA set to 354).
   Each command runs as it would for an LA: a fresh process, interpreter start-up and imports
   included, our report written (CSV + XLSX). Peak RSS is the largest resident set of the
   command's processes (getrusage of the children, measured in a fresh launcher each time).
   Targets: ours >= 10x faster at x20 and >= 3x at x1; our peak RSS <= theirs at every scale.
   Our modules' bytecode is compiled first, as pip does when it installs a wheel.
   Start-up: `trialvault --version`, `--help`, `prepare --help` (target < 0.5 s).
2. **Report writing**: the CSV (every finding) and the XLSX (summary + capped findings) timed
   alone on the x20 findings, in rows per second.
3. **Clean synthetic data** (issue 19 item 5): one LA of `trialvault synth` with no planted
   faults (error_rate 0), collection years 2025 and 2026 with the year before; the public
   validators' own rules run on it (the 903 one told the LA's ONS code and given the LA's
   provider register, `<LA>/providers.csv`, as its Ofsted lists) and every rule that fires is
   listed with its count, then classed as explained (benchmarks/clean_synth_explained.yaml) or
   UNEXPLAINED (a systematic finding points at a synthetic code family that is implausible).
4. `--throughput`: `prepare_la` (read, validate, link, minimise, risk, seal) on every synthetic
   LA, in input rows per second.

Prints the figures and writes benchmarks/out/bench_prepare.json.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"
EXTERNAL = REPO.parent / "shared" / "external"
PEER_TOOL = REPO.parent / "shared" / "tools" / "peer-validators"
STUDY = REPO / "studies" / "no-wrong-door.toml"
# Why a public validator's rule fires on clean synthetic returns (known and checked causes).
CLEAN_SYNTH_EXPLAINED = REPO / "benchmarks" / "clean_synth_explained.yaml"
LA = 354
PEER_903_FILES = ("ad1", "episodes", "header", "missing", "oc2", "oc3",
                  "placed_for_adoption_errors", "previous_permanence", "reviews", "uasc",
                  "sw_episodes")
CHILD_COLUMNS = {"CHILD"}

# Runs one command and reports its wall time and the peak RSS of its process tree (kB).
_LAUNCH = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"wall": wall, "peak_kb": peak, "code": done.returncode,
                  "tail": done.stdout.decode(errors="replace")[-600:]
                          + done.stderr.decode(errors="replace")[-600:]}))
"""


# --- data ----------------------------------------------------------------------------------

def scaled_903(scale: int) -> Path:
    """The 11 peer CSVs with every child copied `scale` times under new codes (cached)."""
    folder = OUT / f"bench_903_x{scale}"
    if (folder / "episodes.csv").exists():
        return folder
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in PEER_903_FILES:
        with (EXTERNAL / "ssda903" / f"{name}.csv").open(encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        child = [i for i, h in enumerate(header) if h in CHILD_COLUMNS]
        with (tmp / f"{name}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(header)
            for copy in range(scale):
                for row in body:
                    if copy:
                        row = [f"{v}R{copy}" if i in child and v else v for i, v in enumerate(row)]
                    writer.writerow(row)
    tmp.rename(folder)
    return folder


def scaled_cin(scale: int) -> Path:
    """fake_CIN_data.xml with every <Child> copied `scale` times (new LAchildID), LEA 354."""
    path = OUT / f"bench_cin_x{scale}.xml"
    if path.exists():
        return path
    text = (EXTERNAL / "cin_census" / "fake_CIN_data.xml").read_text(encoding="utf-8")
    text = re.sub(r"<LEA>\d+</LEA>", f"<LEA>{LA}</LEA>", text)
    start, end = text.index("<Child>"), text.rindex("</Child>") + len("</Child>")
    children = text[start:end]
    copies = [children] + [re.sub(r"<LAchildID>([^<]*)</LAchildID>",
                                  rf"<LAchildID>\1R{copy}</LAchildID>", children)
                           for copy in range(1, scale)]
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(text[:start] + "\n".join(copies) + text[end:], encoding="utf-8")
    return path


def rows_in(fmt: str, path: Path) -> int:
    if fmt == "ssda903":
        return sum(sum(1 for _ in (path / f"{n}.csv").open(encoding="utf-8")) - 1
                   for n in PEER_903_FILES)
    return path.read_text(encoding="utf-8").count("<Child>")


# --- commands ------------------------------------------------------------------------------

def launch(cmd: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _LAUNCH, *cmd], capture_output=True,
                          text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def installed_script() -> str:
    """The `trialvault` script pip installed beside this interpreter, as an LA's virtual
    environment runs it (not a version manager's shim, such as pyenv's, which adds a shell
    and 0.2-0.3 s to every run)."""
    beside = Path(sys.executable).parent / "trialvault"
    return str(beside) if beside.exists() else (shutil.which("trialvault") or "trialvault")


def compiled_like_an_install() -> None:
    """Our modules' bytecode written beforehand, as pip writes it when it installs a wheel (the
    public validators' environments have theirs): an editable install under
    PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run (0.1 s)."""
    import compileall

    compileall.compile_dir(str(REPO / "src" / "trialvault"), quiet=1)


def ours_cmd(fmt: str, path: Path, report: Path) -> list[str]:
    exe = installed_script()
    return [exe, "prepare", "--study", str(STUDY), "--la", str(LA), "--validate-only",
            "--ssda903" if fmt == "ssda903" else "--cin", str(path), "--report-dir", str(report)]


def peer_cmd(fmt: str, path: Path) -> list[str]:
    return [str(PEER_TOOL), "903" if fmt == "ssda903" else "cin", str(path)]


def best_of(cmd: list[str], repeat: int) -> dict[str, Any]:
    runs = [launch(cmd) for _ in range(repeat)]
    for run in runs:
        if run["code"] not in (0, 9, 10):
            raise SystemExit(f"{' '.join(cmd)} failed ({run['code']}):\n{run['tail']}")
    return {"seconds": round(min(r["wall"] for r in runs), 2),
            "peak_mb": round(max(r["peak_kb"] for r in runs) / 1024, 1)}


def side_by_side(scales: list[int], repeat: int) -> list[dict[str, Any]]:
    results = []
    print(f"{'format':<10} {'scale':>5} {'rows':>9} {'ours s':>7} {'peer s':>7} {'x':>6} "
          f"{'ours MB':>8} {'peer MB':>8}")
    for fmt in ("ssda903", "cin_census"):
        for scale in scales:
            path = scaled_903(scale) if fmt == "ssda903" else scaled_cin(scale)
            with tempfile.TemporaryDirectory() as tmp:
                ours = best_of(ours_cmd(fmt, path, Path(tmp) / "report"), repeat)
                report = Path(tmp) / "report" / "validation_issues.csv"
                findings = sum(1 for _ in report.open(encoding="utf-8-sig")) - 1
            peer = best_of(peer_cmd(fmt, path), repeat)
            row = {"format": fmt, "scale": scale, "rows": rows_in(fmt, path),
                   "ours": ours, "peer": peer, "findings": findings,
                   "speedup": round(peer["seconds"] / ours["seconds"], 1),
                   "rss_ratio": round(ours["peak_mb"] / peer["peak_mb"], 2)}
            results.append(row)
            print(f"{fmt:<10} {'x' + str(scale):>5} {row['rows']:>9,} {ours['seconds']:>7.2f} "
                  f"{peer['seconds']:>7.2f} {row['speedup']:>5.1f}x {ours['peak_mb']:>8.0f} "
                  f"{peer['peak_mb']:>8.0f}", flush=True)
    return results


def targets(results: list[dict[str, Any]]) -> dict[str, bool]:
    def at(fmt: str, scale: int) -> dict[str, Any] | None:
        return next((r for r in results if r["format"] == fmt and r["scale"] == scale), None)

    met: dict[str, bool] = {}
    for fmt in ("ssda903", "cin_census"):
        for scale, wanted in ((20, 10.0), (1, 3.0)):
            r = at(fmt, scale)
            if r is not None:
                met[f"{fmt} x{scale} >= {wanted:g}x"] = r["speedup"] >= wanted
    for r in results:
        met[f"{r['format']} x{r['scale']} peak RSS <= peer"] = r["ours"]["peak_mb"] <= \
            r["peer"]["peak_mb"]
    return met


# --- start-up ----------------------------------------------------------------------------------

def start_up(repeat: int = 5) -> dict[str, Any]:
    """`trialvault --version`, `--help` and `prepare --help`: best wall time of `repeat` runs
    (target < 0.5 s: the stages are imported only by the command that runs)."""
    out: dict[str, Any] = {}
    for args in (["--version"], ["--help"], ["prepare", "--help"]):
        best = best_of([installed_script(), *args], repeat)
        out[" ".join(args)] = best
        print(f"  trialvault {' '.join(args)}: {best['seconds']:.2f} s, {best['peak_mb']:.0f} MB"
              f" ({'met' if best['seconds'] < 0.5 else 'MISSED'}: < 0.5 s)")
    return out


# --- report writing --------------------------------------------------------------------------

def report_writing(scale: int) -> dict[str, Any]:
    """The x`scale` SSDA903 findings written as CSV, then as XLSX (in process, timed alone)."""
    from trialvault.formats import read_ssda903
    from trialvault.prepare import report, validate
    from trialvault.spec.rules import load_rules

    source = read_ssda903([scaled_903(scale)])
    con = validate.connect()
    try:
        validate.validate_sources(con, [source], {"ssda903": load_rules("ssda903")})
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            csv_only = report.write_la_report(con, Path(tmp) / "a", xlsx=False)
            csv_s = time.perf_counter() - start
            start = time.perf_counter()
            both = report.write_la_report(con, Path(tmp) / "b")
            both_s = time.perf_counter() - start
            xlsx_bytes = both.paths[1].stat().st_size
    finally:
        con.close()
    findings = csv_only.findings
    xlsx_rows = sum(min(r.rows, report.XLSX_PER_RULE) for r in both.by_rule)
    out = {"scale": scale, "findings": findings, "csv_seconds": round(csv_s, 2),
           "csv_rows_per_second": round(findings / csv_s) if csv_s else None,
           "xlsx_rows": xlsx_rows, "xlsx_seconds": round(max(both_s - csv_s, 0.0), 2),
           "xlsx_mb": round(xlsx_bytes / 2**20, 1)}
    print(f"report writing at x{scale}: {findings:,} findings, CSV {csv_s:.2f} s "
          f"({out['csv_rows_per_second']:,} rows/s); XLSX {xlsx_rows:,} rows (at most "
          f"{report.XLSX_PER_RULE} per rule) in {out['xlsx_seconds']:.2f} s more")
    return out


# --- clean synthetic data ------------------------------------------------------------------

def _explanations() -> dict[str, dict[str, dict[str, Any]]]:
    """{format: {code: {"why": one line, "years": [collection years] or None, "rows_of": code
    or None}}} from benchmarks/clean_synth_explained.yaml."""
    import yaml

    raw = yaml.safe_load(CLEAN_SYNTH_EXPLAINED.read_text()) or {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for fmt, codes in raw.items():
        for code, entry in (codes or {}).items():
            entry = entry if isinstance(entry, dict) else {"why": entry}
            out.setdefault(fmt, {})[str(code)] = {
                "why": " ".join(str(entry["why"]).split()), "years": entry.get("years"),
                "rows_of": str(entry["rows_of"]) if entry.get("rows_of") else None}
    return out


def _classify(rules: dict[str, Any], rows: dict[str, int], year: int,
              known: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Split the rules that fired into explained ({code: {rows, why}}) and unexplained
    ({code: rows}). An explanation holds in its `years` only, and one with `rows_of` covers
    only the rows that rule also flags (the rest of the code's rows stay unexplained)."""
    explained: dict[str, Any] = {}
    unexplained: dict[str, int] = {}
    for code, n in rows.items():
        entry = known.get(code)
        if entry is None or (entry["years"] and year not in entry["years"]):
            unexplained[code] = n
            continue
        covered = n
        if entry["rows_of"]:
            other = rules.get(entry["rows_of"], {}).get("tables", {})
            covered = sum(len(set(found) & set(other.get(table, [])))
                          for table, found in rules[code].get("tables", {}).items())
        if covered:
            explained[code] = {"rows": covered, "why": entry["why"]}
        if n - covered:
            unexplained[code] = n - covered
    return explained, unexplained


def clean_synthetic(seed: int) -> dict[str, Any]:
    """The public validators' rules on one LA of fault-free synthetic returns, the 903 peer told
    the LA's ONS code (the study's) and given the LA's provider register as its Ofsted lists.
    Each rule that still fires is "explained" (benchmarks/clean_synth_explained.yaml: a known
    way the peer's rule, the peer's view of two years or the study's part-year extract makes it
    fire on valid data) or "UNEXPLAINED" (a finding to look into)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import peer_crosscheck as pc  # the same peer runner as the record-level cross-check

    from trialvault.study import load_study
    from trialvault.synth import generate_files

    folder = OUT / f"bench_clean_synth_seed{seed}"
    las = [p for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    if not (folder / "truth.json").exists() or not all(
            (p / "providers.csv").exists() for p in las):
        # (A folder from before `synth` wrote each LA's provider register is made again.)
        shutil.rmtree(folder, ignore_errors=True)
        generate_files(load_study(STUDY), folder, seed=seed, scale=0.15, error_rate=0.0)
    la = sorted(p for p in folder.iterdir() if p.name.isdigit())[0]
    inputs = pc.synth_inputs(la, STUDY)
    explanations = _explanations()
    out: dict[str, Any] = {"seed": seed, "la": la.name, "la_ons": inputs["la_ons"],
                           "datasets": []}
    for year in (2025, 2026):
        datasets = [
            pc.Dataset(f"903 clean synthetic {year}", "ssda903", year,
                       la / "ssda903" / str(year), la / "ssda903" / str(year - 1), "synth",
                       **inputs),
            pc.Dataset(f"CIN clean synthetic {year}", "cin_census", year,
                       la / "cin_census" / f"{year}.xml", kind="synth")]
        for ds in datasets:
            peer = pc.run_peer(ds)
            rows = {code: sum(len(v) for v in entry.get("tables", {}).values())
                    for code, entry in peer["rules"].items() if "crash" not in entry}
            rows = {c: n for c, n in sorted(rows.items()) if n}
            crashed = sorted(c for c, e in peer["rules"].items() if "crash" in e)
            explained, unexplained = _classify(peer["rules"], rows, year,
                                               explanations.get(ds.fmt, {}))
            out["datasets"].append({"name": ds.name, "ruleset": ds.ruleset,
                                    "rules_run": len(peer["rules"]), "fired": rows,
                                    "explained": explained, "unexplained": unexplained,
                                    "crashed": crashed})
            print(f"  {ds.name} ({ds.ruleset}): {len(rows)} of {len(peer['rules'])} rules fire"
                  + (": " + ", ".join(f"{c} {n}" for c, n in rows.items()) if rows else "")
                  + (f"; crashed: {', '.join(crashed)}" if crashed else ""))
            for code, entry in explained.items():
                print(f"    explained {code} ({entry['rows']}): {entry['why']}")
            for code, n in unexplained.items():
                part = f" of {rows[code]} rows" if n != rows[code] else ""
                print(f"    UNEXPLAINED {code} ({n}{part})")
    out["unexplained"] = sorted({c for d in out["datasets"] for c in d["unexplained"]})
    print(f"  seed {seed}: unexplained rules: {', '.join(out['unexplained']) or 'none'}")
    return out


# --- throughput ----------------------------------------------------------------------------

def throughput(scale: float, seed: int) -> dict[str, Any]:
    from trialvault.prepare import prepare_la
    from trialvault.seal import generate_identity
    from trialvault.study import load_study
    from trialvault.synth import generate_files

    folder = OUT / f"synth_scale{scale:g}_seed{seed}"
    if not (folder / "truth.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate_files(load_study(STUDY), folder, seed=seed, scale=scale, error_rate=0.01)
    study = load_study(STUDY)
    _, recipient = generate_identity()
    per_la = {}
    with tempfile.TemporaryDirectory() as tmp:
        for la in sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()):
            data = folder / str(la)
            start = time.perf_counter()
            result = prepare_la(study, la, ssda903=data / "ssda903", cin=data / "cin_census",
                                education=data / "education.csv", neet=data / "neet.csv",
                                recipient=recipient, out=Path(tmp) / f"{la}.tvpkg",
                                report_dir=Path(tmp) / f"report_{la}")
            seconds = time.perf_counter() - start
            rows = sum(result.rows_read.values())
            per_la[str(la)] = {"rows_read": rows, "rows_packaged": result.rows_packaged,
                               "findings": sum(result.findings.values()),
                               "seconds": round(seconds, 2),
                               "rows_per_second": round(rows / seconds)}
            print(f"  LA {la}: {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")
    return per_la


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,5,20")
    parser.add_argument("--repeat", type=int, default=1, help="runs per command (best kept)")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--scale", type=float, default=1.0, help="synthetic scale (throughput)")
    args = parser.parse_args(argv)
    if not PEER_TOOL.exists():
        raise SystemExit(f"no {PEER_TOOL}: the side-by-side needs the public validators")
    scales = [int(s) for s in args.scales.split(",")]
    compiled_like_an_install()
    result: dict[str, Any] = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                              "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    print("start-up:")
    result["start_up"] = start_up()
    print(f"LA command vs the public validators' command (best of {args.repeat}):")
    result["commands"] = side_by_side(scales, args.repeat)
    result["targets"] = targets(result["commands"])
    for name, ok in result["targets"].items():
        print(f"  {'met' if ok else 'MISSED'}: {name}")
    result["report_writing"] = report_writing(max(scales))
    if not args.skip_synthetic:
        print("the public validators on clean synthetic returns (rules that fire, rows):")
        result["clean_synthetic"] = clean_synthetic(args.seed)
    if args.throughput:
        print(f"prepare_la throughput, synthetic scale {args.scale:g}:")
        result["throughput"] = throughput(args.scale, args.seed)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_prepare.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
