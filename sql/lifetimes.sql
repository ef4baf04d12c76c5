-- How long what a call holds lives (answered by the mock)
SET client_min_messages = warning;

-- a call inside a subtransaction leaves nothing behind in it: 200 calls,
-- each in an exception block, in one transaction
CREATE FUNCTION ctr_test_many_calls(n int) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        BEGIN
            PERFORM count(*) FROM ctr_predict('personas', 1000, ad => 'x', providers => '{mock}');
        EXCEPTION WHEN OTHERS THEN
            RAISE;
        END;
    END LOOP;
    RETURN (SELECT count(*) FROM pg_backend_memory_contexts
             WHERE name IN ('CurTransactionContext', 'ctr_dist workers', 'ctr_dist engine'));
END $$;
SELECT ctr_test_many_calls(200) <= 2 AS no_contexts_left;
DROP FUNCTION ctr_test_many_calls(int);

-- a call cannot run inside another one: its personas may not come from a
-- query that calls ctr_dist again (0A000)
CREATE FUNCTION ctr_test_inner(id int) RETURNS boolean LANGUAGE sql AS $$
    SELECT count(*) > 0 FROM ctr_predict('personas', 50, ad => 'inner', providers => '{mock}')
$$;
CREATE VIEW ctr_test_nested AS SELECT id, age FROM personas WHERE id <= 3 AND ctr_test_inner(id);
\set VERBOSITY sqlstate
SELECT count(*) FROM ctr_predict('ctr_test_nested', 50, ad => 'outer', providers => '{mock}');
\set VERBOSITY default
-- and the next call works
SELECT count(*) FROM ctr_predict('personas', 50, ad => 'x', providers => '{mock}');
DROP VIEW ctr_test_nested;
DROP FUNCTION ctr_test_inner(int);
