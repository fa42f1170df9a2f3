"""Synthetic LA data in the statutory formats, with planted effects and recorded faults.

`simulate(study, seed=..., scale=..., effects=..., error_rate=...)` gives an in-memory
`SyntheticWorld` (harmonised tables + truth); `generate_files(...)` streams the same world to
SSDA903 CSVs, CIN census XML, education and NEET CSVs plus `truth.json`.
"""

from trialvault.synth.files import SynthSummary, generate_files
from trialvault.synth.params import OUTCOMES, SynthError
from trialvault.synth.world import SyntheticWorld, simulate

__all__ = ["OUTCOMES", "SynthError", "SynthSummary", "SyntheticWorld", "generate_files",
           "simulate"]
