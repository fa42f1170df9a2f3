-- Cohort: one row per child (la_code, child_id) entering at their first qualifying event.
-- Definitions: docs/architecture.md, "Cohort and outcome definitions" (binding).
-- Inputs (set up by trialvault.evaluate.cohort from the study file):
--   tv_src_<table>        the harmonised tables, excluded children already removed
--   tv_params             one row: data_start, data_end, follow_up_months, min_age_months,
--                         max_age_months, period_months, first_year, care_leaver_min_age_months,
--                         care_leaver_max_age_months, exclude_looked_after (0/1)
--   tv_qualifying_events  event_type: the study's cohort.qualifying_events
--   tv_steps              la_code, step_date: the study's design.rollout
--   tv_code_groups        group_name, code (uasc_assessment_factors: CIN assessment factor
--                         codes that mean an unaccompanied asylum-seeking child)
-- Periods of care (SSDA903): an episode starts a period of care when its RNE is S or when the
-- child has no earlier episode in the data; a period ends with an episode whose end date is
-- known, whose reason ceased is not X1 (X1 = a new episode follows) and after which no episode
-- of the child starts that day.
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
episodes AS (
    SELECT
        e.la_code, e.child_id, e.episode_start_date, e.episode_end_date,
        e.reason_episode_ceased, e.age_months,
        CASE WHEN e.reason_new_episode = 'S'
                  OR e.episode_start_date = MIN(e.episode_start_date) OVER (
                         PARTITION BY e.la_code, e.child_id)
             THEN 1 ELSE 0 END AS care_start
    FROM tv_src_cla_episodes AS e
    WHERE e.episode_start_date IS NOT NULL
),
care_episodes AS (
    -- Each episode with the start of the period of care it belongs to.
    SELECT
        e.*,
        MAX(CASE WHEN e.care_start = 1 THEN e.episode_start_date END) OVER (
            PARTITION BY e.la_code, e.child_id ORDER BY e.episode_start_date) AS period_start
    FROM episodes AS e
),
period_ends AS (
    -- The end of a period of care, with the age then: the age at the episode's start plus the
    -- whole months between its start and end (exact to a month: the data hold no birth date).
    SELECT
        e.la_code, e.child_id, e.episode_end_date AS end_date,
        e.age_months
        + (EXTRACT(YEAR FROM e.episode_end_date) - EXTRACT(YEAR FROM e.episode_start_date)) * 12
        + EXTRACT(MONTH FROM e.episode_end_date) - EXTRACT(MONTH FROM e.episode_start_date)
        - CASE WHEN EXTRACT(DAY FROM e.episode_end_date) < EXTRACT(DAY FROM e.episode_start_date)
               THEN 1 ELSE 0 END AS age_months
    FROM episodes AS e
    WHERE e.episode_end_date IS NOT NULL
      AND COALESCE(e.reason_episode_ceased, '') <> 'X1'
      AND NOT EXISTS (
          SELECT 1 FROM episodes AS n
          WHERE n.la_code = e.la_code AND n.child_id = e.child_id
            AND n.episode_start_date = e.episode_end_date)
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
    FROM episodes
    WHERE care_start = 1
    UNION ALL
    -- Leaving care at the care-leaver ages; younger leavers' period ends are no event at all.
    SELECT pe.la_code, pe.child_id, 'care_leaver', 7, pe.end_date, pe.age_months
    FROM period_ends AS pe
    CROSS JOIN tv_params AS p
    WHERE pe.age_months >= p.care_leaver_min_age_months
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
in_care_at_index AS (
    -- Already looked after on the index date, in a period of care that began before it.
    SELECT DISTINCT i.la_code, i.child_id
    FROM indexed AS i
    INNER JOIN care_episodes AS e
        ON e.la_code = i.la_code AND e.child_id = i.child_id
       AND e.episode_start_date <= i.index_date
       AND (e.episode_end_date IS NULL OR e.episode_end_date > i.index_date)
       AND e.period_start < i.index_date
),
in_care_by_index AS (
    SELECT DISTINCT i.la_code, i.child_id
    FROM indexed AS i
    INNER JOIN episodes AS e
        ON e.la_code = i.la_code AND e.child_id = i.child_id
       AND e.episode_start_date <= i.index_date
),
uasc_cin AS (
    -- An assessment of a referral made on or before the index date found the child to be an
    -- unaccompanied asylum seeker (CIN census assessment factor).
    SELECT DISTINCT i.la_code, i.child_id
    FROM indexed AS i
    INNER JOIN tv_src_assessments AS a
        ON a.la_code = i.la_code AND a.child_id = i.child_id
       AND a.referral_date <= i.index_date
    INNER JOIN tv_code_groups AS g
        ON g.group_name = 'uasc_assessment_factors'
       AND (',' || REPLACE(a.assessment_factors, ' ', '') || ',') LIKE ('%,' || g.code || ',%')
),
assessed_by_index AS (
    SELECT DISTINCT i.la_code, i.child_id
    FROM indexed AS i
    INNER JOIN tv_src_assessments AS a
        ON a.la_code = i.la_code AND a.child_id = i.child_id
       AND a.referral_date <= i.index_date
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
    -- UASC at the index date, never from later records (a covariate must not depend on the
    -- outcome): the CIN assessment factor, or the SSDA903 UASC flag of a child who had been
    -- looked after by the index date.
    CASE WHEN uc.child_id IS NOT NULL THEN TRUE
         WHEN ch.uasc AND cb.child_id IS NOT NULL THEN TRUE
         WHEN ch.uasc IS NULL AND ab.child_id IS NULL THEN NULL
         ELSE FALSE END AS uasc,
    CASE WHEN i.index_event = 'care_leaver' THEN 'care_leaver'
         WHEN ci.child_id IS NOT NULL THEN 'looked_after'
         ELSE 'edge_of_care' END AS cohort_group
FROM indexed AS i
CROSS JOIN params AS p
INNER JOIN tv_steps AS s ON s.la_code = i.la_code
LEFT JOIN child_rows AS ch
    ON ch.la_code = i.la_code AND ch.child_id = i.child_id AND ch.rn = 1
LEFT JOIN in_care_at_index AS ci ON ci.la_code = i.la_code AND ci.child_id = i.child_id
LEFT JOIN in_care_by_index AS cb ON cb.la_code = i.la_code AND cb.child_id = i.child_id
LEFT JOIN uasc_cin AS uc ON uc.la_code = i.la_code AND uc.child_id = i.child_id
LEFT JOIN assessed_by_index AS ab ON ab.la_code = i.la_code AND ab.child_id = i.child_id
WHERE CASE
        WHEN i.index_event = 'care_leaver'
            THEN i.age_months_at_index >= p.care_leaver_min_age_months
                 AND i.age_months_at_index <= p.care_leaver_max_age_months
        ELSE i.age_months_at_index >= p.min_age_months
             AND i.age_months_at_index <= p.max_age_months
      END
  AND NOT (p.exclude_looked_after = 1 AND ci.child_id IS NOT NULL
           AND i.index_event <> 'care_leaver')
ORDER BY i.la_code, i.child_id
