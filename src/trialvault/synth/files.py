"""Write a synthetic world to disk, one chunk at a time, and its truth.json."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialvault import __version__
from trialvault.origin import write_marker
from trialvault.spec import load_layout
from trialvault.study.model import StudyFile
from trialvault.synth.faults import FaultLog
from trialvault.synth.params import (
    DISABILITY_CARE_SHIFT,
    LA_SPREAD,
    TREND,
    UASC_CARE_SHIFT,
    SynthError,
    SynthParams,
    date_of,
    resolve,
)
from trialvault.synth.places import PROVIDERS_FILE, write_register
from trialvault.synth.render import LAWriter
from trialvault.synth.world import TruthAccumulator, chunk_frames, iter_chunks

# progress(done_chunks, total_chunks, description): the CLI passes a rich progress bar.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SynthSummary:
    """What `generate_files` wrote."""

    out: Path
    seed: int
    scale: float
    la_codes: tuple[int, ...]
    collection_years: tuple[int, ...]
    rows: int
    children: int
    cohort: int
    faults: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def generate_files(study: StudyFile, out: Path, *, seed: int, scale: float = 1.0,
                   effects: dict[str, float] | None = None, error_rate: float = 0.0,
                   progress: Progress | None = None,
                   scenario: dict[str, float] | None = None) -> SynthSummary:
    """Render the synthetic world of every LA to `out` (streaming) and write `out/truth.json`.

    Layout: `<la>/ssda903/<year>/*.csv`, `<la>/cin_census/<year>.xml`, `<la>/education.csv`,
    `<la>/neet.csv` and `<la>/providers.csv` (the LA's Ofsted provider register, as
    `prepare --providers` reads it). Refuses a non-empty `out` so nothing is mixed with older files.
    """
    p = resolve(study, seed=seed, scale=scale, effects=effects or {}, error_rate=error_rate,
                scenario=scenario)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SynthError(f"output folder {out} is not empty; give a new or empty folder")
    # Everything is written under a sibling work folder that becomes `out` only when complete,
    # so a failure never leaves a half-written set that looks finished.
    work = out.with_name(f".{out.name}.partial")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    started = time.perf_counter()
    try:
        fault_path = work / ".faults.jsonl"
        with fault_path.open("w", encoding="utf-8") as sink:
            log = FaultLog(sink=sink)
            rows, children, truth = _render_all(p, work, log, progress)
        result = truth.result()
        _write_truth(work / "truth.json", truth_document(p, result), fault_path)
        fault_path.unlink()
        for folder in (work, *(work / str(la) for la in p.la_codes)):
            if folder.is_dir():
                write_marker(folder)
        if out.exists():
            out.rmdir()
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return SynthSummary(out=out, seed=seed, scale=scale, la_codes=p.la_codes,
                        collection_years=p.years, rows=rows, children=children,
                        cohort=result["cohort"]["n"], faults=log.count,
                        seconds=time.perf_counter() - started)


def _render_all(p: SynthParams, out: Path, log: FaultLog, progress: Progress | None
                ) -> tuple[int, int, TruthAccumulator]:
    truth = TruthAccumulator(p)
    plan = {la: list(iter_chunks(p, la)) for la in p.la_codes}
    total = sum(len(v) for v in plan.values())
    done, rows, children = 0, 0, 0
    for la in p.la_codes:
        writer = LAWriter(p, la, out, log)
        try:
            for i, (kind, chunk, last) in enumerate(plan[la]):
                frames = chunk_frames(p, la, kind, chunk)
                writer.write_chunk(frames, i, last)
                truth.add(la, frames)
                children += len(frames["children"])
                done += 1
                if progress is not None:
                    progress(done, total, f"LA {la}")
        finally:
            writer.close()
        rows += writer.rows
        # Reference data beside the returns (not counted as return rows).
        (out / str(la)).mkdir(parents=True, exist_ok=True)
        write_register(out / str(la) / PROVIDERS_FILE, p.seed, la, p.area(la),
                       load_layout("ssda903").table("providers").column_names)
    return rows, children, truth


_FAULTS_MARK = "__faults__"


def _write_truth(path: Path, document: dict[str, Any], faults: Path) -> None:
    """truth.json with the faults array streamed in from the JSON-lines file."""
    text = json.dumps({**document, "faults": _FAULTS_MARK}, indent=1)
    head, tail = text.split(f'"{_FAULTS_MARK}"')
    with path.open("w", encoding="utf-8") as fh, faults.open(encoding="utf-8") as src:
        fh.write(head + "[")
        for i, line in enumerate(src):
            fh.write(("\n  " if i == 0 else ",\n  ") + line.rstrip("\n"))
        fh.write("\n ]" + tail + "\n")


def truth_document(p: SynthParams, result: dict[str, Any]) -> dict[str, Any]:
    """The truth.json content: planted effects, generating parameters, cohort, faults."""
    return {
        "generator": f"trialvault synth {__version__}",
        "seed": p.seed, "scale": p.scale, "error_rate": p.error_rate,
        **result,
        "parameters": {
            "base_rates": p.base, "la_factor": {str(k): v for k, v in p.la_factor.items()},
            "la_weights": {str(k): v for k, v in p.la_weights.items()},
            "size_statistic": p.size_statistic,
            "referred_children": {str(k): v for k, v in p.referred.items()},
            "long_stay_children": {str(k): v for k, v in p.long_stay.items()},
            "la_spread": LA_SPREAD, "trend": TREND, "uasc_care_shift": UASC_CARE_SHIFT,
            "disability_care_shift": DISABILITY_CARE_SHIFT,
            "step_dates": {str(k): date_of(v).isoformat() for k, v in p.step_day.items()},
            "data_start": date_of(p.data_start).isoformat(),
            "data_end": date_of(p.data_end).isoformat(),
            "index_end": date_of(p.index_end).isoformat(),
            "follow_up_months": p.follow_up_months,
            "collection_years": list(p.years),
            "collection_year_note": ("collection year N = 1 April N-1 to 31 March N; the last "
                                     "year is an extract at data_period.end"),
        },
        "fault_note": ("Faults are planted in the files only; the harmonised view from "
                       "trialvault.synth.simulate is the fault-free data. 'line' is 1-based "
                       "(CSV header = line 1; XML: the line of the faulty element; for "
                       "child_missing_from_header: the child's first episode line). For education and NEET "
                       "faults 'child' is the UPN: those files carry no LA child code."),
    }
