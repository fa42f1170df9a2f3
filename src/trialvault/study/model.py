"""The study file model: every fact the privacy notice states, and the rules later stages read.

A study file (`studies/*.toml`) is the only place study-specific facts live. Each section is a
frozen pydantic model that forbids unknown keys, so a typo is an error naming the key.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    # An empty text is refused like a missing key: every text may end up in a document.
    model_config = ConfigDict(extra="forbid", frozen=True, str_min_length=1)


class Study(_Section):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Short machine id, e.g. nwd")
    title: str
    intervention: str
    purpose: str
    protocol_url: str | None = None
    notice_written: dt.date
    spec_version: str = Field(description="Version of the data spec the study was set up with")


class Contact(_Section):
    name: str
    address: list[str] = Field(default_factory=list)
    phone: str | None = None
    email: list[str] = Field(default_factory=list)
    website: str | None = None


class LocalAuthority(_Section):
    name: str
    dfe_code: int = Field(ge=100, le=999, description="DfE (LEA) three-digit code")
    ons_code: str = Field(pattern=r"^E(06|07|08|09|10)\d{6}$")


class DataPeriod(_Section):
    first_year: int = Field(ge=2000, le=2100)
    last_year: int = Field(ge=2000, le=2100)

    @model_validator(mode="after")
    def _ordered(self) -> DataPeriod:
        if self.last_year < self.first_year:
            raise ValueError("last_year is before first_year")
        return self

    @property
    def start(self) -> dt.date:
        return dt.date(self.first_year, 1, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.last_year, 12, 31)


class DataSubjects(_Section):
    description: str
    identifiability: str


class Category(_Section):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    description: str
    fields: list[str] = Field(min_length=1, description="Minimised field names this category allows")
    special_category: bool = False


class SpecialCategory(_Section):
    fields: list[str] = Field(min_length=1)
    description: str
    article9_condition: str
    schedule1_condition: str
    justification: str
    appropriate_policy_document: str


class LawfulBasis(_Section):
    article: Literal["6(1)(a)", "6(1)(b)", "6(1)(c)", "6(1)(d)", "6(1)(e)", "6(1)(f)"]
    name: str
    purpose_test: str
    necessity_test: str
    balancing_test: str
    children: str = Field(
        description="How the balancing test weighs that the data subjects are children "
                    "(UK GDPR Art. 6(1)(f): 'in particular where the data subject is a child')")


class Source(_Section):
    indirect: bool
    description: str
    providers: str


class Storage(_Section):
    description: str
    measures: list[str] = Field(min_length=1)


Season = Literal["spring", "summer", "autumn", "winter"]
# Meteorological seasons (Met Office): the earliest and latest day a season can mean.
_SEASON_MONTHS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "spring": ((3, 1), (5, 31)),
    "summer": ((6, 1), (8, 31)),
    "autumn": ((9, 1), (11, 30)),
    "winter": ((12, 1), (2, 28)),
}


class Retention(_Section):
    final_reporting_season: Season
    final_reporting_year: int = Field(ge=2000, le=2100)
    years_after_final_reporting: int = Field(ge=0, le=100)
    rationale: str
    deletion_method: str

    @property
    def deletion_season_year(self) -> int:
        return self.final_reporting_year + self.years_after_final_reporting

    @property
    def deletion_label(self) -> str:
        return f"{self.final_reporting_season.capitalize()} {self.deletion_season_year}"

    @property
    def final_reporting_label(self) -> str:
        return f"{self.final_reporting_season.capitalize()} {self.final_reporting_year}"

    @property
    def deletion_window(self) -> tuple[dt.date, dt.date]:
        """First and last day of the deletion season (meteorological seasons)."""
        (m1, d1), (m2, d2) = _SEASON_MONTHS[self.final_reporting_season]
        year = self.deletion_season_year
        end_year = year + 1 if self.final_reporting_season == "winter" else year
        last = dt.date(end_year, m2, 29) if (m2, d2) == (2, 28) and _leap(end_year) else None
        return dt.date(year, m1, d1), last or dt.date(end_year, m2, d2)

    @property
    def deletion_due(self) -> dt.date:
        """The date purge becomes due: the first day of the deletion season."""
        return self.deletion_window[0]


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


RightName = Literal["access", "rectification", "erasure", "restriction", "objection"]


class Right(_Section):
    id: RightName
    title: str
    description: str


class Rights(_Section):
    rights: list[Right] = Field(min_length=1)
    request_email: list[str] = Field(min_length=1)
    request_post: list[str] = Field(min_length=1)
    request_phone: str

    @field_validator("rights")
    @classmethod
    def _unique(cls, rights: list[Right]) -> list[Right]:
        ids = [r.id for r in rights]
        if len(ids) != len(set(ids)):
            raise ValueError("a right is listed twice")
        return rights


class Complaints(_Section):
    dpo_route: str
    ico: Contact


class Recipients(_Section):
    recipients: list[str] = Field(min_length=1)
    processors: list[str] = Field(
        description="Processors acting on the controller's instructions (name and what they do); "
                    "an empty list states there are none")
    international_transfers: str
    publication: str


class AutomatedDecisions(_Section):
    """Whether any decision about a person is made by automated means, including profiling."""

    used: bool
    description: str


class DocumentControl(_Section):
    """Who answers for the generated notice, Article 30 record and LIA; their version and dates."""

    owner: str = Field(description="Role (and name) responsible for the documents")
    version: str = Field(pattern=r"^\d+(\.\d+){0,2}$")
    updated: dt.date = Field(description="Date this version of the documents was approved")
    review_due: dt.date = Field(description="Date by which the documents are reviewed again")
    dpia: str = Field(description="The data protection impact assessment: reference, date, "
                                  "outcome and where it is kept")

    @model_validator(mode="after")
    def _review_after_update(self) -> DocumentControl:
        if self.review_due <= self.updated:
            raise ValueError("review_due must be after updated")
        return self


class RolloutStep(_Section):
    la: int = Field(description="DfE LA code of the cluster")
    step_date: dt.date


class ClusterVolume(_Section):
    la: int = Field(description="DfE LA code of the cluster")
    per_period: float = Field(gt=0, description="Expected cohort members indexed per analysis "
                                                "period in this LA")


class PowerAssumptions(_Section):
    """What the design's power and MDES are computed from (`trialvault design power`)."""

    expected: list[ClusterVolume] = Field(
        min_length=1, description="Expected cohort members per cluster-period, one per LA")
    icc: float = Field(ge=0, lt=1, description="Within-period intracluster correlation of the "
                                               "primary outcome")
    cac: float = Field(default=1.0, ge=0, le=1, description="Cluster autocorrelation: 1 = the "
                       "Hussey & Hughes model; below 1 = block-exchangeable or decay")
    correlation: Literal["block_exchangeable", "exponential_decay"] = Field(
        default="block_exchangeable",
        description="How the between-period correlation falls: the same for every pair of "
                    "periods (Hooper et al. 2016), or cac to the power of the periods apart "
                    "(Kasza et al. 2019)")
    cohort: Literal["cross_sectional", "closed"] = Field(
        default="cross_sectional",
        description="cross_sectional: new children each period (the index-date cohort); closed: "
                    "the same children measured every period")
    iac: float = Field(default=0.0, ge=0, lt=1, description="Individual autocorrelation "
                                                             "(closed cohorts only)")
    baseline: float | None = Field(
        default=None, gt=0, description="Expected control risk (binary) or mean of the primary "
                                        "outcome; default: its [synth] base rate")
    sd: float | None = Field(default=None, gt=0, description="SD of one observation of the "
                                                            "primary outcome (not binary)")
    target_power: float = Field(default=0.8, gt=0, lt=1)
    basis: str = Field(description="Where the volumes and correlations come from")


class RandomisationConstraint(_Section):
    la: int = Field(description="DfE LA code of the cluster")
    not_positions: list[int] = Field(
        min_length=1, description="Positions in the rollout order (1 = first to step) this "
                                  "LA may not take")


class Randomisation(_Section):
    """The verifiable randomisation of the rollout order (`trialvault design randomise`)."""

    method: str = Field(description="What was done, in words (it appears in the documents)")
    constraints: list[RandomisationConstraint] = Field(default_factory=list)
    commitment: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                                   description="SHA-256 commitment to the secret seed")
    committed_at: dt.datetime | None = Field(default=None, description="When the commitment "
                                             "was made and published (UTC)")
    beacon_source: str | None = Field(default=None, description="The public value named in "
                                      "advance, e.g. a lottery draw")
    beacon: str | None = Field(default=None, description="The public value, as published")
    beacon_at: dt.datetime | None = Field(default=None, description="When the public value "
                                          "was fixed (UTC)")
    seed: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$",
                             description="The revealed seed (hex)")
    rejected_draws: int | None = Field(default=None, ge=0)


class Design(_Section):
    type: Literal["stepped-wedge cluster RCT"]
    cluster: str
    illustrative_schedule: bool = Field(
        description="True when the rollout dates are placeholders, not the trial's real schedule"
    )
    schedule_note: str
    rollout: list[RolloutStep] = Field(min_length=2)
    target_sample: int = Field(gt=0)
    power: PowerAssumptions | None = None
    randomisation: Randomisation | None = None


# The groups a cohort member belongs to at the index date (docs/architecture.md, "Cohort and
# outcome definitions"): not looked after (the edge of care), already looked after, or a care
# leaver (indexed when a period of care ended at 16 or over).
CohortGroup = Literal["edge_of_care", "looked_after", "care_leaver"]


class Cohort(_Section):
    description: str
    min_age_years: int = Field(ge=0, le=25)
    max_age_years: int = Field(ge=0, le=25)
    care_leaver_max_age_years: int = Field(ge=0, le=25)
    care_leaver_min_age_years: int = Field(
        default=16, ge=0, le=25,
        description="A period of care ending at this age or over makes a care_leaver event")
    qualifying_events: list[
        Literal["referral", "assessment", "s47", "cin_plan", "cp_plan", "looked_after",
                "care_leaver"]
    ] = Field(min_length=1)
    looked_after_at_index: Literal["exclude", "subgroup"] = Field(
        default="subgroup",
        description="Children already in a period of care at the index date: left out of the "
                    "cohort, or kept and analysed as the named subgroup 'looked_after' for the "
                    "outcomes that apply to them (never pooled into the main analyses)")

    @model_validator(mode="after")
    def _ages(self) -> Cohort:
        if self.max_age_years < self.min_age_years:
            raise ValueError("max_age_years is below min_age_years")
        return self


class Outcome(_Section):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    kind: Literal["binary", "count", "rate"]
    primary: bool = False
    applies_to: list[CohortGroup] | None = Field(
        default=None,
        description="Cohort groups the outcome is measured for (others get no value); default: "
                    "the outcome definition's own list in trialvault.evaluate")


class Analysis(_Section):
    index_date: Literal["first_qualifying_event"]
    follow_up_months: int = Field(gt=0, le=120)
    period: Literal["month", "quarter", "half-year", "year"]
    outcomes: list[Outcome] = Field(min_length=1)
    covariates: list[str] = Field(default_factory=list)
    models: list[Literal["logit", "lpm"]] = Field(min_length=1)
    alpha: float = Field(gt=0, lt=1)
    randomisation_inference: bool = True
    wild_bootstrap_draws: int = Field(ge=0)
    wild_bootstrap_weights: Literal["webb", "rademacher"] = "webb"
    did_control_group: Literal["notyettreated", "nevertreated"] = "notyettreated"
    seed: int
    estimand: Literal["mean_effect_among_exposed"] = Field(
        default="mean_effect_among_exposed",
        description="What the headline estimates: the mean effect (risk or mean difference) "
                    "among exposed cohort members, i.e. those indexed on or after their LA's step")
    primary_model: Literal["immediate", "exposure_time"] = Field(
        default="immediate",
        description="immediate: one exposure coefficient (Hussey & Hughes); exposure_time: one "
                    "effect per period since the LA's step, averaged over the exposed children")
    primary_inference: Literal["cr2", "lmm_satterthwaite", "lmm_kenward_roger",
                               "randomisation", "wild_cluster_bootstrap", "model_hc1"] = Field(
        default="cr2",
        description="Inference of the headline: cluster-robust CR2 with Bell-McCaffrey df, "
                    "mixed model with Satterthwaite or Kenward-Roger df, randomisation "
                    "inference (the primary model's estimate of the estimand as the statistic, "
                    "exact p-value over the allowed assignments, CI by test inversion), wild "
                    "cluster bootstrap or child-level HC1 (the last two only as sensitivity)")
    randomisation_shift: Literal["constant", "profile"] = Field(
        default="constant",
        description="Randomisation inference's confidence interval inverts tests of: constant = "
                    "every exposed child's outcome shifted by the same tau; profile = shifted "
                    "by tau plus the exposure-time model's estimated deviation from its mean at "
                    "the child's exposure time (an effect that builds up keeps its shape, and "
                    "tau is its mean among the exposed)")
    randomisation_statistic: Literal["estimate", "t"] = Field(
        default="estimate",
        description="Randomisation inference's test statistic: estimate = the primary model's "
                    "estimate of the estimand; t = that estimate over its cluster-robust "
                    "(CR0) standard error under the same assignment (studentised)")
    exposure_time_max: int = Field(
        default=8, ge=1,
        description="exposure_time model: periods since the step from this one on share one "
                    "effect (few clusters inform the longest exposure times)")
    transition_months: int = Field(
        default=0, ge=0, le=60,
        description="Children indexed this many months before their LA's step (follow-up "
                    "straddling the step) are left out of the effect models and counted")
    multiplicity: Literal["holm", "hochberg", "bonferroni", "fdr_bh", "none"] = Field(
        default="holm",
        description="Adjustment of the secondary outcomes' p-values (one family; the primary "
                    "outcome is tested alone at alpha)")
    missing_data: Literal["ipw", "complete_case"] = Field(
        default="complete_case",
        description="Outcomes not measured for some children who should have them (NEET, "
                    "attendance): inverse probability weighting, with complete-case analysis "
                    "always reported as sensitivity")

    @field_validator("outcomes")
    @classmethod
    def _one_primary(cls, outcomes: list[Outcome]) -> list[Outcome]:
        primaries = [o.id for o in outcomes if o.primary]
        if len(primaries) != 1:
            raise ValueError(f"exactly one outcome must be primary (found {len(primaries)})")
        return outcomes

    @property
    def primary_outcome(self) -> Outcome:
        return next(o for o in self.outcomes if o.primary)


class Disclosure(_Section):
    # Named thresholds, defaults from ACRO/SACRO `default.yaml` (see DOMAIN primer).
    threshold: int = Field(default=10, ge=1)
    dominance_n: int = Field(default=2, ge=1)
    dominance_k: float = Field(default=0.9, gt=0, le=1)
    p_ratio: float = Field(default=0.1, gt=0, lt=1)
    min_residual_dof: int = Field(default=10, ge=1)
    zeros_disclosive: bool = True
    rounding_base: int = Field(default=5, ge=1)
    suppression_symbol: str = "c"
    reviewers_required: int = Field(
        default=2, ge=1,
        description="Approving reviewers a release needs besides its requester: distinct "
                    "registered people (key slots' person ids), none of them the requester, "
                    "each signing the hash of exactly what they checked",
    )
    min_clusters: int = Field(
        default=2, ge=1,
        description="Clusters (LAs) that must inform every published estimate; an event-study "
                    "point from fewer is suppressed. Model residual degrees of freedom are "
                    "counted at the cluster × period level, not on children")
    table_period: Literal["analysis", "half-year", "year"] = Field(
        default="analysis",
        description="Columns of released LA × period tables: the analysis period, or coarser "
                    "(fewer small cells, less suppression)",
    )


class SynthLASize(_Section):
    la: int = Field(description="DfE LA code")
    value: int = Field(gt=0, description="The LA's figure of the size statistic")


class Synth(_Section):
    """Generating parameters for synthetic data (trialvault synth): sizes and base rates only."""

    size_statistic: str = Field(description="The public statistic LA sizes are proportional to")
    la_sizes: list[SynthLASize] = Field(min_length=1)
    referred_children: int = Field(
        gt=0, description="Children with a first in-window referral across all LAs at scale 1")
    long_stay_looked_after: int = Field(
        ge=0, description="Children in care since before the data period, all LAs, at scale 1")
    base_rates: dict[str, float] = Field(
        description="Outcome id -> baseline (unexposed) probability, mean count or rate")
    base_rates_note: str = ""


class Intake(_Section):
    """Rules the vault applies when an LA's new extract supersedes its current one."""

    max_drop_fraction: float = Field(
        default=0.25, gt=0, lt=1,
        description="A superseding package with this much fewer rows (in any table) or "
        "children than the package it replaces is refused unless the data manager passes "
        "--accept-drop (a wrong or truncated extract must not silently replace good data).")


class StudyFile(_Section):
    """The whole study file."""

    study: Study
    controller: Contact
    dpo: Contact
    local_authorities: list[LocalAuthority] = Field(min_length=1)
    data_period: DataPeriod
    data_subjects: DataSubjects
    categories: list[Category] = Field(min_length=1)
    special_category: SpecialCategory
    lawful_basis: LawfulBasis
    source: Source
    storage: Storage
    retention: Retention
    rights: Rights
    complaints: Complaints
    recipients: Recipients
    automated_decision_making: AutomatedDecisions
    document_control: DocumentControl
    design: Design
    cohort: Cohort
    analysis: Analysis
    disclosure: Disclosure = Disclosure()
    intake: Intake = Intake()
    synth: Synth | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StudyFile:
        codes = [la.dfe_code for la in self.local_authorities]
        if len(codes) != len(set(codes)):
            raise ValueError("local_authorities: a DfE code is listed twice")
        step_las = [s.la for s in self.design.rollout]
        if sorted(step_las) != sorted(codes):
            raise ValueError(
                "design.rollout: every local authority needs exactly one step "
                f"(rollout names {sorted(step_las)}, local_authorities {sorted(codes)})"
            )
        fields = [f for c in self.categories for f in c.fields]
        dup = sorted({f for f in fields if fields.count(f) > 1})
        if dup:
            raise ValueError(f"categories: fields declared in two categories: {dup}")
        missing = sorted(set(self.special_category.fields) - set(fields))
        if missing:
            raise ValueError(f"special_category.fields not in any category: {missing}")
        if self.document_control.updated < self.study.notice_written:
            raise ValueError("document_control.updated is before study.notice_written")
        return self

    # --- helpers later stages use -------------------------------------------------------
    @property
    def la_codes(self) -> list[int]:
        return [la.dfe_code for la in self.local_authorities]

    def la(self, code: int) -> LocalAuthority:
        for la in self.local_authorities:
            if la.dfe_code == code:
                return la
        raise KeyError(code)

    @property
    def allowed_fields(self) -> frozenset[str]:
        """Every field some declared category allows: the minimisation allow-list."""
        return frozenset(f for c in self.categories for f in c.fields)

    @property
    def special_fields(self) -> frozenset[str]:
        return frozenset(self.special_category.fields)

    def step_date(self, la_code: int) -> dt.date:
        for step in self.design.rollout:
            if step.la == la_code:
                return step.step_date
        raise KeyError(la_code)
