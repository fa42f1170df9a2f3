"""Analytic power against simulation.

1. On four designs the GLS power agrees with a Monte Carlo simulation of the model (binomial
   counts of children per cluster-period, cluster and cluster-period effects with the
   design's correlation structure) within Monte Carlo error.
2. `simulate_power` runs the project's generator and the plan's primary analysis (one trial
   each way by default; many behind --run-slow, where it must be close to the analytic power
   of the same design).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trialvault.design.analytic import Assumptions, analyse
from trialvault.design.matrix import DesignMatrix, from_study, volumes
from trialvault.design.simulate import check_analytic, simulate_power
from trialvault.study import load_study

REPO = Path(__file__).resolve().parents[3]
REPS = 6000


def stepped_wedge(per_step: list[int], periods: int | None = None) -> DesignMatrix:
    periods = periods or len(per_step) + 1
    rows = [[1.0 if j > k else 0.0 for j in range(periods)]
            for k, n in enumerate(per_step) for _ in range(n)]
    return DesignMatrix(np.array(rows), tuple(str(i) for i in range(len(rows))),
                        tuple(str(j) for j in range(periods)), "test")


CASES = {
    "hussey_hughes": (stepped_wedge([6, 6, 6, 6]), Assumptions(icc=0.01), 100, 0.3, -0.03),
    "block_exchangeable": (stepped_wedge([2, 2, 2, 2, 2]), Assumptions(icc=0.05, cac=0.6), 50,
                           0.3, 0.08),
    "exponential_decay": (stepped_wedge([1, 1, 1, 1, 1], 8),
                          Assumptions(icc=0.02, cac=0.7, correlation="exponential_decay"), 80,
                          0.3, 0.06),
    "closed_cohort": (stepped_wedge([3, 3, 3]),
                      Assumptions(icc=0.05, cac=0.8, cohort="closed", iac=0.5), 40, 0.4, 0.1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_analytic_power_agrees_with_monte_carlo(name: str) -> None:
    design, a, m, baseline, effect = CASES[name]
    volumes = np.full(design.shape, float(m))
    analytic = analyse(design, volumes, a, baseline=baseline, effect=effect).power
    assert analytic is not None and 0.2 < analytic < 0.9  # a power that can be told apart
    sim = check_analytic(design, volumes, a, baseline=baseline, effect=effect, reps=REPS,
                         seed=7)
    assert abs(sim.power - analytic) < 3.5 * sim.mc_se, (name, sim, analytic)
    assert sim.mean_estimate == pytest.approx(effect, abs=0.1 * abs(effect))


def test_no_effect_rejects_at_alpha() -> None:
    design, a, m, baseline, _ = CASES["block_exchangeable"]
    sim = check_analytic(design, np.full(design.shape, float(m)), a, baseline=baseline,
                         effect=0.0, reps=REPS, seed=3)
    assert abs(sim.power - 0.05) < 3.5 * sim.mc_se


def test_simulate_power_runs_the_generator_and_the_plan_analysis() -> None:
    study = load_study(REPO / "studies" / "no-wrong-door.toml")
    seen: list[tuple[int, int | None]] = []
    result = simulate_power(study, effects={"entered_care_12m": -0.1}, reps=1, null_reps=1,
                            seed=5, jobs=1, progress=lambda d, t, _: seen.append((d, t)))
    assert result.reps == 1 and result.null_reps == 1 and result.failed == 0
    assert result.power in (0.0, 1.0) and result.coverage in (0.0, 1.0)
    assert result.mean_estimand == pytest.approx(-0.1, abs=0.03)  # clipped at 0 for some
    assert result.mean_estimate < 0
    assert seen[0] == (0, 2) and seen[-1] == (2, 2)
    # The plan's primary analysis, whatever the plan says (NWD: randomisation inference).
    a = study.analysis
    assert a.primary_model in result.method
    assert {"randomisation": "randomisation inference"}.get(
        a.primary_inference, a.primary_inference) in result.method


@pytest.mark.slow
def test_design_simulate_is_bounded_by_the_analytic_power_on_nwd() -> None:
    """NWD with LA × quarter noise (SD 0.02 on the risk). The analytic model that matches the
    generator: a large LA variance (the analysis's LA fixed effects absorb it; τ² = 0.01) and
    the cluster-period variance 0.02². The analytic power is that of the immediate-effect
    model with known variances and a normal test: an upper bound for the plan's analysis
    (exposure-time model, CR2 with ~3 Bell-McCaffrey df on 5 clusters), which must still keep
    its size and coverage."""
    study = load_study(REPO / "studies" / "no-wrong-door.toml")
    design = from_study(study)
    result = simulate_power(study, effects={"entered_care_12m": -0.04},
                            scenario={"la_period_sd": 0.02}, reps=100, null_reps=100, seed=11,
                            jobs=2)
    p = 0.08
    sigma2 = p * (1 - p)
    tau2, gamma2 = 0.01, 0.02 ** 2
    a = Assumptions(icc=(tau2 + gamma2) / sigma2, cac=tau2 / (tau2 + gamma2))
    analytic = analyse(design, volumes(design, study, None), a, baseline=p, effect=-0.04).power
    assert analytic is not None
    mc = 3 * np.sqrt(0.25 / result.reps)
    assert result.power <= analytic + mc, (result, analytic)
    assert result.power > result.size
    assert result.coverage >= 0.9 and result.size <= 0.05 + mc, result
