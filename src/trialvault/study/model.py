"""The study file model: every fact the privacy notice states, and the rules later stages read.

A study file (`studies/*.toml`) is the only place study-specific facts live. Each section is a
frozen struct (`trialvault.records.Record`) that forbids unknown keys, so a typo is an error
naming the key; checks across a section's fields run in its `__post_init__`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from trialvault.records import Record

# An empty text is refused like a missing key: every text may end up in a document.
Text = Annotated[str, Meta(min_length=1)]


class _Section(Record, frozen=True, kw_only=True):
    """A section of the study file."""


class Study(_Section, frozen=True, kw_only=True):
    id: Annotated[Text, Meta(
        pattern=r"^[a-z0-9][a-z0-9-]*$", description="Short machine id, e.g. nwd")]
    title: Text
    intervention: Text
    purpose: Text
    protocol_url: Text | None = None
    notice_written: dt.date
    spec_version: Annotated[Text, Meta(
        description="Version of the data spec the study was set up with")]


class Contact(_Section, frozen=True, kw_only=True):
    name: Text
    address: list[Text] = msgspec.field(default_factory=list)
    phone: Text | None = None
    email: list[Text] = msgspec.field(default_factory=list)
    website: Text | None = None


class LocalAuthority(_Section, frozen=True, kw_only=True):
    name: Text
    dfe_code: Annotated[int, Meta(ge=100, le=999, description="DfE (LEA) three-digit code")]
    ons_code: Annotated[Text, Meta(pattern=r"^E(06|07|08|09|10)\d{6}$")]


class DataPeriod(_Section, frozen=True, kw_only=True):
    first_year: Annotated[int, Meta(ge=2000, le=2100)]
    last_year: Annotated[int, Meta(ge=2000, le=2100)]

    def __post_init__(self) -> None:
        if self.last_year < self.first_year:
            raise ValueError("last_year is before first_year")

    @property
    def start(self) -> dt.date:
        return dt.date(self.first_year, 1, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.last_year, 12, 31)


class DataSubjects(_Section, frozen=True, kw_only=True):
    description: Text
    identifiability: Text


class Category(_Section, frozen=True, kw_only=True):
    id: Annotated[Text, Meta(pattern=r"^[a-z][a-z0-9_]*$")]
    title: Text
    description: Text
    fields: Annotated[list[Text], Meta(
        min_length=1, description="Minimised field names this category allows")]
    special_category: bool = False


class SpecialCategory(_Section, frozen=True, kw_only=True):
    fields: Annotated[list[Text], Meta(min_length=1)]
    description: Text
    article9_condition: Text
    schedule1_condition: Text
    justification: Text
    appropriate_policy_document: Text


class LawfulBasis(_Section, frozen=True, kw_only=True):
    article: Literal["6(1)(a)", "6(1)(b)", "6(1)(c)", "6(1)(d)", "6(1)(e)", "6(1)(f)"]
    name: Text
    purpose_test: Text
    necessity_test: Text
    balancing_test: Text
    children: Annotated[Text, Meta(
        description="How the balancing test weighs that the data subjects are children (UK GDPR "
        "Art. 6(1)(f): 'in particular where the data subject is a child')")]


class Source(_Section, frozen=True, kw_only=True):
    indirect: bool
    description: Text
    providers: Text


class Storage(_Section, frozen=True, kw_only=True):
    description: Text
    measures: Annotated[list[Text], Meta(min_length=1)]


Season = Literal["spring", "summer", "autumn", "winter"]
# Meteorological seasons (Met Office): the earliest and latest day a season can mean.
_SEASON_MONTHS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "spring": ((3, 1), (5, 31)),
    "summer": ((6, 1), (8, 31)),
    "autumn": ((9, 1), (11, 30)),
    "winter": ((12, 1), (2, 28)),
}


class Retention(_Section, frozen=True, kw_only=True):
    final_reporting_season: Season
    final_reporting_year: Annotated[int, Meta(ge=2000, le=2100)]
    years_after_final_reporting: Annotated[int, Meta(ge=0, le=100)]
    rationale: Text
    deletion_method: Text

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


class Right(_Section, frozen=True, kw_only=True):
    id: RightName
    title: Text
    description: Text


class Rights(_Section, frozen=True, kw_only=True):
    rights: Annotated[list[Right], Meta(min_length=1)]
    request_email: Annotated[list[Text], Meta(min_length=1)]
    request_post: Annotated[list[Text], Meta(min_length=1)]
    request_phone: Text

    def __post_init__(self) -> None:
        ids = [r.id for r in self.rights]
        if len(ids) != len(set(ids)):
            raise ValueError("rights: a right is listed twice")


class Complaints(_Section, frozen=True, kw_only=True):
    dpo_route: Text
    ico: Contact


class Recipients(_Section, frozen=True, kw_only=True):
    recipients: Annotated[list[Text], Meta(min_length=1)]
    processors: Annotated[list[Text], Meta(
        description="Processors acting on the controller's instructions (name and what they do); "
        "an empty list states there are none")]
    international_transfers: Text
    publication: Text


class AutomatedDecisions(_Section, frozen=True, kw_only=True):
    """Whether any decision about a person is made by automated means, including profiling."""

    used: bool
    description: Text


class DocumentControl(_Section, frozen=True, kw_only=True):
    """Who answers for the generated notice, Article 30 record and LIA; their version and dates."""

    owner: Annotated[Text, Meta(description="Role (and name) responsible for the documents")]
    version: Annotated[Text, Meta(pattern=r"^\d+(\.\d+){0,2}$")]
    updated: Annotated[dt.date, Meta(description="Date this version of the documents was approved")]
    review_due: Annotated[dt.date, Meta(
        description="Date by which the documents are reviewed again")]
    dpia: Annotated[Text, Meta(
        description="The data protection impact assessment: reference, date, outcome and where it "
        "is kept")]

    def __post_init__(self) -> None:
        if self.review_due <= self.updated:
            raise ValueError("review_due must be after updated")


class RolloutStep(_Section, frozen=True, kw_only=True):
    la: Annotated[int, Meta(description="DfE LA code of the cluster")]
    step_date: dt.date


class ClusterVolume(_Section, frozen=True, kw_only=True):
    la: Annotated[int, Meta(description="DfE LA code of the cluster")]
    per_period: Annotated[float, Meta(
        gt=0, description="Expected cohort members indexed per analysis period in this LA")]


class PowerAssumptions(_Section, frozen=True, kw_only=True):
    """What the design's power and MDES are computed from (`trialvault design power`)."""

    expected: Annotated[list[ClusterVolume], Meta(
        min_length=1, description="Expected cohort members per cluster-period, one per LA")]
    icc: Annotated[float, Meta(
        ge=0, lt=1, description="Within-period intracluster correlation of the primary outcome")]
    cac: Annotated[float, Meta(
        ge=0, le=1, description="Cluster autocorrelation: 1 = the Hussey & Hughes model; below 1 = "
        "block-exchangeable or decay")] = 1.0
    correlation: Annotated[Literal["block_exchangeable", "exponential_decay"], Meta(
        description="How the between-period correlation falls: the same for every pair of periods "
        "(Hooper et al. 2016), or cac to the power of the periods apart (Kasza et al. 2019)"
    )] = "block_exchangeable"
    cohort: Annotated[Literal["cross_sectional", "closed"], Meta(
        description="cross_sectional: new children each period (the index-date cohort); closed: "
        "the same children measured every period")] = "cross_sectional"
    iac: Annotated[float, Meta(
        ge=0, lt=1, description="Individual autocorrelation (closed cohorts only)")] = 0.0
    baseline: Annotated[float, Meta(
        gt=0, description="Expected control risk (binary) or mean of the primary outcome; default: "
        "its [synth] base rate")] | None = None
    sd: Annotated[float, Meta(
        gt=0, description="SD of one observation of the primary outcome (not binary)")] | None = None
    target_power: Annotated[float, Meta(gt=0, lt=1)] = 0.8
    basis: Annotated[Text, Meta(description="Where the volumes and correlations come from")]


class RandomisationConstraint(_Section, frozen=True, kw_only=True):
    la: Annotated[int, Meta(description="DfE LA code of the cluster")]
    not_positions: Annotated[list[int], Meta(
        min_length=1, description="Positions in the rollout order (1 = first to step) this LA may "
        "not take")]


class Randomisation(_Section, frozen=True, kw_only=True):
    """The verifiable randomisation of the rollout order (`trialvault design randomise`)."""

    method: Annotated[Text, Meta(
        description="What was done, in words (it appears in the documents)")]
    constraints: list[RandomisationConstraint] = msgspec.field(default_factory=list)
    commitment: Annotated[Text, Meta(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 commitment to the secret seed")] | None = None
    committed_at: Annotated[dt.datetime | None, Meta(
        description="When the commitment was made and published (UTC)")] = None
    beacon_source: Annotated[Text | None, Meta(
        description="The public value named in advance, e.g. a lottery draw")] = None
    beacon: Annotated[Text | None, Meta(description="The public value, as published")] = None
    beacon_at: Annotated[dt.datetime | None, Meta(
        description="When the public value was fixed (UTC)")] = None
    seed: Annotated[Text, Meta(
        pattern=r"^[0-9a-f]{64}$", description="The revealed seed (hex)")] | None = None
    rejected_draws: Annotated[int, Meta(ge=0)] | None = None


class Design(_Section, frozen=True, kw_only=True):
    type: Literal["stepped-wedge cluster RCT"]
    cluster: Text
    illustrative_schedule: Annotated[bool, Meta(
        description="True when the rollout dates are placeholders, not the trial's real schedule")]
    schedule_note: Text
    rollout: Annotated[list[RolloutStep], Meta(min_length=2)]
    target_sample: Annotated[int, Meta(gt=0)]
    power: PowerAssumptions | None = None
    randomisation: Randomisation | None = None


# The groups a cohort member belongs to at the index date (docs/architecture.md, "Cohort and
# outcome definitions"): not looked after (the edge of care), already looked after, or a care
# leaver (indexed when a period of care ended at 16 or over).
CohortGroup = Literal["edge_of_care", "looked_after", "care_leaver"]


class Cohort(_Section, frozen=True, kw_only=True):
    description: Text
    min_age_years: Annotated[int, Meta(ge=0, le=25)]
    max_age_years: Annotated[int, Meta(ge=0, le=25)]
    care_leaver_max_age_years: Annotated[int, Meta(ge=0, le=25)]
    care_leaver_min_age_years: Annotated[int, Meta(
        ge=0, le=25, description="A period of care ending at this age or over makes a care_leaver "
        "event")] = 16
    qualifying_events: Annotated[list[
        Literal["referral", "assessment", "s47", "cin_plan", "cp_plan", "looked_after",
                "care_leaver"]
    ], Meta(min_length=1)]
    looked_after_at_index: Annotated[Literal["exclude", "subgroup"], Meta(
        description="Children already in a period of care at the index date: left out of the "
        "cohort, or kept and analysed as the named subgroup 'looked_after' for the outcomes that "
        "apply to them (never pooled into the main analyses)")] = "subgroup"

    def __post_init__(self) -> None:
        if self.max_age_years < self.min_age_years:
            raise ValueError("max_age_years is below min_age_years")


class Outcome(_Section, frozen=True, kw_only=True):
    id: Annotated[Text, Meta(pattern=r"^[a-z][a-z0-9_]*$")]
    title: Text
    kind: Literal["binary", "count", "rate"]
    primary: bool = False
    applies_to: Annotated[list[CohortGroup] | None, Meta(
        description="Cohort groups the outcome is measured for (others get no value); default: the "
        "outcome definition's own list in trialvault.evaluate")] = None


class Analysis(_Section, frozen=True, kw_only=True):
    index_date: Literal["first_qualifying_event"]
    follow_up_months: Annotated[int, Meta(gt=0, le=120)]
    period: Literal["month", "quarter", "half-year", "year"]
    outcomes: Annotated[list[Outcome], Meta(min_length=1)]
    covariates: list[Text] = msgspec.field(default_factory=list)
    models: Annotated[list[Literal["logit", "lpm"]], Meta(min_length=1)]
    alpha: Annotated[float, Meta(gt=0, lt=1)]
    randomisation_inference: bool = True
    wild_bootstrap_draws: Annotated[int, Meta(ge=0)]
    wild_bootstrap_weights: Literal["webb", "rademacher"] = "webb"
    did_control_group: Literal["notyettreated", "nevertreated"] = "notyettreated"
    seed: int
    estimand: Annotated[Literal["mean_effect_among_exposed"], Meta(
        description="What the headline estimates: the mean effect (risk or mean difference) among "
        "exposed cohort members, i.e. those indexed on or after their LA's step"
    )] = "mean_effect_among_exposed"
    primary_model: Annotated[Literal["immediate", "exposure_time"], Meta(
        description="immediate: one exposure coefficient (Hussey & Hughes); exposure_time: one "
        "effect per period since the LA's step, averaged over the exposed children")] = "immediate"
    primary_inference: Annotated[Literal["cr2", "lmm_satterthwaite", "lmm_kenward_roger",
                               "randomisation", "wild_cluster_bootstrap", "model_hc1"], Meta(
        description="Inference of the headline: cluster-robust CR2 with Bell-McCaffrey df, mixed "
        "model with Satterthwaite or Kenward-Roger df, randomisation inference (the primary "
        "model's estimate of the estimand as the statistic, exact p-value over the allowed "
        "assignments, CI by test inversion), wild cluster bootstrap or child-level HC1 (the last "
        "two only as sensitivity)")] = "cr2"
    randomisation_shift: Annotated[Literal["constant", "profile"], Meta(
        description="Randomisation inference's confidence interval inverts tests of: constant = "
        "every exposed child's outcome shifted by the same tau; profile = shifted by tau plus the "
        "exposure-time model's estimated deviation from its mean at the child's exposure time (an "
        "effect that builds up keeps its shape, and tau is its mean among the exposed)")] = "constant"
    randomisation_statistic: Annotated[Literal["estimate", "t"], Meta(
        description="Randomisation inference's test statistic: estimate = the primary model's "
        "estimate of the estimand; t = that estimate over its cluster-robust (CR0) standard error "
        "under the same assignment (studentised)")] = "estimate"
    exposure_time_max: Annotated[int, Meta(
        ge=1, description="exposure_time model: periods since the step from this one on share one "
        "effect (few clusters inform the longest exposure times)")] = 8
    transition_months: Annotated[int, Meta(
        ge=0, le=60, description="Children indexed this many months before their LA's step "
        "(follow-up straddling the step) are left out of the effect models and counted")] = 0
    multiplicity: Annotated[Literal["holm", "hochberg", "bonferroni", "fdr_bh", "none"], Meta(
        description="Adjustment of the secondary outcomes' p-values (one family; the primary "
        "outcome is tested alone at alpha)")] = "holm"
    missing_data: Annotated[Literal["ipw", "complete_case"], Meta(
        description="Outcomes not measured for some children who should have them (NEET, "
        "attendance): inverse probability weighting, with complete-case analysis always reported "
        "as sensitivity")] = "complete_case"

    def __post_init__(self) -> None:
        primaries = [o.id for o in self.outcomes if o.primary]
        if len(primaries) != 1:
            raise ValueError("outcomes: exactly one outcome must be primary "
                             f"(found {len(primaries)})")

    @property
    def primary_outcome(self) -> Outcome:
        return next(o for o in self.outcomes if o.primary)


class Disclosure(_Section, frozen=True, kw_only=True):
    # Named thresholds, defaults from ACRO/SACRO `default.yaml` (see DOMAIN primer).
    threshold: Annotated[int, Meta(ge=1)] = 10
    dominance_n: Annotated[int, Meta(ge=1)] = 2
    dominance_k: Annotated[float, Meta(gt=0, le=1)] = 0.9
    p_ratio: Annotated[float, Meta(gt=0, lt=1)] = 0.1
    min_residual_dof: Annotated[int, Meta(ge=1)] = 10
    zeros_disclosive: bool = True
    rounding_base: Annotated[int, Meta(ge=1)] = 5
    suppression_symbol: Text = "c"
    reviewers_required: Annotated[int, Meta(
        ge=1, description="Approving reviewers a release needs besides its requester: distinct "
        "registered people (key slots' person ids), none of them the requester, each signing the "
        "hash of exactly what they checked")] = 2
    min_clusters: Annotated[int, Meta(
        ge=1, description="Clusters (LAs) that must inform every published estimate; an "
        "event-study point from fewer is suppressed. Model residual degrees of freedom are counted "
        "at the cluster × period level, not on children")] = 2
    table_period: Annotated[Literal["analysis", "half-year", "year"], Meta(
        description="Columns of released LA × period tables: the analysis period, or coarser "
        "(fewer small cells, less suppression)")] = "analysis"


class SynthLASize(_Section, frozen=True, kw_only=True):
    la: Annotated[int, Meta(description="DfE LA code")]
    value: Annotated[int, Meta(gt=0, description="The LA's figure of the size statistic")]


class Synth(_Section, frozen=True, kw_only=True):
    """Generating parameters for synthetic data (trialvault synth): sizes and base rates only."""

    size_statistic: Annotated[Text, Meta(
        description="The public statistic LA sizes are proportional to")]
    la_sizes: Annotated[list[SynthLASize], Meta(min_length=1)]
    referred_children: Annotated[int, Meta(
        gt=0, description="Children with a first in-window referral across all LAs at scale 1")]
    long_stay_looked_after: Annotated[int, Meta(
        ge=0, description="Children in care since before the data period, all LAs, at scale 1")]
    base_rates: Annotated[dict[Text, float], Meta(
        description="Outcome id -> baseline (unexposed) probability, mean count or rate")]
    base_rates_note: Text = ""


class Intake(_Section, frozen=True, kw_only=True):
    """Rules the vault applies when an LA's new extract supersedes its current one."""

    max_drop_fraction: Annotated[float, Meta(
        gt=0, lt=1, description="A superseding package with this much fewer rows (in any table) or "
        "children than the package it replaces is refused unless the data manager passes "
        "--accept-drop (a wrong or truncated extract must not silently replace good data).")] = 0.25


class StudyFile(_Section, frozen=True, kw_only=True):
    """The whole study file."""

    study: Study
    controller: Contact
    dpo: Contact
    local_authorities: Annotated[list[LocalAuthority], Meta(min_length=1)]
    data_period: DataPeriod
    data_subjects: DataSubjects
    categories: Annotated[list[Category], Meta(min_length=1)]
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
    disclosure: Disclosure = msgspec.field(default_factory=lambda: Disclosure())
    intake: Intake = msgspec.field(default_factory=lambda: Intake())
    synth: Synth | None = None

    def __post_init__(self) -> None:
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
