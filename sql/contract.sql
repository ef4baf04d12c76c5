-- The SQL contract of ctr_predict (SPEC section 2), answered by the mock
SET ctr_dist.ad = 'Premium fitness subscription - first month free';

-- the mock says so, once, and names the providers without a key
SELECT count(*) FROM ctr_predict('personas', 50);

SET client_min_messages = warning;

-- column names and types
SELECT pg_get_function_result('ctr_predict(regclass, integer, text, text, text[])'::regprocedure);
SELECT pg_get_function_arguments('ctr_predict(regclass, integer, text, text, text[])'::regprocedure);

-- one row per persona, ord contiguous 1..N and in order, keys join back
CREATE TEMP TABLE r AS SELECT row_number() OVER () AS rn, * FROM ctr_predict('personas', 50);
SELECT count(*) = (SELECT count(*) FROM personas) AS one_row_each,
       bool_and(ord = rn) AS ord_in_order,
       min(ord) = 1 AND max(ord) = count(*) AS ord_contiguous,
       count(DISTINCT persona_key) = count(*) AS keys_unique,
       bool_and(click IN (0, 1)) AS clicks_binary,
       bool_and(provider = 'mock') AS all_mock,
       bool_and(model = 'ctr-mock-1') AS mock_model
  FROM r;
SELECT count(*) AS joined FROM personas p JOIN r ON p.id::text = r.persona_key;
-- key order: persona 1 first, in id order
SELECT bool_and(persona_key::int = ord) AS key_order FROM r;

-- batch size does not change anyone's answer (deterministic per persona)
SELECT count(*) AS differing
  FROM ctr_predict('personas', 7) a JOIN r USING (ord)
 WHERE a.click IS DISTINCT FROM r.click;
SELECT count(*) AS differing_at_1000
  FROM ctr_predict('personas', 1000) a JOIN r USING (ord)
 WHERE a.click IS DISTINCT FROM r.click;

-- a persona answers the same whatever its neighbours (subset of the table)
CREATE TEMP VIEW some_personas AS SELECT * FROM personas WHERE id % 7 = 3;
SELECT count(*) AS differing_in_subset
  FROM ctr_predict('some_personas', 50) s JOIN r ON r.persona_key = s.persona_key
 WHERE s.click IS DISTINCT FROM r.click;

-- empty relation: zero rows
CREATE TEMP TABLE empty_personas (LIKE personas);
SELECT count(*) FROM ctr_predict('empty_personas');

-- a view: key is the column named id
SELECT ord, persona_key FROM ctr_predict('some_personas', 50) ORDER BY ord LIMIT 3;

-- no primary key and no id column: the first column is the key, in its order
CREATE TEMP TABLE no_pk AS SELECT occupation AS name, age, state FROM personas WHERE id <= 5;
SELECT ord, persona_key, click IN (0, 1) AS ok FROM ctr_predict('no_pk', 2) ORDER BY ord;

-- a multi-column primary key is rendered as a row literal
CREATE TEMP TABLE two_key (region text, n int, age int, interests text, PRIMARY KEY (region, n));
INSERT INTO two_key VALUES ('west', 2, 30, 'surfing'), ('east', 1, 40, 'chess'), ('west', 1, 25, NULL);
SELECT ord, persona_key FROM ctr_predict('two_key') ORDER BY ord;

-- a materialized view and a relation name that needs quoting
CREATE MATERIALIZED VIEW "Odd ""name"".mv" AS SELECT * FROM personas WHERE id <= 3;
SELECT ord, persona_key FROM ctr_predict('"Odd ""name"".mv"') ORDER BY ord;
DROP MATERIALIZED VIEW "Odd ""name"".mv";

-- awkward values (NULLs, quotes, newlines, emoji, 10 kB texts) are predicted like any
SELECT count(*) AS awkward_predicted
  FROM personas p JOIN r ON p.id::text = r.persona_key
 WHERE (p.description ~ E'[\\n\\t"|;]' OR length(p.description) > 5000 OR p.age IS NULL)
   AND r.click IN (0, 1);

-- json and bool columns are fine too
CREATE TEMP TABLE typed (id int PRIMARY KEY, profile jsonb, active bool, tags text[]);
INSERT INTO typed VALUES (1, '{"likes": ["running", "coffee"], "age": 31}', true, '{a,b}'),
                         (2, NULL, false, NULL), (3, '[]', NULL, '{}');
SELECT ord, persona_key, click IN (0, 1) AS ok FROM ctr_predict('typed') ORDER BY ord;

-- it writes nothing: works in a read-only transaction
BEGIN TRANSACTION READ ONLY;
SELECT count(*) FROM ctr_predict('personas', 100);
COMMIT;

-- the ad argument wins over the setting, platform and providers too
SELECT count(*) FROM ctr_predict('personas', 50, ad => 'Other ad', platform => 'tiktok', providers => '{mock}');
