# Twins of slow requests (src/hedge.c, issue 17): a request out three
# times as long as the call's median round trip (and at least 250 ms) gets
# a twin at another provider, or at the same one on another connection;
# the first answer wins, the loser is billed and ignored.  A hung request
# then holds its batch for a fraction of a second instead of until
# ctr_dist.request_timeout, and every prediction is still exact, in the
# calling backend and in workers, and late losers (a hung request's retry
# answering after its twin did) are taken in stride.  With ctr_dist.hedge
# off, the same call waits for the timeout.  A statement_timeout with
# twins in flight ends the call cleanly, in workers and in the caller.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('hedge', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 2000);

# requests 20 to 39 of each provider: about one in seven hangs for a minute
my $hangs = '{"seed": 3, "latency_ms": 40, "faults": [{"kind": "hang", "rate": 0.15, "after": 20, "first": 40, "params": {"seconds": 60}}]}';
my $timeout = 'SET ctr_dist.request_timeout = 8000;';

sub call
{
	my ($what, $args, $pre) = @_;
	CtrDistTest::set_server($base, $hangs);
	my $t0 = time;
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', $args, pre => $timeout . ($pre // ''));
	my $wall = time - $t0;
	my $st = CtrDistTest::stats($base);
	my $hung = 0;
	$hung += $st->{$_}{faults}{hang} // 0 for qw(openai deepseek gemini);
	diag(sprintf('%s: %.1f s, %d hangs; %s', $what, $wall, $hung, ($err =~ /DETAIL:\s+(.*)/)[0] // ''));
	return ($out, $err, $wall, $hung);
}

# workers, three providers: twins go to another provider
my ($out, $err, $wall, $hung) = call('workers, 3 providers', "20, ad => 'Gym'");
is($out, '2000|2000|0|0', 'three providers: every prediction exact despite the hangs');
cmp_ok($hung, '>=', 1, 'three providers: the server hung requests');
like($err, qr/; [1-9]\d* slow requests? got a twin/, 'three providers: the NOTICE counts the twins');
cmp_ok($wall, '<', 8, 'three providers: no batch waited for the 8 s request timeout');
unlike($err, qr/ERROR|WARNING/, 'three providers: no error, no warning');

# one provider: the twin goes to the same provider on another connection;
# the calling backend runs the requests itself
($out, $err, $wall, $hung) = call('calling backend, 1 provider', "20, ad => 'Gym', providers => '{deepseek}'",
	'SET ctr_dist.max_workers = 0;');
is($out, '2000|2000|0|0', 'one provider, calling backend: every prediction exact');
cmp_ok($hung, '>=', 1, 'one provider, calling backend: the server hung requests');
like($err, qr/; [1-9]\d* slow requests? got a twin/, 'one provider, calling backend: twins went out');
cmp_ok($wall, '<', 8, 'one provider, calling backend: no batch waited for the request timeout');

# the losers come back while the call runs: a hung request times out after
# 1.5 s and its retry answers long after its twin did
($out, $err, $wall, $hung) = call('late losers', "20, ad => 'Gym', providers => '{openai}'",
	"SET ctr_dist.request_timeout = 1500; SET ctr_dist.openai_max_concurrency = 2;");
is($out, '2000|2000|0|0', 'late losers: every prediction exact, no result refused as unknown');
cmp_ok($hung, '>=', 1, 'late losers: the server hung requests');

# a comparison: each ad of a batch can have its own twin
CtrDistTest::set_server($base, $hangs);
my ($ret, $cmp, $cerr) = $node->psql('postgres', $timeout . q{
	SELECT string_agg(ad_no || ':' || answered, ',' ORDER BY ad_no)
	  FROM ctr_compare('tagged', ARRAY['Gym want:CLICK', 'Spa want:CLICK'], 20)});
is($cmp, '1:2000,2:2000', 'comparison: every persona answered for every ad');

# the provider column names the provider that answered: after 20 requests
# some openai answers take 0.7 s and half of deepseek's 3 s, so an openai
# request whose twin went to deepseek often answers first
CtrDistTest::set_server($base, '{"seed": 5, "latency_ms": 30, "faults": ['
	. '{"kind": "slow_body", "provider": "openai", "rate": 0.3, "after": 20, "params": {"seconds": 0.7}},'
	. '{"kind": "slow_body", "provider": "deepseek", "rate": 0.5, "after": 20, "params": {"seconds": 3}}]}');
my ($mismatched, $twins) = (0, 0);
for my $run (1 .. 3)
{
	my ($r, $o, $e) = $node->psql('postgres', q{
		SELECT count(*) FILTER (WHERE (provider = 'openai') <> (model LIKE 'gpt%'))
		  FROM ctr_predict('tagged', 20, ad => 'Gym', providers => '{openai,deepseek}')});
	$mismatched += $o;
	$twins += ($e =~ /; (\d+) slow requests? got a twin/)[0] // 0;
}
cmp_ok($twins, '>=', 1, "provider column: twins went out ($twins)");
is($mismatched, 0, 'provider column: each row names the provider whose model answered');

# hedging off: a hung request holds its batch until the request timeout
($out, $err, $wall, $hung) = call('hedge off', "20, ad => 'Gym'", 'SET ctr_dist.hedge = off;');
is($out, '2000|2000|0|0', 'hedge off: every prediction exact');
unlike($err, qr/got a twin/, 'hedge off: no twin');
cmp_ok($wall, '>=', 8, 'hedge off: the call waited for the request timeout');

# abnormal ends with twins in flight: after 20 requests of each provider
# six in ten hang, more than twins may cover, so the call is still out with
# originals and twins hung when statement_timeout ends it; in workers and in
# the calling backend.  Nothing is left behind and the next call is exact.
for my $mode ([ 'workers', '' ], [ 'calling backend', 'SET ctr_dist.max_workers = 0;' ])
{
	my ($what, $pre) = @$mode;
	CtrDistTest::set_server($base,
		'{"seed": 9, "latency_ms": 40, "faults": [{"kind": "hang", "rate": 0.6, "after": 20, "params": {"seconds": 60}}]}');
	my ($r, $o, $e) = $node->psql('postgres', "SET ctr_dist.request_timeout = 20000; $pre SET statement_timeout = '1500ms';"
		  . " SELECT count(*) FROM ctr_predict('tagged', 20, ad => 'Gym')");
	like($e, qr/canceling statement due to statement timeout/, "$what: statement_timeout with twins out: PostgreSQL's error");
	my $st = CtrDistTest::stats($base);
	my $requests = 0;
	$requests += $st->{$_}{requests} for qw(openai deepseek gemini);
	cmp_ok($requests, '>', 60, "$what: requests were out at the end ($requests)");
	ok($node->poll_query_until('postgres', q{
		SELECT coalesce(sum(in_flight), 0) = 0 FROM ctr_dist.rate_limits}), "$what: the shared limiter is back to 0");
	ok($node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'}), "$what: no worker left");
	CtrDistTest::set_server($base, '{"latency_ms": 5}');
	($r, $o, $e) = CtrDistTest::run_exact($node, 'tagged', "20, ad => 'Gym'", pre => $pre);
	is($o, '2000|2000|0|0', "$what: the next call is exact");
}
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated|all server processes terminated/,
	'no crash-restart in the server log');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
