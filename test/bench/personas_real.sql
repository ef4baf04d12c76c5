-- Real-sized personas for the benchmark (scenarios 9 and 10): about 560 prompt bytes each,
-- against the ~120 of scale.sh's small rows and the ~259 of test/sample_personas.sql.
--
--   psql -v tab=t100000 -v n=100000 -f test/bench/personas_real.sql
--
-- (id int PRIMARY KEY, age, gender, occupation, state, the five traits as float8, interests,
-- description, tag).  Everything is a function of id, so a table is the same on every run:
-- the description is three sentences drawn from a pool of 1,021 by three
-- indexes of different moduli (each 17 to 24 words out of
-- 160), so rows differ from each other as real descriptions do, not by a counter.  tag is
-- 'CLICK' for 5 rows in 13 ((id * 7919) % 13 < 5, the rule of create_tagged_personas in
-- test/t/CtrDistTest.pm, in bigint), else 'pass': the test server answers 1 exactly for those.
-- The prompt bytes per persona are measured, not assumed: scale.sh and bench.py report them
-- from the test server's prompt token counts.
SET client_min_messages = warning;
DROP TABLE IF EXISTS :"tab";
CREATE TABLE :"tab" (
	id int PRIMARY KEY,
	age int,
	gender text,
	occupation text,
	state text,
	openness float8,
	conscientiousness float8,
	extraversion float8,
	agreeableness float8,
	neuroticism float8,
	interests text,
	description text,
	tag text
);
CREATE TEMP TABLE persona_pool AS
WITH v(words) AS (
	SELECT ARRAY['weekend','coffee','budget','family','commute','garden','market','neighbours',
		'savings','holiday','kitchen','podcast','bicycle','apartment','mortgage','coupon',
		'loyalty','brand','quality','reviews','friends','colleagues','children','parents',
		'evening','morning','routine','fitness','streaming','newsletter','discount','delivery',
		'organic','local','vintage','premium','practical','cautious','curious','spontaneous',
		'thrifty','generous','skeptical','loyal','busy','relaxed','ambitious','careful',
		'prefers','avoids','compares','trusts','ignores','shares','collects','follows',
		'researches','buys','returns','recommends','subscribes','cancels','browses','saves',
		'online','weekly','rarely','often','carefully','quickly','reluctantly','happily',
		'with','about','before','after','during','without','because','although',
		'small','large','new','used','cheap','expensive','reliable','simple',
		'phone','laptop','car','shoes','books','music','games','tools',
		'recipes','travel','hiking','camping','fishing','painting','baking','yoga',
		'running','swimming','cycling','knitting','chess','football','tennis','gardening',
		'volunteers','church','school','library','museum','concerts','theatre','cinema',
		'deals','ads','emails','stores','malls','apps','websites','videos',
		'trusted','unknown','noisy','quiet','crowded','empty','early','late',
		'city','suburb','village','coast','mountains','river','downtown','countryside',
		'pays','spends','earns','invests','borrows','lends','donates','plans']::text[]
)
SELECT k,
	   (SELECT upper(left(t, 1)) || substr(t, 2) || '.'
		  FROM (SELECT string_agg(v.words[1 + ((k::bigint * 40503 + j * 9973 + j * j * k) % 160)::int], ' ' ORDER BY j)
				  FROM generate_series(1, 17 + k % 8) j) x(t)) AS sentence
  FROM v, generate_series(0, 1020) k;
WITH pool AS (SELECT array_agg(sentence ORDER BY k) AS s FROM persona_pool),
	 lists AS (
	SELECT ARRAY['female','male','non-binary','female','male']::text[] AS gender,
		   ARRAY['registered nurse','secondary school teacher','delivery driver','software developer',
				 'accountant','retail manager','electrician','graphic designer','pharmacist',
				 'police officer','chef','university student','retired engineer','farmer',
				 'marketing specialist','dentist','bus driver','social worker','lawyer',
				 'warehouse operative','nurse assistant','architect','real estate agent',
				 'journalist','plumber','data analyst','hairdresser','mechanic','librarian',
				 'small business owner','call centre agent','physiotherapist','barista',
				 'civil servant','veterinarian','sales representative','musician','pilot',
				 'stay-at-home parent','construction worker']::text[] AS occupation,
		   ARRAY['Alabama','Alaska','Arizona','Arkansas','California','Colorado','Connecticut',
				 'Delaware','Florida','Georgia','Hawaii','Idaho','Illinois','Indiana','Iowa',
				 'Kansas','Kentucky','Louisiana','Maine','Maryland','Massachusetts','Michigan',
				 'Minnesota','Mississippi','Missouri','Montana','Nebraska','Nevada',
				 'New Hampshire','New Jersey','New Mexico','New York','North Carolina',
				 'North Dakota','Ohio','Oklahoma','Oregon','Pennsylvania','Rhode Island',
				 'South Carolina','South Dakota','Tennessee','Texas','Utah','Vermont',
				 'Virginia','Washington','West Virginia','Wisconsin','Wyoming']::text[] AS state,
		   ARRAY['hiking','cooking','video games','jazz','gardening','personal finance','yoga',
				 'football','photography','travel','reading','baking','cycling','podcasts',
				 'fashion','home improvement','running','chess','camping','movies','crafts',
				 'electronics','pets','wine','fishing','painting','volunteering','cars',
				 'board games','skincare']::text[] AS interest
)
INSERT INTO :"tab"
SELECT g, 18 + g % 63,
	   l.gender[1 + g % 5],
	   l.occupation[1 + (g::bigint * 13) % 40],
	   l.state[1 + (g::bigint * 7) % 50],
	   round(((g::bigint * 41 + 3) % 101) / 100.0, 2),
	   round(((g::bigint * 59 + 7) % 103) / 102.0, 2),
	   round(((g::bigint * 17 + 11) % 107) / 106.0, 2),
	   round(((g::bigint * 73 + 13) % 109) / 108.0, 2),
	   round(((g::bigint * 29 + 19) % 113) / 112.0, 2),
	   l.interest[1 + g % 30] || ', ' || l.interest[1 + (g::bigint * 17 + 5) % 29] || ', '
		   || l.interest[1 + (g::bigint * 23 + 11) % 28] || ', ' || l.interest[1 + (g::bigint * 13 + 2) % 27],
	   p.s[1 + g % 1021] || ' ' || p.s[1 + (g::bigint * 7 + 3) % 1019] || ' '
		   || p.s[1 + (g::bigint * 31 + 17) % 1013],
	   CASE WHEN (g::bigint * 7919) % 13 < 5 THEN 'CLICK' ELSE 'pass' END
  FROM generate_series(1, :n) g, pool p, lists l;
DROP TABLE persona_pool;
VACUUM (ANALYZE) :"tab";
