-- The assignment plan (SPEC section 4.2): deterministic smooth weighted round-robin
-- 1000 personas in batches of 50 = 20 batches over three providers
SELECT * FROM ctr_dist.plan(20);
-- in the order the providers are listed
SELECT * FROM ctr_dist.plan(20, '{gemini,openai,deepseek}');
-- one provider takes all
SELECT * FROM ctr_dist.plan(20, '{deepseek}');
-- weights 35/35/30 give 7/7/6
SET ctr_dist.openai_weight = 35;
SET ctr_dist.deepseek_weight = 35;
SET ctr_dist.gemini_weight = 30;
SELECT * FROM ctr_dist.plan(20);
-- 3:1 weights, and a weight of 0 disables a provider
SET ctr_dist.openai_weight = 3;
SET ctr_dist.deepseek_weight = 1;
SET ctr_dist.gemini_weight = 0;
SELECT * FROM ctr_dist.plan(8);
SELECT * FROM ctr_dist.plan(1001);
RESET ALL;
SELECT * FROM ctr_dist.plan(0);
SELECT * FROM ctr_dist.plan(1);
SELECT * FROM ctr_dist.plan(2);
