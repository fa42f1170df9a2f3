"""Synthetic LA data in the statutory formats, with planted effects and recorded faults.

`simulate(study, seed=..., scale=..., effects=..., error_rate=...)` gives an in-memory
`SyntheticWorld` (harmonised tables + truth); `generate_files(...)` streams the same world to
SSDA903 CSVs, CIN census XML, education and NEET CSVs and each LA's provider register
(`providers.csv`, as `prepare --providers` reads it) plus `truth.json`;
`simulate_cohort(...)` draws only the primary analysis table from the same outcome model (fast,
for operating characteristics). Named `scenario` departures (`SCENARIOS`) break the model's
assumptions on purpose.
"""

from trialvault.synth.cohort_sim import simulate_cohort
from trialvault.synth.files import SynthSummary, generate_files
from trialvault.synth.params import OUTCOMES, SCENARIOS, SynthError
from trialvault.synth.world import SyntheticWorld, simulate

__all__ = ["OUTCOMES", "SCENARIOS", "SynthError", "SynthSummary", "SyntheticWorld",
           "generate_files", "simulate", "simulate_cohort"]
