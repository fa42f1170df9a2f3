"""The design stage: power and MDES of the study's design, and a verifiable rollout order.

Public API:

- `design_from_study(study)` / `read_design_csv(path)` -> `DesignMatrix` (clusters × periods).
- `power_analysis(design, volumes, assumptions, baseline=|sd=, effect=|power=) -> PowerResult`
  (GLS variance of the treatment effect; Hussey & Hughes, Hooper et al., Kasza et al.).
- `commit(study_id) -> Commitment`, `derive_order(...)`, `verify_rollout(study) -> Verification`
  (SHA-256 commitment, beacon, counter stream, Fisher–Yates; docs/design.md).
- `design_statement(study) -> DesignStatement`: the power statement and the randomisation
  method in words, for the privacy notice and protocol documents.
- `simulate_power(...)`: power, coverage and size of the plan's primary analysis by simulation.
"""

from trialvault.design.analytic import Assumptions, PowerResult
from trialvault.design.analytic import analyse as power_analysis
from trialvault.design.matrix import DesignMatrix
from trialvault.design.matrix import from_study as design_from_study
from trialvault.design.matrix import read_csv as read_design_csv

__all__ = ["Assumptions", "DesignMatrix", "PowerResult", "design_from_study", "power_analysis",
           "read_design_csv"]
