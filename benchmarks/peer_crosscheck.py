"""Compare our per-rule counts with the public DfE-rule validators on the public fake files.

    python benchmarks/peer_crosscheck.py [--record tests/integration/prepare/peer_counts.yaml]

Runs the public validators (csc-validator-be-903 and csc-validator-be-cin, in the virtual
environments that `../shared/tools/peer-validators` creates under $PEER_VENVS, default
/tmp/peer-validators) through their Python API for per-rule flagged-row counts, runs our rules on
the same files, prints agreement per rule code and writes benchmarks/out/peer_crosscheck.json.
With --record it rewrites the YAML that tests/integration/prepare/test_peer_counts.py checks.

Inputs (the same for both sides):
- 903: the 11 CSVs `lac_validator run-offline` reads (placed_for_adoption_errors.csv as the
  adoption-placement table), collection year 2023, ruleset lac2022_23 (the ruleset of that year,
  so code lists agree).
- CIN: each XML file of ../shared/external/cin_census, ruleset cin2022_23 (the oldest shipped;
  the files say Year 2022/2023).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from trialvault.formats import read_cin_census, read_ssda903
from trialvault.prepare.validate import connect, load_tables, run_rules
from trialvault.spec.rules import load_rules

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"
OUT = REPO / "benchmarks" / "out"
PEER_903_FILES = ("ad1", "episodes", "header", "missing", "oc2", "oc3",
                  "placed_for_adoption_errors", "previous_permanence", "reviews", "uasc",
                  "sw_episodes")
YEAR_903 = 2023
RULESET_903 = "lac2022_23"
RULESET_CIN = "cin2022_23"
TABLES_903 = {"header": "Header", "episodes": "Episodes", "uasc": "UASC", "missing": "Missing",
              "reviews": "Reviews", "oc2": "OC2", "oc3": "OC3", "ad1": "AD1",
              "placed_for_adoption": "PlacedAdoption", "previous_permanence": "PrevPerm",
              "sw_episodes": "SWEpisodes"}
TABLES_CIN = {"collection_details": "Header", "source": "Header",
              "child_identifiers": "ChildIdentifiers",
              "child_characteristics": "ChildCharacteristics", "disabilities": "Disabilities",
              "cin_details": "CINdetails", "assessments": "Assessments",
              "cin_plan_dates": "CINplanDates", "section47": "Section47",
              "child_protection_plans": "ChildProtectionPlans", "cpp_reviews": "Reviews",
              "assessment_factors": "Assessments"}

_PEER_903 = r"""
import copy, importlib, json, logging, sys, time, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import io, contextlib
import pandas as pd
from lac_validator import lac_validator
from lac_validator.datastore import create_datastore
from lac_validator.ingress import read_from_text
from lac_validator.utils import process_uploaded_files
folder, ruleset, year, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
files = process_uploaded_files({"This year": [f"{folder}/{n}.csv" for n in names]})
reg = importlib.import_module(f"lac_validator.rules.{ruleset}").registry
metadata = {"collectionYear": year, "localAuthority": "E09000027"}
start = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    v = lac_validator.LacValidator(metadata=dict(metadata), files=files, registry=reg,
                                   selected_rules=None)
seconds = time.perf_counter() - start
full = {}
for table, df in v.ds_results.items():
    if table == "metadata":
        continue
    for col in df.columns:
        if col.startswith("ERR_"):
            n = int((df[col] == True).sum())
            if n:
                full.setdefault(col[4:], {})[table] = n
# Each rule again on its own deep copy: in a full run rules share (shallow-copied) tables, and
# some rules' in-place edits (e.g. filling blank DEC) change what later rules see.
with contextlib.redirect_stdout(io.StringIO()):
    dfs, extra = read_from_text(raw_files=files)
    store = create_datastore(dfs, {**metadata, **extra})
isolated = {}
for code in sys.argv[5].split(","):
    if code not in reg:
        continue
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = reg[code].func(copy.deepcopy(store))
    except Exception:
        continue
    for table, values in result.items():
        n = len({x for x in values if pd.notna(x)})
        if n:
            isolated.setdefault(code, {})[table] = n
from importlib.metadata import version
print(json.dumps({"counts": isolated, "full_run": full, "failed": v.fails, "skipped": v.skips,
                  "seconds": seconds, "version": version("csc-validator-be-903"),
                  "rules": sorted(reg)}))
"""

_PEER_CIN = r"""
import importlib, json, logging, sys, time, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import xml.etree.ElementTree as ET
from cin_validator import cin_validator
path, ruleset = sys.argv[1], sys.argv[2]
reg = importlib.import_module(f"cin_validator.rules.{ruleset}").registry
start = time.perf_counter()
root = ET.parse(path).getroot()
data = cin_validator.process_data(cin_validator.convert_data(root))
v = cin_validator.CinValidator(data, reg)
seconds = time.perf_counter() - start
counts = {}
df = v.full_issue_df
for code, g in df.groupby("rule_code"):
    counts[str(code)] = {t: int(gg["row_id"].astype(int).nunique())
                         for t, gg in g.groupby("tables_affected")}
la = sorted({str(x) for x in v.multichild_issues["rule_code"].unique()})
for code in la:
    counts.setdefault(code, {})["Header"] = 1
from importlib.metadata import version
print(json.dumps({"counts": counts, "seconds": seconds, "rules": sorted(str(r) for r in reg),
                  "version": version("csc-validator-be-cin")}))
"""


def peer_python(kind: str) -> Path:
    root = Path(os.environ.get("PEER_VENVS", "/tmp/peer-validators"))
    python = root / ("v903" if kind == "903" else "vcin") / "bin" / "python"
    if not python.exists():
        tool = REPO.parent / "shared" / "tools" / "peer-validators"
        raise SystemExit(f"no peer venv at {python}: run `{tool} {kind} ...` once to create it")
    return python


def run_peer_903(folder: Path) -> dict[str, Any]:
    codes = ",".join(load_rules("ssda903").codes)
    out = subprocess.run([str(peer_python("903")), "-c", _PEER_903, str(folder), RULESET_903,
                          str(YEAR_903), ",".join(PEER_903_FILES), codes], capture_output=True,
                         text=True, check=True, cwd=tempfile.gettempdir())
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_peer_cin(path: Path) -> dict[str, Any]:
    out = subprocess.run([str(peer_python("cin")), "-c", _PEER_CIN, str(path), RULESET_CIN],
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def peer_903_folder(tmp: Path) -> Path:
    """A folder holding exactly the files the peer reads (links to the shared fake data)."""
    folder = tmp / "ssda903"
    folder.mkdir()
    for name in PEER_903_FILES:
        (folder / f"{name}.csv").symlink_to(EXTERNAL / "ssda903" / f"{name}.csv")
    return folder


def our_counts(fmt: str, paths: list[Path]) -> dict[str, dict[str, int]]:
    """{rule: {table: flagged rows}} from our engine (peer table names)."""
    source = (read_ssda903(paths, year=YEAR_903) if fmt == "ssda903"
              else read_cin_census(paths))
    con = connect()
    try:
        load_tables(con, source)
        run_rules(con, load_rules(fmt))
        # The peer keeps assessment factors as a list on the assessment row, so a finding on
        # factor rows counts once per assessment there.
        rows = con.execute("""
            SELECT i.rule, i.table_name, count(DISTINCT CASE WHEN i.table_name =
                   'assessment_factors' THEN f.assessments_key ELSE i.row_id END)
            FROM validation.issues i
            LEFT JOIN cin_census.assessment_factors f
              ON i.table_name = 'assessment_factors' AND f._row = i.row_id
            GROUP BY ALL""").fetchall() if fmt == "cin_census" else con.execute(
            "SELECT rule, table_name, count(*) FROM validation.issues GROUP BY ALL").fetchall()
    finally:
        con.close()
    names = TABLES_903 if fmt == "ssda903" else TABLES_CIN
    counts: dict[str, dict[str, int]] = {}
    for rule, table, n in rows:
        counts.setdefault(rule, {})[names.get(table, table)] = int(n)
    return counts


def compare(fmt: str, ours: dict[str, dict[str, int]], peer: dict[str, dict[str, int]],
            peer_rules: list[str]) -> dict[str, dict[str, Any]]:
    """Per rule we implement: our count on its table, the peer's on the same table (None when
    the peer has no rule of that code, e.g. our own integrity checks)."""
    names = TABLES_903 if fmt == "ssda903" else TABLES_CIN
    out: dict[str, dict[str, Any]] = {}
    for rule in load_rules(fmt).rules:
        table = names.get(rule.table, rule.table)
        mine = ours.get(rule.code, {}).get(table, 0)
        if rule.code not in peer_rules:
            out[rule.code] = {"table": table, "ours": mine, "peer": None, "agree": None}
            continue
        theirs = peer.get(rule.code, {}).get(table, 0)
        out[rule.code] = {"table": table, "ours": mine, "peer": theirs, "agree": mine == theirs}
    return out


def full_run_differences(peer: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Rules whose count in the peer's full run differs from the same rule run alone."""
    out = {}
    for rule in load_rules("ssda903").rules:
        table = TABLES_903.get(rule.table, rule.table)
        alone = peer["counts"].get(rule.code, {}).get(table, 0)
        full = peer["full_run"].get(rule.code, {}).get(table, 0)
        if alone != full:
            out[rule.code] = {"alone": alone, "full_run": full}
    return out


def crosscheck() -> dict[str, Any]:
    result: dict[str, Any] = {"date": dt.date.today().isoformat()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = peer_903_folder(Path(tmp))
        peer = run_peer_903(folder)
        result["ssda903"] = {"input": "ssda903 fake CSVs (peer's run-offline set)",
                             "collection_year": YEAR_903, "ruleset": RULESET_903,
                             "validator": f"csc-validator-be-903 {peer['version']}",
                             "rules": compare("ssda903", our_counts("ssda903", [folder]),
                                              peer["counts"], peer["rules"]),
                             "full_run_differs": full_run_differences(peer)}
    cin_files: dict[str, Any] = {}
    version = ""
    for path in sorted((EXTERNAL / "cin_census").glob("*.xml")):
        peer = run_peer_cin(path)
        version = peer["version"]
        cin_files[path.name] = compare("cin_census", our_counts("cin_census", [path]),
                                       peer["counts"], peer["rules"])
    result["cin_census"] = {"ruleset": RULESET_CIN, "validator": f"csc-validator-be-cin {version}",
                            "files": cin_files}
    return result


def _print(result: dict[str, Any]) -> None:
    rules = result["ssda903"]["rules"]
    shared = {c: r for c, r in rules.items() if r["agree"] is not None}
    agree = sum(r["agree"] for r in shared.values())
    print(f"SSDA903 ({result['ssda903']['validator']}): {agree}/{len(shared)} rules agree "
          f"({len(rules) - len(shared)} of ours have no peer rule)")
    for code, r in rules.items():
        mark = "n/a " if r["agree"] is None else ("ok " if r["agree"] else "DIFF")
        peer = "-" if r["peer"] is None else r["peer"]
        print(f"  {mark} {code:>8} {r['table']:<16} ours {r['ours']:>6}  peer {peer:>6}")
    files = result["cin_census"]["files"]
    print(f"CIN census ({result['cin_census']['validator']}):")
    codes = sorted({c for f in files.values() for c, r in f.items() if r["agree"] is not None})
    for code in codes:
        cells = [files[f][code] for f in files if code in files[f]]
        agree = sum(c["agree"] for c in cells)
        ours = sum(c["ours"] for c in cells)
        peer = sum(c["peer"] for c in cells)
        mark = "ok " if agree == len(cells) else "DIFF"
        print(f"  {mark} {code:>8} {cells[0]['table']:<22} ours {ours:>5}  peer {peer:>5}  "
              f"({agree}/{len(cells)} files agree)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, help="write the counts YAML the test checks")
    args = parser.parse_args(argv)
    result = crosscheck()
    _print(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "peer_crosscheck.json").write_text(json.dumps(result, indent=2))
    if args.record:
        record(result, args.record)
    return 0


def record(result: dict[str, Any], path: Path) -> None:
    """Rewrite the recorded peer counts, keeping the explanations already written there."""
    old = yaml.safe_load(path.read_text()) if path.exists() else {}
    notes = (old or {}).get("differences", {})
    data = {
        "date": result["date"],
        "ssda903": {k: result["ssda903"][k] for k in ("input", "collection_year", "ruleset",
                                                      "validator")}
        | {"peer": {c: r["peer"] for c, r in result["ssda903"]["rules"].items()
                    if r["peer"] is not None},
           "peer_full_run_differs": result["ssda903"]["full_run_differs"]},
        "cin_census": {"ruleset": result["cin_census"]["ruleset"],
                       "validator": result["cin_census"]["validator"],
                       "peer": {f: {c: r["peer"] for c, r in rules.items()
                                    if r["peer"] is not None}
                                for f, rules in result["cin_census"]["files"].items()}},
        "differences": notes,
    }
    header = ("# Per-rule flagged-row counts of the public validators on ../shared/external,\n"
              "# recorded by benchmarks/peer_crosscheck.py --record; `differences` explains\n"
              "# every rule where our count differs (the test fails on an unexplained one).\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, width=100))


if __name__ == "__main__":
    sys.exit(main())
