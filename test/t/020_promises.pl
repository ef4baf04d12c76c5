# Promises of the README that a call's own logic keeps (issue 13):
#   the budget is a hard cap on every request (first send, retry, failover);
#   the shared rate limits cannot be loosened by an ordinary role;
#   a short outage of the only provider loses nothing;
#   ctr_dist.run after an early failure stores that call's totals, not the last;
#   the end-of-call counts mean what they say, one WARNING per provider and
#   cause, and rows without a prediction have NULL provider and model.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('promises', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 1000);
my ($ret, $out, $err);

# DeepSeek's peak hours double its prices (a factor the server cannot know)
$node->safe_psql('postgres', 'ALTER SYSTEM SET ctr_dist.deepseek_peak_factor = 1; SELECT pg_reload_conf();');

# the spend the server reported, at ctr_dist's default prices: input, cached
# input, cache writes (0: at the input price), output
sub server_cost
{
	my $st = CtrDistTest::stats($base);
	my %price = (openai => [ 0.10, 0.01, 0.125, 0.50 ], deepseek => [ 0.15, 0.003, 0, 0.60 ],
		gemini => [ 0.10, 0.01, 0, 0.40 ]);
	my $cost = 0;
	for my $p (qw(openai deepseek gemini))
	{
		my ($in, $cached, $written, $out) = map { $st->{$p}{$_} } qw(tokens_in tokens_cached tokens_cache_write tokens_out);
		my ($pin, $pcached, $pwrite, $pout) = @{ $price{$p} };
		$cost += (($in - $cached - $written) * $pin + $cached * $pcached
			  + $written * ($pwrite || $pin) + $out * $pout) / 1e6;
	}
	return $cost;
}

# ---- the budget is a cap: retries and failovers included ----
# every provider fails a third of its requests, so batches retry and fail over
my $faults = q({"seed": 5, "faults": [{"kind": "http_500", "rate": 0.2}, {"kind": "wrong_length", "rate": 0.15},
	{"kind": "http_503", "rate": 0.1}]});
for my $budget (0.0005, 0.002, 0.004)
{
	CtrDistTest::set_server($base, $faults);
	($ret, $out, $err) = $node->psql('postgres',
		"SET ctr_dist.max_cost_usd = $budget; SET ctr_dist.max_retries = 6; SELECT count(*) FROM ctr_predict('tagged', 25, ad => 'Gym')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/53400: ctr_predict stopped before going over its budget of \$\Q$budget\E/,
		"budget \$$budget: the call fails with 53400");
	my $spent = server_cost();
	cmp_ok($spent, '<=', $budget, sprintf('budget $%s: the providers report $%.5f spent, not more', $budget, $spent));
	cmp_ok($spent, '>', 0, "budget \$$budget: something was spent") if $budget > 0.001;
	my $st = CtrDistTest::stats($base);
	diag(sprintf('budget $%s: spent $%.5f in %d requests (%d answered)', $budget, $spent,
		(map { $st->{openai}{requests} + $st->{deepseek}{requests} + $st->{gemini}{requests} } 1),
		(map { $st->{openai}{status}{200} // 0 } 1)));
}
# a budget that suffices stops nothing
CtrDistTest::set_server($base, $faults);
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "25, ad => 'Gym'", pre => 'SET ctr_dist.max_cost_usd = 1; SET ctr_dist.max_retries = 6;');
is($out, '1000|1000|0|0', 'a budget that suffices: every prediction exact');
cmp_ok(server_cost(), '<=', 1, 'and within it');

# ctr_dist.run stores over_budget with what the providers reported
CtrDistTest::set_server($base, $faults);
($ret, $out, $err) = $node->psql('postgres',
	"SET ctr_dist.max_cost_usd = 0.002; SET ctr_dist.max_retries = 6; SELECT ctr_dist.run('tagged', 25, ad => 'Gym')");
my $run = $out;
my $spent = server_cost();
my ($status, $cost) = split /\|/, $node->safe_psql('postgres', "SELECT status, cost_usd FROM ctr_dist.runs WHERE id = $run");
is($status, 'over_budget', 'ctr_dist.run: stored as over_budget');
ok(abs($cost - $spent) < 1e-9 && $cost <= 0.002, sprintf('ctr_dist.run: the stored cost $%.6f is what the providers reported ($%.6f)', $cost, $spent));

# ---- the shared limits bind every role ----
# the server allows 20 requests per 5 s window per provider; the superuser
# configured that; a role's SET cannot loosen it
CtrDistTest::set_server($base, q({"window_s": 5, "rpm": 20}));
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ctr_dist.rate_limit_window = '5s';
	ALTER SYSTEM SET ctr_dist.openai_rpm = 20;
	ALTER SYSTEM SET ctr_dist.deepseek_rpm = 20;
	ALTER SYSTEM SET ctr_dist.gemini_rpm = 20;
	SELECT pg_reload_conf();
	CREATE ROLE loosener LOGIN;
	GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) TO loosener;
	GRANT SELECT ON tagged TO loosener;});
($ret, $out, $err) = $node->psql('postgres', q{
	SET ctr_dist.openai_rpm = 0;
	SET ctr_dist.deepseek_rpm = 100000;
	SET ctr_dist.rate_limit_window = '1min';
	SET ctr_dist.gemini_max_concurrency = 256;
	SELECT count(*), count(click) FROM ctr_predict('tagged', 10, ad => 'Gym');},
	extra_params => [ '-U', 'loosener' ], on_error_stop => 0);
my $denied = () = $err =~ /permission denied to set parameter "ctr_dist\.\w+"/g;
is($denied, 4, 'a role without superuser may not change the shared limits');
is($out, '1000|1000', 'its call still runs');
my $st = CtrDistTest::stats($base);
is(join(',', map { $st->{$_}{status}{429} // 0 } qw(openai deepseek gemini)), '0,0,0',
	'0 x 429: the shared limits held');
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET ctr_dist.rate_limit_window; ALTER SYSTEM RESET ctr_dist.openai_rpm;
	ALTER SYSTEM RESET ctr_dist.deepseek_rpm; ALTER SYSTEM RESET ctr_dist.gemini_rpm;
	SELECT pg_reload_conf();});

# ---- a short outage of the only provider loses nothing ----
CtrDistTest::set_server($base, '{"latency_ms": 150}');
my ($in, $o, $e) = ('', '', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
	  "SET ctr_dist.breaker_cooldown = '2s'; "
	  . "SELECT count(*) || '|' || count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int) || '|' || count(*) FILTER (WHERE r.click IS NULL) "
	  . "FROM ctr_predict('tagged', 5, ad => 'Gym', providers => '{openai}') r JOIN tagged t ON t.id::text = r.persona_key" ],
	\$in, \$o, \$e, IPC::Run::timeout(120));
ok($node->poll_query_until('postgres', "SELECT batches_done > 10 FROM ctr_dist.progress"), 'outage: the call is under way');
CtrDistTest::control($base, '/_control/outage', '{"seconds": 1}');
$h->finish;
is($o =~ s/\s+$//r, '1000|1000|0', 'outage of 1 s of the only provider: every prediction exact, none NULL');
$st = CtrDistTest::stats($base);
cmp_ok($st->{openai}{status}{closed} // 0, '>', 0, 'outage: requests did fail during it');
unlike($e, qr/got no prediction/, 'outage: no WARNING about missing predictions');

# ---- ctr_dist.run after an early failure stores its own totals ----
CtrDistTest::set_server($base, '{}');
$node->safe_psql('postgres', q{
	CREATE FUNCTION fail_early(int) RETURNS text LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no personas today'; END $$;
	CREATE VIEW broken AS SELECT id, tag, fail_early(id) AS note FROM tagged;});
my $good = $node->safe_psql('postgres', "SELECT ctr_dist.run('tagged', 50, ad => 'Gym')");
my $bad = $node->safe_psql('postgres', "SELECT ctr_dist.run('broken', 50, ad => 'Gym')");
is($node->safe_psql('postgres', "SELECT status || ',' || error || ',' || tokens_in || ',' || cost_usd FROM ctr_dist.runs WHERE id = $bad"),
	'failed,no personas today,0,0', 'a run that failed before any request stores no tokens and no cost');
is($node->safe_psql('postgres', "SELECT coalesce(sum(requests), 0) FROM ctr_dist.run_providers WHERE run_id = $bad"),
	'0', 'and no requests per provider');
cmp_ok($node->safe_psql('postgres', "SELECT tokens_in FROM ctr_dist.runs WHERE id = $good"), '>', 0,
	'(the run before it had tokens)');

# ---- counts that mean what they say ----
# every answer is bad and nothing is retried: the NOTICE counts the bad answers
CtrDistTest::set_server($base, '{"faults": [{"kind": "wrong_length"}]}');
($ret, $out, $err) = $node->psql('postgres',
	"SET ctr_dist.max_retries = 0; SELECT count(*), count(click), count(provider), count(model) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}')");
is($out, '1000|0|0|0', 'no prediction: click, provider and model are NULL');
like($err, qr/requests 20 \(answered 0, rate-limited 0, transient errors 0, bad answers 20, too large 0, unsupported parameters 0, fatal 0, rejected 0\), retries 0/,
	'max_retries = 0: 20 bad answers counted as bad answers, no retries');
# a provider that rejects every request: one WARNING for it, with the count
CtrDistTest::set_server($base, '{"faults": [{"kind": "bad_request_400", "provider": "openai"}]}');
($ret, $out, $err) = $node->psql('postgres',
	"SELECT count(*), count(click) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai,gemini}')");
is($out, '1000|1000', 'rejected batches failed over and were answered');
my @warnings = $err =~ /^(?:psql:\S+ )?(WARNING:.*)$/mg;
is(scalar(@warnings), 1, 'one WARNING for the rejecting provider') or diag($err);
like($warnings[0] // '', qr/^WARNING:  provider "openai" rejected 10 requests: HTTP 400/, 'it names the provider, the count and the cause');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|was terminated by|all server processes terminated/, 'no crash-restart');
$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
