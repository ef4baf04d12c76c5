# Abnormal ends with requests in flight, all in one session so that whatever
# an aborted call leaves behind (freed memory, a context deleted twice, a
# curl handle) meets the next call: statement_timeout twice and a timeout
# caught by a PL/pgSQL exception block, with the engine in the backend
# (max_workers = 0) and in workers; then pg_cancel_backend from another
# session, and an exact call in the same session.  make test-debug,
# make sanitize and make valgrind run it against their server builds, where
# a double free or a use of freed memory is an assertion failure or a report.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('abnormal', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 200);

# every request takes 5 s: each call below ends with requests in flight
CtrDistTest::set_server($base, '{"latency_ms": 5000}');
my $session = $node->background_psql('postgres', on_error_stop => 0);
my $call = "SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')";

# run one statement in the session; returns its stderr
sub query
{
	my ($sql) = @_;
	$session->{stderr} = '';
	$session->query($sql);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	return $err;
}

for my $workers (0, 3)
{
	my $where = $workers ? 'workers' : 'in the backend';
	query("SET ctr_dist.max_workers = $workers; SET statement_timeout = '700ms'");
	for my $n (1, 2)
	{
		like(query($call), qr/canceling statement due to statement timeout/,
			"$where: statement_timeout $n with requests in flight");
	}
	like(query("DO \$\$BEGIN PERFORM count(*) FROM ctr_predict('tagged', 50, ad => 'Gym');
		EXCEPTION WHEN query_canceled THEN RAISE NOTICE 'timeout caught'; END\$\$"),
		qr/timeout caught/, "$where: the timeout caught in a subtransaction");
	query('RESET statement_timeout');
}

# requests the provider server holds; true once $cond->(that number) holds
sub wait_in_flight
{
	my ($cond) = @_;
	for (1 .. 200)
	{
		my $st = CtrDistTest::stats($base);
		return 1 if $cond->($st->{openai}{in_flight} + $st->{deepseek}{in_flight} + $st->{gemini}{in_flight});
		usleep(50_000);
	}
	return 0;
}

# pg_cancel_backend from another session, engine in the backend, once the
# provider server holds requests of this call (the earlier calls' are done)
ok(wait_in_flight(sub { $_[0] == 0 }), 'the requests of the timed-out calls are over');
my $pid = $session->query_safe('SELECT pg_backend_pid()');
query('SET ctr_dist.max_workers = 0');
$session->{stderr} = '';
$session->{stdin} .= "$call;\n";
$session->{run}->pump_nb;
ok(wait_in_flight(sub { $_[0] > 0 }), 'in the backend: requests in flight before the cancel');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$session->query('SELECT 1');
like($session->{stderr}, qr/canceling statement due to user request/,
	'in the backend: pg_cancel_backend with requests in flight');

# the same session still works, and gets every prediction right
CtrDistTest::set_server($base, '{"latency_ms": 0}');
for my $workers (0, 3)
{
	query("SET ctr_dist.max_workers = $workers");
	my $out = $session->query(
		"SELECT count(*), count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int)
		   FROM ctr_predict('tagged', 50, ad => 'Gym') r JOIN tagged t ON t.id::text = r.persona_key");
	is($out, '200|200', "after the abnormal ends, same session, max_workers = $workers: every prediction exact");
}
$session->quit;

ok($node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'"),
	'no worker left');
my $log = slurp_file($node->logfile);
unlike($log, qr/TRAP:|terminated by signal|all server processes terminated|PANIC/,
	'no assertion failure or crash-restart in the server log');
$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
