/* ctr_dist--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ctr_dist" to load this file. \quit

CREATE SCHEMA ctr_dist;

CREATE FUNCTION ctr_predict(personas   regclass,
                            batch_size integer DEFAULT 50,
                            ad         text    DEFAULT NULL,
                            platform   text    DEFAULT NULL,
                            providers  text[]  DEFAULT NULL)
RETURNS TABLE (ord         bigint,
               persona_key text,
               click       integer,
               provider    text,
               model       text)
AS 'MODULE_PATHNAME', 'ctr_predict'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) IS
'predict, for every persona of a relation, whether it would click the ad (0/1), asking LLM providers in parallel';

-- It spends money on paid APIs: nobody may call it until granted.
REVOKE EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) FROM PUBLIC;

CREATE FUNCTION ctr_dist.plan(batches    bigint,
                              providers  text[] DEFAULT NULL)
RETURNS TABLE (provider text, batches bigint)
AS 'MODULE_PATHNAME', 'ctr_dist_plan'
LANGUAGE C STABLE;

COMMENT ON FUNCTION ctr_dist.plan(bigint, text[]) IS
'how many of so many batches each provider would get, by the current weights (keys are not checked)';

GRANT USAGE ON SCHEMA ctr_dist TO PUBLIC;

-- ---------------------------------------------------------------------
-- Statistics and progress (shared memory; need shared_preload_libraries)
-- ---------------------------------------------------------------------

CREATE FUNCTION ctr_dist.provider_stats_internal(
    OUT provider text, OUT requests bigint, OUT answered bigint,
    OUT throttled bigint, OUT http_429 bigint, OUT transient_errors bigint,
    OUT bad_answers bigint, OUT fatal_errors bigint, OUT rejected bigint,
    OUT retries bigint, OUT failovers bigint,
    OUT tokens_in bigint, OUT tokens_out bigint, OUT cost_usd double precision,
    OUT latency_mean_ms double precision, OUT latency_p95_ms double precision,
    OUT stats_reset timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_provider_stats'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW ctr_dist.provider_stats AS
    SELECT * FROM ctr_dist.provider_stats_internal();

COMMENT ON VIEW ctr_dist.provider_stats IS
'per provider, since the last reset: requests, answers, each failure class, 429s, retries, failovers, tokens, cost and latency';

CREATE FUNCTION ctr_dist.provider_stats_reset()
RETURNS void
AS 'MODULE_PATHNAME', 'ctr_dist_provider_stats_reset'
LANGUAGE C VOLATILE;
REVOKE EXECUTE ON FUNCTION ctr_dist.provider_stats_reset() FROM PUBLIC;

CREATE FUNCTION ctr_dist.progress_internal(
    OUT pid integer, OUT relation regclass, OUT started_at timestamptz,
    OUT elapsed_s double precision, OUT personas_done bigint, OUT personas_total bigint,
    OUT batches_done bigint, OUT batches_total bigint, OUT batches_by_provider text,
    OUT estimated_left_s double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_progress'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW ctr_dist.progress AS
    SELECT * FROM ctr_dist.progress_internal();

COMMENT ON VIEW ctr_dist.progress IS 'running ctr_predict calls: personas and batches done, elapsed, estimated time left';

CREATE FUNCTION ctr_dist.last_call_stats(
    OUT provider text, OUT model text, OUT batches bigint, OUT requests bigint,
    OUT retries bigint, OUT failovers bigint, OUT tokens_in bigint, OUT tokens_out bigint,
    OUT cost_usd double precision, OUT seconds double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_last_call_stats'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION ctr_dist.last_call_stats() IS
'per provider totals of this session''s last ctr_predict call, also when it failed part way';

-- ---------------------------------------------------------------------
-- Persisted runs, for pg_cron and BI tools
-- ---------------------------------------------------------------------

CREATE TABLE ctr_dist.runs (
    id            bigserial PRIMARY KEY,
    label         text,
    relation      text        NOT NULL,
    ad            text        NOT NULL,
    platform      text        NOT NULL,
    batch_size    integer     NOT NULL,
    providers     text[]      NOT NULL,
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'over_budget')),
    started_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at   timestamptz,
    personas      bigint,
    clicks        bigint,
    ctr           numeric,
    null_count    bigint,
    tokens_in     bigint,
    tokens_out    bigint,
    cost_usd      numeric,
    error         text,
    settings      jsonb       NOT NULL DEFAULT '{}',
    run_by        name        NOT NULL DEFAULT current_user
);
CREATE INDEX runs_started_at_idx ON ctr_dist.runs (started_at);
CREATE INDEX runs_label_started_at_idx ON ctr_dist.runs (label, started_at);
COMMENT ON TABLE ctr_dist.runs IS 'one row per ctr_dist.run(): what was asked, how it ended, CTR, tokens and cost (never keys)';

CREATE TABLE ctr_dist.predictions (
    run_id      bigint  NOT NULL REFERENCES ctr_dist.runs ON DELETE CASCADE,
    ord         bigint  NOT NULL,
    persona_key text,
    click       integer,
    provider    text,
    model       text,
    PRIMARY KEY (run_id, ord)
);
COMMENT ON TABLE ctr_dist.predictions IS 'the rows ctr_predict returned for each run';

CREATE TABLE ctr_dist.run_providers (
    run_id      bigint  NOT NULL REFERENCES ctr_dist.runs ON DELETE CASCADE,
    provider    text    NOT NULL,
    model       text    NOT NULL,
    batches     bigint  NOT NULL,
    requests    bigint  NOT NULL,
    retries     bigint  NOT NULL,
    failovers   bigint  NOT NULL,
    tokens_in   bigint  NOT NULL,
    tokens_out  bigint  NOT NULL,
    cost_usd    numeric NOT NULL,
    seconds     double precision,
    PRIMARY KEY (run_id, provider)
);
COMMENT ON TABLE ctr_dist.run_providers IS 'per provider totals of each run';

CREATE FUNCTION ctr_dist.run(personas   regclass,
                             batch_size integer DEFAULT 50,
                             ad         text    DEFAULT NULL,
                             platform   text    DEFAULT NULL,
                             providers  text[]  DEFAULT NULL,
                             label      text    DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $run$
DECLARE
    v_run_id bigint;
    v_status text := 'succeeded';
    v_error  text;
    v_state  text;
BEGIN
    INSERT INTO ctr_dist.runs (label, relation, ad, platform, batch_size, providers, settings)
    VALUES (label, personas::text,
            coalesce(ad, current_setting('ctr_dist.ad')),
            coalesce(platform, current_setting('ctr_dist.platform')),
            coalesce(batch_size, 0),
            coalesce(providers, string_to_array(replace(current_setting('ctr_dist.providers'), ' ', ''), ',')),
            (SELECT coalesce(jsonb_object_agg(s.name, s.setting), '{}')
               FROM pg_settings s
              WHERE s.name LIKE 'ctr_dist.%' AND s.name NOT LIKE '%api_key'))
    RETURNING id INTO v_run_id;

    BEGIN
        INSERT INTO ctr_dist.predictions (run_id, ord, persona_key, click, provider, model)
        SELECT v_run_id, p.ord, p.persona_key, p.click, p.provider, p.model
          FROM @extschema@.ctr_predict(personas, batch_size, ad, platform, providers) p;
    EXCEPTION
        WHEN query_canceled THEN
            v_status := 'cancelled';
            v_error := SQLERRM;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
            -- bad input is the caller's to fix: no run is recorded
            IF v_state LIKE '22%' OR v_state LIKE '42%' THEN
                RAISE;
            END IF;
            v_status := CASE WHEN v_state = '53400' THEN 'over_budget' ELSE 'failed' END;
            v_error := SQLERRM;
    END;

    INSERT INTO ctr_dist.run_providers
    SELECT v_run_id, s.provider, s.model, s.batches, s.requests, s.retries, s.failovers,
           s.tokens_in, s.tokens_out, s.cost_usd::numeric, s.seconds
      FROM ctr_dist.last_call_stats() s;

    UPDATE ctr_dist.runs r
       SET status = v_status,
           error = v_error,
           finished_at = clock_timestamp(),
           personas = p.personas,
           clicks = p.clicks,
           ctr = p.ctr,
           null_count = p.nulls,
           tokens_in = t.tokens_in,
           tokens_out = t.tokens_out,
           cost_usd = t.cost_usd
      FROM (SELECT count(*) AS personas, sum(click) AS clicks, avg(click) AS ctr,
                   count(*) FILTER (WHERE click IS NULL) AS nulls
              FROM ctr_dist.predictions WHERE predictions.run_id = v_run_id) AS p,
           (SELECT coalesce(sum(rp.tokens_in), 0) AS tokens_in, coalesce(sum(rp.tokens_out), 0) AS tokens_out,
                   coalesce(sum(rp.cost_usd), 0) AS cost_usd
              FROM ctr_dist.run_providers rp WHERE rp.run_id = v_run_id) t
     WHERE r.id = v_run_id;

    IF v_status <> 'succeeded' THEN
        RAISE WARNING 'ctr_dist run % %: %', v_run_id, v_status, v_error;
    END IF;
    RETURN v_run_id;
END
$run$;

COMMENT ON FUNCTION ctr_dist.run(regclass, integer, text, text, text[], text) IS
'run ctr_predict and store it in ctr_dist.runs, ctr_dist.predictions and ctr_dist.run_providers; returns the run id';
REVOKE EXECUTE ON FUNCTION ctr_dist.run(regclass, integer, text, text, text[], text) FROM PUBLIC;

CREATE FUNCTION ctr_dist.purge_runs(older_than interval)
RETURNS bigint
LANGUAGE sql
AS $$
    WITH gone AS (
        DELETE FROM ctr_dist.runs
         WHERE started_at < clock_timestamp() - older_than AND status <> 'running'
        RETURNING 1)
    SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION ctr_dist.purge_runs(interval) IS 'delete finished runs (and their predictions) started longer ago than older_than';
REVOKE EXECUTE ON FUNCTION ctr_dist.purge_runs(interval) FROM PUBLIC;

-- views for BI tools

CREATE VIEW ctr_dist.run_summary AS
SELECT r.id AS run_id, r.label, r.relation, r.ad, r.platform, r.status,
       r.started_at, r.finished_at,
       extract(epoch FROM r.finished_at - r.started_at)::double precision AS seconds,
       r.personas, r.clicks, round(r.ctr, 4) AS ctr, r.null_count,
       r.tokens_in, r.tokens_out, round(r.cost_usd, 6) AS cost_usd,
       CASE WHEN r.personas > 0 THEN round(r.cost_usd * 1000 / r.personas, 6) END AS cost_per_1000
  FROM ctr_dist.runs r;
COMMENT ON VIEW ctr_dist.run_summary IS 'one row per run with its CTR, duration and cost per 1,000 predictions';

CREATE VIEW ctr_dist.ctr_by_provider AS
SELECT p.run_id, p.provider, p.model, count(*) AS personas, sum(p.click) AS clicks,
       round(avg(p.click), 4) AS ctr
  FROM ctr_dist.predictions p
 WHERE p.click IS NOT NULL
 GROUP BY p.run_id, p.provider, p.model;
COMMENT ON VIEW ctr_dist.ctr_by_provider IS 'CTR per provider and model in each run: do providers disagree?';

CREATE VIEW ctr_dist.latest_runs AS
SELECT DISTINCT ON (label) *
  FROM ctr_dist.run_summary
 WHERE status = 'succeeded'
 ORDER BY label, started_at DESC;
COMMENT ON VIEW ctr_dist.latest_runs IS 'the latest succeeded run of each label';

-- statistics hold no secrets: readable by all, like pg_stat_activity
GRANT SELECT ON ctr_dist.provider_stats, ctr_dist.progress TO PUBLIC;
