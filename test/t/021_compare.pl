# Comparing ads on one panel (issue 16): against the test server, with
# marker personas whose answers are known for each ad, ctr_compare gives
# exactly the expected CTRs, differences and p-values; every persona sees
# every ad, the persona block comes first and every ad of a batch goes to
# one provider; ctr_dist.compare_run stores it all; probabilities work the
# same way.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('compare', keys => 1);
CtrDistTest::configure_providers($node, $base);
my $dir = PostgreSQL::Test::Utils::tempdir();

# 200 personas: ad 1 (want:ADONE) clicks for 1..80, ad 2 (want:ADTWO) for
# 41..140; so both 41..80 (40), ad 1 only 1..40 (40), ad 2 only 81..140 (60),
# neither 141..200 (60).  Ad 3 wants ADONE too: the same answers as ad 1.
# For probabilities the markers carry a percentage: ADONE=30 / ADTWO=60 on
# the same ranges, 0 elsewhere.
# (a description of ~400 bytes makes a batch of 25 a block of ~2,500 tokens,
# above the providers' caching thresholds, so the batches are not grown)
$node->safe_psql('postgres', q{
	CREATE TABLE panel (id int PRIMARY KEY, age int, segment text, tag text, description text);
	INSERT INTO panel
	SELECT g, 20 + g % 50, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END,
	       concat_ws(' ', CASE WHEN g <= 80 THEN 'ADONE=30' END,
	                      CASE WHEN g BETWEEN 41 AND 140 THEN 'ADTWO=60' END, 'x'),
	       repeat('likes long walks and reading about gadgets; ', 9) || g
	  FROM generate_series(1, 200) g;});
my $ads = q{ARRAY['Running shoes want:ADONE', 'Running shoes, 20% off want:ADTWO', 'Trail shoes want:ADONE']};
my ($ret, $out, $err);

CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = $node->psql('postgres', qq{
	SELECT ad_no, personas, answered, ctr, diff, round(p_value::numeric, 6)
	  FROM ctr_compare('panel', $ads, 25) ORDER BY ad_no});
is($out, "1|200|200|0.4||\n2|200|200|0.5|0.1|0.057433\n3|200|200|0.4|0|1.000000",
	'clicks: CTRs, paired differences and McNemar p-values are exact');
like($err, qr/3 ads were each compared with the first: 2 comparisons/, 'the NOTICE says how many comparisons');
like($err, qr/ctr_compare: 200 personas x 3 ads in 8 batches/, 'the NOTICE counts personas, ads and batches');

# the intervals are the statistics' own functions applied to the same counts
is($node->safe_psql('postgres', qq{
	SELECT bool_and(abs(c.ctr_low - w.low) < 1e-12 AND abs(c.ctr_high - w.high) < 1e-12)
	  FROM ctr_compare('panel', $ads, 25) c,
	       LATERAL ctr_dist.wilson(round(c.ctr * c.answered)::bigint, c.answered) w}),
	't', 'clicks: each CTR interval is the Wilson interval of its counts');
is($node->safe_psql('postgres', qq{
	SELECT round(diff_low::numeric, 10) || ',' || round(diff_high::numeric, 10)
	  FROM ctr_compare('panel', $ads, 25) WHERE ad_no = 2}),
	$node->safe_psql('postgres', q{
	SELECT round(low::numeric, 10) || ',' || round(high::numeric, 10)
	  FROM ctr_dist.paired_diff_interval(40, 60, 40, 60)}),
	'clicks: the difference interval is Newcombe\'s for the paired table');

# every persona saw every ad, panel first, every ad of a batch at one provider
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = $node->psql('postgres', qq{
	SELECT count(*), count(DISTINCT ord), count(DISTINCT (ord, ad_no)),
	       count(*) FILTER (WHERE answer = CASE ad_no WHEN 2 THEN (ord BETWEEN 41 AND 140)::int
	                                                 ELSE (ord <= 80)::int END)
	  FROM ctr_dist.compare_answers('panel', $ads, 25)});
is($out, '600|200|600|600', 'compare_answers: one exact answer per persona per ad');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM (
	  SELECT (ord - 1) / 25 AS batch, count(DISTINCT provider) AS providers
	    FROM ctr_dist.compare_answers('panel', $ads, 25) GROUP BY 1) b WHERE providers <> 1}),
	'0', 'every ad of a batch went to the same provider');
my $st = CtrDistTest::stats($base);
is($st->{openai}{requests} + $st->{deepseek}{requests} + $st->{gemini}{requests}, 24 * 2,
	'two comparisons of 8 batches x 3 ads: 48 requests, no more');

# the persona block comes first: the server's log has each request's prompt order
my $log = "$dir/server.log";
CtrDistTest::stop_provider_server($server);
($server, $base) = CtrDistTest::start_provider_server(log => $log);
CtrDistTest::configure_providers($node, $base);
$node->safe_psql('postgres', qq{SELECT count(*) FROM ctr_compare('panel', $ads, 25, providers => '{openai}')});
my @prefix;
open(my $fh, '<', $log) or die "no server log";
while (<$fh>)
{
	push @prefix, $1 if /"prompt_head":\s*"([^"]*)"/;
}
close($fh);
is(scalar(grep { /^Personas: 25/ } @prefix), 24, 'every request starts with the persona block') or diag(join("\n", @prefix[0..2]));

# probabilities: the mean percentage, a t interval, the paired t test
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = $node->psql('postgres', qq{
	SELECT ad_no, answered, round(ctr::numeric, 6), round(diff::numeric, 6)
	  FROM ctr_compare('panel', $ads, 25, answer => 'probability') ORDER BY ad_no});
# ad 1: 80 x 0.30 / 200 = 0.12; ad 2: 100 x 0.60 / 200 = 0.30
is($out, "1|200|0.120000|\n2|200|0.300000|0.180000\n3|200|0.120000|0.000000",
	'probabilities: means and paired differences are exact');
is($node->safe_psql('postgres', qq{
	WITH d AS (SELECT (CASE WHEN g BETWEEN 41 AND 140 THEN 0.6 ELSE 0 END)
	                - (CASE WHEN g <= 80 THEN 0.3 ELSE 0 END) AS d FROM generate_series(1, 200) g),
	     t AS (SELECT p.* FROM (SELECT count(*) n, avg(d) m, stddev_samp(d) s FROM d) x,
	                           LATERAL ctr_dist.paired_t(x.n, x.m, x.s) p)
	SELECT abs(c.p_value - t.p_value) < 1e-12 AND abs(c.diff_low - t.low) < 1e-12
	  FROM ctr_compare('panel', $ads, 25, answer => 'probability') c, t WHERE c.ad_no = 2}),
	't', 'probabilities: the paired t test on the per-persona differences');

# stored: ctr_dist.compare_run, and a segment x ad breakdown with intervals
my $id = $node->safe_psql('postgres', qq{SELECT ctr_dist.compare_run('panel', $ads, 25, label => 'shoes')});
is($node->safe_psql('postgres', qq{
	SELECT c.status || ',' || c.comparisons || ',' || (SELECT count(*) FROM ctr_dist.comparison_answers WHERE comparison_id = $id)
	       || ',' || (SELECT string_agg(ad_no || ':' || ctr || ':' || coalesce(round(p_holm::numeric, 6)::text, '-'), ' ' ORDER BY ad_no)
	                    FROM ctr_dist.comparison_ads WHERE comparison_id = $id)
	  FROM ctr_dist.comparisons c WHERE c.id = $id}),
	'succeeded,2,600,1:0.4:- 2:0.5:0.114866 3:0.4:1.000000',
	'compare_run: stored with every answer and Holm-adjusted p-values');
# an array that does not start at 1: ad 1 is its first element all the same
my $id0 = $node->safe_psql('postgres', q{
	SELECT ctr_dist.compare_run('panel', '[0:1]={"Running shoes want:ADONE","Trail shoes want:ADTWO"}'::text[], 25)});
is($node->safe_psql('postgres', qq{
	SELECT c.status || ' ' || string_agg(a.ad_no || ':' || a.ad || ':' || a.ctr, ' ' ORDER BY a.ad_no)
	  FROM ctr_dist.comparisons c JOIN ctr_dist.comparison_ads a ON a.comparison_id = c.id
	 WHERE c.id = $id0 GROUP BY c.status}),
	'succeeded 1:Running shoes want:ADONE:0.4 2:Trail shoes want:ADTWO:0.5',
	'compare_run: an array with other bounds is stored ad by ad');
is($node->safe_psql('postgres', qq{
	SELECT string_agg(segment || '/' || ad_no || ':' || clicks || '/' || n || ':' || round(w.low::numeric, 3), ' ' ORDER BY segment, ad_no)
	  FROM (SELECT p.segment, a.ad_no, sum(a.answer) AS clicks, count(a.answer) AS n
	          FROM ctr_dist.comparison_answers a JOIN panel p ON p.id::text = a.persona_key
	         WHERE a.comparison_id = $id GROUP BY 1, 2) s,
	       LATERAL ctr_dist.wilson(s.clicks, s.n) w}),
	'even/1:40/100:0.309 even/2:50/100:0.404 even/3:40/100:0.309 odd/1:40/100:0.309 odd/2:50/100:0.404 odd/3:40/100:0.309',
	'a segment x ad breakdown with Wilson intervals, joined on the key');

# a panel whose batches make a short persona block: later batches grow
$node->safe_psql('postgres', 'CREATE TABLE tiny AS SELECT id, age, tag FROM panel');
($ret, $out, $err) = $node->psql('postgres', qq{SELECT count(*) FROM ctr_dist.compare_answers('tiny', $ads, 25)});
is($out, '600', 'short personas: every answer still there');
like($err, qr/compare_answers uses batches of \d+ personas, not 25/, 'short personas: the batches grow, and the NOTICE says so');

# bad input
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM ctr_compare('panel', ARRAY[]::text[])},
	extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
like($err, qr/22023/, 'no ads: 22023');
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM ctr_compare('panel', ARRAY['a', NULL])},
	extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
like($err, qr/22023/, 'a NULL ad: 22023');
($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM ctr_compare('panel', ARRAY['a'], answer => 'maybe')},
	extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
like($err, qr/22023/, 'an unknown answer kind: 22023');

my $slog = slurp_file($node->logfile);
unlike($slog, qr/terminated by signal|was terminated by|all server processes terminated/, 'no crash-restart');
$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
