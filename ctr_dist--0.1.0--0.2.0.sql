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
