-- make demo: the main job on the shipped sample personas
\set QUIET on
\i test/sample_personas.sql
CREATE EXTENSION ctr_dist;
\set QUIET off
\pset footer off

SET ctr_dist.ad = 'Premium fitness subscription - first month free';
SET ctr_dist.platform = 'facebook';

\echo
\echo '== Predictions for the 1,200 sample personas (first 10 shown)'
CREATE TEMP TABLE predictions AS SELECT * FROM ctr_predict('personas', 50);
SELECT * FROM predictions ORDER BY ord LIMIT 10;

\echo '== CTR'
SELECT count(*) AS personas, sum(click) AS clicks, round(avg(click), 3) AS ctr
  FROM predictions;

\echo '== CTR by age band (joined back on the key)'
SELECT CASE WHEN p.age < 25 THEN '18-24' WHEN p.age < 35 THEN '25-34'
            WHEN p.age < 50 THEN '35-49' WHEN p.age < 65 THEN '50-64'
            WHEN p.age IS NULL THEN 'unknown' ELSE '65+' END AS age_band,
       count(*) AS personas, round(avg(r.click), 3) AS ctr
  FROM personas p JOIN predictions r ON p.id::text = r.persona_key
 GROUP BY 1 ORDER BY 1;

\echo '== Batches per provider'
SELECT provider, model, count(*) AS personas, count(DISTINCT (ord - 1) / 50) AS batches
  FROM predictions GROUP BY 1, 2 ORDER BY 1;
