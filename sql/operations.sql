-- Persisted runs, views for BI tools, retention (answered by the mock)
SET client_min_messages = warning;
SET ctr_dist.ad = 'Premium fitness subscription - first month free';

SELECT ctr_dist.run('personas', 50, label => 'nightly') AS run_id \gset
SELECT label, relation, ad, platform, batch_size, providers, status, personas, clicks > 0 AS has_clicks,
       null_count, tokens_in, cost_usd, error IS NULL AS no_error, finished_at >= started_at AS timed,
       settings ? 'ctr_dist.providers' AS has_settings, settings::text !~ 'api_key' AS no_keys
  FROM ctr_dist.runs WHERE id = :run_id;

-- the stored rows are the returned ones
SELECT count(*) AS differing
  FROM ctr_dist.predictions s
  FULL JOIN ctr_predict('personas', 50) r USING (ord)
 WHERE s.run_id IS DISTINCT FROM :run_id
    OR (s.persona_key, s.click, s.provider, s.model) IS DISTINCT FROM (r.persona_key, r.click, r.provider, r.model);
SELECT clicks = (SELECT sum(click) FROM ctr_dist.predictions WHERE run_id = :run_id) AS clicks_match,
       ctr = (SELECT avg(click) FROM ctr_dist.predictions WHERE run_id = :run_id) AS ctr_match
  FROM ctr_dist.runs WHERE id = :run_id;

-- per provider totals
SELECT provider, model, batches, requests, retries, failovers, tokens_in, cost_usd
  FROM ctr_dist.run_providers WHERE run_id = :run_id;

-- views
SELECT label, status, personas, ctr = (SELECT round(ctr, 4) FROM ctr_dist.runs WHERE id = :run_id) AS ctr_ok,
       seconds >= 0 AS timed, cost_per_1000
  FROM ctr_dist.run_summary WHERE run_id = :run_id;
SELECT provider, model, personas FROM ctr_dist.ctr_by_provider WHERE run_id = :run_id;
SELECT ctr_dist.run('personas', 100, ad => 'Retirement planning webinar', label => 'nightly') AS second_id \gset
SELECT ctr_dist.run('personas', 100, ad => 'Gaming laptop', label => 'weekly') AS third_id \gset
SELECT label, run_id = :second_id OR run_id = :third_id AS latest FROM ctr_dist.latest_runs ORDER BY label;

-- CTR by persona segment, joining predictions back to the personas on the key
SELECT CASE WHEN p.age < 35 THEN 'under 35' ELSE '35 and over' END AS segment,
       count(*) AS personas, round(avg(s.click), 2) BETWEEN 0 AND 1 AS ctr_ok
  FROM ctr_dist.predictions s JOIN personas p ON p.id::text = s.persona_key
 WHERE s.run_id = :run_id AND p.age IS NOT NULL
 GROUP BY 1 ORDER BY 1;

-- bad input raises and records nothing
SELECT count(*) AS runs_before FROM ctr_dist.runs \gset
\set VERBOSITY sqlstate
SELECT ctr_dist.run('personas', 0);
SELECT ctr_dist.run('personas', 50, providers => '{chatgpt}');
\set VERBOSITY default
SELECT count(*) = :runs_before AS nothing_recorded FROM ctr_dist.runs;

-- EXECUTE is not PUBLIC
SELECT has_function_privilege('public', 'ctr_dist.run(regclass, integer, text, text, text[], text)', 'EXECUTE') AS public_can_run;

-- retention
UPDATE ctr_dist.runs SET started_at = started_at - interval '40 days' WHERE id = :run_id;
SELECT ctr_dist.purge_runs('30 days') AS purged;
SELECT count(*) AS left_predictions FROM ctr_dist.predictions WHERE run_id = :run_id;

-- the last call's totals: a call that failed on bad input leaves none
SELECT count(*) AS after_bad_input FROM ctr_dist.last_call_stats();
SELECT count(*) FROM ctr_predict('personas', 100, providers => '{mock}');
SELECT provider, model, batches FROM ctr_dist.last_call_stats();

-- provider_stats and progress read shared memory (this suite preloads ctr_dist)
SELECT count(*) AS providers FROM ctr_dist.provider_stats;
SELECT count(*) AS running FROM ctr_dist.progress;
