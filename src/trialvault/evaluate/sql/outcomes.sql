-- Outcomes: one row per cohort child, one column per outcome of the architecture contract.
-- "within follow-up" = index_date <= d < follow_up_end (follow_up_end = index_date +
-- follow_up_months). Inputs: tv_cohort (cohort.sql's rows), tv_src_<table>, tv_params and
-- tv_code_groups (group_name, code: the spec's code-list groups residential_placements and
-- placement_move_reasons).
-- Care entry is the start of a period of care (RNE S, or the child's first episode in the
-- data), never a placement change or legal-status change of a child already looked after.
-- Residential placements count when the placement overlaps the follow-up (also one already
-- open at the index date); moves count the new placements starting after the index date.
-- The *_expected columns say who should have an outcome measured from the education and NEET
-- files (NEET: aged 16-17 at some point of the follow-up; attendance: of compulsory school age
-- at the index date, at most 15 years 5 months), so missing values can be counted.
WITH cohort AS (
    SELECT la_code, child_id, index_date, follow_up_end, age_months_at_index FROM tv_cohort
),
residential AS (
    SELECT code FROM tv_code_groups WHERE group_name = 'residential_placements'
),
move_reasons AS (
    SELECT code FROM tv_code_groups WHERE group_name = 'placement_move_reasons'
),
episodes AS (
    SELECT
        e.la_code, e.child_id, e.episode_start_date, e.episode_end_date,
        CASE WHEN r.code IS NULL THEN 0 ELSE 1 END AS is_residential,
        CASE WHEN m.code IS NULL THEN 0 ELSE 1 END AS is_move,
        CASE WHEN e.reason_new_episode = 'S'
                  OR e.episode_start_date = MIN(e.episode_start_date) OVER (
                         PARTITION BY e.la_code, e.child_id)
             THEN 1 ELSE 0 END AS care_start
    FROM tv_src_cla_episodes AS e
    LEFT JOIN residential AS r ON e.placement_type = r.code
    LEFT JOIN move_reasons AS m ON e.reason_new_episode = m.code
    WHERE e.episode_start_date IS NOT NULL
),
care AS (
    -- Episodes overlapping the follow-up: starting in it, or open at the index date.
    -- Entry: a period of care starting in follow-up (an index that is a care start counts);
    -- moves: episodes starting strictly after the index date with a change-of-placement RNE.
    SELECT
        c.la_code, c.child_id,
        MAX(CASE WHEN e.care_start = 1 AND e.episode_start_date >= c.index_date THEN 1 ELSE 0 END)
            AS entered_care,
        MAX(e.is_residential) AS residential,
        SUM(CASE WHEN e.episode_start_date > c.index_date AND e.is_move = 1 THEN 1 ELSE 0 END)
            AS moves
    FROM cohort AS c
    INNER JOIN episodes AS e
        ON e.la_code = c.la_code AND e.child_id = c.child_id
       AND e.episode_start_date < c.follow_up_end
       AND (e.episode_start_date >= c.index_date
            OR e.episode_end_date IS NULL OR e.episode_end_date > c.index_date)
    GROUP BY c.la_code, c.child_id
),
missing_spells AS (
    SELECT c.la_code, c.child_id, COUNT(*) AS spells
    FROM cohort AS c
    INNER JOIN tv_src_missing AS m
        ON m.la_code = c.la_code AND m.child_id = c.child_id
       AND m.missing_start_date >= c.index_date AND m.missing_start_date < c.follow_up_end
    GROUP BY c.la_code, c.child_id
),
cp AS (
    SELECT DISTINCT c.la_code, c.child_id
    FROM cohort AS c
    INNER JOIN tv_src_cp_plans AS p
        ON p.la_code = c.la_code AND p.child_id = c.child_id
       AND p.cp_plan_start_date >= c.index_date AND p.cp_plan_start_date < c.follow_up_end
),
rereferral AS (
    SELECT DISTINCT c.la_code, c.child_id
    FROM cohort AS c
    INNER JOIN tv_src_referrals AS r
        ON r.la_code = c.la_code AND r.child_id = c.child_id
       AND r.referral_date > c.index_date AND r.referral_date < c.follow_up_end
),
neet_rows AS (
    -- Only children with a NEET record in follow-up at the ages the outcome is about are
    -- measured; everyone else is NULL (not 0).
    SELECT
        c.la_code, c.child_id,
        MAX(CASE WHEN n.neet THEN 1 ELSE 0 END) AS any_neet
    FROM cohort AS c
    CROSS JOIN tv_params AS p
    INNER JOIN tv_src_neet AS n
        ON n.la_code = c.la_code AND n.child_id = c.child_id
       AND n.activity_month >= c.index_date AND n.activity_month < c.follow_up_end
    WHERE n.age_months >= p.neet_min_age_months AND n.age_months <= p.neet_max_age_months
    GROUP BY c.la_code, c.child_id
),
term_starts AS (
    -- First day of each school term, from the academic year's first calendar year
    -- (autumn 1 September, spring 1 January, summer 1 April of the next calendar year).
    -- A malformed academic_year gives no date (TRY_CAST), so the row counts in no window.
    SELECT 'autumn' AS term, 9 AS start_month, 0 AS year_offset
    UNION ALL SELECT 'spring', 1, 1
    UNION ALL SELECT 'summer', 4, 1
),
terms AS (
    SELECT
        a.la_code, a.child_id, a.sessions_possible, a.sessions_unauthorised_absence,
        MAKE_DATE(TRY_CAST(SUBSTRING(a.academic_year, 1, 4) AS INTEGER) + t.year_offset,
                  t.start_month, 1) AS term_start
    FROM tv_src_attendance AS a
    INNER JOIN term_starts AS t ON a.term = t.term
),
absence AS (
    SELECT
        c.la_code, c.child_id,
        CAST(SUM(t.sessions_unauthorised_absence) AS DOUBLE)
            / NULLIF(SUM(t.sessions_possible), 0) AS rate
    FROM cohort AS c
    INNER JOIN terms AS t
        ON t.la_code = c.la_code AND t.child_id = c.child_id
       AND t.term_start >= c.index_date AND t.term_start < c.follow_up_end
    GROUP BY c.la_code, c.child_id
)
SELECT
    c.la_code,
    c.child_id,
    COALESCE(care.entered_care, 0) AS entered_care_12m,
    COALESCE(care.residential, 0) AS residential_placement_12m,
    COALESCE(care.moves, 0) AS placement_moves_12m,
    COALESCE(ms.spells, 0) AS missing_episodes_12m,
    CASE WHEN cp.child_id IS NULL THEN 0 ELSE 1 END AS cp_plan_12m,
    CASE WHEN rr.child_id IS NULL THEN 0 ELSE 1 END AS rereferral_12m,
    nr.any_neet AS neet_16_17,
    ab.rate AS unauthorised_absence_rate,
    CASE WHEN c.age_months_at_index + p.follow_up_months - 1 >= p.neet_min_age_months
              AND c.age_months_at_index <= p.neet_max_age_months THEN 1 ELSE 0 END
        AS neet_16_17_expected,
    CASE WHEN c.age_months_at_index <= p.attendance_max_age_months THEN 1 ELSE 0 END
        AS unauthorised_absence_rate_expected
FROM cohort AS c
CROSS JOIN tv_params AS p
LEFT JOIN care ON care.la_code = c.la_code AND care.child_id = c.child_id
LEFT JOIN missing_spells AS ms ON ms.la_code = c.la_code AND ms.child_id = c.child_id
LEFT JOIN cp ON cp.la_code = c.la_code AND cp.child_id = c.child_id
LEFT JOIN rereferral AS rr ON rr.la_code = c.la_code AND rr.child_id = c.child_id
LEFT JOIN neet_rows AS nr ON nr.la_code = c.la_code AND nr.child_id = c.child_id
LEFT JOIN absence AS ab ON ab.la_code = c.la_code AND ab.child_id = c.child_id
ORDER BY c.la_code, c.child_id
