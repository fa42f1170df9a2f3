"""Who is who inside `prepare`: each child's latest record, and UPN -> LA child code linkage.

Education and NEET rows carry a UPN but no social-care child code. The SSDA903 header and the
CIN census ChildIdentifiers carry both, so inside `prepare` (at the LA, before anything leaves
it) a UPN is mapped to the child code, the rows take the code, and the UPN is dropped. A UPN held
by two different child codes is ambiguous and links nothing. All of it runs as SQL over the
typed tables in the prepare database; nothing here reaches a log or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

PREP = "prep"
# A real UPN: check letter, LA code, establishment and serial digits, last character a digit or
# a letter (temporary UPNs). UN1-UN7 "UPN unknown" codes never link.
UPN_PATTERN = "[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]"


def kept(fmt: str, table: str, alias: str) -> str:
    """SQL condition: row `alias` of `fmt.table` was not rejected by validation."""
    return (f"{alias}._row NOT IN (SELECT row_id FROM validation.rejected "
            f"WHERE format = '{fmt}' AND table_name = '{table}')")


def mark_rejected(con: duckdb.DuckDBPyConnection) -> None:
    """Collect the rows any `reject` rule flagged (they are quarantined, never packaged)."""
    con.execute("""CREATE OR REPLACE TABLE validation.rejected AS
                   SELECT DISTINCT format, table_name, row_id FROM validation.issues
                   WHERE severity = 'reject'""")


def install_helpers(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {PREP}")
    # Whole months from birth to a date: a month counts once its day-of-month is reached
    # (born 15 Jan: 0 months on 14 Feb, 1 month on 15 Feb; born 31 Jan: 0 months on 28 Feb).
    con.execute("""
        CREATE OR REPLACE MACRO age_months(born, on_date) AS
            (year(on_date) - year(born)) * 12 + month(on_date) - month(born)
            - CASE WHEN day(on_date) < day(born) THEN 1 ELSE 0 END""")


def build_people(con: duckdb.DuckDBPyConnection) -> None:
    """`prep.records`: every kept child record of both social-care returns, harmonised;
    `prep.people`: one row per child code with its date of birth and latest record."""
    con.execute(f"""
        CREATE OR REPLACE TABLE {PREP}.records AS
        SELECT h.CHILD AS child_id, h.DOB AS dob, h.UPN AS upn, NULL::VARCHAR AS former_upn,
               h.collection_year, h.collection_end, 'ssda903' AS origin, 2 AS origin_rank,
               COALESCE(hs.target, h.SEX) AS sex, h.ETHNIC AS ethnicity,
               NULL::BOOLEAN AS disability, h.source_file, h.source_line
        FROM ssda903.header h
        LEFT JOIN validation.harmonise hs ON hs.list = 'SEX' AND hs.code = h.SEX
        WHERE h.CHILD IS NOT NULL AND {kept('ssda903', 'header', 'h')}
        UNION ALL
        SELECT c.LAchildID, COALESCE(c.PersonBirthDate, c.ExpectedPersonBirthDate), c.UPN,
               c.FormerUPN, c.collection_year, c.collection_end, 'cin_census', 1,
               CASE WHEN c.Sex IS NOT NULL THEN c.Sex
                    ELSE COALESCE(gs.target, c.GenderCurrent) END,
               ch.Ethnicity,
               COALESCE((SELECT bool_or(upper(d.Disability) <> 'NONE')
                         FROM cin_census.disabilities d
                         WHERE d.child_key = c.child_key AND d.Disability IS NOT NULL
                           AND {kept('cin_census', 'disabilities', 'd')}), FALSE),
               c.source_file, c.source_line
        FROM cin_census.child_identifiers c
        LEFT JOIN cin_census.child_characteristics ch
          ON ch.child_key = c.child_key AND {kept('cin_census', 'child_characteristics', 'ch')}
        LEFT JOIN validation.harmonise gs
          ON gs.list = 'CIN_GENDER_CURRENT' AND gs.code = c.GenderCurrent
        WHERE c.LAchildID IS NOT NULL AND {kept('cin_census', 'child_identifiers', 'c')}""")
    # The latest record wins (the CIN census record before the SSDA903 one of the same year, as
    # it carries disability); date of birth is the latest one given.
    con.execute(f"""
        CREATE OR REPLACE TABLE {PREP}.people AS
        SELECT child_id,
               arg_max(dob, (collection_year, origin_rank)) FILTER (WHERE dob IS NOT NULL)
                 AS dob,
               max(collection_end) AS reference_date,
               arg_max(sex, (collection_year, -origin_rank, source_file, source_line)) AS sex,
               arg_max(ethnicity, (collection_year, -origin_rank, source_file, source_line))
                 AS ethnicity,
               COALESCE(arg_max(disability, (collection_year, source_file, source_line))
                        FILTER (WHERE origin = 'cin_census'), FALSE) AS disability,
               arg_max(source_file, (collection_year, -origin_rank, source_file, source_line))
                 AS source_file,
               arg_max(source_line, (collection_year, -origin_rank, source_file, source_line))
                 AS source_line
        FROM {PREP}.records GROUP BY child_id""")


def build_upn_links(con: duckdb.DuckDBPyConnection) -> None:
    """`prep.upn_links`: each UPN seen in the social-care returns with its child code(s)."""
    con.execute(f"""
        CREATE OR REPLACE TABLE {PREP}.upn_links AS
        SELECT upn, min(child_id) AS child_id, count(DISTINCT child_id) AS children
        FROM (SELECT upper(upn) AS upn, child_id FROM {PREP}.records
              UNION SELECT upper(former_upn), child_id FROM {PREP}.records)
        WHERE upn IS NOT NULL AND regexp_full_match(upn, '{UPN_PATTERN}')
        GROUP BY upn""")


@dataclass(frozen=True)
class Linkage:
    """How many education/NEET rows (and pupils) got a child code through their UPN."""

    rows: int
    rows_linked: int
    pupils: int
    pupils_linked: int
    ambiguous_upns: int
    by_source: dict[str, dict[str, int]]

    @property
    def rate(self) -> float | None:
        """Share of rows linked (None when there was nothing to link)."""
        return round(self.rows_linked / self.rows, 4) if self.rows else None

    @property
    def pupil_rate(self) -> float | None:
        return round(self.pupils_linked / self.pupils, 4) if self.pupils else None

    def as_dict(self) -> dict[str, object]:
        return {"rate": self.rate, "rows": self.rows, "rows_linked": self.rows_linked,
                "pupils": self.pupils, "pupils_linked": self.pupils_linked,
                "pupil_rate": self.pupil_rate, "ambiguous_upns": self.ambiguous_upns,
                "by_source": self.by_source}


def link_pupils(con: duckdb.DuckDBPyConnection) -> Linkage:
    """`prep.<table>_linked` (education attendance, NEET activity) with `child_id` from the UPN;
    returns the linkage counts. Rows whose UPN links no single child are left out."""
    by_source: dict[str, dict[str, int]] = {}
    totals = [0, 0, 0, 0]
    for fmt, table in (("education", "attendance"), ("neet", "activity")):
        con.execute(f"""
            CREATE OR REPLACE TABLE {PREP}.{table}_linked AS
            SELECT l.child_id, t.* FROM {fmt}.{table} t
            JOIN {PREP}.upn_links l ON l.upn = upper(t.UPN) AND l.children = 1
            WHERE {kept(fmt, table, 't')}""")
        row = con.execute(f"""
            SELECT count(*), count(l.child_id), count(DISTINCT upper(t.UPN)),
                   count(DISTINCT CASE WHEN l.child_id IS NOT NULL THEN upper(t.UPN) END)
            FROM {fmt}.{table} t
            LEFT JOIN {PREP}.upn_links l ON l.upn = upper(t.UPN) AND l.children = 1
            WHERE {kept(fmt, table, 't')}""").fetchone() or (0, 0, 0, 0)
        counts = [int(x) for x in row]
        by_source[fmt] = {"rows": counts[0], "rows_linked": counts[1], "pupils": counts[2],
                          "pupils_linked": counts[3]}
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    ambiguous = con.execute(f"SELECT count(*) FROM {PREP}.upn_links WHERE children > 1"
                            ).fetchone()
    return Linkage(rows=totals[0], rows_linked=totals[1], pupils=totals[2],
                   pupils_linked=totals[3], ambiguous_upns=int(ambiguous[0]) if ambiguous else 0,
                   by_source=by_source)
