"""Generating parameters, the random stream, and day arithmetic shared by the generator.

Dates inside the generator are whole days since 1970-01-01 (`int`), which numpy reads as
`datetime64[D]` without conversion. The calendar rules are the ones the evaluation uses: whole
months of age, `d + INTERVAL n MONTH` (clipped to the month's last day), collection years ending
31 March.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from trialvault.errors import TrialvaultError
from trialvault.study.model import StudyFile
from trialvault.synth.places import home_area

EPOCH = dt.date(1970, 1, 1).toordinal()
# Children whose first referral falls in each child-size chunk; a fixed size keeps the stream of
# a chunk (and so every file) identical whatever the scale or the machine.
CHUNK = 4000


class SynthError(TrialvaultError):
    """Synthetic-data parameters that cannot be generated (e.g. a probability above 1)."""

    exit_code = 2


# --- days ------------------------------------------------------------------------------------

def day_of(d: dt.date) -> int:
    return d.toordinal() - EPOCH


@functools.lru_cache(maxsize=1 << 16)
def date_of(day: int) -> dt.date:
    return dt.date.fromordinal(day + EPOCH)


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (dt.date(year, month + 1, 1) - dt.date(year, month, 1)).days


def add_months(day: int, months: int) -> int:
    """`day + INTERVAL months MONTH` as SQL engines compute it (clip to the month's last day)."""
    d = date_of(day)
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    return day_of(dt.date(year, month, min(d.day, _days_in_month(year, month))))


def age_months(dob: int, day: int) -> int:
    """Whole months of age on `day` for a child born on `dob`."""
    b, d = date_of(dob), date_of(day)
    return (d.year - b.year) * 12 + d.month - b.month - (1 if d.day < b.day else 0)


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day arrays of an int day array."""
    d64 = days.astype("datetime64[D]")
    years = d64.astype("datetime64[Y]").astype(np.int64) + 1970
    months = d64.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (d64 - d64.astype("datetime64[M]")).astype(np.int64) + 1
    return years, months, dom


def age_months_vec(dob: np.ndarray, days: np.ndarray) -> np.ndarray:
    by, bm, bd = ymd(dob)
    y, m, d = ymd(days)
    return (y - by) * 12 + (m - bm) - (d < bd).astype(np.int64)


def collection_year(day: int) -> int:
    """The collection year (ending 31 March) holding `day`."""
    d = date_of(day)
    return d.year + 1 if d.month >= 4 else d.year


def year_bounds(year: int) -> tuple[int, int]:
    """First and last day of collection year `year` (1 April year-1 .. 31 March year)."""
    return day_of(dt.date(year - 1, 4, 1)), day_of(dt.date(year, 3, 31))


def weekday(day: int) -> int:
    return (day + 3) % 7  # 1970-01-01 was a Thursday (3); Monday = 0


def next_weekday(day: int) -> int:
    while weekday(day) >= 5:
        day += 1
    return day


def add_working_days(day: int, n: int) -> int:
    """The n-th working day (Monday-Friday) after `day` (bank holidays are not skipped)."""
    if n <= 0:
        return day
    if weekday(day) >= 5:
        day -= weekday(day) - 4  # count from the Friday before a weekend
    weeks, rest = divmod(n, 5)
    day += weeks * 7
    wd = weekday(day)
    day += rest + (2 if wd + rest >= 5 else 0)
    return day


# --- the random stream -------------------------------------------------------------------------

class Stream:
    """Uniforms drawn in blocks from a numpy Generator, served one by one (fast in a loop)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self._buf: list[float] = []
        self._i = 0

    def u(self) -> float:
        if self._i >= len(self._buf):
            self._buf = self.rng.random(16384).tolist()
            self._i = 0
        v = self._buf[self._i]
        self._i += 1
        return v

    def bern(self, p: float) -> bool:
        return self.u() < p

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return lo + int(self.u() * (hi - lo + 1))

    def poisson(self, lam: float) -> int:
        # Knuth's product of uniforms: exact, and cheap for the small means used here.
        if lam <= 0:
            return 0
        limit, k, p = math.exp(-lam), 0, self.u()
        while p > limit:
            k += 1
            p *= self.u()
        return k

    def pick(self, cat: Cat) -> str:
        return cat.items[bisect.bisect_right(cat.cum, self.u() * cat.cum[-1])]

    def sample(self, items: Sequence[int], k: int) -> list[int]:
        """k distinct items (k <= len(items)), partial Fisher-Yates."""
        pool = list(items)
        for i in range(k):
            j = i + int(self.u() * (len(pool) - i))
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]


@dataclass(frozen=True)
class Cat:
    """A categorical distribution: items and weights."""

    items: tuple[str, ...]
    cum: tuple[float, ...]

    @classmethod
    def of(cls, weights: dict[str, float]) -> Cat:
        items = tuple(weights)
        cum, total = [], 0.0
        for w in weights.values():
            total += w
            cum.append(total)
        return cls(items, tuple(cum))


# --- parameters --------------------------------------------------------------------------------

BINARY = ("entered_care_12m", "residential_placement_12m", "cp_plan_12m", "rereferral_12m",
          "neet_16_17")
RATIO = ("placement_moves_12m", "missing_episodes_12m", "unauthorised_absence_rate")
OUTCOMES = BINARY + RATIO
# Individual shifts of the care probability (added in both arms, so a cell's risk difference is
# exactly the planted effect): UASC children are far more often looked after.
UASC_CARE_SHIFT = 0.6
DISABILITY_CARE_SHIFT = 0.02
# Spread of the LA baselines (relative) and the secular trend over the index window.
LA_SPREAD = 0.25
TREND = 0.10

# Named departures from the model's assumptions (`trialvault synth --scenario NAME=VALUE`).
# They act on the primary outcome's (entered_care_12m) cell baselines and effect, on the care
# histories of children already looked after, and on the NEET file; 0 = off.
SCENARIOS: dict[str, str] = {
    "la_period_sd": "SD of a random shift of each LA × quarter care probability (absolute)",
    "la_trend_sd": "SD of each LA's own linear trend in the care probability (absolute change "
                   "from the first to the last quarter)",
    "effect_ramp_quarters": "the effect builds up linearly over this many quarters after the "
                            "LA's step (full from then on)",
    "effect_la_sd": "SD of each LA's deviation from the planted care effect (absolute)",
    "in_care_moves": "placement moves per year, inside the data period, of children in care "
                     "since before it (and a third of them assessed while in care)",
    "missing_neet": "share of NEET records missing, more for exposed and UASC children "
                    "(informative: their NEET risk is higher)",
}
SCENARIO_LIMITS: dict[str, tuple[float, float]] = {
    "la_period_sd": (0.0, 0.1), "la_trend_sd": (0.0, 0.1), "effect_ramp_quarters": (0.0, 24.0),
    "effect_la_sd": (0.0, 0.1), "in_care_moves": (0.0, 5.0), "missing_neet": (0.0, 0.6)}
UASC_NEET_SHIFT = 0.15  # with missing_neet: UASC children are more often NEET


@dataclass(frozen=True)
class SynthParams:
    """Everything the generator needs, resolved from the study file and the CLI."""

    seed: int
    scale: float
    effects: dict[str, float]
    error_rate: float
    la_codes: tuple[int, ...]
    referred: dict[int, int]          # la -> first-referral children at this scale
    long_stay: dict[int, int]         # la -> children in care since before the data period
    base: dict[str, float]
    la_factor: dict[int, float]       # la -> relative baseline factor (1 +- LA_SPREAD)
    step_day: dict[int, int]
    data_start: int
    data_end: int
    index_end: int
    follow_up_months: int
    min_age_months: int
    max_age_months: int
    first_year: int
    n_periods: int
    years: tuple[int, ...]            # collection years with files
    size_statistic: str
    la_weights: dict[int, float] = field(default_factory=dict)
    scenario: dict[str, float] = field(default_factory=dict)
    care_shift: dict[tuple[int, int], float] = field(default_factory=dict)
    """(la, period) -> scenario shift of the care probability (LA×period noise, LA trends)."""
    care_effect_la: dict[int, float] = field(default_factory=dict)
    """la -> the LA's planted care effect at full strength (effect_la_sd)."""
    la_areas: dict[int, str] = field(default_factory=dict)
    """la -> the sampled postcode area its children live in (`places.home_area`)."""

    def area(self, la: int) -> str:
        return self.la_areas.get(la) or home_area("", la)

    def care_cell(self, la: int, period: int) -> float:
        """The unexposed care probability of a cell, scenario shifts included (may need
        clipping to [0, 1] once covariate shifts are added)."""
        return self.cell("entered_care_12m", la, period) + self.care_shift.get((la, period), 0.0)

    def care_effect(self, la: int, exposure_quarters: int) -> float:
        """The planted care effect for an exposed child `exposure_quarters` after the step."""
        full = self.care_effect_la.get(la, self.effect("entered_care_12m"))
        ramp = self.scenario.get("effect_ramp_quarters", 0.0)
        if ramp > 0:
            return full * min(1.0, (exposure_quarters + 1) / ramp)
        return full

    def period(self, day: int) -> int:
        d = date_of(day)
        return ((d.year - self.first_year) * 12 + d.month - 1) // 3

    def cell(self, outcome: str, la: int, period: int) -> float:
        """Unexposed baseline of an outcome in an LA x quarter cell (before covariate shifts)."""
        return _cell(self.base[outcome], self.la_factor[la], period, self.n_periods,
                     outcome in BINARY)

    def effect(self, outcome: str) -> float:
        return self.effects.get(outcome, 0.0 if outcome in BINARY else 1.0)


@functools.lru_cache(maxsize=4096)
def _cell(base: float, la_factor: float, period: int, n_periods: int, additive: bool) -> float:
    trend = 1.0 + TREND * ((period - (n_periods - 1) / 2) / max(n_periods, 1))
    # Binary outcomes: LA and period shifts add up (a risk-difference model with LA and period
    # effects is then correctly specified); counts and rates: they multiply (log-linear).
    if additive:
        return base * (la_factor + trend - 1.0)
    return base * la_factor * trend


def resolve(study: StudyFile, *, seed: int, scale: float, effects: dict[str, float],
            error_rate: float, scenario: dict[str, float] | None = None) -> SynthParams:
    """Check the inputs and derive the generating parameters; refuse impossible ones."""
    scenario = dict(scenario or {})
    unknown_s = sorted(set(scenario) - set(SCENARIOS))
    if unknown_s:
        raise SynthError(f"unknown scenario name(s) {unknown_s}; known: {', '.join(SCENARIOS)}")
    for name, value in scenario.items():
        lo, hi = SCENARIO_LIMITS[name]
        if not lo <= value <= hi:
            raise SynthError(f"scenario {name}={value}: must be in [{lo:g}, {hi:g}]")
    if abs(effects.get("entered_care_12m", 0.0)) > 0.1 + 1e-12:
        raise SynthError("entered_care_12m: the planted risk difference must be in "
                         "[-0.10, 0.10]")
    if study.synth is None:
        raise SynthError("the study file has no [synth] section: add LA sizes and base rates")
    if not 0 < scale <= 100:
        raise SynthError(f"scale must be in (0, 100], got {scale}")
    if not 0 <= error_rate <= 0.5:
        raise SynthError(f"error rate must be in [0, 0.5], got {error_rate}")
    unknown = sorted(set(effects) - set(OUTCOMES))
    if unknown:
        raise SynthError(f"unknown effect name(s) {unknown}; known: {', '.join(OUTCOMES)}")
    missing = sorted(set(OUTCOMES) - set(study.synth.base_rates))
    if missing:
        raise SynthError(f"[synth].base_rates lacks {missing}")
    sizes = {s.la: s.value for s in study.synth.la_sizes}
    if sorted(sizes) != sorted(study.la_codes) or len(sizes) != len(study.synth.la_sizes):
        raise SynthError("[synth].la_sizes must name each local authority exactly once")
    total = sum(sizes.values())
    weights = {la: sizes[la] / total for la in study.la_codes}
    referred = {la: max(1, round(study.synth.referred_children * scale * w))
                for la, w in weights.items()}
    long_stay = {la: round(study.synth.long_stay_looked_after * scale * w)
                 for la, w in weights.items()}
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    spread = rng.uniform(-1.0, 1.0, size=len(study.la_codes))
    la_factor = {la: 1.0 + LA_SPREAD * float(z) for la, z in zip(study.la_codes, spread,
                                                                  strict=True)}
    start = day_of(study.data_period.start)
    end = day_of(study.data_period.end)
    fu = study.analysis.follow_up_months
    index_end = add_months(end, -fu)
    n_periods = ((study.data_period.last_year - study.data_period.first_year) * 12 + 12) // 3
    # Scenario draws come from their own stream, so turning one on leaves the rest unchanged.
    srng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    noise = srng.normal(0.0, 1.0, size=(len(study.la_codes), n_periods))
    slopes = srng.normal(0.0, 1.0, size=len(study.la_codes))
    devs = srng.normal(0.0, 1.0, size=len(study.la_codes))
    mid = (n_periods - 1) / 2
    care_shift = {
        (la, q): scenario.get("la_period_sd", 0.0) * float(noise[i, q])
        + scenario.get("la_trend_sd", 0.0) * float(slopes[i]) * (q - mid) / max(n_periods - 1, 1)
        for i, la in enumerate(study.la_codes) for q in range(n_periods)
        if scenario.get("la_period_sd") or scenario.get("la_trend_sd")}
    nominal = effects.get("entered_care_12m", 0.0)
    care_effect_la = {la: nominal + scenario.get("effect_la_sd", 0.0) * float(devs[i])
                      for i, la in enumerate(study.la_codes)}
    params = SynthParams(
        seed=seed, scale=scale, effects=dict(effects), error_rate=error_rate,
        la_codes=tuple(study.la_codes), referred=referred, long_stay=long_stay,
        base=dict(study.synth.base_rates), la_factor=la_factor,
        step_day={la: day_of(study.step_date(la)) for la in study.la_codes},
        data_start=start, data_end=end, index_end=index_end, follow_up_months=fu,
        min_age_months=12 * study.cohort.min_age_years,
        max_age_months=12 * study.cohort.max_age_years + 11,
        first_year=study.data_period.first_year, n_periods=n_periods,
        years=tuple(range(collection_year(start), collection_year(end) + 1)),
        size_statistic=study.synth.size_statistic, la_weights=weights, scenario=scenario,
        la_areas={la: home_area(study.la(la).ons_code, la) for la in study.la_codes},
        care_shift=care_shift, care_effect_la=care_effect_la)
    _check_probabilities(params)
    return params


def _check_probabilities(p: SynthParams) -> None:
    """Every individual probability must stay in [0, 1] in both arms of every cell."""
    # The care probability is clipped to [0, 1] per child (a large negative effect cannot go
    # below 0): truth.json records the resulting mean effect among the exposed (the estimand),
    # and residential placement is clipped at the child's care probability.
    for la in p.la_codes:
        for period in range(p.n_periods):
            res = p.cell("residential_placement_12m", la, period)
            for exposed in (0, 1):
                r = res + exposed * p.effect("residential_placement_12m")
                if r < 0:
                    raise SynthError("residential_placement_12m: baseline plus effect is below 0 "
                                     f"(LA {la}, period {period})")
                for name in ("cp_plan_12m", "rereferral_12m", "neet_16_17"):
                    v = p.cell(name, la, period) + exposed * p.effect(name)
                    if not 0 <= v <= 1:
                        raise SynthError(f"{name}: baseline plus effect leaves [0, 1] "
                                         f"(LA {la}, period {period})")
    for name in RATIO:
        if p.effect(name) <= 0:
            raise SynthError(f"{name}: a ratio effect must be positive")
    if p.cell("unauthorised_absence_rate", p.la_codes[0], 0) * 2 * p.effect(
            "unauthorised_absence_rate") * (1 + LA_SPREAD) * (1 + TREND) > 0.9:
        raise SynthError("unauthorised_absence_rate: baseline times effect is too high")
