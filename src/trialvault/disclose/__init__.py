"""The disclose stage: statistical disclosure control and the signed release workflow.

Public API:

- `check_results(results, study, earlier=()) -> CheckedRelease`: every disclosure rule on an
  evaluation's aggregates (`ResultsInput`), jointly with the study's earlier releases.
- `read_results(con, run_id=None, study=None)`: a `ResultsInput` from an evaluation run in the
  vault, under the study file stored with that run.
- Release workflow (each opens and audits one vault session): `request_release`,
  `review_release` (signed; distinct registered people), `write_release` (verifies every
  signature first), `verify_release`, `release_list`, `show_release`.
- `children_in_release(con, release_id)`: (la_code, child_id) a release counted, kept in the
  vault table `meta.release_children` (for erasure requests).
"""

from trialvault.disclose.check import check_results
from trialvault.disclose.from_vault import read_results
from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.disclose.outputs import CellReview, CheckedOutput, CheckedRelease, RuleResult
from trialvault.disclose.release import (
    children_in_release,
    release_list,
    request_release,
    review_release,
    show_release,
    verify_release,
    write_release,
)

__all__ = [
    "CellReview", "CheckedOutput", "CheckedRelease", "Period", "ResultsInput", "RuleResult",
    "check_results", "children_in_release", "read_results", "release_list", "request_release",
    "review_release", "show_release", "verify_release", "write_release",
]
