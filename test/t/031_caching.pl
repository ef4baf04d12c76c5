# Cached prompt tokens (issue 15): each provider's usage fields are read,
# priced at ctr_dist.P_price_cached_input (OpenAI's cache writes at their
# own price), and shown in the NOTICE, last_call_stats(), run_providers and
# provider_stats.  The test server caches by each provider's rule: OpenAI a
# prefix of 1,024 tokens or more seen before, Gemini 2,048, DeepSeek whole
# prefix units only (so its third ad on the same personas is the first to
# hit the persona block).  The budget's reservations stay upper bounds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('caching', keys => 1);
CtrDistTest::configure_providers($node, $base);
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET ctr_dist.deepseek_peak_factor = 1; SELECT pg_reload_conf();
	CREATE TABLE wordy (id int PRIMARY KEY, bio text, tag text);
	INSERT INTO wordy
	SELECT g, 'enjoys ' || repeat('long walks and quiet evenings, ', 12) || g,
	       CASE WHEN (g * 7919) % 13 < 5 THEN 'CLICK' ELSE 'pass' END
	  FROM generate_series(1, 400) g;});
my ($ret, $out, $err, $st);

# prices: input, cached input, cache write (0: input), output
my %price = (openai => [ 0.10, 0.01, 0.125, 0.50 ], deepseek => [ 0.15, 0.003, 0, 0.60 ],
	gemini => [ 0.10, 0.01, 0, 0.40 ]);

sub server_cost
{
	my ($p, $s) = @_;
	my ($pin, $pcached, $pwrite, $pout) = @{ $price{$p} };
	my ($in, $cached, $written, $out) = map { $s->{$p}{$_} } qw(tokens_in tokens_cached tokens_cache_write tokens_out);
	return (($in - $cached - $written) * $pin + $cached * $pcached + $written * ($pwrite || $pin) + $out * $pout) / 1e6;
}

# a call and what last_call_stats() then says (same session): (status,
# "rows|exact|nulls|mock", stderr, "tokens_cached|cost_usd")
sub predict
{
	my ($p, $ad, $pre) = @_;
	my ($ret, $out, $err) = CtrDistTest::run_exact($node, 'wordy', "40, ad => '$ad', providers => '{$p}'",
		pre => $pre // '', post => 'SELECT tokens_cached || \'|\' || cost_usd FROM ctr_dist.last_call_stats();');
	my ($rows, $last) = split /\n/, $out;
	return ($ret, $rows, $err, $last // '');
}

for my $p (qw(openai gemini deepseek))
{
	# a fresh cache; then the same personas with three ads, one call each
	CtrDistTest::set_server($base, '{}');
	my @cached;
	for my $ad ('Gym', 'Spa', 'Pool')
	{
		control($base, '/_control/reset', '{}');    # stats only: the cache stays
		my $last;
		($ret, $out, $err, $last) = predict($p, $ad);
		is($out, '400|400|0|0', "$p, ad $ad: exact");
		$st = CtrDistTest::stats($base);
		push @cached, $st->{$p}{tokens_cached};
		like($err, qr/tokens in $st->{$p}{tokens_in} \(cached $st->{$p}{tokens_cached}\), out $st->{$p}{tokens_out} /,
			"$p, ad $ad: the NOTICE shows the server's tokens, cached ones too");
		my ($cached, $cost) = split /\|/, $last;
		is($cached, $st->{$p}{tokens_cached}, "$p, ad $ad: last_call_stats shows them");
		ok(abs($cost - server_cost($p, $st)) < 1e-12, "$p, ad $ad: the cost prices cached tokens at the cached price");
	}
	my $in = $st->{$p}{tokens_in};
	if ($p eq 'deepseek')
	{
		# prefix units: the second ad hits no persona block, the third does
		cmp_ok($cached[1], '<', $in / 10, "deepseek: the second ad hits little ($cached[1] of $in)");
		cmp_ok($cached[2], '>', $in / 2, "deepseek: the third ad hits the persona blocks ($cached[2] of $in)");
	}
	else
	{
		is($cached[0], 0, "$p: the first ad hits nothing");
		cmp_ok($cached[1], '>', $in / 2, "$p: the second ad hits the persona blocks ($cached[1] of $in)");
	}
}
# OpenAI's newer models report cache writes, priced at 1.25 x input
CtrDistTest::set_server($base, '{}');
my $last = (predict('openai', 'Gym'))[3];
$st = CtrDistTest::stats($base);
cmp_ok($st->{openai}{tokens_cache_write}, '>', 0, 'gpt-6-luna reports cache writes');
ok(abs((split /\|/, $last)[1] - server_cost('openai', $st)) < 1e-12,
	'cache writes are priced at ctr_dist.openai_price_cache_write');

# stored runs and the live statistics
CtrDistTest::set_server($base, '{}');
predict('gemini', 'Gym');
control($base, '/_control/reset', '{}');
$node->safe_psql('postgres', 'SELECT ctr_dist.provider_stats_reset()');
my $run = $node->safe_psql('postgres', "SELECT ctr_dist.run('wordy', 40, ad => 'Spa', providers => '{gemini}')");
$st = CtrDistTest::stats($base);
cmp_ok($st->{gemini}{tokens_cached}, '>', 0, 'the stored run hit the cache');
is($node->safe_psql('postgres', "SELECT tokens_cached FROM ctr_dist.run_providers WHERE run_id = $run"),
	$st->{gemini}{tokens_cached}, 'run_providers stores the cached tokens');
is($node->safe_psql('postgres', "SELECT tokens_cached || '|' || tokens_in FROM ctr_dist.provider_stats WHERE provider = 'gemini'"),
	"$st->{gemini}{tokens_cached}|$st->{gemini}{tokens_in}", 'provider_stats shows them');
ok(abs($node->safe_psql('postgres', "SELECT cost_usd FROM ctr_dist.runs WHERE id = $run") - server_cost('gemini', $st)) < 1e-9,
	'the run costs what the cached tokens cost');

# without a cache nothing is discounted
CtrDistTest::set_server($base, '{"prompt_cache": false}');
predict('openai', 'Gym');
$last = (predict('openai', 'Spa'))[3];
like($last, qr/^0\|/, 'no cache: no cached tokens');

# the budget reserves upper bounds: a cache never lowers a reservation, so a
# budget below one request's bound stops the call before anything is sent
CtrDistTest::set_server($base, '{}');
predict('openai', 'Gym');
control($base, '/_control/reset', '{}');
($ret, $out, $err) = $node->psql('postgres',
	"SET ctr_dist.max_cost_usd = 0.0005; SELECT count(*) FROM ctr_predict('wordy', 40, ad => 'Spa', providers => '{openai}')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/53400: ctr_predict stopped before going over its budget/, 'budget below a bound: 53400');
is(CtrDistTest::stats($base)->{openai}{requests}, 0, 'and no request left, cached or not');
# a budget between what the call costs with and without the cache: the
# settled spend is what the providers billed, cache discount included
($ret, $out, $err) = CtrDistTest::run_exact($node, 'wordy', "40, ad => 'Spa', providers => '{openai}'",
	pre => 'SET ctr_dist.max_cost_usd = 1;');
is($out, '400|400|0|0', 'a budget that suffices: exact');
$st = CtrDistTest::stats($base);
cmp_ok(server_cost('openai', $st), '<', ($st->{openai}{tokens_in} * 0.10 + $st->{openai}{tokens_out} * 0.50) / 1e6,
	'and what it spent is below the uncached price');

sub control { CtrDistTest::control(@_) }

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
