"""Cohort and outcomes in SQL, inside the vault: one analysis row per child.

The definitions are the binding ones of docs/architecture.md ("Cohort and outcome definitions"),
written as portable SQL in `sql/cohort.sql` and `sql/outcomes.sql`. This module only prepares
their inputs from the study file — small temporary tables (`tv_params`, `tv_steps`, ...) and one
temporary view per harmonised table (`tv_src_<table>`) that already leaves out the children the
rights stage excludes — runs the two queries and joins their results.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from importlib import resources

import duckdb
import numpy as np
import pandas as pd

from trialvault.errors import StudyFileError, TrialvaultError
from trialvault.study.model import StudyFile
from trialvault.vault.schema import KEY_COLUMNS, TABLE_COLUMNS

HARMONISED_SCHEMA = "harmonised"
# The outcomes sql/outcomes.sql computes (architecture contract), in its column order.
OUTCOME_IDS: tuple[str, ...] = (
    "entered_care_12m", "residential_placement_12m", "placement_moves_12m",
    "missing_episodes_12m", "cp_plan_12m", "rereferral_12m", "neet_16_17",
    "unauthorised_absence_rate",
)
# `neet_16_17` is by definition about ages 16 and 17 (192..215 months).
NEET_AGE_YEARS = (16, 17)
# Attendance is expected for children of compulsory school age at the index date: at most
# 15 years 5 months, so that a term starts in follow-up before the end of year 11.
ATTENDANCE_MAX_AGE_MONTHS = 16 * 12 - 7
# Outcomes measured from the education and NEET files: who should have one is in
# `<outcome>_expected` (1/0), so missing values can be counted and handled.
EXPECTED_COLUMNS: dict[str, str] = {"neet_16_17": "neet_16_17_expected",
                                    "unauthorised_absence_rate":
                                        "unauthorised_absence_rate_expected"}
# The cohort groups each outcome applies to, unless the study's outcome says otherwise: a child
# already looked after cannot become looked after, a care leaver (18+) has no CIN/CP plan,
# placement or school outcome.
OUTCOME_GROUPS: dict[str, tuple[str, ...]] = {
    "entered_care_12m": ("edge_of_care",),
    "residential_placement_12m": ("edge_of_care", "looked_after"),
    "placement_moves_12m": ("edge_of_care", "looked_after"),
    "missing_episodes_12m": ("edge_of_care", "looked_after"),
    "cp_plan_12m": ("edge_of_care", "looked_after"),
    "rereferral_12m": ("edge_of_care",),
    "neet_16_17": ("edge_of_care", "looked_after", "care_leaver"),
    "unauthorised_absence_rate": ("edge_of_care", "looked_after"),
}
PERIOD_MONTHS = {"month": 1, "quarter": 3, "half-year": 6, "year": 12}
CODE_GROUPS = ("residential_placements", "placement_move_reasons")
# CIN census assessment factor 9A: unaccompanied asylum-seeking child (spec code list
# ASSESSMENT_FACTORS); the cohort reads UASC status at the index date from it.
EXTRA_CODE_GROUPS: dict[str, tuple[str, ...]] = {"uasc_assessment_factors": ("9A",)}
# Tables the cohort's qualifying events come from.
EVENT_TABLES = ("referrals", "assessments", "s47", "cin_plans", "cp_plans", "cla_episodes")
_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class CohortBuild:
    """The analysis table and what was left out on the way."""

    analysis: pd.DataFrame
    """One row per cohort child: keys, index date/event, period, exposure, covariates,
    outcomes, plus index_day (days since 1970-01-01) and period_start."""
    excluded_children: int
    """Children removed before the cohort was built (rights: restricted or objecting)."""
    missing_tables: tuple[str, ...]
    """Harmonised tables absent from the database (read as empty)."""


def sql_text(name: str, study: StudyFile | None = None) -> str:
    """A packaged SQL file (`cohort` or `outcomes`), with the study's literals filled in.

    The only literal is `{{follow_up_months}}` (an int the study model validates); everything
    else reaches the SQL through the small parameter tables.
    """
    text = resources.files("trialvault.evaluate").joinpath("sql", f"{name}.sql").read_text(
        encoding="utf-8")
    if study is not None:
        text = text.replace("{{follow_up_months}}", str(int(study.analysis.follow_up_months)))
    return text


def code_group(name: str) -> frozenset[str]:
    """A named code-list group from the data spec (e.g. residential placement types)."""
    from trialvault.spec import code_list_group

    return code_list_group(name)


def code_group_rows() -> list[tuple[str, str]]:
    """(group_name, code) rows of the `tv_code_groups` input table."""
    rows = [(g, code) for g in CODE_GROUPS for code in sorted(code_group(g))]
    return rows + [(g, code) for g, codes in EXTRA_CODE_GROUPS.items() for code in codes]


def study_params(study: StudyFile) -> dict[str, object]:
    """The one row of the `tv_params` input table, in its column order."""
    a, c = study.analysis, study.cohort
    return {
        "data_start": study.data_period.start, "data_end": study.data_period.end,
        "follow_up_months": a.follow_up_months, "min_age_months": 12 * c.min_age_years,
        "max_age_months": 12 * c.max_age_years + 11,
        "period_months": PERIOD_MONTHS[a.period], "first_year": study.data_period.first_year,
        "neet_min_age_months": 12 * NEET_AGE_YEARS[0],
        "neet_max_age_months": 12 * NEET_AGE_YEARS[1] + 11,
        "care_leaver_min_age_months": 12 * c.care_leaver_min_age_years,
        "care_leaver_max_age_months": 12 * c.care_leaver_max_age_years + 11,
        "exclude_looked_after": 1 if c.looked_after_at_index == "exclude" else 0,
        "attendance_max_age_months": ATTENDANCE_MAX_AGE_MONTHS,
    }


PARAM_TYPES = {"data_start": "DATE", "data_end": "DATE"}


def outcome_groups(study: StudyFile, outcome_id: str) -> tuple[str, ...]:
    """The cohort groups an outcome is measured for (the study's, else the default)."""
    for o in study.analysis.outcomes:
        if o.id == outcome_id and o.applies_to is not None:
            return tuple(o.applies_to)
    return OUTCOME_GROUPS[outcome_id]


def excluded_child_keys(con: duckdb.DuckDBPyConnection) -> list[tuple[int, str]]:
    """(la_code, child_id) of the children the rights stage excludes from evaluation."""
    from trialvault.rights import excluded_children

    return [(int(la), str(child)) for la, child in excluded_children(con).fetchall()]


def build_analysis_table(con: duckdb.DuckDBPyConnection, study: StudyFile) -> CohortBuild:
    """Run cohort.sql and outcomes.sql on `harmonised.*` for `study`; see the module doc."""
    unknown = [o.id for o in study.analysis.outcomes if o.id not in OUTCOME_IDS]
    if unknown:
        raise StudyFileError(f"analysis.outcomes: {unknown} have no definition "
                             f"(known: {list(OUTCOME_IDS)})")
    excluded = excluded_child_keys(con)
    try:
        missing = _install_inputs(con, study, excluded)
        _check_clusters(con, study)
        con.execute("CREATE OR REPLACE TEMP TABLE tv_cohort AS " + sql_text("cohort", study))
        cohort = con.execute("SELECT * FROM tv_cohort").df()
        outcomes = con.execute(sql_text("outcomes", study)).df()
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        # These name tables and columns only.
        raise TrialvaultError(f"cohort/outcome SQL failed: {type(exc).__name__}: {exc}") from None
    except duckdb.Error as exc:
        # Others (e.g. conversion errors) can quote a field's value: give the kind only.
        raise TrialvaultError(f"cohort/outcome SQL failed: {type(exc).__name__} (details "
                              "withheld: they may quote row values)") from None
    finally:
        # After a failed statement the transaction refuses everything until rolled back; the
        # temporary objects then vanish with it, so a failed drop is nothing to report.
        with contextlib.suppress(duckdb.Error):
            _drop_inputs(con)
    analysis = cohort.merge(outcomes, on=list(KEY_COLUMNS), how="left", validate="one_to_one")
    analysis = _finish(analysis, study)
    return CohortBuild(analysis=analysis, excluded_children=len(excluded),
                       missing_tables=tuple(missing))


def _install_inputs(con: duckdb.DuckDBPyConnection, study: StudyFile,
                    excluded: list[tuple[int, str]]) -> list[str]:
    c = study.cohort
    con.execute("CREATE OR REPLACE TEMP TABLE tv_excluded (la_code INTEGER, child_id VARCHAR)")
    if excluded:
        con.executemany("INSERT INTO tv_excluded VALUES (?, ?)", excluded)
    params = study_params(study)
    con.execute("CREATE OR REPLACE TEMP TABLE tv_params ("
                + ", ".join(f"{n} {PARAM_TYPES.get(n, 'INTEGER')}" for n in params) + ")")
    con.execute(f"INSERT INTO tv_params VALUES ({', '.join('?' * len(params))})",
                list(params.values()))
    con.execute("CREATE OR REPLACE TEMP TABLE tv_qualifying_events (event_type VARCHAR)")
    con.executemany("INSERT INTO tv_qualifying_events VALUES (?)",
                    [[e] for e in c.qualifying_events])
    con.execute("CREATE OR REPLACE TEMP TABLE tv_steps (la_code INTEGER, step_date DATE)")
    con.executemany("INSERT INTO tv_steps VALUES (?, ?)",
                    [[s.la, s.step_date] for s in study.design.rollout])
    con.execute("CREATE OR REPLACE TEMP TABLE tv_code_groups (group_name VARCHAR, code VARCHAR)")
    con.executemany("INSERT INTO tv_code_groups VALUES (?, ?)",
                    [list(row) for row in code_group_rows()])

    present = _harmonised_columns(con)
    missing = []
    for table, columns in TABLE_COLUMNS.items():
        names = [*KEY_COLUMNS, *(name for name, _ in columns)]
        if table not in present:
            missing.append(table)
            typed = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in
                              [("la_code", "INTEGER"), ("child_id", "VARCHAR"), *columns])
            con.execute(f"CREATE OR REPLACE TEMP VIEW tv_src_{table} AS "
                        f"SELECT {typed} WHERE 1 = 0")
            continue
        lacking = [n for n in names if n not in present[table]]
        if lacking:
            raise TrialvaultError(f"{HARMONISED_SCHEMA}.{table} lacks column(s) {lacking}")
        cols = ", ".join(f"t.{n}" for n in names)
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW tv_src_{table} AS SELECT {cols} "
            f"FROM {HARMONISED_SCHEMA}.{table} AS t WHERE NOT EXISTS (SELECT 1 FROM tv_excluded "
            "AS x WHERE x.la_code = t.la_code AND x.child_id = t.child_id)")
    if all(t in missing for t in EVENT_TABLES):
        raise TrialvaultError(f"no {HARMONISED_SCHEMA} table holds qualifying events "
                              f"({', '.join(EVENT_TABLES)}): nothing to evaluate")
    return missing


def _harmonised_columns(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_catalog = current_database()",
        [HARMONISED_SCHEMA]).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(str(table), set()).add(str(column))
    return out


def _check_clusters(con: duckdb.DuckDBPyConnection, study: StudyFile) -> None:
    union = " UNION ".join(f"SELECT DISTINCT la_code FROM tv_src_{t}" for t in EVENT_TABLES)
    codes = {int(r[0]) for r in con.execute(union).fetchall() if r[0] is not None}
    stray = sorted(codes - set(study.la_codes))
    if stray:
        raise TrialvaultError(f"harmonised data hold LA code(s) {stray} that the study's "
                              "local_authorities / design.rollout do not list")


def _drop_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for table in TABLE_COLUMNS:
        con.execute(f"DROP VIEW IF EXISTS tv_src_{table}")
    for table in ("tv_cohort", "tv_excluded", "tv_params", "tv_qualifying_events", "tv_steps",
                  "tv_code_groups"):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def _finish(analysis: pd.DataFrame, study: StudyFile) -> pd.DataFrame:
    """Python-side conveniences: day numbers and the first day of each period."""
    out = analysis.copy()
    index = pd.to_datetime(out["index_date"]).to_numpy(dtype="datetime64[D]")
    out["index_date"] = pd.Series(index.astype(object), index=out.index, dtype=object)
    out["index_day"] = (index - _EPOCH).astype(np.int64)
    months = PERIOD_MONTHS[study.analysis.period]
    first = study.data_period.first_year
    starts = {int(p): dt.date(first + (int(p) * months) // 12, (int(p) * months) % 12 + 1, 1)
              for p in out["period"].unique()}
    out["period_start"] = out["period"].map(starts)
    for name in OUTCOME_IDS:
        out[name] = pd.to_numeric(out[name], errors="coerce").astype(float)
        # An outcome that does not apply to a child's cohort group is no value, not a 0.
        applies = out["cohort_group"].isin(outcome_groups(study, name))
        out.loc[~applies, name] = np.nan
        if name in EXPECTED_COLUMNS:
            col = EXPECTED_COLUMNS[name]
            out[col] = (pd.to_numeric(out[col], errors="coerce").fillna(0).astype(int)
                        * applies.astype(int))
    return out
