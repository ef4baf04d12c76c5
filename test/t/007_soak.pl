# Soak: 20 sessions call ctr_predict over and over against a faulty
# provider server, with a cancel every few seconds; four of them keep 64 to
# 256 requests in flight (DeepSeek, slow) and are cancelled there too.
# Afterwards: no crash-restart, no worker or DSM segment left, the shared
# limiter back to 0 in flight, and memory flat.
# SOAK_SECONDS (default 120) sets the length; 600 for the long run.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use CtrDistTest;

my $seconds = $ENV{SOAK_SECONDS} // 120;
my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('soak', keys => 1,
	# mmap segments are files of this cluster's own, so leaks can be counted;
	# DeepSeek's limit is configured (and never binds) so that its random
	# 429s do not teach a rate that would keep the wide calls narrow
	conf => "max_worker_processes = 40\nmax_connections = 60\nlog_min_messages = warning\n"
	  . "dynamic_shared_memory_type = mmap\nctr_dist.deepseek_rpm = 1000000000\n");
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'small', 500);
CtrDistTest::set_server($base, q({"seed": 11, "latency_ms": 50, "faults": [
	{"kind": "http_500", "rate": 0.05}, {"kind": "http_503", "rate": 0.05},
	{"kind": "reset", "rate": 0.03}, {"kind": "wrong_length", "rate": 0.03},
	{"kind": "prose", "rate": 0.03},
	{"kind": "rate_limit", "rate": 0.03, "params": {"signal": "retry_after_ms", "seconds": 0.2}}],
	"providers": {"deepseek": {"latency_ms": 1500}}}));

sub rss_kb
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return 0;
	while (<$fh>) { return $1 if /^VmRSS:\s+(\d+)/; }
	return 0;
}

sub dsm_segments
{
	my @f = glob($node->data_dir . '/pg_dynshmem/mmap.*');
	return scalar @f;
}

my $postmaster = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
$postmaster = do { open(my $fh, '<', "/proc/$postmaster/stat"); my @s = split ' ', <$fh>; $s[3] };
my $dsm_before = dsm_segments();

# 19 sessions in a loop of short calls, one long-lived session measured for memory
my $end = time + $seconds;
# 15 narrow loops on OpenAI and Gemini; 4 wide ones, each with up to 64 to
# 256 requests in flight on DeepSeek (the limits are shared: 256 in all)
# a short breaker cooldown: an opened breaker's probe comes soon, so that a
# narrow call the loaded server stalls still ends well inside the harness's time
my $sql = "SET ctr_dist.request_timeout = 2000; SET ctr_dist.breaker_cooldown = '2s'; SELECT count(*), count(click) FROM ctr_predict('small', 25, ad => 'Gym', providers => '{openai,gemini}')";
my $wide = "SET ctr_dist.request_timeout = 4000; SET ctr_dist.deepseek_max_concurrency = 256; "
  . "SELECT count(*), count(click) FROM ctr_predict('small', 2, ad => 'Gym', providers => '{deepseek}')";
my @loops;
for my $i (1 .. 19)
{
	my $sql = $i <= 4 ? $wide : $sql;
	my ($in, $out, $err) = ('', '', '');
	my $script = "ok=0; while [ \$(date +%s) -lt " . int($end) . " ]; do "
	  . "psql -XAtq -d '" . $node->connstr('postgres') . "' -c \"$sql\" >/dev/null 2>&1 && ok=\$((ok+1)); done; echo \$ok";
	push @loops, [ IPC::Run::start([ 'bash', '-c', $script ], \$in, \$out, \$err, IPC::Run::timeout($seconds + 120)), \$out ];
}
my ($lin, $lout, $lerr) = ('SELECT pg_backend_pid();' . "\n", '', '');
my $long = IPC::Run::start([ 'psql', '-XAtq', '-d', $node->connstr('postgres') ], \$lin, \$lout, \$lerr,
	IPC::Run::timeout($seconds + 120));
$long->pump until $lout =~ /^(\d+)$/m;
my $long_pid = $1;
my ($rss_early, $pm_early, $calls) = (0, rss_kb($postmaster), 0);
my $cancels = 0;
my $wide_cancels = 0;
my $next_cancel = time + 3;
my $next_wide_cancel = time + 2;
while (time < $end)
{
	$lin .= "SET ctr_dist.request_timeout = 2000; SET ctr_dist.breaker_cooldown = '2s'; SELECT count(*) FROM ctr_predict('small', 25, ad => 'Gym', providers => '{openai,gemini}');\n";
	$long->pump while length $lin;
	$calls++;
	$rss_early = rss_kb($long_pid) if $calls == 5;
	if (time >= $next_cancel)
	{
		$cancels += $node->safe_psql('postgres', q{
			SELECT count(pg_cancel_backend(pid)) FROM (
			  SELECT pid FROM pg_stat_activity
			   WHERE query LIKE '%ctr_predict(''small''%' AND backend_type = 'client backend'
			     AND pid <> pg_backend_pid() AND state = 'active' LIMIT 1) s});
		$next_cancel = time + 3;
	}
	if (time >= $next_wide_cancel)
	{
		# a wide call with at least 64 of its requests in flight
		my $inflight = CtrDistTest::stats($base)->{deepseek}{in_flight};
		if ($inflight >= 64)
		{
			$wide_cancels += $node->safe_psql('postgres', q{
				SELECT count(pg_cancel_backend(pid)) FROM (
				  SELECT pid FROM pg_stat_activity
				   WHERE query LIKE '%providers => ''{deepseek}''%' AND backend_type = 'client backend'
				     AND pid <> pg_backend_pid() AND state = 'active' LIMIT 1) s});
		}
		$next_wide_cancel = time + 2;
	}
	sleep 0.2;
}
my $rss_late = rss_kb($long_pid);
$lin .= "\\q\n";
$long->finish;
my $loop_calls = 0;
for my $l (@loops)
{
	$l->[0]->finish;
	$loop_calls += (${ $l->[1] } =~ /(\d+)/)[0] // 0;
}
my $pm_late = rss_kb($postmaster);
diag(sprintf('soak %d s: %d calls in 19 loops + %d in the long session, %d cancels (%d with 64+ in flight); long session RSS %d -> %d kB, postmaster %d -> %d kB',
	$seconds, $loop_calls, $calls, $cancels, $wide_cancels, $rss_early, $rss_late, $pm_early, $pm_late));

cmp_ok($loop_calls, '>', 19 * 3, 'the loops completed calls');
cmp_ok($cancels, '>', 0, 'calls were cancelled along the way');
cmp_ok($wide_cancels, '>', 0, 'calls with 64 or more requests in flight were cancelled');
cmp_ok(CtrDistTest::stats($base)->{deepseek}{max_in_flight}, '>=', 64, 'DeepSeek had 64 or more requests in flight at once');
ok($node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'"),
	'no ctr_dist worker left');
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'client backend'"),
	'no session left');
sleep 1;
is(dsm_segments(), $dsm_before, 'no DSM segment left');
ok($node->poll_query_until('postgres', 'SELECT coalesce(sum(in_flight), 0) = 0 FROM ctr_dist.rate_limits'),
	'the shared limiter is back to 0 in flight');
ok($rss_early > 0 && $rss_late - $rss_early < 8 * 1024, 'memory of a long-lived calling session is flat');
cmp_ok($pm_late - $pm_early, '<', 2 * 1024, 'memory of the postmaster is flat');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated by|all server processes terminated|PANIC/, 'no crash-restart');
# after the soak, a call still answers every persona exactly
CtrDistTest::set_server($base, '{}');
my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "50, ad => 'Gym'");
is($out, '500|500|0|0', 'after the soak: exact predictions');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
