# Operations: persisted runs scheduled by pg_cron (both modes), cost
# accounting, the budget stop, failed and cancelled runs, live provider
# statistics and progress seen from another session.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $have_cron = CtrDistTest::have_pg_cron();    # without it, no pg_cron part

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('operations', keys => 1,
	preload => $have_cron ? 'pg_cron,ctr_dist' : 'ctr_dist',
	conf_fn => sub {
		my $n = shift;
		return "cron.database_name = 'postgres'\ncron.host = '" . $n->host . "'\nmax_worker_processes = 16\n";
	});
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 1000);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron') if $have_cron;

my ($ret, $out, $err);

# cost accounting: tokens are the server's usage, cost is tokens x prices
CtrDistTest::set_server($base, '{}');
my $run = $node->safe_psql('postgres', "SET ctr_dist.deepseek_peak_factor = 1; SELECT ctr_dist.run('tagged', 50, ad => 'Gym', label => 'cost')");
my $st = CtrDistTest::stats($base);
is($node->safe_psql('postgres', "SELECT string_agg(provider || ':' || tokens_in || '/' || tokens_out, ',' ORDER BY provider) FROM ctr_dist.run_providers WHERE run_id = $run"),
	join(',', map { "$_:$st->{$_}{tokens_in}/$st->{$_}{tokens_out}" } qw(deepseek gemini openai)),
	'tokens per provider equal what the server counted');
is($node->safe_psql('postgres', qq{
	SELECT bool_and(abs(cost_usd - ((tokens_in - tokens_cached) * CASE provider WHEN 'openai' THEN 0.10 WHEN 'deepseek' THEN 0.15 ELSE 0.10 END
	                             + tokens_cached * CASE provider WHEN 'openai' THEN 0.01 WHEN 'deepseek' THEN 0.003 ELSE 0.01 END
	                             + tokens_out * CASE provider WHEN 'openai' THEN 0.50 WHEN 'deepseek' THEN 0.60 ELSE 0.40 END) / 1e6) < 1e-9)
	  FROM ctr_dist.run_providers WHERE run_id = $run}), 't', 'cost = tokens x list prices, cached tokens at the cached price');
is($node->safe_psql('postgres', "SELECT string_agg(provider || ':' || tokens_cached, ',' ORDER BY provider) FROM ctr_dist.run_providers WHERE run_id = $run"),
	join(',', map { "$_:$st->{$_}{tokens_cached}" } qw(deepseek gemini openai)),
	'cached tokens per provider equal what the server counted');
is($node->safe_psql('postgres', "SELECT r.cost_usd = (SELECT sum(cost_usd) FROM ctr_dist.run_providers WHERE run_id = $run) AND r.personas = 1000 AND r.status = 'succeeded' FROM ctr_dist.runs r WHERE id = $run"),
	't', 'run total is the sum over providers');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM ctr_dist.predictions p JOIN tagged t ON t.id::text = p.persona_key
	 WHERE p.run_id = $run AND p.click = (t.tag = 'CLICK')::int}), '1000', 'stored predictions are exact');

# the budget stops a run before it goes over, and the partial run is recorded
($ret, $out, $err) = $node->psql('postgres', "SET ctr_dist.max_cost_usd = 0.002; SELECT ctr_dist.run('tagged', 50, ad => 'Gym', label => 'budget')");
like($err, qr/over_budget: ctr_predict stopped before going over its budget of \$0\.0020/, 'budget: WARNING with the reason');
is($node->safe_psql('postgres', "SELECT status || ',' || (cost_usd <= 0.002) || ',' || (tokens_in > 0) FROM ctr_dist.runs WHERE id = $out"),
	'over_budget,true,true', 'budget: run recorded as over_budget, spent at most the budget');

# a failed run is recorded as such, with its error; nothing half-stored
$node->safe_psql('postgres', q{
	CREATE FUNCTION boom(int) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN IF $1 = 600 THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN 'x'; END $$;
	CREATE VIEW fragile AS SELECT id, tag, boom(id) AS note FROM tagged;});
($ret, $out, $err) = $node->psql('postgres', "SELECT ctr_dist.run('fragile', 50, ad => 'Gym')");
is($node->safe_psql('postgres', "SELECT status || ': ' || error || ' / ' || (SELECT count(*) FROM ctr_dist.predictions WHERE run_id = $out) FROM ctr_dist.runs WHERE id = $out"),
	'failed: disk on fire / 0', 'failed run recorded with its error');

# a cancelled run (statement_timeout) is recorded as cancelled
CtrDistTest::set_server($base, '{"latency_ms": 3000}');
($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '500ms'; SELECT ctr_dist.run('tagged', 50, ad => 'Gym')");
is($node->safe_psql('postgres', "SELECT status FROM ctr_dist.runs WHERE id = $out"), 'cancelled', 'cancelled run recorded');

# provider_stats counts what the server saw
CtrDistTest::set_server($base, '{"seed": 3, "faults": [{"kind": "http_500", "rate": 0.3, "provider": "openai"}]}');
$node->safe_psql('postgres', 'SELECT ctr_dist.provider_stats_reset()');
$node->safe_psql('postgres', "SELECT count(*) FROM ctr_predict('tagged', 25, ad => 'Gym')");
$st = CtrDistTest::stats($base);
for my $p (qw(openai deepseek gemini))
{
	my $server_500 = $st->{$p}{status}{500} // 0;
	is($node->safe_psql('postgres', "SELECT requests || ',' || answered || ',' || transient_errors || ',' || tokens_in FROM ctr_dist.provider_stats WHERE provider = '$p'"),
		"$st->{$p}{requests},$st->{$p}{status}{200},$server_500,$st->{$p}{tokens_in}",
		"provider_stats for $p: requests, answers, 500s and tokens equal the server's counts");
}
ok(($st->{openai}{status}{500} // 0) > 0, 'faults were injected');
is($node->safe_psql('postgres', "SELECT latency_mean_ms > 0 AND latency_p95_ms > 0 FROM ctr_dist.provider_stats WHERE provider = 'openai'"),
	't', 'latency mean and p95 reported');

# progress, seen from a second session while a slow run goes on
CtrDistTest::set_server($base, '{"latency_ms": 400}');
my ($in, $o, $e) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
	  "SET ctr_dist.openai_max_concurrency = 1; SET ctr_dist.deepseek_max_concurrency = 1; SET ctr_dist.gemini_max_concurrency = 1; SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym')" ],
	\$in, \$o, \$e, IPC::Run::timeout(60));
ok($node->poll_query_until('postgres', "SELECT count(*) = 1 FROM ctr_dist.progress WHERE batches_done BETWEEN 3 AND 17"),
	'progress shows a running call part way');
is($node->safe_psql('postgres', q{
	SELECT relation::text || ',' || personas_total || ',' || batches_total || ',' || (batches_by_provider ~ 'openai=\d+')
	       || ',' || (estimated_left_s > 0) || ',' || (personas_done > 0)
	  FROM ctr_dist.progress}), 'tagged,1000,20,true,true,true', 'progress columns');
$h->finish;
is($node->safe_psql('postgres', 'SELECT count(*) FROM ctr_dist.progress'), '0', 'progress slot released at the end');

# pg_cron, default libpq mode, and then background-worker mode: both
# recipes, ctr_dist.run and INSERT ... SELECT FROM ctr_predict
SKIP:
{
	skip 'pg_cron is not installed for this PostgreSQL', 5 unless $have_cron;
	CtrDistTest::set_server($base, '{}');
	$node->safe_psql('postgres', q{
		CREATE TABLE my_results (at timestamptz, ord bigint, persona_key text, click int, provider text, model text);
		SELECT cron.schedule('ctr-every-minute', '* * * * *',
		       $$SELECT ctr_dist.run('tagged', 50, ad => 'Gym', label => 'cron')$$);
		SELECT cron.schedule('ctr-into-table', '* * * * *',
		       $$INSERT INTO my_results SELECT now(), * FROM ctr_predict('tagged', 50, ad => 'Gym')$$);});
	for my $mode ('libpq', 'background workers')
	{
		if ($mode eq 'background workers')
		{
			$node->safe_psql('postgres', 'TRUNCATE my_results; DELETE FROM ctr_dist.runs WHERE label = \'cron\'');
			$node->append_conf('postgresql.conf', "cron.use_background_workers = on\n");
			$node->restart;
		}
		ok($node->poll_query_until('postgres', q{
			SELECT count(*) > 0 FROM ctr_dist.runs r
			 WHERE label = 'cron' AND status = 'succeeded' AND personas = 1000
			   AND (SELECT count(*) FROM ctr_dist.predictions p JOIN tagged t ON t.id::text = p.persona_key
			         WHERE p.run_id = r.id AND p.click = (t.tag = 'CLICK')::int) = 1000}),
			"pg_cron ($mode): a scheduled ctr_dist.run completed with every prediction")
		  or diag($node->safe_psql('postgres', "SELECT id, status, personas, error FROM ctr_dist.runs WHERE label = 'cron'; SELECT status, return_message FROM cron.job_run_details ORDER BY runid DESC LIMIT 6"));
		ok($node->poll_query_until('postgres', "SELECT count(*) >= 1000 FROM my_results"),
			"pg_cron ($mode): INSERT ... SELECT FROM ctr_predict stored the rows");
	}
	is($node->safe_psql('postgres', "SELECT count(*) FROM cron.job_run_details WHERE status = 'failed'"), '0',
		'pg_cron recorded no failed job');
}

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
