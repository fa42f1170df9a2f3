"""The design in words, from the same numbers `trialvault design power` prints.

`design_statement(study)` gives the power statement and the randomisation method for the
privacy notice and protocol documents (template `study/templates/design.md.j2`). Every figure
comes from the study file: the rollout, the analysis periods, `[design.power]` and
`[design.randomisation]`; none is typed into a template.
"""

from __future__ import annotations

from dataclasses import dataclass

from trialvault.design.analytic import Assumptions, PowerResult, analyse
from trialvault.design.matrix import from_study, volumes
from trialvault.design.randomise import forbidden_positions
from trialvault.study.model import StudyFile

PERIOD_WORDS = {"month": "months", "quarter": "quarters", "half-year": "half-years",
                "year": "years"}


@dataclass(frozen=True)
class DesignStatement:
    power: str
    randomisation: str
    result: PowerResult | None


def assumptions_of(study: StudyFile, **overrides: object) -> Assumptions:
    p = study.design.power
    values: dict[str, object] = {"alpha": study.analysis.alpha}
    if p is not None:
        values.update(icc=p.icc, cac=p.cac, correlation=p.correlation, cohort=p.cohort,
                      iac=p.iac)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "icc" not in values:
        from trialvault.errors import UsageError

        raise UsageError("give --icc (the study file has no [design.power] section)")
    return Assumptions(**values)  # type: ignore[arg-type]


def primary_baseline(study: StudyFile) -> float | None:
    p = study.design.power
    if p is not None and p.baseline is not None:
        return p.baseline
    if study.synth is not None:
        return study.synth.base_rates.get(study.analysis.primary_outcome.id)
    return None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def design_statement(study: StudyFile) -> DesignStatement:
    """The power statement and the randomisation method, in words."""
    power, result = _power_text(study)
    return DesignStatement(power=power, randomisation=_randomisation_text(study), result=result)


def _power_text(study: StudyFile) -> tuple[str, PowerResult | None]:
    p = study.design.power
    outcome = study.analysis.primary_outcome
    if p is None:
        return ("The study file states no power assumptions ([design.power]), so no power "
                "statement is made.", None)
    design = from_study(study)
    m = volumes(design, study, None)
    a = assumptions_of(study)
    baseline = primary_baseline(study)
    binary = outcome.kind == "binary"
    if binary and baseline is None:
        return ("The study file gives no baseline risk of the primary outcome, so no power "
                "statement is made.", None)
    if not binary and p.sd is None:
        return ("The study file gives no SD of the primary outcome ([design.power].sd), so no "
                "power statement is made.", None)
    result = analyse(design, m, a, baseline=baseline if binary else None,
                     sd=None if binary else p.sd, power=p.target_power)
    n_clusters, n_periods = design.shape
    mdes = result.mdes or 0.0
    size = (f"a change of {100 * mdes:.1f} percentage points in the share of children who "
            f"{outcome.title[0].lower() + outcome.title[1:]} (from {_pct(baseline or 0)})"
            if binary else f"a difference of {mdes:.3g} in {outcome.title.lower()}")
    corr = ("the same correlation between any two periods of a local authority "
            f"(cluster autocorrelation {a.cac:g})" if a.correlation == "block_exchangeable"
            else f"a correlation between periods that decays by a factor {a.cac:g} per period")
    text = (
        f"With {n_clusters} local authorities stepping in turn over {n_periods} "
        f"{PERIOD_WORDS[study.analysis.period]} and about {result.total_n:,.0f} children expected, "
        f"the trial has {_pct(p.target_power)} power to detect {size} at a two-sided "
        f"{100 * study.analysis.alpha:g}% significance level (design effect "
        f"{result.design_effect:.2f}). This assumes an intracluster correlation of {a.icc:g} "
        f"within a period and {corr}; the method is generalised least squares on the design "
        f"({result.method.split('; ')[1]}). {p.basis}")
    return text, result


def _randomisation_text(study: StudyFile) -> str:
    r = study.design.randomisation
    if r is None:
        return "The study file does not describe how the rollout order is randomised."
    parts = [r.method]
    forbidden = forbidden_positions(r)
    if forbidden:
        rules = [f"LA {la} may not take position{'s' if len(pos) > 1 else ''} "
                 f"{', '.join(str(p) for p in sorted(pos))}" for la, pos in sorted(forbidden.items())]
        parts.append("Constraints, applied by rejecting orders that break them: "
                     + "; ".join(rules) + ".")
    if r.commitment and r.committed_at:
        parts.append(f"Commitment {r.commitment} published "
                     f"{r.committed_at.isoformat().replace('+00:00', 'Z')}.")
    if r.seed and r.beacon:
        rejected = f" ({r.rejected_draws} draws rejected)" if r.rejected_draws is not None else ""
        parts.append(f"Public value: {r.beacon_source or 'beacon'} = {r.beacon}; seed revealed "
                     f"{r.seed}{rejected}.")
    elif study.design.illustrative_schedule:
        parts.append("The current schedule is illustrative: no order has been drawn yet.")
    return " ".join(parts)
