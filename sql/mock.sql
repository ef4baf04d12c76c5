-- The offline mock: deterministic, attribute-driven, and it says so
SET client_min_messages = warning;

-- same input, same output
SELECT count(*) AS differing
  FROM ctr_predict('personas', 50, ad => 'Noise-cancelling headphones for gamers') a
  JOIN ctr_predict('personas', 50, ad => 'Noise-cancelling headphones for gamers') b USING (ord)
 WHERE a.click IS DISTINCT FROM b.click;

-- plausible, varied CTRs: different ads give different CTRs, all between 5% and 60%
CREATE TEMP TABLE ctrs AS
SELECT ad, round(avg(click), 3) AS ctr
  FROM unnest(ARRAY['Premium fitness subscription - first month free',
                    'Retirement planning webinar for teachers',
                    'Noise-cancelling headphones for gamers',
                    'Organic baby food delivery']) AS ad,
       LATERAL ctr_predict('personas', 100, ad => ad) p
 GROUP BY ad;
SELECT count(DISTINCT ctr) AS distinct_ctrs, bool_and(ctr BETWEEN 0.05 AND 0.60) AS plausible FROM ctrs;

-- attributes matter: people whose interests mention the ad's subject click more
SELECT avg(click) FILTER (WHERE p.interests ILIKE '%gaming%')
     > avg(click) FILTER (WHERE p.interests NOT ILIKE '%gaming%') AS interested_click_more
  FROM personas p
  JOIN ctr_predict('personas', 50, ad => 'Gaming laptop with RTX graphics for serious gaming') r
    ON p.id::text = r.persona_key;

-- age matters by platform: on TikTok the young click more than the old
SELECT avg(click) FILTER (WHERE p.age < 30) > avg(click) FILTER (WHERE p.age > 55) AS young_click_more
  FROM personas p
  JOIN ctr_predict('personas', 50, ad => 'Festival tickets', platform => 'tiktok') r
    ON p.id::text = r.persona_key;

-- the platform changes answers
SELECT count(*) > 0 AS platform_matters
  FROM ctr_predict('personas', 50, ad => 'Festival tickets', platform => 'tiktok') a
  JOIN ctr_predict('personas', 50, ad => 'Festival tickets', platform => 'linkedin') b USING (ord)
 WHERE a.click <> b.click;

-- the mock can be asked for by name even when keys are set
SELECT DISTINCT provider, model FROM ctr_predict('personas', 50, ad => 'x', providers => '{mock}');
