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
    OUT provider text, OUT in_flight integer, OUT paused_until timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'ctr_dist_rate_limits'
LANGUAGE C VOLATILE STRICT;

CREATE VIEW ctr_dist.rate_limits AS
    SELECT * FROM ctr_dist.rate_limits_internal();

COMMENT ON VIEW ctr_dist.rate_limits IS
'per provider, across all sessions (needs shared_preload_libraries): requests in flight now, and until when the provider asked to pause';

GRANT SELECT ON ctr_dist.rate_limits TO PUBLIC;

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
