-- Cohort: one row per child (la_code, child_id) entering at their first qualifying event.
-- Definitions: docs/architecture.md, "Cohort and outcome definitions" (binding).
-- Inputs (set up by trialvault.evaluate.cohort from the study file):
--   tv_src_<table>        the harmonised tables, excluded children already removed
--   tv_params             one row: data_start, data_end, follow_up_months, min_age_months,
--                         max_age_months, period_months, first_year
--   tv_qualifying_events  event_type: the study's cohort.qualifying_events
--   tv_steps              la_code, step_date: the study's design.rollout
-- The placeholder in the interval literals is the study's analysis.follow_up_months (a
-- validated integer) written in by cohort.py: an interval built from a column is not portable.
-- Portable SQL: standard window functions, EXTRACT, MAKE_DATE, INTERVAL 'n' MONTH literals
-- (checked by transpiling to Spark with SQLGlot in the tests).
WITH params AS (
    SELECT
        p.*,
        CAST(p.data_end - INTERVAL '{{follow_up_months}}' MONTH AS DATE) AS index_end
    FROM tv_params AS p
),
events AS (
    SELECT la_code, child_id, 'referral' AS event_type, 1 AS event_rank,
           referral_date AS event_date, age_months
    FROM tv_src_referrals
    UNION ALL
    SELECT la_code, child_id, 'assessment', 2, assessment_start_date, age_months
    FROM tv_src_assessments
    UNION ALL
    SELECT la_code, child_id, 's47', 3, s47_start_date, age_months
    FROM tv_src_s47
    UNION ALL
    SELECT la_code, child_id, 'cin_plan', 4, cin_plan_start_date, age_months
    FROM tv_src_cin_plans
    UNION ALL
    SELECT la_code, child_id, 'cp_plan', 5, cp_plan_start_date, age_months
    FROM tv_src_cp_plans
    UNION ALL
    SELECT la_code, child_id, 'looked_after', 6, episode_start_date, age_months
    FROM tv_src_cla_episodes
),
-- Only events inside [data_start, data_end - follow_up]: earlier events never make an index,
-- later ones would have less than full follow-up inside the data.
in_window AS (
    SELECT e.*
    FROM events AS e
    INNER JOIN tv_qualifying_events AS q ON e.event_type = q.event_type
    CROSS JOIN params AS p
    WHERE e.event_date >= p.data_start
      AND e.event_date <= p.index_end
),
ranked AS (
    SELECT
        w.*,
        -- Same-day ties: the earlier stage of the case (referral before assessment ...), then
        -- the row with an age, then the lower age, so the choice is deterministic.
        ROW_NUMBER() OVER (
            PARTITION BY w.la_code, w.child_id
            ORDER BY w.event_date, w.event_rank,
                     CASE WHEN w.age_months IS NULL THEN 1 ELSE 0 END, w.age_months
        ) AS rn
    FROM in_window AS w
),
indexed AS (
    SELECT la_code, child_id, event_date AS index_date, event_type AS index_event,
           age_months AS age_months_at_index
    FROM ranked
    WHERE rn = 1
),
child_rows AS (
    SELECT
        c.la_code, c.child_id, c.sex, c.ethnicity, c.disability, c.uasc,
        ROW_NUMBER() OVER (
            PARTITION BY c.la_code, c.child_id
            ORDER BY c.reference_date DESC NULLS LAST
        ) AS rn
    FROM tv_src_children AS c
)
SELECT
    i.la_code,
    i.child_id,
    i.index_date,
    i.index_event,
    i.age_months_at_index,
    CAST(FLOOR(i.age_months_at_index / 12.0) AS INTEGER) AS age_years_at_index,
    CAST(i.index_date + INTERVAL '{{follow_up_months}}' MONTH AS DATE) AS follow_up_end,
    CAST(FLOOR(((EXTRACT(YEAR FROM i.index_date) - p.first_year) * 12
                + EXTRACT(MONTH FROM i.index_date) - 1) / p.period_months) AS INTEGER) AS period,
    s.step_date,
    CAST(FLOOR(((EXTRACT(YEAR FROM s.step_date) - p.first_year) * 12
                + EXTRACT(MONTH FROM s.step_date) - 1) / p.period_months) AS INTEGER)
        AS step_period,
    CASE WHEN i.index_date >= s.step_date THEN 1 ELSE 0 END AS exposed,
    ch.sex,
    ch.ethnicity,
    ch.disability,
    ch.uasc
FROM indexed AS i
CROSS JOIN params AS p
INNER JOIN tv_steps AS s ON s.la_code = i.la_code
LEFT JOIN child_rows AS ch
    ON ch.la_code = i.la_code AND ch.child_id = i.child_id AND ch.rn = 1
WHERE i.age_months_at_index >= p.min_age_months
  AND i.age_months_at_index <= p.max_age_months
ORDER BY i.la_code, i.child_id
