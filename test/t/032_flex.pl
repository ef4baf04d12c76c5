# OpenAI's flex tier (issue 15): ctr_dist.openai_service_tier = flex sends
# service_tier "flex" and prices it at half in the estimate; flex's "resource
# unavailable" 429 backs off, and after the retries goes to another
# provider; a model without flex refuses it and gets the request without.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('flex', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 500);
my ($ret, $out, $err, $st);

# what the server's usage costs at gpt-6-luna's list prices
sub list_cost
{
	my ($s) = @_;
	my $o = $s->{openai};
	return (($o->{tokens_in} - $o->{tokens_cached} - $o->{tokens_cache_write}) * 0.10
		  + $o->{tokens_cached} * 0.01 + $o->{tokens_cache_write} * 0.125 + $o->{tokens_out} * 0.50) / 1e6;
}

# the call, and its cost as last_call_stats() says it in the same session
my $last_cost;
sub run_openai
{
	my ($pre, $providers) = @_;
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{" . ($providers // 'openai') . "}'",
		pre => $pre, post => "SELECT cost_usd FROM ctr_dist.last_call_stats() WHERE provider = 'openai';");
	($out, $last_cost) = split /\n/, $out;
	return ($ret, $out, $err);
}
sub last_cost { $last_cost }

for my $case ([ 'flex', 0.5 ], [ 'default', 1 ], [ 'auto', 1 ])
{
	my ($tier, $factor) = @$case;
	CtrDistTest::set_server($base, '{}');
	($ret, $out, $err) = run_openai("SET ctr_dist.openai_service_tier = '$tier';");
	is($out, '500|500|0|0', "service tier $tier: exact");
	$st = CtrDistTest::stats($base);
	my $params = join(',', @{ $st->{openai}{params_by_model}{'gpt-6-luna'} });
	if ($tier eq 'auto')
	{
		unlike($params, qr/service_tier/, 'auto: no service_tier sent');
	}
	else
	{
		like($params, qr/service_tier=$tier/, "$tier: service_tier $tier sent");
	}
	is(join(',', %{ $st->{openai}{service_tiers} }), ($tier eq 'flex' ? 'flex,10' : 'default,10'),
		"$tier: the server says it served them at that tier");
	ok(abs(last_cost() - $factor * list_cost($st)) < 1e-12, "$tier: priced at $factor of the list prices");
}

# flex out of capacity, the only provider: backoff, then the answer (no
# twins: a request in backoff is slow, and a twin's 429 would not be counted
# once the first answer has won)
CtrDistTest::set_server($base, '{"faults": [{"kind": "flex_unavailable", "provider": "openai", "first": 4}]}');
my $t0 = time;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_service_tier = 'flex'; SET ctr_dist.hedge = off;");
my $wall = time - $t0;
is($out, '500|500|0|0', 'flex unavailable at first: every prediction exact');
unlike($err, qr/WARNING/, 'flex unavailable: no WARNING');
like($err, qr/rate-limited 4,/, 'flex unavailable: the 429s are counted as throttles');
cmp_ok($wall, '>=', 0.3, sprintf('flex unavailable: it backed off (%.1f s)', $wall));
is(CtrDistTest::stats($base)->{openai}{faults}{flex_unavailable}, 4, 'the server refused 4');

# flex unavailable for good: after the retries the batches go to Gemini
CtrDistTest::set_server($base, '{"faults": [{"kind": "flex_unavailable", "provider": "openai"}]}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai,gemini}'",
	pre => "SET ctr_dist.openai_service_tier = 'flex'; SET ctr_dist.max_retries = 1;");
is($out, '500|500|0|0', 'flex never available: exact through the other provider');
like($err, qr/failovers 5,/, 'flex never available: openai\'s 5 batches failed over');
unlike($err, qr/WARNING/, 'flex never available: no WARNING (not a bug, not fatal)');
$st = CtrDistTest::stats($base);
is($st->{openai}{requests}, 10, 'two attempts per batch (max_retries = 1), not twenty throttle waits');

# a model without flex refuses it: the request goes again without service_tier
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = run_openai("SET ctr_dist.openai_service_tier = 'flex'; SET ctr_dist.openai_model = 'gpt-4o-mini';");
is($out, '500|500|0|0', 'flex on gpt-4o-mini: exact');
like($err, qr/openai \(gpt-4o-mini\): sent without reasoning_effort, service_tier, which the model refuses/,
	'flex on gpt-4o-mini: the NOTICE says service_tier was dropped');
$st = CtrDistTest::stats($base);
is(join(',', %{ $st->{openai}{service_tiers} }), 'default,10', 'answered at the default tier');
my $o = $st->{openai};
ok(abs(last_cost() - (($o->{tokens_in} - $o->{tokens_cached}) * 0.10 + $o->{tokens_cached} * 0.01 + $o->{tokens_out} * 0.50) / 1e6) < 1e-12,
	'and priced at the full price');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
