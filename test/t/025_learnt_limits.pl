# Zero-configuration limits (src/ratelimit.c, issue 17): with no P_rpm
# set, a provider's request limit is learnt from its 429s (the answers it
# took before refusing, over the time it took them plus the wait it asked
# for) and from OpenAI's x-ratelimit-limit-requests, and requests are
# paced to it.  Against limits that only show as 429s, few requests are
# refused and every prediction is exact; with the limits configured none
# is.  Preloaded, what one session learnt holds for the next one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('learnt', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 6000);
# the server counts in 5 s windows, so the settings' window is 5 s too
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ctr_dist.rate_limit_window = '5s';
	SELECT pg_reload_conf();});

sub run
{
	my ($what, $config, $pre) = @_;
	CtrDistTest::set_server($base, $config);
	my $t0 = time;
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "20, ad => 'Gym'", pre => $pre // '');
	my $wall = time - $t0;
	my $st = CtrDistTest::stats($base);
	my ($requests, $refused) = (0, 0);
	for my $p (qw(openai deepseek gemini))
	{
		$requests += $st->{$p}{requests};
		$refused += $st->{$p}{rejections};
	}
	diag(sprintf('%s: %.1f s, %d requests, %d x 429', $what, $wall, $requests, $refused));
	return ($out, $requests, $refused);
}

# each provider takes 40 requests per 5 s and says so only by refusing
# (OpenAI also by its x-ratelimit headers); 300 batches need ~12.5 s
my $limited = '{"window_s": 5, "rpm": 40, "latency_ms": 20}';
my ($out, $requests, $refused) = run('unconfigured, 429s only', $limited);
my ($ret, $err);
is($out, '6000|6000|0|0', 'unconfigured limits: every prediction exact');
cmp_ok($refused, '<=', 0.10 * $requests, "unconfigured limits: at most 10 % of requests refused ($refused of $requests)");
cmp_ok($refused, '>=', 1, 'unconfigured limits: the limits did show (as 429s)');
# twins (hedge.c) do not go to a provider waiting out a 429; how many went
# out before each provider showed its limit depends on timing (302-335
# answered requests for 300 batches measured), so it is reported, not checked
diag(($requests - $refused) . ' answered requests for 300 batches');

# preloaded: the next call starts from what this one learnt
($out, $requests, $refused) = run('unconfigured, learnt before', $limited);
is($out, '6000|6000|0|0', 'learnt in an earlier call: every prediction exact');
cmp_ok($refused, '<=', 0.04 * $requests, "learnt in an earlier call: at most 4 % refused ($refused of $requests)");

# configured limits: no 429 at all
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ctr_dist.openai_rpm = 40; ALTER SYSTEM SET ctr_dist.deepseek_rpm = 40;
	ALTER SYSTEM SET ctr_dist.gemini_rpm = 40; SELECT pg_reload_conf();});
($out, $requests, $refused) = run('configured', $limited);
is($out, '6000|6000|0|0', 'configured limits: every prediction exact');
is($refused, 0, 'configured limits: no 429');

is($node->safe_psql('postgres', q{SELECT string_agg(provider, ',' ORDER BY provider) FROM ctr_dist.rate_limits WHERE learnt_rpm > 0}),
	'deepseek,gemini,openai', 'ctr_dist.rate_limits shows what was learnt, for each provider');
$node->safe_psql('postgres', q{
	ALTER SYSTEM RESET ctr_dist.openai_rpm; ALTER SYSTEM RESET ctr_dist.deepseek_rpm;
	ALTER SYSTEM RESET ctr_dist.gemini_rpm; SELECT pg_reload_conf();});

# the rate learnt is the provider's: answers over the time they took and
# the wait asked for, or, for a 429 that says no wait (DeepSeek's), what is
# left of the window (ctr_dist.rate_limit_window) the burst filled
sub learnt
{
	my ($provider) = @_;
	return $node->safe_psql('postgres',
		"SELECT round(learnt_rpm) FROM ctr_dist.rate_limits WHERE provider = '$provider'");
}
# 40 per 5 s: 480 a minute; 100 batches
CtrDistTest::create_tagged_personas($node, 'small', 2000);
for my $p (qw(deepseek gemini))
{
	$node->safe_psql('postgres', 'SELECT ctr_dist.forget_learnt_limits()');
	CtrDistTest::set_server($base, $limited);
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "20, ad => 'Gym', providers => '{$p}'",
		pre => 'SET statement_timeout = 60000;');
	is($out, '2000|2000|0|0', "$p alone, unconfigured: every prediction exact");
	# DeepSeek's bare 429s: the window's rate (without the window they were
	# read as 40 answers in ~1 s, and cut down from there in runs of 429s);
	# Gemini's first 429 asks for a wait far longer than the answers took:
	# learnt at once, not after a run of 429s
	my $rpm = learnt($p);
	ok($rpm >= 0.6 * 480 && $rpm <= 1.05 * 480, "$p: the rate learnt is the provider's, 480 a minute ($rpm)");
	my $st = CtrDistTest::stats($base)->{$p};
	cmp_ok($st->{rejections}, '<=', 0.08 * $st->{requests},
		"$p: at most 8 % of its requests refused ($st->{rejections} of $st->{requests})");
}

# answers count from a provider's first request, and again after a window
# with nothing in flight: an earlier call's answers say nothing of the rate
$node->safe_psql('postgres', 'SELECT ctr_dist.forget_learnt_limits()');
CtrDistTest::set_server($base, '{"latency_ms": 20}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "20, ad => 'Gym', providers => '{deepseek}'");
is($out, '2000|2000|0|0', 'a call without limits: nothing to learn');
sleep 6;
CtrDistTest::set_server($base, $limited);
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "20, ad => 'Gym', providers => '{deepseek}'",
	pre => 'SET statement_timeout = 60000;');
my $after_idle = learnt('deepseek');
ok($after_idle >= 0.6 * 480 && $after_idle <= 1.05 * 480,
	"after an idle window the rate learnt is the limited call's own ($after_idle a minute)");
# a rate read from bare 429s (a window's worth: the slowest reading, maybe a
# storm) lasts until the provider has been idle a window
sleep 6;
CtrDistTest::set_server($base, '{"latency_ms": 20}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'small', "20, ad => 'Gym', providers => '{deepseek}'");
is($out . '|' . learnt('deepseek'), '2000|2000|0|0|', 'a rate read from bare 429s is forgotten after an idle window');

# a 429 that asks for a wait past ctr_dist.max_retry_wait teaches nothing:
# that request goes elsewhere or gives up, and the provider stays usable
$node->safe_psql('postgres', 'SELECT ctr_dist.forget_learnt_limits()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ctr_dist.rate_limits WHERE learnt_rpm > 0}), '0',
	'forget_learnt_limits: nothing learnt any more');
CtrDistTest::set_server($base, '{"latency_ms": 20, "faults": ['
	. '{"kind": "rate_limit", "provider": "openai", "after": 10, "first": 11, "params": {"seconds": 3600, "signal": "retry_after"}}]}');
my $t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "20, ad => 'Gym', providers => '{openai}'",
	pre => 'SET statement_timeout = 20000; SET ctr_dist.max_retry_wait = 5000;');
cmp_ok(time - $t0, '<', 15, 'a Retry-After of an hour costs that request, not the call');
CtrDistTest::set_server($base, '{"latency_ms": 20}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "20, ad => 'Gym', providers => '{openai}'",
	pre => 'SET statement_timeout = 20000;');
is($out, '6000|6000|0|0', 'the next call answers every persona');
is($node->safe_psql('postgres', q{SELECT count(*) FROM ctr_dist.rate_limits WHERE learnt_rpm > 0}), '0',
	'the hour-long wait taught no limit');

# a role without superuser cannot make every session forget
$node->safe_psql('postgres', 'CREATE ROLE nobody_special LOGIN');
($ret, $out, $err) = $node->psql('postgres', 'SELECT ctr_dist.forget_learnt_limits()',
	extra_params => [ '-U', 'nobody_special' ]);
like($err, qr/permission denied for function forget_learnt_limits/, 'forget_learnt_limits: superuser only');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
