"""Minimisation: the package tables of docs/architecture.md, and nothing else.

Every output column must be a field some category of the study file declares (plus the lineage
columns `source_file`, `source_line`); a table needing an undeclared field is refused with the
field named, never silently passed. Dates of birth become whole months of age at each event
(and at the collection reference date for `children`); identifiers and tables the study does not
need are dropped, and every dropped column is listed for the manifest. Rows rejected by
validation are left out. A record repeated in several collection years (an episode open over
31 March, a referral open at two censuses) is kept once, from the latest year.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from trialvault.errors import PolicyRefusal
from trialvault.formats import SourceTables
from trialvault.prepare.link import PREP, kept
from trialvault.spec import code_list_group, load_layout
from trialvault.study.model import StudyFile

IDENTITY = ("la_code", "child_id")
LINEAGE = ("source_file", "source_line")
# Per package table: its fields (between the identity and lineage columns), the fields of its
# natural key (besides the child), and the input format it needs.
PACKAGE_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "children": (("sex", "ethnicity", "disability", "uasc", "age_months_at_reference",
                  "reference_date"), (), "ssda903"),
    "referrals": (("collection_year", "referral_date", "referral_source", "primary_need_code",
                   "cin_closure_date", "reason_for_closure", "referral_nfa", "age_months"),
                  ("referral_date",), "cin_census"),
    "assessments": (("collection_year", "referral_date", "assessment_start_date",
                     "assessment_authorised_date", "assessment_factors", "age_months"),
                    ("referral_date", "assessment_start_date"), "cin_census"),
    "s47": (("collection_year", "referral_date", "s47_start_date", "icpc_target_date",
             "icpc_date", "icpc_not_required", "age_months"),
            ("referral_date", "s47_start_date"), "cin_census"),
    "cin_plans": (("collection_year", "referral_date", "cin_plan_start_date",
                   "cin_plan_end_date", "age_months"),
                  ("referral_date", "cin_plan_start_date"), "cin_census"),
    "cp_plans": (("collection_year", "referral_date", "cp_plan_start_date", "cp_plan_end_date",
                  "initial_category_of_abuse", "latest_category_of_abuse",
                  "number_of_previous_cpp", "age_months"),
                 ("referral_date", "cp_plan_start_date"), "cin_census"),
    "cla_episodes": (("collection_year", "episode_start_date", "episode_end_date",
                      "reason_new_episode", "legal_status", "category_of_need", "placement_type",
                      "placement_provider", "reason_episode_ceased", "reason_place_change",
                      "age_months"), ("episode_start_date",), "ssda903"),
    "missing": (("collection_year", "missing_type", "missing_start_date", "missing_end_date",
                 "age_months"), ("missing_start_date",), "ssda903"),
    "attendance": (("academic_year", "term", "sessions_possible", "sessions_authorised_absence",
                    "sessions_unauthorised_absence", "fsm_eligible", "pupil_premium",
                    "age_months"), ("academic_year", "term"), "education"),
    "neet": (("activity_month", "activity_code", "neet", "age_months"), ("activity_month",),
             "neet"),
}


# The input tables prepare itself reads (besides those the validation rules read).
SOURCE_TABLES: dict[str, frozenset[str]] = {
    "ssda903": frozenset({"header", "episodes", "uasc", "missing"}),
    "cin_census": frozenset({"child_identifiers", "child_characteristics", "disabilities",
                             "cin_details", "assessments", "assessment_factors", "section47",
                             "cin_plan_dates", "child_protection_plans"}),
    "education": frozenset({"attendance"}),
    "neet": frozenset({"activity"}),
}


def columns_of(table: str) -> tuple[str, ...]:
    """All columns of a package table, in order."""
    return (*IDENTITY, *PACKAGE_TABLES[table][0], *LINEAGE)


def _nested(cin_table: str, alias: str, fields: str, date_col: str) -> str:
    """SELECT of a block nested in CINdetails: its parent's referral date and the age."""
    return f"""
        SELECT {alias}.LAchildID AS child_id, {alias}.collection_year,
               d.CINreferralDate AS referral_date, {fields},
               age_months(p.dob, {alias}.{date_col}) AS age_months,
               {alias}.source_file, {alias}.source_line
        FROM cin_census.{cin_table} {alias}
        JOIN cin_census.cin_details d ON d.cin_details_key = {alias}.cin_details_key
             AND {kept('cin_census', 'cin_details', 'd')}
        LEFT JOIN {PREP}.people p ON p.child_id = {alias}.LAchildID
        WHERE {kept('cin_census', cin_table, alias)}"""


def _selects(neet_codes: Iterable[str]) -> dict[str, str]:
    neet_list = ", ".join("'" + c.replace("'", "''") + "'" for c in sorted(neet_codes))
    return {
        "children": f"""
            SELECT p.child_id, p.sex, p.ethnicity, p.disability,
                   EXISTS (SELECT 1 FROM ssda903.uasc u WHERE u.CHILD = p.child_id
                           AND {kept('ssda903', 'uasc', 'u')}) AS uasc,
                   age_months(p.dob, p.reference_date) AS age_months_at_reference,
                   p.reference_date, NULL::INTEGER AS collection_year,
                   p.source_file, p.source_line
            FROM {PREP}.people p""",
        "referrals": f"""
            SELECT d.LAchildID AS child_id, d.collection_year,
                   d.CINreferralDate AS referral_date, d.ReferralSource AS referral_source,
                   d.PrimaryNeedCode AS primary_need_code, d.CINclosureDate AS cin_closure_date,
                   d.ReasonForClosure AS reason_for_closure, d.ReferralNFA AS referral_nfa,
                   age_months(p.dob, d.CINreferralDate) AS age_months,
                   d.source_file, d.source_line
            FROM cin_census.cin_details d
            LEFT JOIN {PREP}.people p ON p.child_id = d.LAchildID
            WHERE {kept('cin_census', 'cin_details', 'd')}""",
        "assessments": _nested(
            "assessments", "a",
            """a.AssessmentActualStartDate AS assessment_start_date,
               a.AssessmentAuthorisationDate AS assessment_authorised_date,
               (SELECT string_agg(f.AssessmentFactors, ',' ORDER BY f._row)
                FROM cin_census.assessment_factors f
                WHERE f.assessments_key = a.assessments_key AND f.AssessmentFactors IS NOT NULL
                  AND """ + kept('cin_census', 'assessment_factors', 'f') + """)
                 AS assessment_factors""",
            "AssessmentActualStartDate"),
        "s47": _nested(
            "section47", "s",
            """s.S47ActualStartDate AS s47_start_date, s.InitialCPCtarget AS icpc_target_date,
               s.DateOfInitialCPC AS icpc_date, s.ICPCnotRequired AS icpc_not_required""",
            "S47ActualStartDate"),
        "cin_plans": _nested(
            "cin_plan_dates", "c",
            "c.CINPlanStartDate AS cin_plan_start_date, c.CINPlanEndDate AS cin_plan_end_date",
            "CINPlanStartDate"),
        "cp_plans": _nested(
            "child_protection_plans", "c",
            """c.CPPstartDate AS cp_plan_start_date, c.CPPendDate AS cp_plan_end_date,
               c.InitialCategoryOfAbuse AS initial_category_of_abuse,
               c.LatestCategoryOfAbuse AS latest_category_of_abuse,
               c.NumberOfPreviousCPP AS number_of_previous_cpp""",
            "CPPstartDate"),
        "cla_episodes": f"""
            SELECT e.CHILD AS child_id, e.collection_year, e.DECOM AS episode_start_date,
                   e.DEC AS episode_end_date, e.RNE AS reason_new_episode, e.LS AS legal_status,
                   e.CIN AS category_of_need, e.PLACE AS placement_type,
                   e.PLACE_PROVIDER AS placement_provider, e.REC AS reason_episode_ceased,
                   e.REASON_PLACE_CHANGE AS reason_place_change,
                   age_months(p.dob, e.DECOM) AS age_months, e.source_file, e.source_line
            FROM ssda903.episodes e
            LEFT JOIN {PREP}.people p ON p.child_id = e.CHILD
            WHERE {kept('ssda903', 'episodes', 'e')}""",
        "missing": f"""
            SELECT m.CHILD AS child_id, m.collection_year, m.MISSING AS missing_type,
                   m.MIS_START AS missing_start_date, m.MIS_END AS missing_end_date,
                   age_months(COALESCE(p.dob, m.DOB), m.MIS_START) AS age_months,
                   m.source_file, m.source_line
            FROM ssda903.missing m
            LEFT JOIN {PREP}.people p ON p.child_id = m.CHILD
            WHERE {kept('ssda903', 'missing', 'm')}""",
        # The term's first day: 1 September, 1 January or 1 April of the academic year.
        "attendance": f"""
            SELECT a.child_id, NULL::INTEGER AS collection_year,
                   a.ACADEMIC_YEAR AS academic_year, t.target AS term,
                   a.SESSIONS_POSSIBLE AS sessions_possible,
                   a.SESSIONS_AUTHORISED AS sessions_authorised_absence,
                   a.SESSIONS_UNAUTHORISED AS sessions_unauthorised_absence,
                   a.FSM_ELIGIBLE AS fsm_eligible, a.PUPIL_PREMIUM AS pupil_premium,
                   age_months(COALESCE(a.DOB, p.dob), CASE t.target
                       WHEN 'autumn' THEN make_date(TRY_CAST(substr(a.ACADEMIC_YEAR, 1, 4) AS INT), 9, 1)
                       WHEN 'spring' THEN make_date(TRY_CAST(substr(a.ACADEMIC_YEAR, 1, 4) AS INT) + 1, 1, 1)
                       WHEN 'summer' THEN make_date(TRY_CAST(substr(a.ACADEMIC_YEAR, 1, 4) AS INT) + 1, 4, 1)
                   END) AS age_months,
                   a.source_file, a.source_line
            FROM {PREP}.attendance_linked a
            JOIN validation.harmonise t ON t.list = 'TERM' AND t.code = a.TERM
            LEFT JOIN {PREP}.people p ON p.child_id = a.child_id""",
        "neet": f"""
            SELECT n.child_id, NULL::INTEGER AS collection_year,
                   n.ACTIVITY_MONTH AS activity_month, n.ACTIVITY_CODE AS activity_code,
                   n.ACTIVITY_CODE IN ({neet_list}) AS neet,
                   age_months(COALESCE(n.DOB, p.dob), n.ACTIVITY_MONTH) AS age_months,
                   n.source_file, n.source_line
            FROM {PREP}.activity_linked n
            LEFT JOIN {PREP}.people p ON p.child_id = n.child_id""",
    }


def check_allowed(study: StudyFile, tables: Iterable[str]) -> None:
    """Refuse (naming table and fields) any package field no category of the study declares."""
    allowed = study.allowed_fields | set(LINEAGE)
    problems = []
    for table in tables:
        missing = [c for c in columns_of(table) if c not in allowed]
        if missing:
            problems.append(f"table {table}: {missing}")
    if problems:
        raise PolicyRefusal("the study file declares no category for field(s) the package "
                            "would hold, so they are refused (add them to a category of the "
                            "study file, or leave that input out): " + "; ".join(problems))


def tables_for(formats: Iterable[str]) -> list[str]:
    """The package tables that the given input formats produce."""
    given = set(formats)
    return [t for t, (_, _, fmt) in PACKAGE_TABLES.items() if fmt in given]


def build_tables(con: duckdb.DuckDBPyConnection, la_code: int, tables: Iterable[str]
                 ) -> dict[str, pa.Table]:
    """Each package table as Arrow, deduplicated on its key (latest collection year wins)."""
    selects = _selects(code_list_group("neet_activity_codes"))
    out: dict[str, pa.Table] = {}
    for table in tables:
        fields, key, _ = PACKAGE_TABLES[table]
        keys = ", ".join(("child_id", *key))
        not_null = " AND ".join(f"{k} IS NOT NULL" for k in ("child_id", *key))
        order = "collection_year DESC NULLS LAST, source_file, source_line"
        cols = ", ".join(fields)
        sql = f"""
            SELECT CAST({int(la_code)} AS INTEGER) AS la_code, child_id, {cols},
                   source_file, CAST(source_line AS INTEGER) AS source_line
            FROM ({selects[table]}) x
            WHERE {not_null}
            QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1
            ORDER BY {keys}"""
        result = con.execute(sql).arrow().read_all()
        out[table] = result.cast(_schema(table, result.schema))
    return out


def _schema(table: str, found: pa.Schema) -> pa.Schema:
    # Pin the types the contract names (INTEGER la_code/source_line/counts, VARCHAR codes).
    fixed = {"la_code": pa.int32(), "child_id": pa.string(), "source_file": pa.string(),
             "source_line": pa.int32(), "collection_year": pa.int32(),
             "age_months": pa.int32(), "age_months_at_reference": pa.int32(),
             "number_of_previous_cpp": pa.int32(), "sessions_possible": pa.int32(),
             "sessions_authorised_absence": pa.int32(),
             "sessions_unauthorised_absence": pa.int32()}
    return pa.schema([pa.field(f.name, fixed.get(f.name, f.type)) for f in found])


@dataclass(frozen=True)
class Dropped:
    """What minimisation left behind: whole tables and single columns (`format.table.COLUMN`)."""

    tables: list[str]
    columns: list[str]


def dropped_columns(sources: Mapping[str, SourceTables]) -> Dropped:
    """Every input column that does not reach the package, by name (no values)."""
    tables: list[str] = []
    columns: list[str] = []
    for fmt, source in sources.items():
        layout = load_layout(fmt)
        for name, data in source.tables.items():
            spec = layout.tables.get(name)
            if spec is None:
                continue
            present = [c for c in spec.all_column_names if c in data.column_names]
            if spec.harmonised is None:
                tables.append(f"{fmt}.{name}")
                columns.extend(f"{fmt}.{name}.{c}" for c in present)
                continue
            columns.extend(f"{fmt}.{name}.{c.name}" for c in spec.columns
                           if c.field is None and c.name in present)
    return Dropped(tables=sorted(tables), columns=sorted(columns))
