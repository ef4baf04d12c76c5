-- Keys are hidden, base URLs are superuser-only, and EXECUTE is not PUBLIC
SET client_min_messages = warning;
-- (normally preloaded; a fresh session loads it on first use)
LOAD 'ctr_dist';
-- preloaded, a key setting comes only from postgresql.conf or ALTER SYSTEM, at
-- server start: not SET, not stored per role or database (pg_db_role_setting and
-- pg_proc are readable by every role); no message shows the value
SET ctr_dist.openai_api_key = 'sk-test-superuser-only';
ALTER ROLE CURRENT_USER SET ctr_dist.openai_api_key = 'sk-test-superuser-only';
CREATE FUNCTION key_trick() RETURNS int LANGUAGE sql SET ctr_dist.openai_api_key = 'sk-test-superuser-only' AS 'SELECT 1';
ALTER SYSTEM SET ctr_dist.openai_api_key = E'sk-test-\tsuperuser-only';
-- a key file that cannot be read is an error naming the file and the setting
SET ctr_dist.openai_api_key_file = '/nonexistent/openai.key';
SELECT count(*) FROM ctr_predict('personas', 50, ad => 'x', providers => '{openai}');
CREATE ROLE ctr_analyst LOGIN;
GRANT SELECT ON personas TO ctr_analyst;

-- EXECUTE on ctr_predict is revoked from PUBLIC
SELECT has_function_privilege('ctr_analyst', 'ctr_predict(regclass, integer, text, text, text[])', 'EXECUTE') AS analyst_can_execute;
SELECT has_function_privilege('public', 'ctr_predict(regclass, integer, text, text, text[])', 'EXECUTE') AS public_can_execute;

SET ROLE ctr_analyst;
\set VERBOSITY sqlstate
SELECT count(*) FROM ctr_predict('personas', 50, ad => 'x');
-- a non-superuser cannot read keys, nor see them in pg_settings
SHOW ctr_dist.openai_api_key;
SELECT current_setting('ctr_dist.openai_api_key');
SELECT count(*) AS visible_key_settings FROM pg_settings WHERE name LIKE 'ctr_dist.%api_key';
SELECT count(*) AS visible_base_urls FROM pg_settings WHERE name LIKE 'ctr_dist.%base_url';
SHOW ctr_dist.openai_api_key_file;
-- nor set keys, key files or base URLs
SET ctr_dist.openai_api_key = 'sk-mine';
SET ctr_dist.openai_api_key_file = '/tmp/mine';
SET ctr_dist.gemini_base_url = 'https://attacker.example';
-- but may tune their own session
SET ctr_dist.openai_model = 'gpt-4.1-mini';
-- the rate limits bind every session (this suite preloads ctr_dist): superuser only
SET ctr_dist.deepseek_max_concurrency = 2;
SET ctr_dist.openai_rpm = 100000;
SET ctr_dist.rate_limit_window = '100ms';
RESET ROLE;
-- unless a superuser lets a role change them
GRANT SET ON PARAMETER ctr_dist.deepseek_max_concurrency TO ctr_analyst;
SET ROLE ctr_analyst;
SET ctr_dist.deepseek_max_concurrency = 2;
RESET ROLE;
REVOKE SET ON PARAMETER ctr_dist.deepseek_max_concurrency FROM ctr_analyst;
\set VERBOSITY default

-- with a GRANT the analyst may predict
GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) TO ctr_analyst;
SET ROLE ctr_analyst;
SELECT count(*) FROM ctr_predict('personas', 50, ad => 'x', providers => '{mock}');
RESET ROLE;
-- SELECT privilege on the persona relation is still required: PostgreSQL's own 42501
CREATE TABLE secret_personas AS SELECT * FROM personas WHERE id <= 10;
SET ROLE ctr_analyst;
\set VERBOSITY sqlstate
SELECT count(*) FROM ctr_predict('secret_personas', 50, ad => 'x', providers => '{mock}');
\set VERBOSITY default
RESET ROLE;

-- key settings are not in pg_settings (nor in stored runs), even for superusers
SELECT count(*) AS superuser_sees FROM pg_settings WHERE name = 'ctr_dist.openai_api_key';
SHOW ctr_dist.openai_api_key_file;
RESET ctr_dist.openai_api_key_file;
DROP TABLE secret_personas;
REVOKE ALL ON personas FROM ctr_analyst;
REVOKE EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) FROM ctr_analyst;
DROP OWNED BY ctr_analyst;
DROP ROLE ctr_analyst;
