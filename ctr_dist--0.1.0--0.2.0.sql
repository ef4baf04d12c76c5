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
-- ctr_dist.progress shows the calls of the database it is read in
-- ---------------------------------------------------------------------
COMMENT ON VIEW ctr_dist.progress IS 'running ctr_predict calls in this database: personas and batches done, elapsed, estimated time left';
