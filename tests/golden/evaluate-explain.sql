$ citykpi evaluate --date 2025-12-31 --no-record --explain
# exit 0
# stdout
-- areas 1
CREATE OR REPLACE TEMP TABLE t_area AS
SELECT area_key, area_id, name, name_en, level, parent_key, coalesce(population, 0) AS population FROM areas;

-- areas 2
CREATE OR REPLACE TEMP TABLE t_anc AS
SELECT area_key, area_key AS anc_key FROM t_area
UNION ALL SELECT area_key, parent_key FROM t_area WHERE parent_key IS NOT NULL
UNION ALL SELECT a.area_key, p.parent_key FROM t_area a JOIN t_area p ON p.area_key = a.parent_key
  WHERE p.parent_key IS NOT NULL;

-- buckets: observations → reporting periods
CREATE OR REPLACE TEMP TABLE t_bucket AS
WITH r AS MATERIALIZED (
SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, m.single, m.single AND o.period = CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit, NULL::DOUBLE AS dur
FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
WHERE o.freq_class = 0 AND NOT m.timed
  AND o.period >= TIMESTAMP '2021-01-01 00:00:00' AND o.period < TIMESTAMP '<NOW>'
  AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
UNION ALL
SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, m.single, m.single AND o.period = CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit, NULL::DOUBLE AS dur
FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
WHERE o.freq_class = 1 AND NOT m.timed
  AND o.period >= TIMESTAMP '2015-01-01 00:00:00' AND o.period < TIMESTAMP '<NOW>'
  AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
),
mixed AS (SELECT DISTINCT ikey, area_key, bucket FROM r WHERE single AND NOT pass),
one AS (SELECT r.* FROM r ANTI JOIN mixed x ON x.ikey = r.ikey AND x.area_key = r.area_key AND x.bucket = r.bucket
        WHERE r.pass),
many AS (
  SELECT r.* FROM r WHERE NOT r.pass
  UNION ALL
  SELECT r.* FROM r SEMI JOIN mixed x ON x.ikey = r.ikey AND x.area_key = r.area_key AND x.bucket = r.bucket
  WHERE r.pass
  UNION ALL
  SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, m.single, m.single AND o.period = CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit, NULL::DOUBLE AS dur
FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
WHERE o.freq_class = 2 AND NOT m.timed
  AND o.period >= TIMESTAMP '2024-12-22 00:00:00' AND o.period < TIMESTAMP '2025-01-01 00:00:00'
  AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
  UNION ALL
  SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, m.single, m.single AND o.period = CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit, NULL::DOUBLE AS dur
FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
WHERE o.freq_class = 2 AND NOT m.timed
  AND o.period >= TIMESTAMP '2025-11-05 00:00:00' AND o.period < TIMESTAMP '<NOW>'
  AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
  UNION ALL
  SELECT t.* EXCLUDE (bucket_end),
    epoch(least(coalesce(lead(t.period) OVER (PARTITION BY t.ikey, t.area_key, t.bucket ORDER BY t.period),
                         t.bucket_end), TIMESTAMP '<NOW>')) - epoch(t.period) AS dur
  FROM (
    SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, FALSE AS single, FALSE AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit,
       CASE m.rgrain WHEN 'day' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 DAY WHEN 'week' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 7 DAY WHEN 'month' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 MONTH WHEN 'quarter' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 3 MONTH WHEN 'year' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 YEAR END AS bucket_end
    FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
    WHERE o.freq_class = 2 AND m.timed
      AND o.period >= TIMESTAMP '2024-12-23 00:00:00' AND o.period < TIMESTAMP '2025-01-01 00:00:00'
      AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
  ) t
  UNION ALL
  SELECT t.* EXCLUDE (bucket_end),
    epoch(least(coalesce(lead(t.period) OVER (PARTITION BY t.ikey, t.area_key, t.bucket ORDER BY t.period),
                         t.bucket_end), TIMESTAMP '<NOW>')) - epoch(t.period) AS dur
  FROM (
    SELECT m.ikey, o.area_key, CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS bucket, o.period, o.value, o.numerator, o.denominator, FALSE AS single, FALSE AS pass, (CASE m.where_op
              WHEN '<' THEN o.value < m.where_val WHEN '<=' THEN o.value <= m.where_val
              WHEN '>' THEN o.value > m.where_val WHEN '>=' THEN o.value >= m.where_val
              WHEN '=' THEN o.value = m.where_val WHEN '!=' THEN o.value <> m.where_val END) AS hit,
       CASE m.rgrain WHEN 'day' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 DAY WHEN 'week' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 7 DAY WHEN 'month' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 MONTH WHEN 'quarter' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 3 MONTH WHEN 'year' THEN CAST(CASE m.rgrain WHEN 'day' THEN CAST(date_trunc('day', o.period) AS DATE) WHEN 'week' THEN CAST(date_trunc('week', o.period) AS DATE) WHEN 'month' THEN CAST(date_trunc('month', o.period) AS DATE) WHEN 'quarter' THEN CAST(date_trunc('quarter', o.period) AS DATE) WHEN 'year' THEN CAST(date_trunc('year', o.period) AS DATE) END AS TIMESTAMP) + INTERVAL 1 YEAR END AS bucket_end
    FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
    WHERE o.freq_class = 2 AND m.timed
      AND o.period >= TIMESTAMP '2025-11-05 00:00:00' AND o.period < TIMESTAMP '<NOW>'
      AND ((o.period >= m.win_lo) OR (o.period >= m.ly_lo AND o.period < m.ly_hi)
       OR (o.period >= m.base_lo AND o.period < m.base_hi))
  ) t
),
agg AS (
  SELECT r.ikey, r.area_key, r.bucket,
         fsum(r.value) AS t_sum,
         favg(r.value) AS t_mean,
         arg_max(r.value, r.period) AS t_last,
         max(r.value) AS t_max,
         min(r.value) AS t_min,
         CAST(count(r.value) AS DOUBLE) AS t_count,
         CAST(count_if(r.hit) AS DOUBLE) AS t_count_where,
         CASE WHEN fsum(CASE WHEN r.value IS NOT NULL THEN r.dur END) > 0
           THEN fsum(r.value * r.dur) / fsum(CASE WHEN r.value IS NOT NULL THEN r.dur END)
           ELSE arg_max(r.value, r.period) END AS t_time_weighted_mean,
         coalesce(fsum(CASE WHEN r.hit THEN r.dur END), 0.0) / 60.0 AS t_minutes_where,
         fsum(r.numerator) AS sn, fsum(r.denominator) AS sd, max(r.period) AS last_period
  FROM many r GROUP BY r.ikey, r.area_key, r.bucket
)
SELECT r.ikey, r.area_key, r.bucket, CASE WHEN m.with_parts THEN r.numerator / NULLIF(r.denominator, 0) * m.scale
       ELSE CASE m.time_rollup
         WHEN 'count' THEN CASE WHEN r.value IS NULL THEN 0.0 ELSE 1.0 END
         WHEN 'count_where' THEN CASE WHEN (CASE m.where_op
              WHEN '<' THEN r.value < m.where_val WHEN '<=' THEN r.value <= m.where_val
              WHEN '>' THEN r.value > m.where_val WHEN '>=' THEN r.value >= m.where_val
              WHEN '=' THEN r.value = m.where_val WHEN '!=' THEN r.value <> m.where_val END) THEN 1.0 ELSE 0.0 END
         ELSE r.value END END AS v,
       r.numerator AS sn, r.denominator AS sd, r.period AS last_period,
       CASE m.frequency WHEN 'realtime' THEN r.period WHEN 'hourly' THEN r.period + INTERVAL 1 HOUR
      WHEN 'daily' THEN r.period + INTERVAL 1 DAY WHEN 'weekly' THEN r.period + INTERVAL 7 DAY
      WHEN 'monthly' THEN r.period + INTERVAL 1 MONTH WHEN 'quarterly' THEN r.period + INTERVAL 3 MONTH
      ELSE r.period + INTERVAL 1 YEAR END AS data_end, 0::TINYINT AS src
FROM one r JOIN ck_ind m ON m.ikey = r.ikey
UNION ALL
SELECT a.ikey, a.area_key, a.bucket, CASE WHEN m.with_parts THEN a.sn / NULLIF(a.sd, 0) * m.scale ELSE CASE m.time_rollup WHEN 'sum' THEN a.t_sum WHEN 'mean' THEN a.t_mean WHEN 'last' THEN a.t_last WHEN 'max' THEN a.t_max WHEN 'min' THEN a.t_min WHEN 'count' THEN a.t_count WHEN 'count_where' THEN a.t_count_where WHEN 'time_weighted_mean' THEN a.t_time_weighted_mean WHEN 'minutes_where' THEN a.t_minutes_where END END AS v, a.sn, a.sd, a.last_period,
       CASE m.frequency WHEN 'realtime' THEN a.last_period WHEN 'hourly' THEN a.last_period + INTERVAL 1 HOUR
      WHEN 'daily' THEN a.last_period + INTERVAL 1 DAY WHEN 'weekly' THEN a.last_period + INTERVAL 7 DAY
      WHEN 'monthly' THEN a.last_period + INTERVAL 1 MONTH WHEN 'quarterly' THEN a.last_period + INTERVAL 3 MONTH
      ELSE a.last_period + INTERVAL 1 YEAR END AS data_end, 0::TINYINT AS src
FROM agg a JOIN ck_ind m ON m.ikey = a.ikey;

-- measures over raw source tables
INSERT INTO t_bucket
SELECT q.ikey, q.area_key, q.bucket, q.sn / NULLIF(q.sd, 0) * m.scale AS v, q.sn, q.sd, q.last_period,
  q.last_period + INTERVAL 1 DAY AS data_end, 0
FROM (
SELECT 15 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('day', s."created_at") AS DATE) AS bucket,
       CAST(count(*) AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-06-25 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-12-22 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 21 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('month', s."created_at") AS DATE) AS bucket,
       CAST(count_if((s."closed_at" <= s."due_at")) AS DOUBLE) AS sn, CAST(count_if((s."closed_at" IS NOT NULL)) AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-09-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-09-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 17 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('month', s."created_at") AS DATE) AS bucket,
       CAST(count_if((s."closed_at" IS NOT NULL)) AS DOUBLE) AS sn, CAST(count(*) AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-09-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-09-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 22 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('month', s."created_at") AS DATE) AS bucket,
       CAST(count_if(s."satisfied") AS DOUBLE) AS sn, CAST(count(s."satisfied") AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-09-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-09-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 19 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('month', s."created_at") AS DATE) AS bucket,
       CAST(median((epoch(s."closed_at") - epoch(s."created_at")) / 3600.0) AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-09-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-09-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 18 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('day', s."created_at") AS DATE) AS bucket,
       CAST(count_if((s."closed_at" > s."due_at")) AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-12-22 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-12-22 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 20 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('month', s."created_at") AS DATE) AS bucket,
       CAST(count(*) AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE (s."category" = '噪声扰民') AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2025-09-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2024-09-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 9 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('day', s."resolved_at") AS DATE) AS bucket,
       CAST(favg(s."minutes_to_resolve") AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."resolved_at") AS last_period
FROM "t_src_alert_episodes" s JOIN t_anc a ON a.area_key = s.area_key
WHERE (s."owner" = '市城市管理局') AND s."resolved_at" < TIMESTAMP '<NOW>'
  AND (s."resolved_at" >= TIMESTAMP '2025-12-17 00:00:00'
       OR (s."resolved_at" >= TIMESTAMP '2024-12-17 00:00:00'
           AND s."resolved_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
UNION ALL
SELECT 171 AS ikey, a.anc_key AS area_key,
       CAST(date_trunc('year', s."created_at") AS DATE) AS bucket,
       CAST(count(*) AS DOUBLE) AS sn, CAST(1.0 AS DOUBLE) AS sd, max(s."created_at") AS last_period
FROM "src_hotline_cases" s JOIN t_anc a ON a.area_key = s.area_key
WHERE TRUE AND s."created_at" < TIMESTAMP '<NOW>'
  AND (s."created_at" >= TIMESTAMP '2024-01-01 00:00:00'
       OR (s."created_at" >= TIMESTAMP '2023-01-01 00:00:00'
           AND s."created_at" < TIMESTAMP '2025-01-01 00:00:00'))
GROUP BY a.anc_key, bucket
) q JOIN ck_ind m ON m.ikey = q.ikey;

-- area roll-up street → district
INSERT INTO t_bucket
SELECT * FROM (
  SELECT c.ikey, a.parent_key AS area_key, c.bucket,
    CASE any_value(m.area_rollup) WHEN 'sum' THEN fsum(c.v)
      WHEN 'mean' THEN favg(c.v)
      WHEN 'max' THEN max(c.v)
      WHEN 'min' THEN min(c.v)
      WHEN 'worst' THEN CASE any_value(m.direction) WHEN 'lower_is_better' THEN max(c.v)
                        WHEN 'higher_is_better' THEN min(c.v) ELSE arg_max(c.v, abs(c.v - m.mid)) END
      WHEN 'weighted_mean' THEN fsum(c.v * a.population) / NULLIF(fsum(CASE WHEN c.v IS NOT NULL THEN a.population END), 0)
      WHEN 'ratio_of_sums' THEN fsum(c.sn) / NULLIF(fsum(c.sd), 0) * any_value(m.scale) END AS v,
    fsum(c.sn) AS sn, fsum(c.sd) AS sd, max(c.last_period) AS last_period, max(c.data_end) AS data_end,
    1::TINYINT AS src
  FROM t_bucket c
  JOIN t_area a ON a.area_key = c.area_key AND a.level = 'street' AND a.parent_key IS NOT NULL
  JOIN ck_ind m ON m.ikey = c.ikey
  WHERE m.area_rollup IN ('sum', 'mean', 'max', 'min', 'worst', 'weighted_mean', 'ratio_of_sums')
  GROUP BY c.ikey, a.parent_key, c.bucket
) q ANTI JOIN t_bucket own ON own.ikey = q.ikey AND own.area_key = q.area_key AND own.bucket = q.bucket;

-- area roll-up district → city
INSERT INTO t_bucket
SELECT * FROM (
  SELECT c.ikey, a.parent_key AS area_key, c.bucket,
    CASE any_value(m.area_rollup) WHEN 'sum' THEN fsum(c.v)
      WHEN 'mean' THEN favg(c.v)
      WHEN 'max' THEN max(c.v)
      WHEN 'min' THEN min(c.v)
      WHEN 'worst' THEN CASE any_value(m.direction) WHEN 'lower_is_better' THEN max(c.v)
                        WHEN 'higher_is_better' THEN min(c.v) ELSE arg_max(c.v, abs(c.v - m.mid)) END
      WHEN 'weighted_mean' THEN fsum(c.v * a.population) / NULLIF(fsum(CASE WHEN c.v IS NOT NULL THEN a.population END), 0)
      WHEN 'ratio_of_sums' THEN fsum(c.sn) / NULLIF(fsum(c.sd), 0) * any_value(m.scale) END AS v,
    fsum(c.sn) AS sn, fsum(c.sd) AS sd, max(c.last_period) AS last_period, max(c.data_end) AS data_end,
    1::TINYINT AS src
  FROM t_bucket c
  JOIN t_area a ON a.area_key = c.area_key AND a.level = 'district' AND a.parent_key IS NOT NULL
  JOIN ck_ind m ON m.ikey = c.ikey
  WHERE m.area_rollup IN ('sum', 'mean', 'max', 'min', 'worst', 'weighted_mean', 'ratio_of_sums')
  GROUP BY c.ikey, a.parent_key, c.bucket
) q ANTI JOIN t_bucket own ON own.ikey = q.ikey AND own.area_key = q.area_key AND own.bucket = q.bucket;

-- index periods (current, history, last year)
CREATE OR REPLACE TEMP TABLE t_k AS
WITH cur AS (
  SELECT b.ikey, b.area_key, max(b.bucket) AS cb
  FROM t_bucket b JOIN ck_ind m ON m.ikey = b.ikey
  WHERE b.bucket >= m.cand_lo AND b.v IS NOT NULL
  GROUP BY b.ikey, b.area_key
),
x AS (
  SELECT b.*, CASE m.rgrain
  WHEN 'day' THEN date_diff('day', b.bucket, c.cb)
  WHEN 'week' THEN date_diff('day', b.bucket, c.cb) // 7
  WHEN 'month' THEN date_diff('month', b.bucket, c.cb)
  WHEN 'quarter' THEN date_diff('quarter', b.bucket, c.cb)
  ELSE date_diff('year', b.bucket, c.cb) END AS k0, b.bucket = CAST(CASE m.rgrain WHEN 'week' THEN c.cb - INTERVAL 364 DAY
  WHEN 'day' THEN c.cb - INTERVAL 1 YEAR ELSE c.cb - INTERVAL 1 YEAR END AS DATE) AS ly, m.hist,
    coalesce(b.bucket = m.base_lo, false) AS base
  FROM t_bucket b JOIN cur c ON c.ikey = b.ikey AND c.area_key = b.area_key
  JOIN ck_ind m ON m.ikey = b.ikey
  WHERE b.bucket <= c.cb
)
SELECT ikey, area_key, (CASE WHEN k0 <= hist THEN k0 ELSE -1 END)::INTEGER AS k, ly,
  bucket, v, last_period, data_end, src, base
FROM x WHERE k0 <= hist OR ly OR base;

-- derived values, layer 1
INSERT INTO t_k
SELECT f.ikey, i.area_key, i.k, i.ly, max(i.bucket) AS bucket,
  CASE WHEN m.vkind = 'ratio'
       THEN max(i.v) FILTER (WHERE f.slot = 1) / NULLIF(max(i.v) FILTER (WHERE f.slot = 2), 0) * m.scale
       ELSE CASE f.ikey WHEN 51 THEN ((max(i.v) FILTER (WHERE f.slot = 1) * CAST(100000000.0 AS DOUBLE)) / NULLIF(max(i.v) FILTER (WHERE f.slot = 2), 0)) WHEN 151 THEN ((max(i.v) FILTER (WHERE f.slot = 1) * CAST(10000.0 AS DOUBLE)) / NULLIF(nullif(max(i.v) FILTER (WHERE f.slot = 2), CAST(0.0 AS DOUBLE)), 0)) END END AS v,
  min(i.last_period) AS last_period, min(i.data_end) AS data_end,
  2::TINYINT AS src, i.base
FROM ck_input f JOIN t_k i ON i.ikey = f.input_ikey
JOIN ck_ind m ON m.ikey = f.ikey
WHERE f.layer = 1
GROUP BY f.ikey, i.area_key, i.k, i.ly, i.base, m.vkind, m.scale
HAVING count(DISTINCT f.slot) = (SELECT count(*) FROM ck_input g WHERE g.ikey = f.ikey);

-- cumulative sums for cumulative targets
CREATE OR REPLACE TEMP TABLE t_cum AS
WITH own AS (
  SELECT m.ikey, o.area_key, fsum(o.value) AS cum
  FROM observations o JOIN ck_ind m ON o.indicator_key = m.series_ikey
  WHERE m.target_method = 'cumulative' AND o.period >= TIMESTAMP '2025-01-01 00:00:00' AND o.period < TIMESTAMP '<NOW>'
    AND o.period >= m.baseline_date
  GROUP BY m.ikey, o.area_key
)
SELECT ikey, area_key, cum FROM own
UNION ALL
SELECT o.ikey, a.anc_key, fsum(o.cum) FROM own o JOIN t_anc a ON a.area_key = o.area_key AND a.anc_key <> a.area_key
ANTI JOIN own p ON p.ikey = o.ikey AND p.area_key = a.anc_key
GROUP BY o.ikey, a.anc_key;

-- seasonal baselines
CREATE OR REPLACE TEMP TABLE t_baseline AS
WITH tgt AS (
  SELECT t.ikey, t.area_key, t.k, t.bucket, m.rgrain, m.bl_n
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  WHERE m.bl_n > 0 AND t.k >= 0 AND t.k < m.bl_k
),
excl AS (  -- declared incidents, for the area named and its descendants, or everywhere
  SELECT x.ikey, a.area_key, x.lo, x.hi FROM ck_excl x JOIN t_anc a ON a.anc_key = x.area_key
  UNION ALL
  SELECT x.ikey, g.area_key, x.lo, x.hi FROM ck_excl x JOIN (SELECT DISTINCT ikey, area_key FROM tgt) g
    ON g.ikey = x.ikey WHERE x.area_key IS NULL
),
peers AS (
  SELECT g.ikey, g.area_key, g.k, g.bl_n, p.peer, p.rank, r.v
  FROM tgt g JOIN ck_peer p ON p.rgrain = g.rgrain AND p.bucket = g.bucket AND p.rank <= 2 * g.bl_n
  JOIN t_k r ON r.ikey = g.ikey AND r.area_key = g.area_key AND r.bucket = p.peer
  WHERE r.v IS NOT NULL AND isfinite(r.v)
),
kept AS (
  SELECT p.* FROM peers p
  ANTI JOIN excl e ON e.ikey = p.ikey AND e.area_key = p.area_key AND CAST(p.peer AS DATE) BETWEEN e.lo AND e.hi
  QUALIFY row_number() OVER (PARTITION BY p.ikey, p.area_key, p.k ORDER BY p.rank) <= p.bl_n
),
agg AS (
  SELECT ikey, area_key, k, count(*) AS n, median(v) AS med, mad(v) AS mad, list_sort(list(v)) AS vals
  FROM kept GROUP BY ikey, area_key, k
  HAVING count(*) >= 3
)
SELECT ikey, area_key, k, n, med,
  CASE WHEN mad > 0 THEN 1.4826 * mad
       ELSE nullif(1.2533 * list_avg(list_transform(vals, lambda x: abs(x - med))), 0) END AS scale
FROM agg;

-- classify, cells and explanations
CREATE OR REPLACE TEMP TABLE t_classified AS
WITH cells AS (
WITH cur0 AS (  -- each cell's current row (one per cell), classified
SELECT b.*, CASE WHEN b.k >= 0 THEN CASE WHEN b.bv IS NULL OR isnan(b.bv) THEN NULL
  WHEN bs.direction = 'lower_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_red ELSE b.bv > bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_orange ELSE b.bv > bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_yellow ELSE b.bv > bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_blue ELSE b.bv > bs.c_blue END) THEN 1 ELSE 0 END
  WHEN bs.direction = 'higher_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_red ELSE b.bv < bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_orange ELSE b.bv < bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_yellow ELSE b.bv < bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_blue ELSE b.bv < bs.c_blue END) THEN 1 ELSE 0 END
  ELSE CASE WHEN b.bv BETWEEN bs.lo_green AND bs.hi_green THEN 0 WHEN b.bv BETWEEN bs.lo_blue AND bs.hi_blue THEN 1 WHEN b.bv BETWEEN bs.lo_yellow AND bs.hi_yellow THEN 2 WHEN b.bv BETWEEN bs.lo_orange AND bs.hi_orange THEN 3 ELSE 4 END END END AS sev
FROM (
  SELECT t.*, CASE m.basis WHEN 'absolute' THEN t.v
  WHEN 'percent_of_target' THEN t.v / NULLIF(m.target_value, 0) * 100
  WHEN 'percent_of_limit' THEN t.v / NULLIF(m.limit_value, 0) * 100
  WHEN 'change_previous' THEN CASE WHEN m.change_unit = 'points' THEN t.v - p.v
  ELSE (t.v - p.v) / NULLIF(abs(p.v), 0) * 100 END
  WHEN 'change_last_year' THEN CASE WHEN m.change_unit = 'points' THEN t.v - y.v
  ELSE (t.v - y.v) / NULLIF(abs(y.v), 0) * 100 END
  WHEN 'change_base_period' THEN CASE WHEN m.change_unit = 'points' THEN t.v - bp.v
  ELSE (t.v - bp.v) / NULLIF(abs(bp.v), 0) * 100 END
  WHEN 'anomaly' THEN CASE WHEN bl.scale > 0 THEN (t.v - bl.med) / bl.scale WHEN t.v = bl.med THEN 0.0 END END AS bv,
         coalesce(oa.bs_id, ol.bs_id, m.bs_id) AS bs_id
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  JOIN t_area a ON a.area_key = t.area_key
  LEFT JOIN (SELECT q.ikey, q.area_key, q.k, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE mq.basis IN ('change_previous')) p
    ON p.ikey = t.ikey AND p.area_key = t.area_key AND p.k = t.k + 1
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.ly AND mq.basis IN ('change_last_year')) y
    ON y.ikey = t.ikey AND y.area_key = t.area_key AND t.k = 0
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.base AND mq.basis IN ('change_base_period')) bp
    ON bp.ikey = t.ikey AND bp.area_key = t.area_key
  LEFT JOIN ck_override oa ON oa.ikey = t.ikey AND oa.area_key = t.area_key
  LEFT JOIN ck_override ol ON ol.ikey = t.ikey AND ol.area_key IS NULL AND ol.level = a.level
  LEFT JOIN t_baseline bl ON bl.ikey = t.ikey AND bl.area_key = t.area_key
    AND bl.k = t.k
  WHERE t.k <= m.keep  -- periods read further back only for forecasts and baselines are not classified
    AND t.k = 0
) b JOIN ck_bandset bs ON bs.bs_id = b.bs_id
),
grid AS (
  SELECT m.ikey, a.area_key, a.level FROM ck_ind m JOIN t_area a
    ON (a.level = 'city' AND m.lvl_city) OR (a.level = 'district' AND m.lvl_district)
       OR (a.level = 'street' AND m.lvl_street)
  WHERE NOT m.hidden
),
hist AS (  -- over the periods: persistence and the streak
  SELECT c.ikey, c.area_key,
    count(*) FILTER (WHERE c.k >= 0 AND c.k < m.for_periods AND c.sev IS NOT NULL) AS persist_n,
    min(c.sev) FILTER (WHERE c.k >= 0 AND c.k < m.for_periods) AS persist_sev,
    bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = 0) AS smask0,
    bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = 1) AS smask1,
    bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = 2) AS smask2,
    bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = 3) AS smask3,
    bit_or(1::BIGINT << greatest(c.k, 0)) FILTER (WHERE c.k >= 0 AND c.sev = 4) AS smask4
  FROM (
SELECT b.*, CASE WHEN b.k >= 0 THEN CASE WHEN b.bv IS NULL OR isnan(b.bv) THEN NULL
  WHEN bs.direction = 'lower_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_red ELSE b.bv > bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_orange ELSE b.bv > bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_yellow ELSE b.bv > bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN b.bv >= bs.c_blue ELSE b.bv > bs.c_blue END) THEN 1 ELSE 0 END
  WHEN bs.direction = 'higher_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_red ELSE b.bv < bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_orange ELSE b.bv < bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_yellow ELSE b.bv < bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN b.bv <= bs.c_blue ELSE b.bv < bs.c_blue END) THEN 1 ELSE 0 END
  ELSE CASE WHEN b.bv BETWEEN bs.lo_green AND bs.hi_green THEN 0 WHEN b.bv BETWEEN bs.lo_blue AND bs.hi_blue THEN 1 WHEN b.bv BETWEEN bs.lo_yellow AND bs.hi_yellow THEN 2 WHEN b.bv BETWEEN bs.lo_orange AND bs.hi_orange THEN 3 ELSE 4 END END END AS sev
FROM (
  SELECT t.*, CASE m.basis WHEN 'absolute' THEN t.v
  WHEN 'percent_of_target' THEN t.v / NULLIF(m.target_value, 0) * 100
  WHEN 'percent_of_limit' THEN t.v / NULLIF(m.limit_value, 0) * 100
  WHEN 'change_previous' THEN CASE WHEN m.change_unit = 'points' THEN t.v - p.v
  ELSE (t.v - p.v) / NULLIF(abs(p.v), 0) * 100 END
  WHEN 'change_last_year' THEN CASE WHEN m.change_unit = 'points' THEN t.v - y.v
  ELSE (t.v - y.v) / NULLIF(abs(y.v), 0) * 100 END
  WHEN 'change_base_period' THEN CASE WHEN m.change_unit = 'points' THEN t.v - bp.v
  ELSE (t.v - bp.v) / NULLIF(abs(bp.v), 0) * 100 END
  WHEN 'anomaly' THEN CASE WHEN bl.scale > 0 THEN (t.v - bl.med) / bl.scale WHEN t.v = bl.med THEN 0.0 END END AS bv,
         coalesce(oa.bs_id, ol.bs_id, m.bs_id) AS bs_id
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  JOIN t_area a ON a.area_key = t.area_key
  LEFT JOIN (SELECT q.ikey, q.area_key, q.k, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE mq.basis IN ('change_previous')) p
    ON p.ikey = t.ikey AND p.area_key = t.area_key AND p.k = t.k + 1
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.ly AND mq.basis IN ('change_last_year')) y
    ON y.ikey = t.ikey AND y.area_key = t.area_key AND t.k = 0
  LEFT JOIN (SELECT q.ikey, q.area_key, q.v FROM t_k q JOIN ck_ind mq ON mq.ikey = q.ikey
             WHERE q.base AND mq.basis IN ('change_base_period')) bp
    ON bp.ikey = t.ikey AND bp.area_key = t.area_key
  LEFT JOIN ck_override oa ON oa.ikey = t.ikey AND oa.area_key = t.area_key
  LEFT JOIN ck_override ol ON ol.ikey = t.ikey AND ol.area_key IS NULL AND ol.level = a.level
  LEFT JOIN t_baseline bl ON bl.ikey = t.ikey AND bl.area_key = t.area_key
    AND bl.k = t.k
  WHERE t.k <= m.keep  -- periods read further back only for forecasts and baselines are not classified
) b JOIN ck_bandset bs ON bs.bs_id = b.bs_id
  ) c JOIN ck_ind m ON m.ikey = c.ikey
  GROUP BY c.ikey, c.area_key
),
cmp AS (  -- the values the cell is compared with
  SELECT c.ikey, c.area_key,
    any_value(c.v) FILTER (WHERE c.k = 1) AS v1,
    any_value(c.v) FILTER (WHERE c.k = 7 AND m.rgrain = 'day') AS v7,
    any_value(c.v) FILTER (WHERE c.ly) AS vly,
    any_value(c.v) FILTER (WHERE c.base) AS vbase
  FROM t_k c JOIN ck_ind m ON m.ikey = c.ikey
  WHERE c.k = 1 OR c.k = 7 AND m.rgrain = 'day' OR c.ly OR c.base
  GROUP BY c.ikey, c.area_key
),
hv AS (
  SELECT h.ikey, h.area_key, z.sev AS sev0, z.bv AS bv0, z.bs_id, h.persist_n, h.persist_sev, CASE z.sev WHEN 0 THEN h.smask0 WHEN 1 THEN h.smask1 WHEN 2 THEN h.smask2 WHEN 3 THEN h.smask3 WHEN 4 THEN h.smask4 END AS smask,
    z.v AS v0, z.bucket AS bucket0, z.last_period AS last0, z.data_end AS data_end0, z.src AS src0,
    p.v1, p.v7, p.vly, p.vbase AS vbase
  FROM hist h LEFT JOIN cur0 z ON z.ikey = h.ikey AND z.area_key = h.area_key
  LEFT JOIN cmp p ON p.ikey = h.ikey AND p.area_key = h.area_key
),
j AS (
  SELECT g.ikey, g.area_key, g.level, m.* EXCLUDE (ikey), h.v0, h.bucket0, h.last0, h.src0, h.v1, h.v7, h.vly,
    h.vbase,
    CASE WHEN m.target_method = 'cumulative' THEN coalesce(cu.cum, h.v0) ELSE h.v0 END AS tv,
    h.sev0, h.bv0, h.bs_id AS cell_bs, h.persist_n, h.persist_sev, h.smask,
    CASE WHEN h.v0 IS NULL THEN NULL
      WHEN m.for_periods > 1 THEN CASE WHEN h.persist_n = m.for_periods THEN h.persist_sev ELSE 0 END
      ELSE h.sev0 END AS sev,
    h.data_end0 AS data_end
  FROM grid g JOIN ck_ind m ON m.ikey = g.ikey
  LEFT JOIN hv h ON h.ikey = g.ikey AND h.area_key = g.area_key
  LEFT JOIN t_cum cu ON cu.ikey = g.ikey AND cu.area_key = g.area_key
),
s AS (
  SELECT j.*,
    CASE WHEN j.v0 IS NULL THEN 'no_data'
      WHEN epoch(TIMESTAMP '<NOW>') - epoch(j.data_end) > j.stale_s THEN 'stale'
      WHEN j.sev IS NULL THEN 'not_applicable'
      WHEN NOT coalesce(bsx.scored, TRUE) THEN 'unscored'
      ELSE ['green', 'blue', 'yellow', 'orange', 'red'][j.sev + 1] END AS status,
    CASE WHEN j.v0 IS NULL OR j.sev0 IS NULL OR NOT coalesce(bsx.scored, TRUE) THEN NULL
      -- a seasonal baseline scores only the periods persistence needs: no colours to count a streak in
      WHEN j.basis IN ('anomaly') THEN NULL ELSE
      bit_count(xor(j.smask, j.smask + 1)) - 1
    END AS streak,
    CASE j.rgrain WHEN 'day' THEN j.bucket0 WHEN 'week' THEN j.bucket0 + 6
      WHEN 'month' THEN CAST(j.bucket0 + INTERVAL 1 MONTH AS DATE) - 1
      WHEN 'quarter' THEN CAST(j.bucket0 + INTERVAL 3 MONTH AS DATE) - 1
      ELSE CAST(j.bucket0 + INTERVAL 1 YEAR AS DATE) - 1 END AS period_end
  FROM j LEFT JOIN ck_bandset bsx ON bsx.bs_id = j.cell_bs
)
SELECT s.ikey, s.area_key, s.level, s.bucket0 AS period_start, s.period_end, s.v0 AS value, s.bv0 AS basis_value,
  s.status, CASE WHEN s.status IN ('green', 'blue', 'yellow', 'orange', 'red') THEN s.sev END::TINYINT AS severity,
  s.v1 AS previous_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.v1 ELSE (s.v0 - s.v1) / NULLIF(abs(s.v1), 0) * 100 END AS change_previous,
  s.v7 AS week_ago_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.v7 ELSE (s.v0 - s.v7) / NULLIF(abs(s.v7), 0) * 100 END AS change_week_ago,
  s.vly AS last_year_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.vly ELSE (s.v0 - s.vly) / NULLIF(abs(s.vly), 0) * 100 END AS change_last_year,
  s.vbase AS base_value,
  CASE WHEN s.change_unit = 'points' THEN s.v0 - s.vbase ELSE (s.v0 - s.vbase) / NULLIF(abs(s.vbase), 0) * 100 END AS change_base,
  s.change_unit, s.streak::INTEGER AS streak, s.last0 AS last_period, s.cell_bs AS bs_id,
  s.target_value, s.target_due,
  CASE WHEN s.target_value IS NULL OR s.tv IS NULL THEN NULL
    WHEN s.target_method = 'cumulative' THEN s.tv / NULLIF(s.target_value, 0)
    WHEN s.direction = 'lower_is_better' THEN
      CASE WHEN CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END IS NOT NULL AND CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END <> s.target_value
           THEN (CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END - s.tv) / (CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END - s.target_value) ELSE s.target_value / NULLIF(s.tv, 0) END
    ELSE CASE WHEN CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END IS NOT NULL AND CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END <> s.target_value
           THEN (s.tv - CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END) / (s.target_value - CASE WHEN s.level = CASE WHEN s.lvl_city THEN 'city' WHEN s.lvl_district THEN 'district'
        ELSE 'street' END THEN s.baseline END) ELSE s.tv / NULLIF(s.target_value, 0) END
  END AS attainment,
  CASE WHEN s.target_value IS NULL THEN NULL
    ELSE greatest(0.0, least(1.0, date_diff('day', s.baseline_date, DATE '2025-12-31')
         / greatest(1, date_diff('day', s.baseline_date, s.target_due))::DOUBLE)) END AS expected_progress,
  CASE WHEN s.src0 = 2 THEN 'derived' WHEN s.src0 = 1 THEN 'rollup'
       WHEN s.src0 IS NULL THEN NULL ELSE 'observed' END AS source
FROM s
),
lab AS (
  SELECT c.ikey, c.area_key, arg_min(s.label_zh, s.step) AS label_zh, arg_min(s.label_en, s.step) AS label_en
  FROM cells c JOIN ck_scale s ON s.ikey = c.ikey AND c.value IS NOT NULL AND (s.upto IS NULL OR c.value <= s.upto)
  GROUP BY c.ikey, c.area_key
)
SELECT c.*,
  CASE WHEN c.target_value IS NULL OR c.attainment IS NULL THEN NULL
    WHEN m.target_method = 'cumulative' AND m.direction = 'lower_is_better' THEN
      -- a budget (e.g. at most 10,000 fires a year): the share used against the time elapsed
      CASE WHEN c.attainment > 1 THEN 'missed' WHEN c.expected_progress >= 1 THEN 'achieved'
           WHEN c.attainment <= c.expected_progress THEN 'on_track' ELSE 'behind' END
    WHEN c.attainment >= 1 THEN 'achieved'
    WHEN c.expected_progress >= 1 THEN 'missed'
    WHEN c.attainment >= c.expected_progress THEN 'on_track' ELSE 'behind' END AS target_status,
  lab.label_zh AS band_label, lab.label_en AS band_label_en,
  CASE c.status
    WHEN 'no_data' THEN 'no_data: no value within the look-back window'
    WHEN 'stale' THEN 'stale: latest value ' || CASE WHEN c.value IS NULL THEN '?' WHEN c.value = round(c.value) AND abs(c.value) < 1e15 THEN CAST(CAST(c.value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.value, m.decimals) AS VARCHAR) END || m.unit_label || ' from ' || strftime(c.last_period, '%Y-%m-%d %H:%M')
        || ', older than ' || CASE WHEN m.stale_s % 86400 = 0 THEN (m.stale_s // 86400)::BIGINT || 'd'
           WHEN m.stale_s % 3600 = 0 THEN (m.stale_s // 3600)::BIGINT || 'h'
           ELSE (m.stale_s // 60)::BIGINT || 'm' END
    WHEN 'not_applicable' THEN 'not_applicable: ' || m.na_reason
    WHEN 'unscored' THEN 'unscored: ' || CASE WHEN c.value IS NULL THEN '?' WHEN c.value = round(c.value) AND abs(c.value) < 1e15 THEN CAST(CAST(c.value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.value, m.decimals) AS VARCHAR) END || m.basis_label || '; no thresholds are declared for it'
    ELSE CASE WHEN m.direction = 'band' THEN CASE WHEN c.severity = 0 THEN 'green: ' || CASE WHEN c.basis_value IS NULL THEN '?' WHEN CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END IS NULL OR c.basis_value = CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END OR c.basis_value = round(c.basis_value) THEN CASE WHEN c.basis_value IS NULL THEN '?' WHEN c.basis_value = round(c.basis_value) AND abs(c.basis_value) < 1e15 THEN CAST(CAST(c.basis_value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.basis_value, m.decimals) AS VARCHAR) END WHEN CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END IS NULL THEN CAST(c.basis_value AS VARCHAR) ELSE CAST(round(c.basis_value, CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END) AS VARCHAR) END || m.basis_label || ' within '
          || CASE WHEN bs.lo_green IS NULL THEN '?' WHEN bs.lo_green = round(bs.lo_green) AND abs(bs.lo_green) < 1e15 THEN CAST(CAST(bs.lo_green AS BIGINT) AS VARCHAR) ELSE CAST(bs.lo_green AS VARCHAR) END || '–' || CASE WHEN bs.hi_green IS NULL THEN '?' WHEN bs.hi_green = round(bs.hi_green) AND abs(bs.hi_green) < 1e15 THEN CAST(CAST(bs.hi_green AS BIGINT) AS VARCHAR) ELSE CAST(bs.hi_green AS VARCHAR) END
        ELSE c.status || ': ' || CASE WHEN c.basis_value IS NULL THEN '?' WHEN CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END IS NULL OR c.basis_value = CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END OR c.basis_value = round(c.basis_value) THEN CASE WHEN c.basis_value IS NULL THEN '?' WHEN c.basis_value = round(c.basis_value) AND abs(c.basis_value) < 1e15 THEN CAST(CAST(c.basis_value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.basis_value, m.decimals) AS VARCHAR) END WHEN CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END IS NULL THEN CAST(c.basis_value AS VARCHAR) ELSE CAST(round(c.basis_value, CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE WHEN abs(c.basis_value - bs.lo_green) < abs(c.basis_value - bs.hi_green) THEN bs.lo_green ELSE bs.hi_green END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END) AS VARCHAR) END || m.basis_label || ' outside the green range '
          || CASE WHEN bs.lo_green IS NULL THEN '?' WHEN bs.lo_green = round(bs.lo_green) AND abs(bs.lo_green) < 1e15 THEN CAST(CAST(bs.lo_green AS BIGINT) AS VARCHAR) ELSE CAST(bs.lo_green AS VARCHAR) END || '–' || CASE WHEN bs.hi_green IS NULL THEN '?' WHEN bs.hi_green = round(bs.hi_green) AND abs(bs.hi_green) < 1e15 THEN CAST(CAST(bs.hi_green AS BIGINT) AS VARCHAR) ELSE CAST(bs.hi_green AS VARCHAR) END END ELSE CASE WHEN c.severity = 0 THEN 'green: ' || CASE WHEN c.basis_value IS NULL THEN '?' WHEN coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) IS NULL OR c.basis_value = coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) OR c.basis_value = round(c.basis_value) THEN CASE WHEN c.basis_value IS NULL THEN '?' WHEN c.basis_value = round(c.basis_value) AND abs(c.basis_value) < 1e15 THEN CAST(CAST(c.basis_value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.basis_value, m.decimals) AS VARCHAR) END WHEN CASE WHEN round(c.basis_value, m.decimals + 0) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 6) THEN m.decimals + 6 ELSE NULL END IS NULL THEN CAST(c.basis_value AS VARCHAR) ELSE CAST(round(c.basis_value, CASE WHEN round(c.basis_value, m.decimals + 0) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red), m.decimals + 6) THEN m.decimals + 6 ELSE NULL END) AS VARCHAR) END || m.basis_label ||
          coalesce(CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' < ' ELSE ' ≤ ' END
        ELSE CASE WHEN bs.inclusive THEN ' > ' ELSE ' ≥ ' END END || CASE WHEN coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) IS NULL THEN '?' WHEN coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) = round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red)) AND abs(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red)) < 1e15 THEN CAST(CAST(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) AS BIGINT) AS VARCHAR) ELSE CAST(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) AS VARCHAR) END || ' (' || CASE WHEN bs.c_blue IS NOT NULL THEN 'blue' WHEN bs.c_yellow IS NOT NULL THEN 'yellow'
        WHEN bs.c_orange IS NOT NULL THEN 'orange' ELSE 'red' END || CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' from ' ELSE ' above ' END
        ELSE CASE WHEN bs.inclusive THEN ' at or below ' ELSE ' below ' END END || CASE WHEN coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) IS NULL THEN '?' WHEN coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) = round(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red)) AND abs(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red)) < 1e15 THEN CAST(CAST(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) AS BIGINT) AS VARCHAR) ELSE CAST(coalesce(bs.c_blue, bs.c_yellow, bs.c_orange, bs.c_red) AS VARCHAR) END || ')', '')
        ELSE c.status || ': ' || CASE WHEN c.basis_value IS NULL THEN '?' WHEN CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END IS NULL OR c.basis_value = CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END OR c.basis_value = round(c.basis_value) THEN CASE WHEN c.basis_value IS NULL THEN '?' WHEN c.basis_value = round(c.basis_value) AND abs(c.basis_value) < 1e15 THEN CAST(CAST(c.basis_value AS BIGINT) AS VARCHAR) ELSE CAST(round(c.basis_value, m.decimals) AS VARCHAR) END WHEN CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END IS NULL THEN CAST(c.basis_value AS VARCHAR) ELSE CAST(round(c.basis_value, CASE WHEN round(c.basis_value, m.decimals + 0) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 0) THEN m.decimals + 0 WHEN round(c.basis_value, m.decimals + 1) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 1) THEN m.decimals + 1 WHEN round(c.basis_value, m.decimals + 2) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 2) THEN m.decimals + 2 WHEN round(c.basis_value, m.decimals + 3) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 3) THEN m.decimals + 3 WHEN round(c.basis_value, m.decimals + 4) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 4) THEN m.decimals + 4 WHEN round(c.basis_value, m.decimals + 5) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 5) THEN m.decimals + 5 WHEN round(c.basis_value, m.decimals + 6) <> round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END, m.decimals + 6) THEN m.decimals + 6 ELSE NULL END) AS VARCHAR) END || m.basis_label || CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' ≥ ' ELSE ' > ' END
        ELSE CASE WHEN bs.inclusive THEN ' ≤ ' ELSE ' < ' END END || CASE WHEN CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END IS NULL THEN '?' WHEN CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END = round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END) AND abs(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END) < 1e15 THEN CAST(CAST(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END AS BIGINT) AS VARCHAR) ELSE CAST(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END AS VARCHAR) END
          || ' (' || c.status || CASE WHEN m.direction = 'lower_is_better' THEN CASE WHEN bs.inclusive THEN ' from ' ELSE ' above ' END
        ELSE CASE WHEN bs.inclusive THEN ' at or below ' ELSE ' below ' END END || CASE WHEN CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END IS NULL THEN '?' WHEN CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END = round(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END) AND abs(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END) < 1e15 THEN CAST(CAST(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END AS BIGINT) AS VARCHAR) ELSE CAST(CASE c.severity WHEN 1 THEN bs.c_blue WHEN 2 THEN bs.c_yellow WHEN 3 THEN bs.c_orange ELSE bs.c_red END AS VARCHAR) END || ')' END END || CASE WHEN m.for_periods > 1 AND c.severity > 0 THEN ' for ' || m.for_periods || ' ' ||
        CASE m.rgrain WHEN 'day' THEN 'days' WHEN '15min' THEN '15-minute periods' ELSE m.rgrain || 's' END
        || ' running' ELSE '' END
  END AS explanation
FROM cells c JOIN ck_ind m ON m.ikey = c.ikey LEFT JOIN ck_bandset bs ON bs.bs_id = c.bs_id
LEFT JOIN lab ON lab.ikey = c.ikey AND lab.area_key = c.area_key;

-- trends, days to breach, target forecasts
CREATE OR REPLACE TEMP TABLE t_forecast AS
WITH fc AS (  -- the cells that forecast
  SELECT c.ikey, c.area_key, c.value AS v0, c.status, c.severity, c.bs_id, c.period_start,
    c.target_value, c.target_due, coalesce(cu.cum, c.value) AS tv
  FROM t_classified c JOIN ck_ind m ON m.ikey = c.ikey
  LEFT JOIN t_cum cu ON cu.ikey = c.ikey AND cu.area_key = c.area_key AND m.target_method = 'cumulative'
  WHERE m.fc_window > 0 AND c.value IS NOT NULL AND isfinite(c.value) AND c.status <> 'stale'
),
pts AS (  -- the window's values of every series that forecasts (joined with its cell once summed)
  SELECT t.ikey, t.area_key, -CAST(t.k AS DOUBLE) AS x, t.v AS y
  FROM t_k t JOIN ck_ind m ON m.ikey = t.ikey
  WHERE t.k >= 0 AND t.k < m.fc_window AND t.v IS NOT NULL AND isfinite(t.v)
),
sums AS (
  SELECT ikey, area_key, count(*) AS n, fsum(x) AS sx, fsum(y) AS sy, fsum(x * x) AS sxx,
    fsum(x * y) AS sxy, fsum(y * y) AS syy
  FROM pts GROUP BY ikey, area_key
),
line AS (  -- least squares: slope b per period, fitted value now f0, residual variance s2, R²
  SELECT s.ikey, s.area_key, s.n, s.sx / s.n AS xbar, s.sxx - s.sx * s.sx / s.n AS cxx,
    s.sxy - s.sx * s.sy / s.n AS cxy, greatest(s.syy - s.sy * s.sy / s.n, 0) AS cyy, s.sy / s.n AS ybar
  FROM sums s JOIN ck_ind m ON m.ikey = s.ikey
  WHERE s.n >= m.fc_min_n AND s.sxx - s.sx * s.sx / s.n > 0
),
fit AS (
  SELECT f.*, l.n, l.xbar, l.cxx, l.cxy / l.cxx AS b,
    l.ybar - l.cxy / l.cxx * l.xbar AS f0,
    CASE WHEN l.cyy > 0 THEN least(1.0, l.cxy * l.cxy / (l.cxx * l.cyy)) ELSE 0.0 END AS r2,
    CASE WHEN l.n > 2 THEN greatest(l.cyy - l.cxy * l.cxy / l.cxx, 0) / (l.n - 2) ELSE 0.0 END AS s2
  FROM line l JOIN fc f ON f.ikey = l.ikey AND f.area_key = l.area_key
),
based AS (  -- the line in basis units (the bases that follow the value: absolute, share of target/limit)
  SELECT q.*, q.b1 - q.f0b AS bb, abs(q.se1 - q.f0b) AS seb FROM (
    SELECT f.*, sqrt(f.s2 / f.cxx) AS se_b,
      CASE m.basis WHEN 'absolute' THEN f.f0 WHEN 'percent_of_target' THEN f.f0 / NULLIF(m.target_value, 0) * 100 WHEN 'percent_of_limit' THEN f.f0 / NULLIF(m.limit_value, 0) * 100 END AS f0b,
      CASE m.basis WHEN 'absolute' THEN (f.f0 + f.b) WHEN 'percent_of_target' THEN (f.f0 + f.b) / NULLIF(m.target_value, 0) * 100 WHEN 'percent_of_limit' THEN (f.f0 + f.b) / NULLIF(m.limit_value, 0) * 100 END AS b1,
      CASE m.basis WHEN 'absolute' THEN (f.f0 + sqrt(f.s2 / f.cxx)) WHEN 'percent_of_target' THEN (f.f0 + sqrt(f.s2 / f.cxx)) / NULLIF(m.target_value, 0) * 100 WHEN 'percent_of_limit' THEN (f.f0 + sqrt(f.s2 / f.cxx)) / NULLIF(m.limit_value, 0) * 100 END AS se1,
      m.fc_min_r2, m.fc_horizon, m.direction, m.mid, m.rgrain
    FROM fit f JOIN ck_ind m ON m.ikey = f.ikey
  ) q
),
crossing AS (  -- each worse cut ahead, in the direction the line runs (band: away from the middle)
  SELECT f.ikey, f.area_key, e.sev_to,
    (e.edge - f.f0b) / f.bb AS x_at,
    (e.edge - f.f0b) / (f.bb + sign(f.bb) * 1.96 * f.seb) AS x_fast,
    CASE WHEN abs(f.bb) > 1.96 * f.seb THEN (e.edge - f.f0b) / (f.bb - sign(f.bb) * 1.96 * f.seb) END AS x_slow
  FROM based f JOIN ck_edge e ON e.bs_id = f.bs_id AND e.up = (f.bb > 0)
  WHERE f.status IN ('green', 'blue', 'yellow', 'orange', 'red') AND f.bb <> 0 AND f.r2 >= f.fc_min_r2 AND e.sev_to > f.severity
    AND (f.direction <> 'band' OR (f.bb > 0 AND f.f0b >= f.mid) OR (f.bb < 0 AND f.f0b <= f.mid))
),
soon AS (
  SELECT c.ikey, c.area_key, max(c.sev_to) AS sev_to,
    arg_max({'x_at': c.x_at, 'x_fast': c.x_fast, 'x_slow': c.x_slow}, c.sev_to) AS x
  FROM crossing c JOIN ck_ind m ON m.ikey = c.ikey
  WHERE c.x_at <= m.fc_horizon
  GROUP BY c.ikey, c.area_key
),
due AS (
  SELECT f.*, m.target_method, CASE m.rgrain WHEN 'day' THEN 30.4375 WHEN 'week' THEN 4.348214285714286 WHEN 'month' THEN 1.0 WHEN 'quarter' THEN 0.3333333333333333 WHEN 'year' THEN 0.08333333333333333 END AS ppm,
    greatest(0, CASE m.rgrain WHEN 'day' THEN date_diff('day', f.period_start, f.target_due) WHEN 'week' THEN date_diff('day', f.period_start, f.target_due) // 7 WHEN 'month' THEN date_diff('month', f.period_start, f.target_due) WHEN 'quarter' THEN date_diff('quarter', f.period_start, f.target_due) WHEN 'year' THEN date_diff('year', f.period_start, f.target_due) END) AS x_due
  FROM fit f JOIN ck_ind m ON m.ikey = f.ikey
  WHERE f.target_value IS NOT NULL AND f.target_due > DATE '2025-12-31'
),
tgt AS (  -- where the line takes a dated target by its due date
  SELECT d.ikey, d.area_key,
    CASE WHEN d.target_method = 'cumulative' THEN d.tv + d.x_due * d.f0 + d.b * d.x_due * (d.x_due + 1) / 2
         ELSE d.f0 + d.b * d.x_due END AS projected,
    CASE WHEN d.target_method = 'cumulative'
         THEN sqrt(d.x_due * d.s2 + d.x_due * d.x_due * d.s2 * (1.0 / d.n + pow(d.x_due / 2 - d.xbar, 2) / d.cxx))
         ELSE sqrt(d.s2 * (1 + 1.0 / d.n + pow(d.x_due - d.xbar, 2) / d.cxx)) END AS se,
    (d.target_value - d.tv) / (date_diff('day', DATE '2025-12-31', d.target_due) / 30.4375) AS pace_needed,
    CASE WHEN d.target_method = 'cumulative' THEN d.f0 ELSE d.b END * d.ppm AS pace
  FROM due d
),
ahead AS (
  SELECT s.ikey, s.area_key, s.sev_to, greatest(1, ceil(s.x.x_at)) AS p_at,
    least(greatest(1, ceil(s.x.x_fast)), greatest(1, ceil(s.x.x_at))) AS p_low,
    CASE WHEN s.x.x_slow IS NOT NULL THEN greatest(ceil(s.x.x_slow), greatest(1, ceil(s.x.x_at))) END AS p_high
  FROM soon s
)
SELECT f.ikey, f.area_key,
  ['green', 'blue', 'yellow', 'orange', 'red'][s.sev_to + 1] AS forecast_status,
  CAST(s.p_at AS INTEGER) AS forecast_periods,
  CASE WHEN s.p_at IS NOT NULL THEN CAST(CASE f.rgrain WHEN 'day' THEN f.period_start + to_days(CAST(s.p_at AS INTEGER)) WHEN 'week' THEN f.period_start + to_weeks(CAST(s.p_at AS INTEGER)) WHEN 'month' THEN f.period_start + to_months(CAST(s.p_at AS INTEGER)) WHEN 'quarter' THEN f.period_start + to_months(3 * CAST(s.p_at AS INTEGER)) WHEN 'year' THEN f.period_start + to_years(CAST(s.p_at AS INTEGER)) END AS DATE) END AS forecast_date,
  CAST(s.p_low AS INTEGER) AS forecast_periods_low,
  CAST(s.p_high AS INTEGER) AS forecast_periods_high,
  f.b AS forecast_slope, f.r2 AS forecast_r2, CASE WHEN bl.scale > 0 THEN (f.v0 - bl.med) / bl.scale WHEN f.v0 = bl.med THEN 0.0 END AS anomaly_score,
  CASE WHEN t.projected IS NULL THEN NULL
    WHEN CASE WHEN m.direction = 'lower_is_better' THEN t.projected + 1.96 * t.se <= f.target_value
              ELSE t.projected - 1.96 * t.se >= f.target_value END THEN 'will_meet'
    WHEN CASE WHEN m.direction = 'lower_is_better' THEN t.projected - 1.96 * t.se > f.target_value
              ELSE t.projected + 1.96 * t.se < f.target_value END THEN 'will_miss'
    ELSE 'at_risk' END AS target_forecast,
  t.projected AS target_projected, t.pace_needed AS target_pace_needed, t.pace AS target_pace
FROM based f JOIN ck_ind m ON m.ikey = f.ikey
LEFT JOIN ahead s ON s.ikey = f.ikey AND s.area_key = f.area_key
LEFT JOIN t_baseline bl ON bl.ikey = f.ikey AND bl.area_key = f.area_key
  AND bl.k = 0
LEFT JOIN tgt t ON t.ikey = f.ikey AND t.area_key = f.area_key;

-- indices table
CREATE OR REPLACE TEMP TABLE t_index (index_id TEXT, area_key INTEGER, level TEXT, score DOUBLE,
  coverage DOUBLE, capped BOOLEAN, components_used INTEGER, components_total INTEGER, bs_id INTEGER,
  severity TINYINT, relative_alone BOOLEAN);

-- indices, depth 1
INSERT INTO t_index
WITH comp AS (
  SELECT k.index_id, k.weight, k.method, k.low, k.high, c.area_key, c.level, c.value, c.severity,
         m.direction, m.target_value, m.tier,
         min(c.value) OVER w AS vmin, max(c.value) OVER w AS vmax, favg(c.value) OVER w AS vmean,
         stddev_pop(c.value) OVER w AS vsd, count(c.value) OVER w AS peers
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = 1
  JOIN t_classified c ON c.ikey = k.ikey AND NOT k.ref_index
  JOIN ck_ind m ON m.ikey = c.ikey
  WINDOW w AS (PARTITION BY k.index_id, k.ikey, c.level ORDER BY c.area_key
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  UNION ALL
  SELECT k.index_id, k.weight, 'raw' AS method, NULL, NULL, i.area_key, i.level, i.score, i.severity,
         'higher_is_better', NULL, 'guidance', NULL, NULL, NULL, NULL, NULL
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = 1
  JOIN t_index i ON i.index_id = k.ref AND k.ref_index
),
scored AS (
  SELECT p.*, p.method IN ('min_max', 'z_score') AND p.peers < 3 AS alone,
    CASE WHEN p.method = 'raw' THEN p.value
    WHEN p.severity IS NULL OR p.value IS NULL THEN NULL
    -- an area scored against fewer than MIN_RELATIVE_AREAS at its level is not scored (a z-score of one area is not 100)
    WHEN p.method IN ('min_max', 'z_score') AND p.peers < 3 THEN NULL
    ELSE CASE p.method
      WHEN 'colour_score' THEN CASE p.severity WHEN 0 THEN 100.0 WHEN 1 THEN 80.0 WHEN 2 THEN 60.0 WHEN 3 THEN 40.0 WHEN 4 THEN 20.0 END
      WHEN 'goalposts' THEN greatest(0.0, least(100.0, (p.value - p.low) / NULLIF(p.high - p.low, 0) * 100))
      WHEN 'distance_to_target' THEN CASE WHEN p.direction = 'lower_is_better'
            THEN least(100.0, p.target_value / NULLIF(p.value, 0) * 100)
            ELSE least(100.0, p.value / NULLIF(p.target_value, 0) * 100) END
      WHEN 'min_max' THEN CASE WHEN p.vmax = p.vmin THEN 100.0 WHEN p.direction = 'lower_is_better'
            THEN (p.vmax - p.value) / (p.vmax - p.vmin) * 100 ELSE (p.value - p.vmin) / (p.vmax - p.vmin) * 100 END
      WHEN 'z_score' THEN greatest(0.0, least(100.0, 50 + 10 * CASE WHEN p.direction = 'lower_is_better'
            THEN -(p.value - p.vmean) ELSE (p.value - p.vmean) END / NULLIF(p.vsd, 0)))
    END END AS s FROM comp p
),
agg AS (
  SELECT s.index_id, s.area_key, any_value(s.level) AS level,
    fsum(s.weight) FILTER (WHERE s.s IS NOT NULL) AS w_used,
    count(*) FILTER (WHERE s.s IS NOT NULL) AS n_used,
    fsum(s.weight * s.s) FILTER (WHERE s.s IS NOT NULL) AS ws,
    fsum(s.weight * ln(greatest(s.s, 1.0))) FILTER (WHERE s.s IS NOT NULL) AS wl,
    bool_or(s.tier = 'bottom_line' AND s.severity = 4) AS red_bottom_line,
    bool_or(s.alone) AS relative_alone  -- some component had too few areas to be scored against
  FROM scored s GROUP BY s.index_id, s.area_key
),
tot AS (SELECT index_id, fsum(weight) AS w_total, count(*) AS n_total FROM ck_component GROUP BY index_id)
SELECT a.index_id, a.area_key, a.level,
  CASE WHEN coalesce(a.w_used, 0) / t.w_total < x.min_coverage THEN NULL
    WHEN x.cap_on_red IS NOT NULL AND a.red_bottom_line
      THEN least(x.cap_on_red, CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END)
    ELSE CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END END AS score,
  coalesce(a.w_used, 0) / t.w_total AS coverage,
  coalesce(x.cap_on_red IS NOT NULL AND a.red_bottom_line AND
    (CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END) > x.cap_on_red, false) AS capped,
  a.n_used::INTEGER AS components_used, t.n_total::INTEGER AS components_total, x.bs_id,
  NULL::TINYINT AS severity, coalesce(a.relative_alone, false) AS relative_alone
FROM agg a JOIN ck_index x ON x.index_id = a.index_id JOIN tot t ON t.index_id = a.index_id
WHERE (a.level = 'city' AND x.lvl_city) OR (a.level = 'district' AND x.lvl_district) OR (a.level = 'street' AND x.lvl_street);

-- index colours, depth 1
UPDATE t_index SET severity = q.sev
FROM (
  SELECT t.index_id, t.area_key, CASE WHEN x.colour_by = 'quintile' THEN
      CASE WHEN count(*) OVER p < 3 THEN NULL
        ELSE least(4, floor(percent_rank() OVER (p ORDER BY t.score DESC) * 5)) END
    ELSE (CASE WHEN t.score IS NULL OR isnan(t.score) THEN NULL
  WHEN bs.direction = 'lower_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_red ELSE t.score > bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_orange ELSE t.score > bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_yellow ELSE t.score > bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_blue ELSE t.score > bs.c_blue END) THEN 1 ELSE 0 END
  WHEN bs.direction = 'higher_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_red ELSE t.score < bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_orange ELSE t.score < bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_yellow ELSE t.score < bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_blue ELSE t.score < bs.c_blue END) THEN 1 ELSE 0 END
  ELSE CASE WHEN t.score BETWEEN bs.lo_green AND bs.hi_green THEN 0 WHEN t.score BETWEEN bs.lo_blue AND bs.hi_blue THEN 1 WHEN t.score BETWEEN bs.lo_yellow AND bs.hi_yellow THEN 2 WHEN t.score BETWEEN bs.lo_orange AND bs.hi_orange THEN 3 ELSE 4 END END) END::TINYINT AS sev
  FROM t_index t JOIN ck_index x ON x.index_id = t.index_id JOIN ck_bandset bs ON bs.bs_id = t.bs_id
  WHERE t.score IS NOT NULL
  WINDOW p AS (PARTITION BY t.index_id, t.level)
) q
WHERE q.index_id = t_index.index_id AND q.area_key = t_index.area_key
  AND t_index.severity IS NULL AND t_index.score IS NOT NULL;

-- indices, depth 2
INSERT INTO t_index
WITH comp AS (
  SELECT k.index_id, k.weight, k.method, k.low, k.high, c.area_key, c.level, c.value, c.severity,
         m.direction, m.target_value, m.tier,
         min(c.value) OVER w AS vmin, max(c.value) OVER w AS vmax, favg(c.value) OVER w AS vmean,
         stddev_pop(c.value) OVER w AS vsd, count(c.value) OVER w AS peers
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = 2
  JOIN t_classified c ON c.ikey = k.ikey AND NOT k.ref_index
  JOIN ck_ind m ON m.ikey = c.ikey
  WINDOW w AS (PARTITION BY k.index_id, k.ikey, c.level ORDER BY c.area_key
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
  UNION ALL
  SELECT k.index_id, k.weight, 'raw' AS method, NULL, NULL, i.area_key, i.level, i.score, i.severity,
         'higher_is_better', NULL, 'guidance', NULL, NULL, NULL, NULL, NULL
  FROM ck_component k JOIN ck_index x ON x.index_id = k.index_id AND x.depth = 2
  JOIN t_index i ON i.index_id = k.ref AND k.ref_index
),
scored AS (
  SELECT p.*, p.method IN ('min_max', 'z_score') AND p.peers < 3 AS alone,
    CASE WHEN p.method = 'raw' THEN p.value
    WHEN p.severity IS NULL OR p.value IS NULL THEN NULL
    -- an area scored against fewer than MIN_RELATIVE_AREAS at its level is not scored (a z-score of one area is not 100)
    WHEN p.method IN ('min_max', 'z_score') AND p.peers < 3 THEN NULL
    ELSE CASE p.method
      WHEN 'colour_score' THEN CASE p.severity WHEN 0 THEN 100.0 WHEN 1 THEN 80.0 WHEN 2 THEN 60.0 WHEN 3 THEN 40.0 WHEN 4 THEN 20.0 END
      WHEN 'goalposts' THEN greatest(0.0, least(100.0, (p.value - p.low) / NULLIF(p.high - p.low, 0) * 100))
      WHEN 'distance_to_target' THEN CASE WHEN p.direction = 'lower_is_better'
            THEN least(100.0, p.target_value / NULLIF(p.value, 0) * 100)
            ELSE least(100.0, p.value / NULLIF(p.target_value, 0) * 100) END
      WHEN 'min_max' THEN CASE WHEN p.vmax = p.vmin THEN 100.0 WHEN p.direction = 'lower_is_better'
            THEN (p.vmax - p.value) / (p.vmax - p.vmin) * 100 ELSE (p.value - p.vmin) / (p.vmax - p.vmin) * 100 END
      WHEN 'z_score' THEN greatest(0.0, least(100.0, 50 + 10 * CASE WHEN p.direction = 'lower_is_better'
            THEN -(p.value - p.vmean) ELSE (p.value - p.vmean) END / NULLIF(p.vsd, 0)))
    END END AS s FROM comp p
),
agg AS (
  SELECT s.index_id, s.area_key, any_value(s.level) AS level,
    fsum(s.weight) FILTER (WHERE s.s IS NOT NULL) AS w_used,
    count(*) FILTER (WHERE s.s IS NOT NULL) AS n_used,
    fsum(s.weight * s.s) FILTER (WHERE s.s IS NOT NULL) AS ws,
    fsum(s.weight * ln(greatest(s.s, 1.0))) FILTER (WHERE s.s IS NOT NULL) AS wl,
    bool_or(s.tier = 'bottom_line' AND s.severity = 4) AS red_bottom_line,
    bool_or(s.alone) AS relative_alone  -- some component had too few areas to be scored against
  FROM scored s GROUP BY s.index_id, s.area_key
),
tot AS (SELECT index_id, fsum(weight) AS w_total, count(*) AS n_total FROM ck_component GROUP BY index_id)
SELECT a.index_id, a.area_key, a.level,
  CASE WHEN coalesce(a.w_used, 0) / t.w_total < x.min_coverage THEN NULL
    WHEN x.cap_on_red IS NOT NULL AND a.red_bottom_line
      THEN least(x.cap_on_red, CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END)
    ELSE CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END END AS score,
  coalesce(a.w_used, 0) / t.w_total AS coverage,
  coalesce(x.cap_on_red IS NOT NULL AND a.red_bottom_line AND
    (CASE x.aggregation WHEN 'geometric' THEN exp(a.wl / a.w_used) ELSE a.ws / a.w_used END) > x.cap_on_red, false) AS capped,
  a.n_used::INTEGER AS components_used, t.n_total::INTEGER AS components_total, x.bs_id,
  NULL::TINYINT AS severity, coalesce(a.relative_alone, false) AS relative_alone
FROM agg a JOIN ck_index x ON x.index_id = a.index_id JOIN tot t ON t.index_id = a.index_id
WHERE (a.level = 'city' AND x.lvl_city) OR (a.level = 'district' AND x.lvl_district) OR (a.level = 'street' AND x.lvl_street);

-- index colours, depth 2
UPDATE t_index SET severity = q.sev
FROM (
  SELECT t.index_id, t.area_key, CASE WHEN x.colour_by = 'quintile' THEN
      CASE WHEN count(*) OVER p < 3 THEN NULL
        ELSE least(4, floor(percent_rank() OVER (p ORDER BY t.score DESC) * 5)) END
    ELSE (CASE WHEN t.score IS NULL OR isnan(t.score) THEN NULL
  WHEN bs.direction = 'lower_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_red ELSE t.score > bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_orange ELSE t.score > bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_yellow ELSE t.score > bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN t.score >= bs.c_blue ELSE t.score > bs.c_blue END) THEN 1 ELSE 0 END
  WHEN bs.direction = 'higher_is_better' THEN CASE WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_red ELSE t.score < bs.c_red END) THEN 4 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_orange ELSE t.score < bs.c_orange END) THEN 3 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_yellow ELSE t.score < bs.c_yellow END) THEN 2 WHEN (CASE WHEN bs.inclusive THEN t.score <= bs.c_blue ELSE t.score < bs.c_blue END) THEN 1 ELSE 0 END
  ELSE CASE WHEN t.score BETWEEN bs.lo_green AND bs.hi_green THEN 0 WHEN t.score BETWEEN bs.lo_blue AND bs.hi_blue THEN 1 WHEN t.score BETWEEN bs.lo_yellow AND bs.hi_yellow THEN 2 WHEN t.score BETWEEN bs.lo_orange AND bs.hi_orange THEN 3 ELSE 4 END END) END::TINYINT AS sev
  FROM t_index t JOIN ck_index x ON x.index_id = t.index_id JOIN ck_bandset bs ON bs.bs_id = t.bs_id
  WHERE t.score IS NOT NULL
  WINDOW p AS (PARTITION BY t.index_id, t.level)
) q
WHERE q.index_id = t_index.index_id AND q.area_key = t_index.area_key
  AND t_index.severity IS NULL AND t_index.score IS NOT NULL;

-- cells in the scorecard's order, with their forecasts
CREATE OR REPLACE TEMP TABLE t_cells AS
WITH ri AS (SELECT ikey, dense_rank() OVER (ORDER BY domain, indicator_id) AS r FROM ck_ind),
ra AS (SELECT area_key, dense_rank() OVER (ORDER BY area_id) AS r FROM t_area)
SELECT x.*, f.forecast_status, f.forecast_periods, f.forecast_date, f.forecast_periods_low, f.forecast_periods_high, f.forecast_slope, f.forecast_r2, f.anomaly_score, f.target_forecast, f.target_projected, f.target_pace_needed, f.target_pace, ri.r AS rank_indicator, ra.r AS rank_area
FROM t_classified x JOIN ri ON ri.ikey = x.ikey JOIN ra ON ra.area_key = x.area_key
LEFT JOIN t_forecast f ON f.ikey = x.ikey AND f.area_key = x.area_key
ORDER BY rank_indicator, level, rank_area;
