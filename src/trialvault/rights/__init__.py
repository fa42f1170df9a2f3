"""The rights stage: data-subject requests (register, deadlines, actions) and the exclusion list.

Public API used by other stages:

- `excluded_children(con) -> duckdb.DuckDBPyRelation` with columns (la_code, child_id): children
  with an active restriction or an unoverridden objection. The evaluation anti-joins it before
  building the cohort. Erased children are already gone from every table.
"""

from trialvault.rights.flags import EXCLUDED_VIEW, FLAGS_TABLE, excluded_children

__all__ = ["EXCLUDED_VIEW", "FLAGS_TABLE", "excluded_children"]
