"""The disclose stage: statistical disclosure control and the release workflow.

Public API:

- `check_results(results, study) -> CheckedRelease`: every disclosure rule on an evaluation's
  aggregate results (`ResultsInput`): primary suppression (threshold, zeros), secondary
  suppression across linked tables proven by an integer audit, rounding, dominance, p-ratio,
  all-values-the-same, residual degrees of freedom.
- `read_results(con, study, run_id=None)`: a `ResultsInput` from an evaluation run in the vault.
- Release workflow (each opens and audits one vault session):
  `request_release(vault_dir, user, password, study) -> release id`,
  `review_release(vault_dir, user, password, release_id, decision, comment)` (a different
  user; the requester approving their own release is refused with `PolicyRefusal`),
  `write_release(vault_dir, user, password, release_id, out_dir) -> report path`,
  `release_list`, `show_release`.
- `children_in_release(con, release_id)`: (la_code, child_id) a release counted, kept in the
  vault table `releases.release_children` (for erasure requests).
"""

from trialvault.disclose.check import check_results
from trialvault.disclose.from_vault import read_results
from trialvault.disclose.inputs import Period, ResultsInput
from trialvault.disclose.outputs import CellChange, CheckedOutput, CheckedRelease, RuleResult
from trialvault.disclose.release import (
    children_in_release,
    release_list,
    request_release,
    review_release,
    show_release,
    write_release,
)

__all__ = [
    "CellChange", "CheckedOutput", "CheckedRelease", "Period", "ResultsInput", "RuleResult",
    "check_results", "children_in_release", "read_results", "release_list", "request_release",
    "review_release", "show_release", "write_release",
]
