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
