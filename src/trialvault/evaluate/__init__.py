"""The evaluate stage: cohort and outcomes (SQL), Hussey & Hughes stepped-wedge models with
randomisation inference and a wild cluster bootstrap, and Callaway–Sant'Anna sensitivity.

Public API:

- `run_evaluation(con, study, *, seed=None) -> EvaluationResults` on any DuckDB connection with
  schema `harmonised` (a vault session's, or an in-memory one with synthetic tables).
- `write_results(con, results, provenance=None, *, own_transaction=False) -> run_id`: store in
  schema `results` (tables keyed by run_id; provenance in `results.runs`).
- `evaluate_vault(vault_dir, user, password, study) -> EvaluationResults`: open the vault,
  evaluate, store, audit (the demo and `trialvault evaluate` call this).
- `render_summary(results) -> str`: a plain-text summary.
- `analyse_primary(analysis, study, *, method=None) -> EffectEstimate`: the plan's primary
  analysis (estimand, `primary_model`, `primary_inference`) of the primary outcome on an
  in-memory cohort table (`build_analysis_table(...).analysis`, or
  `trialvault.synth.simulate_cohort(...)[0]`); for design simulations. `EffectEstimate` has
  estimate, se, df, ci_low, ci_high, p_value, n, model, method, estimand.
"""

from trialvault.evaluate.headline import EffectEstimate, analyse_primary
from trialvault.evaluate.results import EvaluationResults, write_results
from trialvault.evaluate.run import evaluate_vault, run_evaluation
from trialvault.evaluate.summary import render_summary

__all__ = ["EffectEstimate", "EvaluationResults", "analyse_primary", "evaluate_vault",
           "render_summary", "run_evaluation", "write_results"]
