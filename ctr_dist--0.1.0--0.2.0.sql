/* ctr_dist--0.1.0--0.2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ctr_dist UPDATE TO '0.2.0'" to load this file. \quit

-- A fresh CREATE EXTENSION runs ctr_dist--0.1.0.sql and then this script,
-- so an installed 0.2.0 and an updated 0.1.0 are the same objects.
-- Each section below belongs to one change; keep them apart.

-- ---------------------------------------------------------------------
-- Stored runs survive pg_dump: they are user data, not extension objects
-- ---------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.runs', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.runs_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.predictions', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.run_providers', '');

-- ---------------------------------------------------------------------
-- The shared rate limiter, visible: every slot a call takes comes back
-- ---------------------------------------------------------------------
CREATE FUNCTION ctr_dist.rate_limits_internal(
    OUT provider text, OUT in_flight integer, OUT paused_until timestamptz,
    OUT learnt_rpm double precision)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_rate_limits'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW ctr_dist.rate_limits AS
    SELECT * FROM ctr_dist.rate_limits_internal();

COMMENT ON VIEW ctr_dist.rate_limits IS
'per provider, across all sessions (needs shared_preload_libraries): requests in flight now, until when the provider asked to pause, and the request rate learnt where no P_rpm is set (per minute)';

GRANT SELECT ON ctr_dist.rate_limits TO PUBLIC;

CREATE FUNCTION ctr_dist.forget_learnt_limits()
RETURNS void
AS 'MODULE_PATHNAME', 'ctr_dist_forget_learnt_limits'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION ctr_dist.forget_learnt_limits() IS
'forget the request limits learnt from 429s and headers, for every session; the next 429s teach them again';
REVOKE EXECUTE ON FUNCTION ctr_dist.forget_learnt_limits() FROM PUBLIC;

-- ---------------------------------------------------------------------
-- ctr_dist.run works in any session: without shared_preload_libraries, a
-- fresh session (a pg_cron job) has not loaded the library, and reading
-- current_setting('ctr_dist.platform') failed with "unrecognized
-- configuration parameter".  Same function, loads the library first.
-- ---------------------------------------------------------------------
CREATE OR REPLACE FUNCTION ctr_dist.run(personas   regclass,
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
    -- ctr_dist's settings exist only once its library is loaded: calling
    -- one of its C functions loads it, in a session that never did (a
    -- pg_cron job without shared_preload_libraries = 'ctr_dist')
    PERFORM ctr_dist.plan(0, ARRAY['mock']);

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

-- ---------------------------------------------------------------------
-- ctr_dist.progress shows the calls of the database it is read in
-- ---------------------------------------------------------------------
COMMENT ON VIEW ctr_dist.progress IS 'running ctr_predict calls in this database: personas and batches done, elapsed, estimated time left';

-- ---------------------------------------------------------------------
-- Extension-script hazards of 0.1.0 (its script is released and frozen,
-- so they are fixed here; self-contained, every name qualified)
-- ---------------------------------------------------------------------
-- Checked in ctr_dist--0.1.0.sql: every object is made with a plain CREATE
-- (no CREATE OR REPLACE, no IF NOT EXISTS: an object someone made first
-- makes CREATE EXTENSION fail instead of being adopted); CREATE SCHEMA
-- ctr_dist fails if the schema exists, so nobody else owns or can write
-- into it (PUBLIC gets USAGE only); ctr_dist.run pins search_path and
-- qualifies @extschema@.ctr_predict; views, defaults and constraints bind
-- their functions and operators when the script runs, under the
-- search_path CREATE EXTENSION sets (pg_catalog first).
--
-- The one hazard: ctr_dist.purge_runs is LANGUAGE sql without a search_path
-- of its own, so its clock_timestamp(), -, < and <> are looked up in the
-- caller's search_path each time it runs.  A caller whose path puts a
-- schema other roles can create in ahead of pg_catalog (a superuser's
-- pg_cron job, say) would run their function or operator with its rights.
ALTER FUNCTION ctr_dist.purge_runs(pg_catalog.interval)
    SET search_path = pg_catalog, pg_temp;

-- ---------------------------------------------------------------------
-- Comparing ads on the same personas: ctr_compare, stored comparisons
-- ---------------------------------------------------------------------
CREATE FUNCTION ctr_compare(personas   regclass,
                            ads        text[],
                            batch_size integer DEFAULT 50,
                            platform   text    DEFAULT NULL,
                            providers  text[]  DEFAULT NULL,
                            answer     text    DEFAULT 'click')
RETURNS TABLE (ad_no integer, ad text, personas bigint, answered bigint,
               ctr double precision, ctr_low double precision, ctr_high double precision,
               diff double precision, diff_low double precision, diff_high double precision,
               p_value double precision, cost_usd double precision)
AS 'MODULE_PATHNAME', 'ctr_compare'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION ctr_compare(regclass, text[], integer, text, text[], text) IS
'each ad on the same personas: CTR (or mean click probability) with its 95 % interval, and the paired difference from the first ad with its interval and p-value';

-- like ctr_predict, it spends money
REVOKE EXECUTE ON FUNCTION ctr_compare(regclass, text[], integer, text, text[], text) FROM PUBLIC;

CREATE FUNCTION ctr_dist.compare_answers(personas   regclass,
                                         ads        text[],
                                         batch_size integer DEFAULT 50,
                                         platform   text    DEFAULT NULL,
                                         providers  text[]  DEFAULT NULL,
                                         answer     text    DEFAULT 'click')
RETURNS TABLE (ad_no integer, ord bigint, persona_key text, answer integer,
               provider text, model text)
AS 'MODULE_PATHNAME', 'ctr_dist_compare_answers'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

COMMENT ON FUNCTION ctr_dist.compare_answers(regclass, text[], integer, text, text[], text) IS
'every answer of a comparison: one row per persona per ad (0/1, or 0..100 for probabilities)';
REVOKE EXECUTE ON FUNCTION ctr_dist.compare_answers(regclass, text[], integer, text, text[], text) FROM PUBLIC;

CREATE FUNCTION ctr_dist.last_comparison(
    OUT ad_no integer, OUT personas bigint, OUT answered bigint,
    OUT ctr double precision, OUT ctr_low double precision, OUT ctr_high double precision,
    OUT diff double precision, OUT diff_low double precision, OUT diff_high double precision,
    OUT p_value double precision, OUT p_holm double precision, OUT cost_usd double precision,
    OUT comparisons integer)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_last_comparison'
LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION ctr_dist.last_comparison() IS
'the summary of this session''s last comparison, with Holm-adjusted p-values and the number of comparisons made';

CREATE TABLE ctr_dist.comparisons (
    id            bigserial PRIMARY KEY,
    label         text,
    relation      text        NOT NULL,
    ads           text[]      NOT NULL,
    platform      text        NOT NULL,
    batch_size    integer     NOT NULL,
    providers     text[]      NOT NULL,
    answer        text        NOT NULL CHECK (answer IN ('click', 'probability')),
    status        text        NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'over_budget')),
    started_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at   timestamptz,
    personas      bigint,
    comparisons   integer,
    cost_usd      numeric,
    error         text,
    settings      jsonb       NOT NULL DEFAULT '{}',
    run_by        name        NOT NULL DEFAULT CURRENT_USER
);
CREATE INDEX comparisons_label_started_at_idx ON ctr_dist.comparisons (label, started_at);
COMMENT ON TABLE ctr_dist.comparisons IS 'one row per ctr_dist.compare_run(): what was compared, how it ended, its cost (never keys)';

CREATE TABLE ctr_dist.comparison_ads (
    comparison_id bigint  NOT NULL REFERENCES ctr_dist.comparisons ON DELETE CASCADE,
    ad_no         integer NOT NULL,
    ad            text    NOT NULL,
    personas      bigint  NOT NULL,
    answered      bigint  NOT NULL,
    ctr           double precision,
    ctr_low       double precision,
    ctr_high      double precision,
    diff          double precision,
    diff_low      double precision,
    diff_high     double precision,
    p_value       double precision,
    p_holm        double precision,
    cost_usd      double precision NOT NULL,
    PRIMARY KEY (comparison_id, ad_no)
);
COMMENT ON TABLE ctr_dist.comparison_ads IS 'per ad of each stored comparison: what ctr_compare returns, plus Holm-adjusted p-values';

CREATE TABLE ctr_dist.comparison_answers (
    comparison_id bigint  NOT NULL REFERENCES ctr_dist.comparisons ON DELETE CASCADE,
    ad_no         integer NOT NULL,
    ord           bigint  NOT NULL,
    persona_key   text,
    answer        integer,
    provider      text,
    model         text,
    PRIMARY KEY (comparison_id, ad_no, ord)
);
COMMENT ON TABLE ctr_dist.comparison_answers IS 'every answer of each stored comparison: join to the personas on persona_key for segments';

SELECT pg_catalog.pg_extension_config_dump('ctr_dist.comparisons', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.comparisons_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.comparison_ads', '');
SELECT pg_catalog.pg_extension_config_dump('ctr_dist.comparison_answers', '');

CREATE FUNCTION ctr_dist.compare_run(personas   regclass,
                                     ads        text[],
                                     batch_size integer DEFAULT 50,
                                     platform   text    DEFAULT NULL,
                                     providers  text[]  DEFAULT NULL,
                                     answer     text    DEFAULT 'click',
                                     label      text    DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $compare_run$
DECLARE
    v_id     bigint;
    v_status text := 'succeeded';
    v_error  text;
    v_state  text;
BEGIN
    -- the settings exist once the library is loaded (see ctr_dist.run)
    PERFORM ctr_dist.plan(0, ARRAY['mock']);

    INSERT INTO ctr_dist.comparisons (label, relation, ads, platform, batch_size, providers, answer, settings)
    VALUES (label, personas::text, coalesce(ads, '{}'),
            coalesce(platform, current_setting('ctr_dist.platform')),
            coalesce(batch_size, 0),
            coalesce(providers, string_to_array(replace(current_setting('ctr_dist.providers'), ' ', ''), ',')),
            coalesce(answer, 'click'),
            (SELECT coalesce(jsonb_object_agg(s.name, s.setting), '{}')
               FROM pg_settings s
              WHERE s.name LIKE 'ctr_dist.%' AND s.name NOT LIKE '%api_key%'))
    RETURNING id INTO v_id;

    BEGIN
        INSERT INTO ctr_dist.comparison_answers (comparison_id, ad_no, ord, persona_key, answer, provider, model)
        SELECT v_id, a.ad_no, a.ord, a.persona_key, a.answer, a.provider, a.model
          FROM ctr_dist.compare_answers(personas, ads, batch_size, platform, providers, answer) a;
        INSERT INTO ctr_dist.comparison_ads
        SELECT v_id, s.ad_no, ads[pg_catalog.array_lower(ads, 1) + s.ad_no - 1], s.personas, s.answered, s.ctr, s.ctr_low, s.ctr_high,
               s.diff, s.diff_low, s.diff_high, s.p_value, s.p_holm, s.cost_usd
          FROM ctr_dist.last_comparison() s;
    EXCEPTION
        WHEN query_canceled THEN
            v_status := 'cancelled';
            v_error := SQLERRM;
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE;
            -- bad input is the caller's to fix: nothing is recorded
            IF v_state LIKE '22%' OR v_state LIKE '42%' THEN
                RAISE;
            END IF;
            v_status := CASE WHEN v_state = '53400' THEN 'over_budget' ELSE 'failed' END;
            v_error := SQLERRM;
    END;

    UPDATE ctr_dist.comparisons c
       SET status = v_status,
           error = v_error,
           finished_at = clock_timestamp(),
           personas = (SELECT max(a.personas) FROM ctr_dist.comparison_ads a WHERE a.comparison_id = v_id),
           comparisons = (SELECT max(s.comparisons) FROM ctr_dist.last_comparison() s),
           cost_usd = (SELECT coalesce(sum(s.cost_usd), 0) FROM ctr_dist.last_call_stats() s)
     WHERE c.id = v_id;

    IF v_status <> 'succeeded' THEN
        RAISE WARNING 'ctr_dist comparison % %: %', v_id, v_status, v_error;
    END IF;
    RETURN v_id;
END
$compare_run$;

COMMENT ON FUNCTION ctr_dist.compare_run(regclass, text[], integer, text, text[], text, text) IS
'run a comparison and store it in ctr_dist.comparisons, comparison_ads and comparison_answers; returns its id';
REVOKE EXECUTE ON FUNCTION ctr_dist.compare_run(regclass, text[], integer, text, text[], text, text) FROM PUBLIC;

CREATE VIEW ctr_dist.comparison_summary AS
SELECT c.id AS comparison_id, c.label, c.relation, c.answer, c.status, c.started_at,
       a.ad_no, a.ad, a.personas, a.answered, a.ctr, a.ctr_low, a.ctr_high,
       a.diff, a.diff_low, a.diff_high, a.p_value, a.p_holm, c.comparisons, a.cost_usd
  FROM ctr_dist.comparisons c
  JOIN ctr_dist.comparison_ads a ON a.comparison_id = c.id;
COMMENT ON VIEW ctr_dist.comparison_summary IS 'one row per ad of each stored comparison, for BI tools';

-- ---------------------------------------------------------------------
-- Statistics for comparing ads (issue 16): src/inference.c, wrapped by
-- src/inference_sql.c.  The interval functions return exactly one row,
-- all NULL when an argument is NULL or there is no interval, so they are
-- not STRICT (a STRICT set-returning function returns no row at all).
-- ---------------------------------------------------------------------
CREATE FUNCTION ctr_dist.wilson(clicks bigint, n bigint, confidence float8 DEFAULT 0.95)
RETURNS TABLE (low float8, high float8)
AS 'MODULE_PATHNAME', 'ctr_dist_wilson'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1;

COMMENT ON FUNCTION ctr_dist.wilson(bigint, bigint, float8) IS
'Wilson score interval for the proportion clicks/n; NULL for n = 0';

CREATE FUNCTION ctr_dist.mcnemar_p(b bigint, c bigint)
RETURNS float8
AS 'MODULE_PATHNAME', 'ctr_dist_mcnemar_p'
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;

COMMENT ON FUNCTION ctr_dist.mcnemar_p(bigint, bigint) IS
'two-sided McNemar test on the discordant pairs b and c: exact binomial when b + c < 25, continuity-corrected chi-square otherwise';

CREATE FUNCTION ctr_dist.mcnemar_chisq(b bigint, c bigint, correct boolean DEFAULT true)
RETURNS float8
AS 'MODULE_PATHNAME', 'ctr_dist_mcnemar_chisq'
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;

COMMENT ON FUNCTION ctr_dist.mcnemar_chisq(bigint, bigint, boolean) IS
'McNemar''s chi-square statistic (b - c)^2 / (b + c), with Edwards'' continuity correction (|b - c| - 1)^2 / (b + c) unless correct is false';

CREATE FUNCTION ctr_dist.paired_diff_interval(a bigint, b bigint, c bigint, d bigint,
                                              confidence float8 DEFAULT 0.95)
RETURNS TABLE (diff float8, low float8, high float8)
AS 'MODULE_PATHNAME', 'ctr_dist_paired_diff_interval'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1;

COMMENT ON FUNCTION ctr_dist.paired_diff_interval(bigint, bigint, bigint, bigint, float8) IS
'difference (a+b)/n - (a+c)/n of paired proportions (a both, b first only, c second only, d neither) with Newcombe''s method 10 interval';

CREATE FUNCTION ctr_dist.mean_interval(n bigint, mean float8, sd float8,
                                       confidence float8 DEFAULT 0.95)
RETURNS TABLE (low float8, high float8)
AS 'MODULE_PATHNAME', 'ctr_dist_mean_interval'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1;

COMMENT ON FUNCTION ctr_dist.mean_interval(bigint, float8, float8, float8) IS
't interval for a mean of n values with sample standard deviation sd; NULL for n < 2';

CREATE FUNCTION ctr_dist.paired_t(n bigint, mean_diff float8, sd_diff float8,
                                  confidence float8 DEFAULT 0.95)
RETURNS TABLE (low float8, high float8, p_value float8)
AS 'MODULE_PATHNAME', 'ctr_dist_paired_t'
LANGUAGE C IMMUTABLE PARALLEL SAFE ROWS 1;

COMMENT ON FUNCTION ctr_dist.paired_t(bigint, float8, float8, float8) IS
'paired t test on n per-unit differences: t interval for the mean difference and the two-sided p-value; NULL for n < 2';

CREATE FUNCTION ctr_dist.holm(p float8[])
RETURNS float8[]
AS 'MODULE_PATHNAME', 'ctr_dist_holm'
LANGUAGE C IMMUTABLE PARALLEL SAFE STRICT;

COMMENT ON FUNCTION ctr_dist.holm(float8[]) IS
'Holm''s step-down adjustment of p-values; NULL elements stay NULL and are not counted as comparisons';
