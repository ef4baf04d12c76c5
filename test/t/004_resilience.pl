# Resilience: retries, failover, circuit breaker, client-side rate limits
# (global with preload) and never an invented answer, by fault injection
# at the HTTP level.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('resilience', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 5000);
CtrDistTest::create_tagged_personas($node, 'small', 1000);

my ($ret, $out, $err, $t0, $wall, $st);
my $fast = 'SET ctr_dist.request_timeout = 1500; SET ctr_dist.max_retries = 6;';

# the fault matrix: every provider at once injects 500s, 503s, resets,
# hangs past the timeout, prose, wrong lengths, keep-alive blank lines and
# 429s with each retry signal (test/fault_matrix.json, also used by make
# bench); every prediction must still be exact
CtrDistTest::set_server($base, slurp_file("$CtrDistTest::testdir/fault_matrix.json"));
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'", pre => $fast, timeout => 300);
$wall = time - $t0;
is($out, '5000|5000|0|0', 'fault matrix: all 5000 predictions exact, no NULL, no mock');
$st = CtrDistTest::stats($base);
my $faults = 0;
$faults += $_ for map { values %{ $st->{$_}{faults} } } qw(openai deepseek gemini);
cmp_ok($faults, '>=', 50, "fault matrix: the server injected $faults faults");
like($err, qr/requests (\d+) \(answered \d+, rate-limited [1-9]\d*, transient errors [1-9]\d*, bad answers [1-9]\d*, too large 0, unsupported parameters 0, fatal 0, rejected 0\), retries [1-9]\d*/,
	'fault matrix: NOTICE counts the requests by outcome, and the retries');
# every batch answered once, and the twins of slow requests that answered too
my $twins = ($err =~ /; (\d+) slow requests? got a twin/)[0] // 0;
ok($err =~ /\(answered (\d+),/ && $1 >= 100 && $1 <= 100 + $twins,
	"fault matrix: 100 batches answered, plus at most the $twins twins");
if ($err =~ /requests (\d+) \(answered (\d+), rate-limited (\d+), transient errors (\d+), bad answers (\d+), too large (\d+), unsupported parameters (\d+), fatal (\d+), rejected (\d+)\)/)
{
	is($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $1, 'fault matrix: each request counted once, by its outcome');
}
# (that a bad answer goes to another provider first is 033_limits' exact
# check: here failovers also count transient errors, and twins answer some)
diag(sprintf('fault matrix: %.1f s, %d faults; %s', $wall, $faults, ($err =~ /DETAIL:\s+(.*)/)[0] // ''));

# one provider down: the others answer everything, the WARNING names it,
# and it gets no request after its fatal answers
for my $case (
	[ 'openai', '{"faults": [{"kind": "auth", "provider": "openai"}]}', qr/HTTP 401/, 'api_key' ],
	[ 'gemini', '{"faults": [{"kind": "auth", "provider": "gemini"}]}', qr/API_KEY_INVALID/, 'api_key' ],
	[ 'openai', '{"faults": [{"kind": "quota", "provider": "openai"}]}', qr/insufficient_quota/, 'weight' ],
	[ 'deepseek', '{"faults": [{"kind": "quota", "provider": "deepseek"}]}', qr/insufficient balance/, 'weight' ],
	[ 'gemini', '{"faults": [{"kind": "quota", "provider": "gemini"}]}', qr/daily quota/, 'weight' ],
	[ 'deepseek', '{"faults": [{"kind": "model_404", "provider": "deepseek"}]}', qr/HTTP 404/, 'model' ])
{
	my ($p, $conf, $cause, $setting) = @$case;
	CtrDistTest::set_server($base, $conf);
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'");
	is($out, '5000|5000|0|0', "$p down ($cause): all predictions exact through the others");
	like($err, qr/provider "$p" is taken out of this call: .*$cause/, "$p down: WARNING names provider and cause");
	like($err, qr/Check ctr_dist\.${p}_$setting/, "$p down: hint names ctr_dist.${p}_$setting");
	cmp_ok(CtrDistTest::stats($base)->{$p}{requests}, '<=', 8,
		"$p down: no request after the first answers in flight");
}

# one provider answers 500 to everything: the breaker opens and routes around it
CtrDistTest::set_server($base, '{"faults": [{"kind": "http_500", "provider": "openai"}]}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'",
	pre => 'SET ctr_dist.breaker_cooldown = 600000;');
is($out, '5000|5000|0|0', '500s everywhere on openai: all predictions exact through the others');
like($err, qr/breaker trips 1/, '500s: the breaker tripped once');
$st = CtrDistTest::stats($base);
# the breaker opens at the 10th failure; what was in flight then (at most
# openai_max_concurrency, 8) still arrives, nothing after
cmp_ok($st->{openai}{requests}, '<=', 18, "500s: openai got $st->{openai}{requests} requests, none after the breaker opened");

# the breaker's probe decides it whatever it comes back with: OpenAI's first
# 10 requests (one per batch) fail with 503 and open the breaker, its probe
# (request 11) gets a 429 or an unusable answer -- no transient failure, so
# the breaker closes -- and the rest is answered.  (A probe left undecided
# held every batch with nowhere else to go, and the call, for ever.)
for my $case (
	[ 'wrong_length', '{}' ],
	[ 'prose', '{}' ],
	[ 'rate_limit', '{"signal": "retry_after_ms", "seconds": 0.1}' ])
{
	my ($kind, $params) = @$case;
	CtrDistTest::set_server($base, qq({"faults": [
		{"kind": "http_503", "provider": "openai", "first": 10},
		{"kind": "$kind", "provider": "openai", "first": 11, "params": $params}]}));
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "100, ad => 'Gym', providers => '{openai}'",
		pre => "SET ctr_dist.breaker_cooldown = '200ms'; SET statement_timeout = '60s';");
	is($out, '1000|1000|0|0', "probe answered with $kind: the breaker closes, all predictions exact");
	unlike($err, qr/statement timeout/, "probe answered with $kind: the call ends");
	like($err, qr/breaker trips 1\b/, "probe answered with $kind: the breaker tripped once");
	cmp_ok(CtrDistTest::stats($base)->{openai}{requests}, '>', 11,
		"probe answered with $kind: requests go on after the probe");
}

# all providers down: every row NULL with a WARNING; the call itself succeeds
CtrDistTest::set_server($base, '{"faults": [{"kind": "auth"}]}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "50, ad => 'Gym'");
is($ret, 0, 'all down: the call succeeds');
is($out, '1000|0|1000|0', 'all down: 1000 rows, every click NULL, no mock');
like($err, qr/1000 of 1000 personas got no prediction/, 'all down: WARNING counts them');

# Retry-After is honoured: not retried sooner than 2 s
CtrDistTest::set_server($base,
	'{"faults": [{"kind": "rate_limit", "first": 1, "provider": "openai", "params": {"signal": "retry_after", "seconds": 2}}]}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "1000, ad => 'Gym', providers => '{openai}'");
$wall = time - $t0;
is($out, '1000|1000|0|0', 'retry-after 2: answered');
cmp_ok($wall, '>=', 2.0, sprintf('retry-after 2: retried after %.2f s, not sooner', $wall));
is(CtrDistTest::stats($base)->{openai}{requests}, 2, 'retry-after 2: one retry');

# a hint above the cap fails over at once instead of waiting
CtrDistTest::set_server($base,
	'{"faults": [{"kind": "rate_limit", "provider": "openai", "params": {"signal": "retry_after", "seconds": 30}}]}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "1000, ad => 'Gym', providers => '{openai,deepseek}'",
	pre => "SET ctr_dist.max_retry_wait = '5s';");
$wall = time - $t0;
is($out, '1000|1000|0|0', 'retry-after 30 over a 5 s cap: answered by the other provider');
cmp_ok($wall, '<', 2.0, sprintf('retry-after over the cap: no wait (%.2f s)', $wall));
like($err, qr/deepseek=1/, 'retry-after over the cap: failed over to deepseek');

# client-side rate limits: a time-scaled window (2 s) with 20 requests per
# window per provider on both sides; 300 batches: zero 429s, the server never
# sees the limit crossed, and the wall time is the rate bound
my $limits = 'SET ctr_dist.rate_limit_window = 2000; SET ctr_dist.openai_rpm = 20; SET ctr_dist.deepseek_rpm = 20; SET ctr_dist.gemini_rpm = 20;';
CtrDistTest::set_server($base, '{"rpm": 20, "window_s": 2}');
$t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'", pre => $limits . 'SET ctr_dist.max_retries = 0;');
$wall = time - $t0;
$st = CtrDistTest::stats($base);
is($out, '5000|5000|0|0', 'rate limits: all 100 batches exact');
is(join(',', map { $st->{$_}{status}{429} // 0 } qw(openai deepseek gemini)), '0,0,0', 'rate limits: zero 429s');
cmp_ok((sort { $b <=> $a } map { $st->{$_}{max_rate_observed} } qw(openai deepseek gemini))[0], '<=', 20,
	'rate limits: the server never saw more than 20 requests in a window');
# bound: 34 batches on the busiest provider at 10 per second
# (ctr_dist paces at 95% of a limit for headroom)
my $bound = 34 / 10.0;
cmp_ok($wall, '<=', $bound * 1.10 + 0.3, sprintf('rate limits: %.2f s against a bound of %.2f s', $wall, $bound));

# global limits: with preload, 4 sessions at once share each provider's limit
CtrDistTest::set_server($base, '{"rpm": 20, "window_s": 2}');
my @h;
for my $i (1 .. 4)
{
	my ($in, $o, $e) = ('', '', '');
	push @h, [ IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
		  $limits . "SELECT count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int) FROM ctr_predict('small', 50, ad => 'Gym') r JOIN small t ON t.id::text = r.persona_key" ],
		\$in, \$o, \$e, IPC::Run::timeout(120)), \$o ];
}
$_->[0]->finish for @h;
is(join(',', map { ${ $_->[1] } =~ s/\s+//gr } @h), '1000,1000,1000,1000', 'global: 4 sessions, all predictions exact');
$st = CtrDistTest::stats($base);
is(join(',', map { $st->{$_}{status}{429} // 0 } qw(openai deepseek gemini)), '0,0,0', 'global: zero 429s across 4 sessions');
cmp_ok((sort { $b <=> $a } map { $st->{$_}{max_rate_observed} } qw(openai deepseek gemini))[0], '<=', 20,
	'global: combined rate within the limit');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
