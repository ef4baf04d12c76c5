-- The statistics of ad comparisons (src/inference.c): published values to
-- the digits they were published with, and the same cases to 1e-9 or
-- better against values computed independently of the C code (the
-- textbook formulas in 50-digit decimals, exact fractions, and bisection
-- on Abramowitz & Stegun 26.7.3's closed form of the t distribution).

-- ---------------------------------------------------------------------
-- Wilson score interval
-- ---------------------------------------------------------------------

-- Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3
SELECT k, n, round(w.low::numeric, 4) AS low, round(w.high::numeric, 4) AS high,
       round(w.low::numeric, 4) = pub_low AND round(w.high::numeric, 4) = pub_high AS as_published
FROM (VALUES (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605),
             (0, 20, 0.0000, 0.1611), (1, 29, 0.0061, 0.1718))
     AS t(k, n, pub_low, pub_high),
     ctr_dist.wilson(k, n) AS w
ORDER BY n, k;

-- the same and more, small and large n, near 0 and 1, at 95 % and 99 %
SELECT k, n, confidence,
       abs(w.low - ref_low) < 1e-12 AND abs(w.high - ref_high) < 1e-12 AS ok
FROM (VALUES (81, 263, 0.95, 0.255288519878, 0.366209576983),
             (15, 148, 0.95, 0.062386399531, 0.160487241723),
             (1, 29, 0.95, 0.006113214293, 0.171755218793),
             (29, 29, 0.95, 0.883030201500, 1.0),
             (3, 10, 0.99, 0.079566316523, 0.679975320799),
             (0, 1, 0.95, 0.0, 0.793450685623),
             (1, 1, 0.95, 0.206549314377, 1.0),
             (5000, 100000, 0.95, 0.048666389291, 0.051368182510),
             (123456789, 987654321, 0.95, 0.124979374812, 0.125020625827))
     AS t(k, n, confidence, ref_low, ref_high),
     ctr_dist.wilson(k, n, confidence) AS w
ORDER BY n, k;

-- near the edges the limits keep their relative precision
SELECT abs(low / 1.765245767453715e-07 - 1) < 1e-12 AS low_ok,
       abs(high / 5.664911804311440e-06 - 1) < 1e-12 AS high_ok
FROM ctr_dist.wilson(1, 1000000);
SELECT abs((1 - high) / 1.765245767453715e-07 - 1) < 1e-9 AS high_ok
FROM ctr_dist.wilson(999999, 1000000);

-- exactly 0 at no clicks, exactly 1 at all clicks, mirrored
SELECT low = 0 AS zero, round(high::numeric, 12) AS high FROM ctr_dist.wilson(0, 20);
SELECT high = 1 AS one FROM ctr_dist.wilson(20, 20);
SELECT bool_and(abs(a.low - (1 - b.high)) < 1e-15 AND abs(a.high - (1 - b.low)) < 1e-15) AS mirrored
FROM generate_series(0, 37) AS k,
     ctr_dist.wilson(k, 37) AS a, ctr_dist.wilson(37 - k, 37) AS b;
-- wider at 99 % than at 95 %, and around k/n
SELECT bool_and((k = 0 OR w99.low < w95.low) AND (k = 37 OR w95.high < w99.high)
                AND w95.low <= k / 37.0 AND k / 37.0 <= w95.high) AS nested
FROM generate_series(0, 37) AS k,
     ctr_dist.wilson(k, 37, 0.99) AS w99, ctr_dist.wilson(k, 37) AS w95;

-- no personas: a row of NULLs; a NULL argument: a row of NULLs, so that a
-- LATERAL join keeps the ad
SELECT * FROM ctr_dist.wilson(0, 0);
SELECT * FROM ctr_dist.wilson(NULL, 10);
SELECT * FROM ctr_dist.wilson(3, 10, NULL);
SELECT ad, round(w.low::numeric, 4) AS low, round(w.high::numeric, 4) AS high
FROM (VALUES ('a', 3, 10), ('b', NULL, 10)) AS t(ad, clicks, n)
     CROSS JOIN LATERAL ctr_dist.wilson(clicks, n) AS w ORDER BY ad;

-- ---------------------------------------------------------------------
-- McNemar's test
-- ---------------------------------------------------------------------

-- exact, below 25 discordant pairs: airway hyper-responsiveness (Bentur et
-- al. 2009) and complete response (Cavo et al. 2012), as in Fagerland,
-- Lydersen and Laake (2013), BMC Medical Research Methodology 13:91:
-- exact conditional p = 0.070 and 0.052 (exactly 9/128 and
-- 2 sum(C(22, i), i <= 6) / 2^22)
SELECT round(ctr_dist.mcnemar_p(1, 7)::numeric, 3) AS bentur,
       abs(ctr_dist.mcnemar_p(1, 7) - 9 / 128.0) < 1e-15 AS bentur_exact,
       round(ctr_dist.mcnemar_p(6, 16)::numeric, 3) AS cavo,
       abs(ctr_dist.mcnemar_p(6, 16) - 0.052478790283) < 1e-12 AS cavo_exact;
-- symmetric; no discordant pairs, or as many each way: p = 1
SELECT ctr_dist.mcnemar_p(7, 1) = ctr_dist.mcnemar_p(1, 7) AS symmetric,
       ctr_dist.mcnemar_p(0, 0) AS none, ctr_dist.mcnemar_p(12, 12) AS tie,
       ctr_dist.mcnemar_p(30, 30) AS large_tie;
-- all 24 one way: 2 / 2^24
SELECT ctr_dist.mcnemar_p(0, 24) = 2 / 2.0 ^ 24 AS all_one_way;

-- large sample, from 25 on: Agresti (2013), Categorical Data Analysis,
-- 3rd ed., section 11.1, presidential approval, 150 against 86:
-- z^2 = 17.36 without correction
SELECT round(ctr_dist.mcnemar_chisq(150, 86, correct => false)::numeric, 2) AS agresti,
       abs(ctr_dist.mcnemar_chisq(150, 86, false) - 4096 / 236.0) < 1e-12 AS uncorrected,
       abs(ctr_dist.mcnemar_chisq(150, 86) - 3969 / 236.0) < 1e-12 AS corrected,
       abs(ctr_dist.mcnemar_p(150, 86) - 4.11456228135e-05) < 1e-15 AS p_corrected;
-- the switch: 24 pairs exact, 25 pairs corrected chi-square, which tracks
-- the exact test (25 pairs exact: 0.0433)
SELECT abs(ctr_dist.mcnemar_p(7, 17) - 0.063914656639) < 1e-12 AS exact_at_24,
       abs(ctr_dist.mcnemar_p(7, 18) - 0.0455002638964) < 1e-12 AS chisq_at_25,
       ctr_dist.mcnemar_chisq(7, 18) AS corrected, ctr_dist.mcnemar_chisq(7, 18, false) AS uncorrected;
-- the corrected statistic is 0 at a tie, not 1/(b+c)
SELECT ctr_dist.mcnemar_chisq(5, 5) AS tie, ctr_dist.mcnemar_chisq(0, 0) AS none;

-- ---------------------------------------------------------------------
-- Newcombe's method 10 for paired proportions
-- ---------------------------------------------------------------------

-- Newcombe (1998), Statistics in Medicine 17:2635-2650, the method 10
-- limits of its examples (a both, b first only, c second only, d
-- neither), to 4 decimals, as transcribed from its table.  One limit,
-- 0.8736 for (1, 97, 1, 1), comes out 0.87367 here (with z = 1.96 too).
SELECT a, b, c, d, round(p.diff::numeric, 4) AS diff,
       round(p.low::numeric, 4) AS low, round(p.high::numeric, 4) AS high,
       round(p.low::numeric, 4) = pub_low AND round(p.high::numeric, 4) = pub_high AS as_published
FROM (VALUES (1, 36, 12, 2, 0, 0.0569, 0.3404), (2, 20, 12, 2, 16, 0.0562, 0.3292),
             (3, 18, 12, 2, 18, 0.0562, 0.3290), (4, 36, 14, 0, 0, 0.1528, 0.4167),
             (5, 35, 14, 0, 1, 0.1461, 0.4175), (6, 18, 14, 0, 18, 0.1441, 0.3963),
             (7, 2, 97, 1, 0, 0.8721, 0.9854), (8, 1, 97, 1, 1, 0.8736, 0.9850),
             (9, 0, 29, 1, 0, 0.6666, 0.9882), (10, 2, 98, 0, 0, 0.9178, 0.9945),
             (11, 1, 98, 0, 1, 0.9171, 0.9916), (12, 0, 30, 0, 0, 0.8395, 1.0000),
             (13, 54, 0, 0, 0, -0.0664, 0.0664), (14, 53, 0, 0, 1, -0.0729, 0.0729),
             (15, 30, 0, 0, 24, -0.0358, 0.0358), (16, 29, 0, 0, 25, -0.0354, 0.0354),
             (17, 28, 0, 0, 26, -0.0352, 0.0352), (18, 27, 0, 0, 27, -0.0351, 0.0351))
     AS t(example, a, b, c, d, pub_low, pub_high),
     ctr_dist.paired_diff_interval(a, b, c, d) AS p
ORDER BY example;

-- complete response (Cavo et al. 2012) in Fagerland, Lydersen and Laake
-- (2017), Statistical Analysis of Contingency Tables, section 8.5:
-- -0.0621 (-0.1186 to -0.0046)
SELECT round(diff::numeric, 4) AS diff, round(low::numeric, 4) AS low,
       round(high::numeric, 4) AS high
FROM ctr_dist.paired_diff_interval(59, 6, 16, 80);

-- the difference is the first proportion minus the second: swapping b
-- and c mirrors the interval
SELECT a.diff = -b.diff AND abs(a.low + b.high) < 1e-15 AND abs(a.high + b.low) < 1e-15 AS mirrored
FROM ctr_dist.paired_diff_interval(36, 12, 2, 0) AS a,
     ctr_dist.paired_diff_interval(36, 2, 12, 0) AS b;
-- inside [-1, 1], around the difference, wider at 99 %
SELECT bool_and(p95.low <= p95.diff AND p95.diff <= p95.high
                AND -1 <= p99.low AND p99.high <= 1
                AND p99.low < p95.low AND p95.high < p99.high) AS sane
FROM generate_series(0, 6) AS a, generate_series(0, 6) AS b, generate_series(0, 6) AS c,
     ctr_dist.paired_diff_interval(a, b, c, 3) AS p95,
     ctr_dist.paired_diff_interval(a, b, c, 3, 0.99) AS p99;
SELECT * FROM ctr_dist.paired_diff_interval(0, 0, 0, 0);
SELECT * FROM ctr_dist.paired_diff_interval(1, 2, NULL, 4);

-- ---------------------------------------------------------------------
-- The t interval for a mean, and Student's t quantiles through it
-- ---------------------------------------------------------------------

-- with sd = sqrt(n) the half-width is the quantile t(1 - alpha/2, n - 1):
-- t tables give 12.706, 2.228, 2.042, 4.032 (99 %), 2.920 (90 %), and
-- 1.960 for very many degrees of freedom
SELECT n - 1 AS df, confidence, round(m.high::numeric, 3) AS t_quantile,
       abs(m.high - ref) < 1e-9 AS ok, m.low = -m.high AS symmetric
FROM (VALUES (2, 0.95, 12.706204736), (11, 0.95, 2.228138852), (31, 0.95, 2.042272456),
             (6, 0.99, 4.032142984), (3, 0.90, 2.919985580),
             (1000000000000, 0.95, 1.959963984542426))
     AS t(n, confidence, ref),
     ctr_dist.mean_interval(n, 0, sqrt(n), confidence) AS m
ORDER BY n;
-- around the mean; one value or none: no interval
SELECT low, high FROM ctr_dist.mean_interval(4, 0.25, 0, 0.95);
SELECT * FROM ctr_dist.mean_interval(1, 0.3, 0);
SELECT * FROM ctr_dist.mean_interval(5, 0.3, NULL);

-- ---------------------------------------------------------------------
-- The paired t test
-- ---------------------------------------------------------------------

-- Student (1908) on Cushny and Peebles' sleep data, the extra hours of
-- sleep with two drugs on the same ten patients (R's "sleep"): t = 4.0621,
-- df = 9, p = 0.002833, 95 % interval 0.7001142 to 2.4598858
CREATE TEMP TABLE sleep (patient int, drug1 float8, drug2 float8);
INSERT INTO sleep VALUES (1, 0.7, 1.9), (2, -1.6, 0.8), (3, -0.2, 1.1), (4, -1.2, 0.1),
    (5, -0.1, -0.1), (6, 3.4, 4.4), (7, 3.7, 5.5), (8, 0.8, 1.6), (9, 0.0, 4.6),
    (10, 2.0, 3.4);
SELECT round(s.mean_diff::numeric, 4) AS mean_diff,
       round(t.low::numeric, 7) AS low, round(t.high::numeric, 7) AS high,
       round(t.p_value::numeric, 6) AS p_value,
       abs(t.low - 0.700114237) < 1e-9 AND abs(t.high - 2.459885763) < 1e-9
           AND abs(t.p_value - 0.002832890197) < 1e-12 AS ok
FROM (SELECT count(*) AS n, avg(drug2 - drug1) AS mean_diff,
             stddev_samp(drug2 - drug1) AS sd_diff FROM sleep) AS s,
     ctr_dist.paired_t(s.n, s.mean_diff, s.sd_diff) AS t;
-- the other way round: the same p, the interval mirrored
SELECT abs(t.p_value - 0.002832890197) < 1e-12 AS same_p, t.high < 0 AS below_zero
FROM (SELECT count(*) AS n, avg(drug1 - drug2) AS m, stddev_samp(drug1 - drug2) AS s
      FROM sleep) AS s,
     ctr_dist.paired_t(s.n, s.m, s.s) AS t;
-- every difference the same: p is its limit, 1 when they are all 0
SELECT * FROM ctr_dist.paired_t(50, 0, 0);
SELECT * FROM ctr_dist.paired_t(50, 0.1, 0);
SELECT * FROM ctr_dist.paired_t(1, 0.1, 0);
-- no difference on average: p = 1
SELECT p_value FROM ctr_dist.paired_t(30, 0, 0.2);

-- ---------------------------------------------------------------------
-- Holm's step-down adjustment
-- ---------------------------------------------------------------------

-- sorted 0.005, 0.01, 0.03, 0.04 of m = 4: 4 x 0.005, 3 x 0.01, 2 x 0.03,
-- then max(1 x 0.04, 0.06): NULL (the baseline) is not a comparison
SELECT ctr_dist.holm('{NULL, 0.01, 0.04, 0.03, 0.005}');
-- capped at 1, ties adjusted alike, never below the raw p, monotone
SELECT ctr_dist.holm('{0.5, 0.2, 0.2, 0.9}');
SELECT ctr_dist.holm('{0.03}') AS one, ctr_dist.holm('{}') AS none,
       ctr_dist.holm('{NULL}') AS only_null, ctr_dist.holm(NULL) AS null_array;
SELECT ctr_dist.holm('{{0.01, 0.02}, {0.03, 0.04}}') AS same_shape;

-- ---------------------------------------------------------------------
-- Impossible inputs: 22023 (22003 for counts that overflow a bigint)
-- ---------------------------------------------------------------------
SELECT * FROM ctr_dist.wilson(-1, 10);
SELECT * FROM ctr_dist.wilson(11, 10);
SELECT * FROM ctr_dist.wilson(1, 10, 1.5);
\set VERBOSITY sqlstate
SELECT * FROM ctr_dist.wilson(1, -10);
SELECT * FROM ctr_dist.wilson(1, 10, 0);
SELECT * FROM ctr_dist.wilson(1, 10, 1);
SELECT * FROM ctr_dist.wilson(1, 10, 'NaN');
SELECT ctr_dist.mcnemar_p(-1, 3);
SELECT ctr_dist.mcnemar_p(9223372036854775807, 1);
SELECT ctr_dist.mcnemar_chisq(3, -1);
SELECT * FROM ctr_dist.paired_diff_interval(1, 2, -3, 4);
SELECT * FROM ctr_dist.paired_diff_interval(9223372036854775807, 0, 0, 1);
SELECT * FROM ctr_dist.paired_diff_interval(1, 2, 3, 4, 95);
SELECT * FROM ctr_dist.mean_interval(10, 0.5, -0.1);
SELECT * FROM ctr_dist.mean_interval(10, 'NaN', 0.1);
SELECT * FROM ctr_dist.mean_interval(-10, 0.5, 0.1);
SELECT * FROM ctr_dist.paired_t(10, 0.5, 'Infinity');
SELECT * FROM ctr_dist.paired_t(10, 0.5, 0.1, -0.95);
SELECT ctr_dist.holm('{0.01, 1.5}');
SELECT ctr_dist.holm('{0.01, NaN}');
\set VERBOSITY default
