"""The rights stage: data-subject requests (register, deadlines, actions) and the exclusion list.

Public API used by other stages:

- `excluded_children(con) -> duckdb.DuckDBPyRelation` with columns (la_code, child_id): children
  with an active restriction or an unoverridden objection. The evaluation anti-joins it before
  building the cohort. Erased children are already gone from every table.
- `demo_requests(vault_dir, user, password, study, la_code, child_ids, recipient, out_dir)
  -> list[RequestSummary]`: one request of each type, filed and executed (for the demo).
- `trialvault.rights.service`: the desk (new/list/show/transitions/execute) the CLI calls.
- `trialvault.rights.deadlines.compute_deadline`: the ICO deadline rules.
"""

from trialvault.rights.demo import RequestSummary, demo_requests
from trialvault.rights.flags import EXCLUDED_VIEW, FLAGS_TABLE, excluded_children

__all__ = ["EXCLUDED_VIEW", "FLAGS_TABLE", "RequestSummary", "demo_requests",
           "excluded_children"]
