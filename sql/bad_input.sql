-- Bad input gets a clear error with the right SQLSTATE (SPEC section 5)
\set VERBOSITY sqlstate
SET client_min_messages = warning;
SET ctr_dist.ad = 'Premium fitness subscription - first month free';

-- relation that does not exist: PostgreSQL's own 42P01
SELECT * FROM ctr_predict('no_such_table');
-- NULL relation
SELECT * FROM ctr_predict(NULL);
-- batch_size NULL, < 1, > 1000: 22023
SELECT * FROM ctr_predict('personas', NULL);
SELECT * FROM ctr_predict('personas', 0);
SELECT * FROM ctr_predict('personas', -5);
SELECT * FROM ctr_predict('personas', 1001);
-- unknown provider, NULL provider, empty list: 22023
SELECT * FROM ctr_predict('personas', 50, providers => '{openai,chatgpt}');
SELECT * FROM ctr_predict('personas', 50, providers => ARRAY[NULL]::text[]);
SELECT * FROM ctr_predict('personas', 50, providers => '{}');
-- the mock never stands in for a real provider: alone or not at all (22023)
SELECT * FROM ctr_predict('personas', 50, providers => '{openai,mock}');
-- empty platform
SELECT * FROM ctr_predict('personas', 50, platform => '');

\set VERBOSITY default
-- no ad at all: 22023 with a hint showing both ways to give one
RESET ctr_dist.ad;
SELECT * FROM ctr_predict('personas');
SELECT * FROM ctr_predict('personas', ad => '');
\set VERBOSITY sqlstate

-- invalid settings are rejected when set
SET ctr_dist.providers = 'openai,chatgpt';
SET ctr_dist.providers = '';
SET ctr_dist.providers = 'mock,gemini';
SET ctr_dist.openai_max_concurrency = 0;
SET ctr_dist.openai_rpm = -1;
SET ctr_dist.deepseek_tpm = -1;
SET ctr_dist.gemini_weight = -1;
SET ctr_dist.openai_price_input = -0.5;
SET ctr_dist.request_timeout = 0;
SET ctr_dist.max_retries = -1;
SET ctr_dist.platform = '';
SET ctr_dist.gemini_model = 'models/../../etc';
SET ctr_dist.openai_model = '';
SET ctr_dist.openai_base_url = 'ftp://example.com';
SET ctr_dist.openai_base_url = 'https://example.com/v1?x=1';
SET ctr_dist.openai_base_url = 'https://user:pw@example.com';
SET ctr_dist.openai_base_url = 'https://example.com/v1/';
ALTER SYSTEM SET ctr_dist.openai_api_key = E'sk-a\r\nX-Injected: 1';
SET ctr_dist.no_such_setting = 1;
-- valid values are accepted
SET ctr_dist.providers = 'gemini, openai';
SHOW ctr_dist.providers;
SET ctr_dist.openai_base_url = 'http://127.0.0.1:9/v1';
SHOW ctr_dist.openai_base_url;
RESET ALL;
