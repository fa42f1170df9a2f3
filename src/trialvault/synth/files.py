"""Write a synthetic world to disk, one chunk at a time, and its truth.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trialvault import __version__
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
                   progress: Progress | None = None) -> SynthSummary:
    """Render the synthetic world of every LA to `out` (streaming) and write `out/truth.json`.

    Layout: `<la>/ssda903/<year>/*.csv`, `<la>/cin_census/<year>.xml`, `<la>/education.csv`,
    `<la>/neet.csv`. Refuses a non-empty `out` so nothing is mixed with older files.
    """
    p = resolve(study, seed=seed, scale=scale, effects=effects or {}, error_rate=error_rate)
    if out.exists() and any(out.iterdir()):
        raise SynthError(f"output folder {out} is not empty; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log = FaultLog()
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
    result = truth.result()
    document = truth_document(p, result, log)
    (out / "truth.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return SynthSummary(out=out, seed=seed, scale=scale, la_codes=p.la_codes,
                        collection_years=p.years, rows=rows, children=children,
                        cohort=result["cohort"]["n"], faults=len(log.faults),
                        seconds=time.perf_counter() - started)


def truth_document(p: SynthParams, result: dict[str, Any], log: FaultLog) -> dict[str, Any]:
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
        "faults": log.faults,
        "fault_note": ("Faults are planted in the files only; the harmonised view from "
                       "trialvault.synth.simulate is the fault-free data. 'line' is 1-based "
                       "(CSV header = line 1; XML: the line of the faulty element; for "
                       "child_missing_from_header: the child's first episode line). For education and NEET "
                       "faults 'child' is the UPN: those files carry no LA child code."),
    }
