# Reasoning models on every provider (issue 15): the lowest effort each
# model takes, temperature only where it is taken, a 400 naming a parameter
# answered by sending the request again without it (remembered in shared
# memory, so a second call asks no more), room for reasoning in the output
# limit, and reasoning tokens counted as output.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('reasoning', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 500);
my ($ret, $out, $err, $st);

sub params
{
	my ($p, $model) = @_;
	return join(',', @{ CtrDistTest::stats($base)->{$p}{params_by_model}{$model} // [] });
}

# ---- a current reasoning model on each provider: exact, no WARNING, no 400 ----
for my $case (
	[ 'openai', 'gpt-6-luna', 'reasoning_effort=none,temperature' ],
	[ 'gemini', 'gemini-3.1-flash-lite', 'temperature,thinkingLevel=minimal' ],
	[ 'gemini', 'gemini-2.5-flash', 'temperature,thinkingBudget=0' ],
	[ 'deepseek', 'deepseek-flash', 'temperature,thinking=disabled' ])
{
	my ($p, $model, $params) = @$case;
	CtrDistTest::set_server($base, '{}');
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{$p}'",
		pre => "SET ctr_dist.${p}_model = '$model';");
	is($out, '500|500|0|0', "$p $model: every prediction exact");
	unlike($err, qr/WARNING/, "$p $model: no WARNING");
	$st = CtrDistTest::stats($base);
	is($st->{$p}{status}{400} // 0, 0, "$p $model: no 400");
	is(params($p, $model), $params, "$p $model: sent $params");
}

# ---- gpt-5-mini: refuses effort none and any temperature ----
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_model = 'gpt-5-mini';");
is($out, '500|500|0|0', 'gpt-5-mini: every prediction exact');
unlike($err, qr/WARNING/, 'gpt-5-mini: no WARNING, no "bug in ctr_dist"');
like($err, qr/unsupported parameters [1-9]/, 'gpt-5-mini: the refusals are counted as such');
like($err, qr/openai \(gpt-5-mini\): reasoning effort raised to the lowest the model takes/,
	'gpt-5-mini: the NOTICE says what changed');
$st = CtrDistTest::stats($base);
my $refused = $st->{openai}{status}{400} // 0;
ok($refused >= 1 && $refused <= 8, "gpt-5-mini: $refused requests refused (at most those in flight at once)");
is(params('openai', 'gpt-5-mini'), 'reasoning_effort=minimal', 'gpt-5-mini: answered at minimal, without temperature');
ok(grep({ /reasoning_effort none not taken by gpt-5-mini/ } @{ $st->{violations} }), 'the server did refuse none');
# remembered in shared memory: the next call (another session) asks minimal at once
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_model = 'gpt-5-mini';");
is($out, '500|500|0|0', 'gpt-5-mini again: exact');
is(CtrDistTest::stats($base)->{openai}{status}{400} // 0, 0, 'gpt-5-mini again: not one 400 (remembered across sessions)');
like($err, qr/unsupported parameters 0.*reasoning effort raised/s, 'gpt-5-mini again: still said');

# ---- gpt-4o-mini is no reasoning model: reasoning_effort is refused ----
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_model = 'gpt-4o-mini';");
is($out, '500|500|0|0', 'gpt-4o-mini: exact');
like($err, qr/openai \(gpt-4o-mini\): sent without reasoning_effort, which the model refuses/,
	'gpt-4o-mini: the NOTICE says reasoning_effort was dropped');
is(params('openai', 'gpt-4o-mini'), 'temperature', 'gpt-4o-mini: answered with temperature 0 and no effort');

# ---- gemini-2.5-pro cannot turn thinking off: budget 0 is refused ----
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{gemini}'",
	pre => "SET ctr_dist.gemini_model = 'gemini-2.5-pro';");
is($out, '500|500|0|0', 'gemini-2.5-pro: exact');
like($err, qr/gemini \(gemini-2\.5-pro\): sent without thinkingConfig/, 'gemini-2.5-pro: thinkingConfig dropped');
$st = CtrDistTest::stats($base);
cmp_ok($st->{gemini}{tokens_reasoning}, '>', 0, 'gemini-2.5-pro: it thought (room was left for it)');
like($err, qr/out (\d+) \(reasoning $st->{gemini}{tokens_reasoning}\)/, 'the NOTICE counts the thought tokens');

# ---- DeepSeek thinking on: reasoning tokens are output, in cost and stats ----
CtrDistTest::set_server($base, '{}');
$node->safe_psql('postgres', 'SELECT ctr_dist.provider_stats_reset()');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{deepseek}'",
	pre => 'SET ctr_dist.deepseek_thinking = on; SET ctr_dist.deepseek_peak_factor = 1;');
is($out, '500|500|0|0', 'deepseek thinking on: exact (the output limit has room for it)');
$st = CtrDistTest::stats($base);
is(params('deepseek', 'deepseek-flash'), 'temperature,thinking=enabled', 'deepseek: thinking enabled');
cmp_ok($st->{deepseek}{tokens_reasoning}, '>', 1000, "deepseek: $st->{deepseek}{tokens_reasoning} reasoning tokens");
is($node->safe_psql('postgres', qq{
	SELECT tokens_reasoning || '|' || tokens_out || '|' || tokens_cached || '|'
	       || (abs(cost_usd - ((tokens_in - tokens_cached) * 0.15 + tokens_cached * 0.003 + tokens_out * 0.60) / 1e6) < 1e-12)
	  FROM ctr_dist.provider_stats WHERE provider = 'deepseek'}),
	"$st->{deepseek}{tokens_reasoning}|$st->{deepseek}{tokens_out}|$st->{deepseek}{tokens_cached}|true",
	'provider_stats: reasoning tokens counted in tokens_out and billed as output');

# ---- room for reasoning: an effort above the lowest needs it ----
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_reasoning_effort = 'medium';");
is($out, '500|500|0|0', 'effort medium: exact');
is(params('openai', 'gpt-6-luna'), 'reasoning_effort=medium', 'effort medium: no temperature sent with it');
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = $node->psql('postgres', q{
	SET ctr_dist.openai_reasoning_effort = 'medium';
	SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}');
	SELECT tokens_reasoning FROM ctr_dist.last_call_stats();});
$st = CtrDistTest::stats($base);
cmp_ok($st->{openai}{tokens_reasoning}, '>', 0, 'effort medium: the model reasoned');
is($out, "500\n$st->{openai}{tokens_reasoning}", 'last_call_stats: the reasoning tokens the server reported');
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_reasoning_effort = 'medium'; SET ctr_dist.max_reasoning_tokens = 0; SET ctr_dist.max_retries = 1;");
is($out, '500|0|500|0', 'effort medium without room for reasoning: cut off, nothing invented');
like($err, qr/truncated \(finish_reason length\)/, 'and the cause is named');

# ---- without preloading, a call learns for itself ----
my $plain = CtrDistTest::new_node('reasoning_nopre', keys => 1, preload => '',
	conf => "ctr_dist.openai_base_url = '$base/openai/v1'\n");
CtrDistTest::create_tagged_personas($plain, 'tagged', 100);
for my $round (1, 2)
{
	CtrDistTest::set_server($base, '{}');
	($ret, $out, $err) = CtrDistTest::run_exact($plain, 'tagged', "10, ad => 'Gym', providers => '{openai}'",
		pre => "LOAD 'ctr_dist'; SET ctr_dist.openai_model = 'gpt-5-mini';");
	is($out, '100|100|0|0', "not preloaded, call $round: exact");
	cmp_ok(CtrDistTest::stats($base)->{openai}{status}{400} // 0, '>=', 1, "not preloaded, call $round: learns again");
}
$plain->stop;

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
