"""Run ACRO (`acro` package, AI-SDC/ACRO) on the cross-check tables and record its flags.

Runs in a separate virtual environment (ACRO pins its own pandas), never in the project's:
    python -m venv /tmp/acro-venv && /tmp/acro-venv/bin/pip install acro
    /tmp/acro-venv/bin/python acro_runner.py MICRODATA.csv SPEC.json OUT.json
SPEC lists the tables: {"name": ..., "subset": column or null, "values": column or null,
"aggfunc": "mean" or null}. OUT maps each table to its rows, columns and, per cell, the
names of the ACRO checks that failed (suppression off, so nothing is hidden from us).
"""

from __future__ import annotations

import json
import sys
from importlib import metadata

import pandas as pd
from acro import ACRO


def main(csv_path: str, spec_path: str, out_path: str) -> None:
    data = pd.read_csv(csv_path, dtype={"la": str, "period": str})
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    las = sorted(data["la"].unique())
    periods = sorted(data["period"].unique())
    acro = ACRO(suppress=False)
    out = {"acro_version": metadata.version("acro"), "tables": {}}
    for table in spec:
        part = data if not table["subset"] else data[data[table["subset"]] == 1]
        # Categories keep empty cells (ACRO forces dropna=False, so zeros are checked).
        la = pd.Categorical(part["la"], categories=las)
        period = pd.Categorical(part["period"], categories=periods)
        kwargs = {}
        if table["values"]:
            kwargs = {"values": part[table["values"]], "aggfunc": table["aggfunc"]}
        acro.crosstab(pd.Series(la, name="la", index=part.index),
                      pd.Series(period, name="period", index=part.index), **kwargs)
        record = acro.results.get(acro.results.get_keys()[-1])
        outcome = record.outcome
        flags = {str(r): {str(c): [x.strip() for x in str(outcome.loc[r, c]).split(";")
                                   if x.strip() and x.strip() != "ok"]
                          for c in outcome.columns} for r in outcome.index}
        out["tables"][table["name"]] = {"status": record.status, "flags": flags,
                                        "summary": record.sdc.get("summary", {})}
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=2, sort_keys=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
