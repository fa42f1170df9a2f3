"""Record-level cross-check of our DfE rules against the public validators, on the same files.

    python benchmarks/peer_crosscheck.py                 # every dataset, writes the doc
    python benchmarks/peer_crosscheck.py --only 903 --datasets fake,shift --codes 101,102
    python benchmarks/peer_crosscheck.py --record        # also refresh the suite's fixture

For each dataset (below) both sides run every rule of the collection year's ruleset: the public
validators (csc-validator-be-903 and csc-validator-be-cin, in the virtual environments that
`../shared/tools/peer-validators` creates under $PEER_VENVS, default /tmp/peer-validators) each
rule on its own deep copy of the data (some of their rules edit the shared tables in place), and
ours through `prepare.validate`. Every shared code is compared record by record: the set of rows
(table, row index in the file) each side flags on the table our rule reports. A difference is a
disagreement; each is explained in `benchmarks/peer_differences.yaml` and the whole comparison is
written to docs/validation-vs-peer.md (with the coverage table, docs/validation-coverage.md) and
benchmarks/out/peer_crosscheck.json.

Datasets (all derived from public or project-generated files, never edited in place):
- `fake`: the public fake returns as they are (../shared/external): the 11 SSDA903 CSVs the
  peer's `run-offline` reads, collection year 2023; each CIN census XML with its own header year.
- `shift`: the same files with every date moved forward whole years so the activity falls in
  collection year 2025, 2026 and 2027 (the current and previous two years), plus, for SSDA903,
  the same files moved one year less as last year's return (`--previous`), so the year-on-year
  rules have something to compare.
- `fuzz`: seeded random mutations of the shifted files (blanked, swapped, shifted, lower-cased,
  malformed and out-of-list values; repeated and dropped rows).
- `synth`: one LA of `trialvault synth` (seeded, with planted faults) for collection years 2025
  and 2026 with the previous year's return.

The 903 peer is told whose return it reads (`localAuthority`, an ONS code) and is given Ofsted's
provider lists (children's homes, "CH lookup", and social care providers, "SCP lookup"). The
public fakes are Richmond's (E09000027) with the fake lists beside them; a synthetic LA is the
study's LA (its ONS code from the study file) with its own register (`<LA>/providers.csv`, which
`trialvault synth` writes) turned into lists of the same sheets and columns (`synth_lookups`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trialvault.formats import SourceTables, read_cin_census, read_ssda903
from trialvault.formats.reference import local_authority_table, read_reference_table
from trialvault.prepare.validate import connect, load_tables, run_rules
from trialvault.spec.rules import load_rules
from trialvault.study import load_study

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "external"
OUT = REPO / "benchmarks" / "out"
CACHE = OUT / "peer_cache"
DIFFERENCES = REPO / "benchmarks" / "peer_differences.yaml"
DOC = REPO / "docs" / "validation-vs-peer.md"
COVERAGE_DOC = REPO / "docs" / "validation-coverage.md"
FIXTURE = REPO / "tests" / "integration" / "prepare" / "peer_records.json"
# Ofsted's children's homes and social care providers lists (fake ones) for the URN rules.
PROVIDER_LISTS = (EXTERNAL / "ssda903" / "ch_fake.xlsx", EXTERNAL / "ssda903" / "scp_fake.xlsx")
PEER_LA_ONS = "E09000027"  # the LA the peer's run-offline assumes (the fakes are Richmond's)
STUDY = REPO / "studies" / "no-wrong-door.toml"
YEARS = (2025, 2026, 2027)
# The files the 903 peer's `run-offline` reads (placed_for_adoption_errors.csv is its
# adoption-placement table).
PEER_903_FILES = ("ad1", "episodes", "header", "missing", "oc2", "oc3",
                  "placed_for_adoption_errors", "previous_permanence", "reviews", "uasc",
                  "sw_episodes")
TABLES_903 = {"header": "Header", "episodes": "Episodes", "uasc": "UASC", "missing": "Missing",
              "reviews": "Reviews", "oc2": "OC2", "oc3": "OC3", "ad1": "AD1",
              "placed_for_adoption": "PlacedAdoption", "previous_permanence": "PrevPerm",
              "sw_episodes": "SWEpisodes", "dolo": "DoLo"}
TABLES_CIN = {"collection_details": "Header", "source": "Header",
              "child_identifiers": "ChildIdentifiers",
              "child_characteristics": "ChildCharacteristics", "disabilities": "Disabilities",
              "cin_details": "CINdetails", "assessments": "Assessments",
              "assessment_factors": "AssessmentFactorsList", "cin_plan_dates": "CINplanDates",
              "section47": "Section47", "child_protection_plans": "ChildProtectionPlans",
              "cpp_reviews": "Reviews", "pre_proceedings": "PreProceedings"}

_PEER_903 = r"""
import copy, contextlib, importlib, io, json, logging, sys, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import pandas as pd
from lac_validator.datastore import create_datastore
from lac_validator.ingress import read_from_text
from lac_validator.utils import process_uploaded_files
from importlib.metadata import version
cfg = json.load(open(sys.argv[1]))
files = {"This year": cfg["this"]}
if cfg.get("prev"):
    files["Prev year"] = cfg["prev"]
if cfg.get("ch"):
    files["CH lookup"] = [cfg["ch"]]
    files["SCP lookup"] = [cfg["scp"]]
reg = importlib.import_module("lac_validator.rules." + cfg["ruleset"]).registry
metadata = {"collectionYear": str(cfg["year"]), "localAuthority": cfg["la"]}
with contextlib.redirect_stdout(io.StringIO()):
    dfs, extra = read_from_text(raw_files=process_uploaded_files(files))
    store = create_datastore(dfs, {**metadata, **extra})
rules = {}
for code, rule in reg.items():
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = rule.func(copy.deepcopy(store))
    except Exception as exc:
        rules[code] = {"crash": type(exc).__name__}
        continue
    tables = {}
    for table, values in result.items():
        rows = set()
        for value in values:
            try:
                if pd.notna(value):
                    rows.add(int(value))
            except (TypeError, ValueError):
                pass
        if rows:
            tables[table] = sorted(rows)
    rules[code] = {"tables": tables}
json.dump({"version": version("csc-validator-be-903"), "rules": rules}, open(sys.argv[2], "w"))
"""

# The reference data the 903 peer uses, exported for our side (the same postcode rows and the
# same Ofsted provider table, so the placement-area and URN rules compare like with like).
_PEER_REFERENCE = r"""
import csv, json, logging, os, sys, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
os.environ["QLACREF_PC_INSECURE"] = "True"
import pandas as pd
from lac_validator.datastore import la_df, postcodes
from lac_validator.ingress import construct_provider_info_table
from lac_validator.types import UploadedFile
cfg = json.load(open(sys.argv[1]))
wanted = sorted({p.upper().replace(" ", "") for p in cfg["postcodes"]})
postcodes.load_postcodes(sorted({p[0] for p in wanted if p}))
pc = postcodes.dataframe
pc = pc[pc["pcd_abbr"].isin(wanted)].merge(la_df, how="left", left_on="laua", right_on="LTLA21CD")
with open(sys.argv[2], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["pcd", "oseast1m", "osnrth1m", "laua", "cty"])
    for r in pc.itertuples():
        cty = r.UTLA21CD if isinstance(r.UTLA21CD, str) and r.UTLA21CD != r.laua else "E99999999"
        w.writerow([r.pcd, r.oseast1m, r.osnrth1m, r.laua, cty])
def upload(path, kind):
    return UploadedFile(name=os.path.basename(path), description=kind,
                        file_content=open(path, "rb").read())
providers = construct_provider_info_table(upload(cfg["ch"], "CH lookup"), upload(cfg["scp"], "SCP lookup"))
with open(sys.argv[3], "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["URN", "PLACE_CODES", "PROVIDER_CODES", "POSTCODE", "REG_END", "LA_CODE_INFERRED"])
    for r in providers.itertuples():
        end = pd.to_datetime(r.REG_END, errors="coerce")
        w.writerow([r.URN, r.PLACE_CODES, r.PROVIDER_CODES, r.POSTCODE,
                    "" if pd.isna(end) else end.strftime("%d/%m/%Y"), r.LA_CODE_INFERRED])
"""

_PEER_CIN = r"""
import copy, contextlib, importlib, io, json, logging, sys, warnings
warnings.filterwarnings("ignore"); logging.disable(logging.CRITICAL)
import xml.etree.ElementTree as ET
import pandas as pd
from cin_validator import cin_validator
from cin_validator.rule_engine import RuleContext
from importlib.metadata import version
cfg = json.load(open(sys.argv[1]))
reg = importlib.import_module("cin_validator.rules." + cfg["ruleset"]).registry
with contextlib.redirect_stdout(io.StringIO()):
    data = cin_validator.process_data(cin_validator.convert_data(ET.parse(cfg["file"]).getroot()))
    enum_data = cin_validator.enum_keys(data)
rules = {}
for code, rule in reg.items():
    ctx = RuleContext(rule)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rule.func(copy.deepcopy(enum_data), ctx)
    except Exception as exc:
        rules[str(code)] = {"crash": type(exc).__name__}
        continue
    tables = {}
    for frame in (ctx.type_zero_issues, ctx.type_one_issues, ctx.type_two_issues,
                  ctx.type_three_issues):
        if len(frame) == 0:
            continue
        for table, rows in frame.groupby("tables_affected")["ROW_ID"]:
            found = tables.setdefault(str(table), set())
            for value in rows:
                try:
                    found.add(int(value))
                except (TypeError, ValueError):
                    pass
    entry = {"tables": {t: sorted(v) for t, v in tables.items() if v}}
    if len(ctx.la_level_issues):
        entry["la_level"] = True
    rules[str(code)] = entry
json.dump({"version": version("csc-validator-be-cin"), "rules": rules}, open(sys.argv[2], "w"))
"""


@dataclass(frozen=True)
class Dataset:
    """One comparison input: a return of one collection year (and last year's, for 903)."""

    name: str
    fmt: str  # "ssda903" or "cin_census"
    year: int
    current: Path  # 903: a folder of CSVs; CIN: one XML file
    previous: Path | None = None
    kind: str = "fake"  # fake | shift | fuzz | synth
    # 903: whose return it is (ONS code; the peer's localAuthority, our local_authority table)
    # and Ofsted's lists the peer reads as its CH and SCP lookups (xlsx, the peer's layout).
    la_ons: str = PEER_LA_ONS
    lookups: tuple[Path, Path] = PROVIDER_LISTS

    @property
    def ruleset(self) -> str:
        # The peers ship rulesets lac2022_23 / cin2022_23 (applied to older years too) onwards.
        year = min(max(self.year, 2023), 2027)
        return f"{'lac' if self.fmt == 'ssda903' else 'cin'}{year - 1}_{year % 100:02d}"


@dataclass
class Comparison:
    """Our rows and the peer's for one rule code on one dataset."""

    code: str
    table: str
    ours: set[int] = field(default_factory=set)
    peer: set[int] = field(default_factory=set)
    peer_crash: str | None = None
    peer_other_tables: dict[str, int] = field(default_factory=dict)

    @property
    def agree(self) -> bool:
        return self.peer_crash is None and self.ours == self.peer


# --- peers ---------------------------------------------------------------------------------

def peer_python(fmt: str) -> Path:
    root = Path(os.environ.get("PEER_VENVS", "/tmp/peer-validators"))
    python = root / ("v903" if fmt == "ssda903" else "vcin") / "bin" / "python"
    if not python.exists():
        tool = REPO.parent / "shared" / "tools" / "peer-validators"
        raise SystemExit(f"no peer venv at {python}: run `{tool} {'903' if fmt == 'ssda903' else 'cin'}"
                         " ...` once to create it")
    return python


def _digest(paths: Iterable[Path]) -> str:
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(path.name.encode())
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _files(ds: Dataset) -> tuple[list[Path], list[Path]]:
    if ds.fmt == "cin_census":
        return [ds.current], []
    # DoLOs are part of the return from 2026 to 2027 only.
    names = [*PEER_903_FILES, *(["DoLo"] if ds.year >= 2027 else [])]

    def present(folder: Path) -> list[Path]:
        found = [folder / f"{n}.csv" for n in names if (folder / f"{n}.csv").exists()]
        # A return names its adoption-placement file placed_for_adoption.csv; the fakes also
        # hold an _errors variant, which the peer's run-offline reads instead.
        if not (folder / "placed_for_adoption_errors.csv").exists() and (
                folder / "placed_for_adoption.csv").exists():
            found.append(folder / "placed_for_adoption.csv")
        return found

    return present(ds.current), present(ds.previous) if ds.previous else []


def _inputs_key(ds: Dataset) -> str:
    """The 903 peer's other inputs in a cache key: the LA and the provider lists' bytes."""
    return f"{ds.la_ons}-{_digest(ds.lookups)}" if ds.fmt == "ssda903" else "none"


def run_peer(ds: Dataset) -> dict[str, Any]:
    """The peer's flagged rows per rule (cached by the input's bytes, the LA, the provider lists
    and the ruleset)."""
    this, prev = _files(ds)
    key = (f"{ds.fmt}-{ds.ruleset}-v3-{_digest(this)}-{_digest(prev) if prev else 'none'}-"
           f"{_inputs_key(ds)}")
    cached = CACHE / f"{key}.json"
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        out = Path(tmp) / "out.json"
        if ds.fmt == "ssda903":
            config.write_text(json.dumps({"this": [str(p) for p in this],
                                          "prev": [str(p) for p in prev],
                                          "year": ds.year, "ruleset": ds.ruleset,
                                          "la": ds.la_ons, "ch": str(ds.lookups[0]),
                                          "scp": str(ds.lookups[1])}))
            script = _PEER_903
        else:
            config.write_text(json.dumps({"file": str(ds.current), "ruleset": ds.ruleset}))
            script = _PEER_CIN
        done = subprocess.run([str(peer_python(ds.fmt)), "-c", script, str(config), str(out)],
                              cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"public validator failed on {ds.name}:\n{done.stderr[-3000:]}")
        result = json.loads(out.read_text())
    cached.write_text(json.dumps(result))
    return dict(result)


def peer_reference(ds: Dataset) -> tuple[Path, Path]:
    """The peer's postcode rows for the dataset's postcodes and its provider table, as the
    reference CSVs `prepare --postcodes/--providers` reads (cached)."""
    this, prev = _files(ds)
    key = f"reference-{_digest(this)}-{_digest(prev) if prev else 'none'}-{_digest(ds.lookups)}"
    postcodes, providers = CACHE / f"{key}-postcodes.csv", CACHE / f"{key}-providers.csv"
    if postcodes.exists() and providers.exists():
        return postcodes, providers
    CACHE.mkdir(parents=True, exist_ok=True)
    codes: set[str] = set()
    for folder in (ds.current, ds.previous):
        if folder is not None and (folder / "episodes.csv").exists():
            header, rows = _read_csv(folder / "episodes.csv")
            cols = [header.index(c) for c in ("HOME_POST", "PL_POST")]
            codes |= {r[i] for r in rows for i in cols if i < len(r) and r[i]}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"postcodes": sorted(codes), "ch": str(ds.lookups[0]),
                                      "scp": str(ds.lookups[1])}))
        done = subprocess.run([str(peer_python("ssda903")), "-c", _PEER_REFERENCE, str(config),
                               str(postcodes), str(providers)], cwd=tmp, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise SystemExit(f"public validator's reference data failed:\n{done.stderr[-3000:]}")
    return postcodes, providers


# --- synthetic LAs' provider lists ----------------------------------------------------------

# The columns of Ofsted's lists as the 903 peer reads them (those of the public fakes): the
# children's homes list's "Provider information" sheet and the social care providers list's
# current and closed providers sheets.
CH_COLUMNS = (
    "Local Authority", "URN", "Provider Type", "Provider Subtype", "Sector", "Setting Name",
    "Postcode Area", "Registration Date", "Provider Status", "Closed Date", "Provider Code",
    "Provider Placement Code", "Emotional and Behavioural Difficulties", "Mental Disorders",
    "Sensory Impairment", "Present Alcohol Problems", "Present Drug Problems",
    "Learning Difficulty", "Physical Disabilities", "Max Users", "Full Inspection Start Date",
    "Overall Effectiveness", "CYP Safety", "Leadership and Management", "CYP Outcomes",
    "Interim Inspection Start Date", "Interim Inspection Overall Effectiveness",
    "Assurance Visit Start Date", "Setting Address Line 1", "Setting Address Line 2",
    "Setting Address Town", "Setting Address County", "Setting Address Postcode",
    "Setting Telephone Number", "Setting Email Address", "Owner Type", "Owner ID", "Owner Name",
    "Owner Address Line 1", "Owner Address Line 2", "Owner Town", "Owner County",
    "Owner Postcode", "Multi Building CH")
CH_CONDITIONS = ("Local Authority", "URN", "Setting Name", "Postcode Area", "Conditions",
                 "Multi Building CH")
SCP_CURRENT = (
    "URN", "Provision type", "Setting name", "Registration status", "Setting address line 1",
    "Setting address line 2", "Setting town", "Setting county", "Setting postcode",
    "Organisation name", "Local authority", "Region", "Sector", "Placement code",
    "Placement provider code", "Date of last full inspection",
    "Latest overall Effectiveness grade from last full inspection", "Maximum fostering places",
    "Top company (as listed on Companies' House)")
SCP_CLOSED = (
    "URN", "Provision type", "Setting name", "Registration status", "Setting address line 1",
    "Setting address line 2", "Setting town", "Setting county", "Setting postcode",
    "Organisation name", "Local authority", "Region", "Sector", "Deregistration date",
    "Placement code", "Placement provider code", "Date of last full inspection",
    "Latest overall effectiveness grade from last full inspection", "Maximum fostering places",
    "Top company (as listed on Companies' House)")
# Placement types at a children's home's premises (the CH list); the rest (fostering and
# adoption agencies, supported accommodation) are on the social care providers list.
CH_PLACES = {"K1", "K2", "S1"}
_SECTOR = {"PR1": "Local Authority", "PR2": "Local Authority", "PR4": "Private",
           "PR5": "Voluntary"}


def _spaced(postcode: str) -> str:
    """AB12CD -> AB1 2CD (as Ofsted's lists print postcodes)."""
    return f"{postcode[:-3]} {postcode[-3:]}" if len(postcode) > 3 else postcode


def _provision(places: list[str], code: str) -> str:
    own = code in ("PR1", "PR2")
    if any(p.startswith("A") for p in places):
        return "Local Authority Adoption Agency" if own else "Voluntary Adoption Agency"
    if any(p.startswith("U") for p in places):
        return "Local Authority Fostering Agency" if own else "Independent Fostering Agency"
    return "Supported Accommodation"


def _write_xlsx(path: Path, sheets: list[tuple[str, tuple[str, ...], list[list[str]]]]) -> None:
    import xlsxwriter

    # A fixed creation date, so the same register gives the same bytes (and cache key).
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    book.set_properties({"created": dt.datetime(2025, 4, 1)})
    for name, header, rows in sheets:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, header)
        for i, row in enumerate(rows, start=1):
            for j, value in enumerate(row):
                if value:
                    sheet.write_string(i, j, value)
    book.close()


def synth_lookups(providers: Path) -> tuple[Path, Path]:
    """A synthetic LA's provider register (`<LA>/providers.csv`, the `providers` reference
    table) as the children's homes and social care providers lists the 903 peer reads (the
    fakes' sheets and columns; cached under benchmarks/out/peer_cache by the register's bytes)."""
    folder = CACHE / f"lookups-{_digest([providers])}"
    ch, scp = folder / "ch_synth.xlsx", folder / "scp_synth.xlsx"
    if ch.exists() and scp.exists():
        return ch, scp
    header, rows = _read_csv(providers)
    homes: list[list[str]] = []
    others: list[list[str]] = []
    for row in rows:
        r = dict(zip(header, row, strict=True))
        places = r["PLACE_CODES"].split(",")
        postcode, la, code = _spaced(r["POSTCODE"]), r["LA_CODE_INFERRED"], r["PROVIDER_CODES"]
        if set(places) <= CH_PLACES:
            values = {"Local Authority": la, "URN": r["URN"], "Provider Type": "Children's Home",
                      "Provider Subtype": {"K1": "Secure Unit", "S1": "Residential Special School"
                                           }.get(places[0], "Children's Home"),
                      "Sector": _SECTOR.get(code, ""), "Setting Name": f"Home {r['URN']}",
                      "Postcode Area": postcode, "Provider Status": "Active",
                      "Closed Date": r["REG_END"],
                      # The peer reads the CH list's "Provider Code" as the placement types
                      # and "Provider Placement Code" ("/"-separated) as the provider codes.
                      "Provider Code": ",".join(places),
                      "Provider Placement Code": code.replace(",", "/"),
                      "Setting Address Postcode": postcode}
            homes.append([values.get(c, "") for c in CH_COLUMNS])
        else:
            values = {"URN": r["URN"], "Provision type": _provision(places, code),
                      "Setting name": f"Provider {r['URN']}", "Registration status": "Active",
                      "Setting postcode": postcode, "Local authority": la,
                      "Sector": _SECTOR.get(code, ""), "Placement code": ",".join(places),
                      "Placement provider code": code}
            others.append([values.get(c, "") for c in SCP_CURRENT])
    folder.mkdir(parents=True, exist_ok=True)
    _write_xlsx(ch, [("Provider information", CH_COLUMNS, homes),
                     ("Registration Conditions", CH_CONDITIONS, [])])
    _write_xlsx(scp, [("Current providers", SCP_CURRENT, others),
                      ("Providers closed", SCP_CLOSED, [])])
    return ch, scp


def synth_inputs(la: Path, study: Path = STUDY) -> dict[str, Any]:
    """The Dataset fields of a synthetic LA folder: its ONS code (the study's) and provider
    lists built from its register."""
    return {"la_ons": load_study(study).la(int(la.name)).ons_code,
            "lookups": synth_lookups(la / "providers.csv")}


# --- ours ----------------------------------------------------------------------------------

def our_rows(ds: Dataset) -> dict[str, dict[str, set[int]]]:
    """{code: {our table: row indexes in the current year's file}} from our engine."""
    with tempfile.TemporaryDirectory() as tmp:
        if ds.fmt == "ssda903":
            root = Path(tmp) / "ssda903"
            root.mkdir()
            for year, folder in ((ds.year, ds.current), (ds.year - 1, ds.previous)):
                if folder is None:
                    continue
                (root / str(year)).mkdir()
                for path in _files(Dataset(ds.name, ds.fmt, year, folder))[0]:
                    (root / str(year) / path.name).symlink_to(path)
            source = read_ssda903([root])
            postcodes, providers = peer_reference(ds)
            source = SourceTables(ds.fmt, {
                **source.tables, "postcodes": read_reference_table("postcodes", postcodes),
                "providers": read_reference_table("providers", providers),
                "local_authority": local_authority_table(ds.la_ons)}, source.files, source.meta)
        else:
            source = read_cin_census([ds.current])
        con = connect()
        try:
            load_tables(con, source)
            run_rules(con, load_rules(ds.fmt))
            tables = [t for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                [ds.fmt]).fetchall()]
            lines = " UNION ALL ".join(
                f"SELECT '{t}' AS t, _row, collection_year, source_line FROM {ds.fmt}.\"{t}\""
                for t in tables)
            # A CSV row's index in its file is its line less the header's; XML tables are read
            # one file at a time, so the row id is the index.
            index = "r.source_line - 2" if ds.fmt == "ssda903" else "r._row"
            found = con.execute(f"""
                SELECT i.rule, i.table_name, {index} FROM validation.issues i
                JOIN ({lines}) r ON r.t = i.table_name AND r._row = i.row_id
                WHERE r.collection_year = ? OR ? = 'cin_census'""", [ds.year, ds.fmt]).fetchall()
        finally:
            con.close()
    out: dict[str, dict[str, set[int]]] = {}
    for code, table, row in found:
        out.setdefault(code, {}).setdefault(table, set()).add(int(row))
    return out


def compare(ds: Dataset, peer: dict[str, Any], ours: dict[str, dict[str, set[int]]],
            codes: set[str] | None = None) -> list[Comparison]:
    """A Comparison for every code both sides have in force in the dataset's year."""
    ruleset = load_rules(ds.fmt)
    names = TABLES_903 if ds.fmt == "ssda903" else TABLES_CIN
    out = []
    for code in ruleset.codes_in(ds.year):
        if code not in peer["rules"] or (codes and code not in codes):
            continue
        rule = ruleset.rule(code, ds.year)
        table = names.get(rule.table, rule.table)
        entry = peer["rules"][code]
        comparison = Comparison(code=code, table=table,
                                ours=ours.get(code, {}).get(rule.table, set()),
                                peer_crash=entry.get("crash"))
        for peer_table, rows in entry.get("tables", {}).items():
            if peer_table == table:
                comparison.peer = set(rows)
            else:
                comparison.peer_other_tables[peer_table] = len(rows)
        if entry.get("la_level") and table == "Header":
            comparison.peer = {0}
        out.append(comparison)
    return out


# --- datasets ------------------------------------------------------------------------------

_DMY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_YMD = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _shift_date(text: str, years: int) -> str:
    match = _DMY.match(text)
    if match:
        day, month, year = match.groups()
        return f"{day}/{month}/{int(year) + years}"
    match = _YMD.match(text)
    if match:
        year, month, day = match.groups()
        return f"{int(year) + years}-{month}-{day}{text[10:]}"
    return text


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def shifted_903(src: Path, dest: Path, years: int) -> Path:
    """The fakes moved `years` forward, with social worker episodes and DoLOs added (the fakes
    hold one deliberately broken row of each) so those rules have something to check."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PEER_903_FILES:
        header, rows = _read_csv(src / f"{name}.csv")
        _write_csv(dest / f"{name}.csv", header,
                   [[_shift_date(v, years) for v in row] for row in rows])
    _add_sw_and_dolo(dest, seed=years)
    return dest


def _dmy(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


def _add_sw_and_dolo(folder: Path, seed: int) -> None:
    """Seeded social worker episodes (chained around each child's care, with the gaps,
    overlaps, blanks and odd reasons real extracts have) and DoLOs for some children."""
    rng = random.Random(seed)
    _, episodes = _read_csv(folder / "episodes.csv")
    _, header = _read_csv(folder / "header.csv")
    dob = {r[0]: r[2] for r in header}
    first: dict[str, dt.date] = {}
    for row in episodes:
        match = _DMY.match(row[1])
        if match:
            day, month, year = (int(x) for x in match.groups())
            try:
                start = dt.date(year, month, day)
            except ValueError:
                continue
            first[row[0]] = min(first.get(row[0], start), start)
    reasons = ["MANAGE", "FCONTA", "LEFTRL", "ORGRST", "TSPROC", "ABSENC", "CHCHAN", "PCCHAN",
               "OTHERS", "", "XXXX"]
    sw_rows, dolo_rows = [], []
    for child, start in sorted(first.items()):
        day = start - dt.timedelta(days=rng.randint(0, 200))
        for k in range(rng.randint(1, 3)):
            length = rng.choice([2, 5, 30, 90, 200, 400])
            end = day + dt.timedelta(days=length)
            last = k == 2 or rng.random() < 0.4
            sw_rows.append([child, dob.get(child, ""), rng.choice(["SW", "SW", "XX", "AB"])
                            + str(rng.randint(1, 99999)), _dmy(day),
                            "" if last and rng.random() < 0.7 else _dmy(end),
                            "FCONTA" if k == 0 and rng.random() < 0.7 else rng.choice(reasons)])
            if last:
                break
            # Mostly a handover within days; sometimes a gap or an overlap (never the same day,
            # which real extracts hold only by mistake and rule SW19 reports).
            day = end + dt.timedelta(days=rng.choice([-8, -3, 0, 1, 2, 3, 7, 8, 15]))
        if rng.random() < 0.08:
            begin = start + dt.timedelta(days=rng.randint(-30, 300))
            dolo_rows.append([child, dob.get(child, ""), _dmy(begin),
                              "" if rng.random() < 0.4 else
                              _dmy(begin + dt.timedelta(days=rng.randint(-5, 200)))])
    _write_csv(folder / "sw_episodes.csv", ["CHILD", "DOB", "SW_ID", "SW_DECOM", "SW_DEC",
                                            "SW_REASON"], sw_rows)
    _write_csv(folder / "DoLo.csv", ["CHILD", "DOB", "DOLO_START", "DOLO_END"], dolo_rows)


def shifted_cin(src: Path, dest: Path, year: int) -> Path:
    text = src.read_text(encoding="utf-8")
    old = int(re.search(r"<Year>(\d{4})</Year>", text).group(1))  # type: ignore[union-attr]
    years = year - old

    def date(match: re.Match[str]) -> str:
        return f">{_shift_date(match.group(1), years)}<"

    text = re.sub(r">(\d{4}-\d{2}-\d{2}[^<]*)<", date, text)
    text = re.sub(r"<ReferenceDate>[^<]*</ReferenceDate>",
                  f"<ReferenceDate>{year}-03-31</ReferenceDate>", text)
    text = re.sub(r"<Year>\d{4}</Year>", f"<Year>{year}</Year>", text)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest


def _mutate(value: str, column: list[str], rng: random.Random) -> str:
    """One random change of the kind real exports carry (or a hostile one)."""
    choice = rng.random()
    if choice < 0.2:
        return ""
    if _DMY.match(value):
        day, month, year = _DMY.match(value).groups()  # type: ignore[union-attr]
        pick = rng.random()
        if pick < 0.5:
            moved = dt.date(int(year), int(month), min(int(day), 28)) + dt.timedelta(
                days=rng.randint(-500, 500))
            return moved.strftime("%d/%m/%Y")
        if pick < 0.65:
            return f"{month}/{day}/{year}"
        if pick < 0.8:
            return f"{year}-{month}-{day}"
        return f"31/02/{year}"
    if _YMD.match(value):
        year, month, day = _YMD.match(value).groups()  # type: ignore[union-attr]
        pick = rng.random()
        if pick < 0.6:
            moved = dt.date(int(year), int(month), min(int(day), 28)) + dt.timedelta(
                days=rng.randint(-500, 500))
            return moved.isoformat()
        if pick < 0.8:
            return f"{day}/{month}/{year}"
        return f"{year}-02-31"
    if choice < 0.6 and column:
        return rng.choice(column)
    if choice < 0.75:
        return value.lower()
    if choice < 0.9:
        return rng.choice(["X", "XX9", "0", "99", "-1", "Z1"])
    return value + rng.choice(["0", "A"])


def fuzzed_903(src: Path, dest: Path, seed: int, rate: float = 0.04) -> Path:
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (*PEER_903_FILES, "DoLo"):
        if not (src / f"{name}.csv").exists():
            continue
        header, rows = _read_csv(src / f"{name}.csv")
        columns = [sorted({r[i] for r in rows if i < len(r) and r[i]}) for i in range(len(header))]
        out = []
        for row in rows:
            if rng.random() < 0.01:
                continue  # a dropped row
            new = [(_mutate(v, columns[i], rng) if i > 0 and rng.random() < rate else v)
                   for i, v in enumerate(row)]
            if rng.random() < 0.005 and columns[0]:
                new[0] = rng.choice(columns[0])  # another child's code
            out.append(new)
            if rng.random() < 0.01:
                out.append(list(new))  # a repeated row
        _write_csv(dest / f"{name}.csv", header, out)
    return dest


def fuzzed_cin(src: Path, dest: Path, seed: int, rate: float = 0.04) -> Path:
    rng = random.Random(seed)
    text = src.read_text(encoding="utf-8")
    leaves = list(re.finditer(r"<(\w+)>([^<]+)</\1>", text))
    by_tag: dict[str, list[str]] = {}
    for match in leaves:
        by_tag.setdefault(match.group(1), []).append(match.group(2))
    keep = {"Collection", "Year", "ReferenceDate", "LEA", "SourceLevel", "SoftwareCode",
            "Release", "SerialNo", "DateTime"}

    def mutate(match: re.Match[str]) -> str:
        tag, value = match.group(1), match.group(2)
        if tag in keep or rng.random() >= rate:
            return match.group(0)
        new = _mutate(value, sorted(set(by_tag[tag])), rng)
        # An empty element is how an export blanks a value.
        return f"<{tag}>{new}</{tag}>" if new else f"<{tag}></{tag}>"

    text = re.sub(r"<(\w+)>([^<]+)</\1>", mutate, text)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest


def dfe_csv_form(src: Path, dest: Path) -> Path:
    """The synthetic return as the DfE's CSV layout has it: the generator also writes a UASC
    column into header.csv, which the public validator refuses (the CSV form records UASC
    children in uasc.csv)."""
    if dest.exists():
        return dest
    dest.mkdir(parents=True)
    for path in sorted(src.glob("*.csv")):
        header, rows = _read_csv(path)
        keep = [i for i, name in enumerate(header) if not (path.stem == "header" and name == "UASC")]
        _write_csv(dest / path.name, [header[i] for i in keep], [[r[i] for i in keep] for r in rows])
    return dest


def synth_data(tmp: Path) -> Path:
    """One LA of synthetic returns, generated once per seed (cached under benchmarks/out)."""
    folder = OUT / "crosscheck_synth_seed11"
    las = [p for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    if not (folder / "truth.json").exists() or not all(
            (p / "providers.csv").exists() for p in las):
        from trialvault.synth import generate_files

        # A folder from before `synth` wrote each LA's provider register is made again.
        shutil.rmtree(folder, ignore_errors=True)
        generate_files(load_study(STUDY), folder, seed=11, scale=0.15, error_rate=0.02)
    del tmp
    return folder


def build_datasets(tmp: Path, kinds: set[str], formats: set[str]) -> list[Dataset]:
    out: list[Dataset] = []
    fake903 = EXTERNAL / "ssda903"
    cin_dir = EXTERNAL / "cin_census"
    if "ssda903" in formats:
        if "fake" in kinds:
            out.append(Dataset("903 fake 2023", "ssda903", 2023, fake903))
        for year in YEARS:
            years = year - 2018  # the fakes' activity is mostly in 2017-18
            if "shift" in kinds or "fuzz" in kinds:
                cur = shifted_903(fake903, tmp / f"903s{year}", years)
                prev = shifted_903(fake903, tmp / f"903s{year}p", years - 1)
                if "shift" in kinds:
                    out.append(Dataset(f"903 shifted {year}", "ssda903", year, cur, prev, "shift"))
                if "fuzz" in kinds:
                    for seed in (1, 2):
                        out.append(Dataset(
                            f"903 fuzzed {year} seed {seed}", "ssda903", year,
                            fuzzed_903(cur, tmp / f"903f{year}_{seed}", seed * 100 + year),
                            fuzzed_903(prev, tmp / f"903f{year}_{seed}p", seed * 100 + year + 1),
                            "fuzz"))
        if "synth" in kinds:
            data = synth_data(tmp)
            la = sorted(p for p in data.iterdir() if p.name.isdigit())[0]
            for year in (2025, 2026):
                out.append(Dataset(f"903 synthetic LA {la.name} {year}", "ssda903", year,
                                   dfe_csv_form(la / "ssda903" / str(year), tmp / f"syn{year}"),
                                   dfe_csv_form(la / "ssda903" / str(year - 1),
                                                tmp / f"syn{year - 1}"), "synth",
                                   **synth_inputs(la)))
    if "cin_census" in formats:
        files = sorted(cin_dir.glob("*.xml"))
        if "fake" in kinds:
            for path in files:
                year = int(re.search(r"<Year>(\d{4})</Year>",  # type: ignore[union-attr]
                                     path.read_text(encoding="utf-8")).group(1))
                out.append(Dataset(f"CIN fake {path.name}", "cin_census", year, path))
        for year in YEARS:
            base = cin_dir / "fake_CIN_data.xml"
            if "shift" in kinds or "fuzz" in kinds:
                cur = shifted_cin(base, tmp / f"cins{year}" / "fake_CIN_data.xml", year)
                if "shift" in kinds:
                    out.append(Dataset(f"CIN shifted {year}", "cin_census", year, cur, kind="shift"))
                    rich = shifted_cin(cin_dir / "CIN_Census_2024.xml",
                                       tmp / f"cinr{year}" / "CIN_Census_2024.xml", year)
                    out.append(Dataset(f"CIN shifted {year} (2024 layout)", "cin_census", year,
                                       rich, kind="shift"))
                if "fuzz" in kinds:
                    for seed in (1, 2):
                        out.append(Dataset(
                            f"CIN fuzzed {year} seed {seed}", "cin_census", year,
                            fuzzed_cin(cur, tmp / f"cinf{year}_{seed}" / "fake_CIN_data.xml",
                                       seed * 100 + year), kind="fuzz"))
        if "synth" in kinds:
            data = synth_data(tmp)
            la = sorted(p for p in data.iterdir() if p.name.isdigit())[0]
            for year in (2025, 2026):
                out.append(Dataset(f"CIN synthetic LA {la.name} {year}", "cin_census", year,
                                   la / "cin_census" / f"{year}.xml", kind="synth"))
    return out


# --- running and reporting -------------------------------------------------------------------

def crosscheck(datasets: list[Dataset], codes: set[str] | None = None,
               progress: Callable[[str], None] = print) -> dict[str, Any]:
    result: dict[str, Any] = {"date": dt.date.today().isoformat(), "datasets": []}
    for ds in datasets:
        progress(f"  {ds.name} ({ds.ruleset})")
        peer = run_peer(ds)
        ours = our_rows(ds)
        comparisons = compare(ds, peer, ours, codes)
        result["datasets"].append({
            "name": ds.name, "format": ds.fmt, "year": ds.year, "kind": ds.kind,
            "ruleset": ds.ruleset, "validator_version": peer["version"],
            "rules": {c.code: {"table": c.table, "ours": sorted(c.ours), "peer": sorted(c.peer),
                               "peer_crash": c.peer_crash,
                               "peer_other_tables": c.peer_other_tables}
                      for c in comparisons}})
    return result


def summary_lines(result: dict[str, Any], explained: dict[str, Any]) -> list[str]:
    lines = []
    for ds in result["datasets"]:
        rules = ds["rules"]
        agree = [c for c, r in rules.items() if r["ours"] == r["peer"] and not r["peer_crash"]]
        differ = [c for c in rules if c not in agree]
        unexplained = [c for c in differ if c not in explained.get(ds["format"], {})]
        lines.append(f"{ds['name']}: {len(agree)}/{len(rules)} codes agree record by record; "
                     f"{len(differ)} differ ({len(unexplained)} unexplained"
                     f"{': ' + ', '.join(unexplained) if unexplained else ''})")
    return lines


def load_differences() -> dict[str, Any]:
    if not DIFFERENCES.exists():
        return {}
    return dict(yaml.safe_load(DIFFERENCES.read_text()) or {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["903", "cin"], help="one format only")
    parser.add_argument("--datasets", default="fake,shift,fuzz,synth",
                        help="comma-separated kinds: fake, shift, fuzz, synth")
    parser.add_argument("--codes", help="comma-separated rule codes to compare")
    parser.add_argument("--show", action="store_true", help="print the differing rows")
    parser.add_argument("--record", action="store_true",
                        help="refresh the suite's record-level fixture (fake datasets)")
    parser.add_argument("--no-docs", action="store_true", help="do not rewrite the docs")
    args = parser.parse_args(argv)
    formats = {"ssda903", "cin_census"}
    if args.only:
        formats = {"ssda903" if args.only == "903" else "cin_census"}
    kinds = set(args.datasets.split(","))
    codes = set(args.codes.split(",")) if args.codes else None
    with tempfile.TemporaryDirectory() as tmp:
        datasets = build_datasets(Path(tmp), kinds, formats)
        print(f"cross-check on {len(datasets)} datasets:")
        result = crosscheck(datasets, codes)
    explained = load_differences()
    for line in summary_lines(result, explained):
        print(line)
    if args.show:
        for ds in result["datasets"]:
            for code, r in ds["rules"].items():
                if r["ours"] != r["peer"] or r["peer_crash"]:
                    ours, peer = set(r["ours"]), set(r["peer"])
                    print(f"  {ds['name']} {code} {r['table']}: ours-only "
                          f"{sorted(ours - peer)[:12]} ({len(ours - peer)}), peer-only "
                          f"{sorted(peer - ours)[:12]} ({len(peer - ours)})"
                          f"{' CRASH ' + r['peer_crash'] if r['peer_crash'] else ''}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "peer_crosscheck.json").write_text(json.dumps(result))
    if not args.no_docs and not args.codes and kinds == {"fake", "shift", "fuzz", "synth"} \
            and formats == {"ssda903", "cin_census"}:
        from peer_report import write_docs  # type: ignore[import-not-found]

        write_docs(result, explained)
    if args.record:
        record_fixture(result)
    return 0


def record_fixture(result: dict[str, Any]) -> None:
    """The peer's rows on the unshifted public fakes, for the fast test in the suite."""
    data = {"date": result["date"], "datasets": {}}
    for ds in result["datasets"]:
        if ds["kind"] != "fake":
            continue
        # The suite runs without the peer's reference data: rules that need it are left out.
        ruleset = load_rules(ds["format"])
        data["datasets"][ds["name"]] = {
            "format": ds["format"], "year": ds["year"], "ruleset": ds["ruleset"],
            "validator_version": ds["validator_version"],
            "peer": {c: r["peer"] for c, r in ds["rules"].items()
                     if not r["peer_crash"] and not ruleset.rule(c, ds["year"]).needs}}
    FIXTURE.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    sys.exit(main())
