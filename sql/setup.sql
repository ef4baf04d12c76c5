-- The shipped sample personas and the extension, shared by the other tests
\set QUIET on
\i test/sample_personas.sql
\set QUIET off
CREATE EXTENSION ctr_dist;
SELECT count(*) AS personas FROM personas;
