# Parallel, order-preserving distribution through background workers:
# concurrency, wall time, visibility, cancellation and the no-slot fallback.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('workers', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 1000);

my ($ret, $out, $err, $t0);

# 1 s per request, 20 batches over three providers with concurrency 8:
# all batches in flight at once, so the call takes about one latency
CtrDistTest::set_server($base, '{"latency_ms": 1000}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'");
my $wall = time - $t0;
is($out, '1000|1000|0|0', 'latency 1 s: predictions exact and in place');
cmp_ok($wall, '<', 2.0, sprintf('latency 1 s: the call took %.2f s (< 2 s)', $wall));
my $st = CtrDistTest::stats($base);
is(join(',', map { $st->{$_}{max_in_flight} } qw(openai deepseek gemini)), '7,7,6',
	'the server saw every batch of a provider in flight at once');

# concurrency 1 per provider: about 7 latencies, the per-provider serial bound
CtrDistTest::set_server($base, '{"latency_ms": 300}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'",
	pre => 'SET ctr_dist.openai_max_concurrency = 1; SET ctr_dist.deepseek_max_concurrency = 1; SET ctr_dist.gemini_max_concurrency = 1;');
$wall = time - $t0;
is($out, '1000|1000|0|0', 'concurrency 1: predictions exact');
cmp_ok($wall, '>=', 7 * 0.3, sprintf('concurrency 1: %.2f s >= 7 latencies', $wall));
cmp_ok($wall, '<', 7 * 0.3 + 1.5, 'concurrency 1: not much more than 7 latencies');
$st = CtrDistTest::stats($base);
is(join(',', map { $st->{$_}{max_in_flight} } qw(openai deepseek gemini)), '1,1,1',
	'concurrency 1: never two requests in flight to one provider');

# start a slow call in the background; returns the IPC::Run harness
sub slow_call
{
	my ($sql) = @_;
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c', $sql ],
		\$in, \$o, \$e, IPC::Run::timeout(60));
	return ($h, \$o, \$e);
}

sub wait_for_workers
{
	my ($n) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) = $n FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'");
}

CtrDistTest::set_server($base, '{"latency_ms": 10000}');

# workers are visible with a clear type, activity and wait event
my ($h, $o, $e) = slow_call("SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')");
ok(wait_for_workers(3), 'three workers run during a call');
my $caller = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%ctr_predict(''tagged''%' AND backend_type = 'client backend'");
is($node->safe_psql('postgres', q{
	SELECT string_agg(query, '; ' ORDER BY query) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'}),
	"deepseek requests for ctr_predict in pid $caller; gemini requests for ctr_predict in pid $caller; openai requests for ctr_predict in pid $caller",
	'activity names the provider and the calling pid');
# 17 and later name extension wait events; 15 and 16 have only the generic one
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT wait_event_type || ':' || wait_event, ',') FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'}),
	$node->pg_version >= 17 ? 'Extension:CtrDistProviderRequests' : 'Extension:Extension',
	'workers wait under the extension wait event');
is($node->safe_psql('postgres', qq{
	SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity WHERE pid = $caller}),
	$node->pg_version >= 17 ? 'Extension:CtrDistCallerResults' : 'Extension:Extension',
	'the caller waits for its workers under its own wait event');

# pg_cancel_backend from another session: PostgreSQL's own error, workers gone
$t0 = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($caller)");
$h->finish;
$wall = time - $t0;
like($$e, qr/canceling statement due to user request/, 'cancel: PostgreSQL\'s own error');
cmp_ok($wall, '<', 1.0, sprintf('cancel: the call ended in %.2f s', $wall));
ok(wait_for_workers(0), 'cancel: no worker remains');

# statement_timeout: SQLSTATE 57014 in under 1.5 s, no worker a second later
$t0 = time;
($ret, $out, $err) = $node->psql('postgres',
	"SET statement_timeout = '500ms'; SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
$wall = time - $t0;
like($err, qr/57014.*canceling statement due to statement timeout/s, 'statement_timeout: 57014');
cmp_ok($wall, '<', 1.5, sprintf('statement_timeout: ended after %.2f s', $wall));
sleep 1;
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'"),
	'0', 'statement_timeout: no worker a second later');

# an administrator terminates a worker mid-call: the call errors cleanly
($h, $o, $e) = slow_call("SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')");
ok(wait_for_workers(3), 'workers running again');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker' AND query LIKE 'openai%'");
$h->finish;
like($$e, qr/terminating background worker "ctr_dist worker" due to administrator command/,
	'worker terminated: the caller gets the worker\'s error');
like($$e, qr/ctr_dist worker for provider "openai"/, 'worker terminated: error context names the provider');
ok(wait_for_workers(0), 'worker terminated: no worker remains');

# the caller is terminated: its workers go too
($h, $o, $e) = slow_call("SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')");
ok(wait_for_workers(3), 'workers running again');
$caller = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE query LIKE '%ctr_predict(''tagged''%' AND backend_type = 'client backend'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($caller)");
$h->finish;
ok(wait_for_workers(0), 'caller terminated: no worker remains');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated|all server processes terminated/,
	'no crash-restart in the server log');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still up');
$node->stop;

# no free worker slot: the caller runs the same engine itself, same answers
my $small = CtrDistTest::new_node('noslots', keys => 1, conf => "max_worker_processes = 1\n");
CtrDistTest::configure_providers($small, $base);
CtrDistTest::create_tagged_personas($small, 'tagged', 1000);
CtrDistTest::set_server($base, '{"latency_ms": 200}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($small, 'tagged', "50, ad => 'Gym'");
$wall = time - $t0;
is($out, '1000|1000|0|0', 'no slots: predictions exact');
like($err, qr/no background worker slot is free: running the openai, deepseek, gemini requests in this backend/,
	'no slots: NOTICE says so');
like($err, qr/Raise max_worker_processes/, 'no slots: hint about max_worker_processes');
cmp_ok($wall, '<', 1.5, sprintf('no slots: still parallel (%.2f s at 200 ms per request)', $wall));
$small->stop;

CtrDistTest::stop_provider_server($server);
done_testing();
