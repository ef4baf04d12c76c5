# Real providers over libcurl against the local test provider server:
# exact wire formats, alignment persona by persona, every failure class
# recognised (never an invented answer), and keys never leaked.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('providers', keys => 1);
# debug5 from now on (at start, PostgreSQL itself would print its environment at debug3)
$node->safe_psql('postgres', "ALTER SYSTEM SET log_min_messages = debug5; SELECT pg_reload_conf();");
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 1000);

my ($ret, $out, $err);

# each provider alone
for my $p (qw(openai deepseek gemini))
{
	CtrDistTest::set_server($base, '{}');
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{$p}'");
	is($out, '1000|1000|0|0', "$p alone: every prediction is the server's, on the right persona");
	my $st = CtrDistTest::stats($base);
	is($st->{$p}{requests}, 20, "$p alone: 20 requests");
	like($err, qr/1000 personas in 20 batches: $p=20/, "$p alone: NOTICE counts batches");
}

# all three: the 7/7/6 plan, exact answers, zero validation violations
CtrDistTest::set_server($base, '{}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'");
is($out, '1000|1000|0|0', 'three providers: all 1000 predictions exact');
like($err, qr/openai=7, deepseek=7, gemini=6/, 'three providers: 7/7/6 batches');
like($err, qr/tokens in [1-9]\d* \(cached \d+\), out [1-9]\d* \(reasoning 0\), estimated cost \$0\.\d{4}/, 'NOTICE reports tokens and cost');
my $st = CtrDistTest::stats($base);
is_deeply($st->{violations}, [], 'server recorded no request-validation violation');
is(join(',', map { $st->{$_}{requests} } qw(openai deepseek gemini)), '7,7,6', 'server saw 7/7/6 requests');
for my $p (qw(openai deepseek gemini))
{
	like(join(',', @{ $st->{$p}{user_agents_seen} }), qr{^ctr_dist/0\.2\.0$}, "$p: User-Agent names ctr_dist");
}
is($node->safe_psql('postgres', q{
	SELECT string_agg(DISTINCT model, ',' ORDER BY model) FROM ctr_predict('tagged', 50, ad => 'Gym')}),
	'deepseek-flash,gemini-2.5-flash-lite,gpt-6-luna',
	'model column names the model that answered');

# gzip answers are decoded; markdown fences and DeepSeek's keep-alive blank lines are tolerated
for my $case (
	[ 'gzip', '{"gzip": true}' ],
	[ 'fence', '{"faults": [{"kind": "fence"}]}' ],
	[ 'blank lines', '{"faults": [{"kind": "keepalive_blank_lines", "provider": "deepseek", "params": {"seconds": 0.3, "interval_ms": 50}}]}' ])
{
	CtrDistTest::set_server($base, $case->[1]);
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'");
	is($out, '1000|1000|0|0', "$case->[0]: answers accepted and exact");
}

# every soft failure and error class is recognised; with no retry and one
# provider the batch fails, and the rows say NULL: never padded or guessed
my @classes = (
	[ 'openai',   'truncated',      qr/truncated \(finish_reason length\)/ ],
	[ 'gemini',   'truncated',      qr/truncated \(MAX_TOKENS\)/ ],
	[ 'openai',   'refusal',        qr/refused/ ],
	[ 'openai',   'content_filter', qr/content filter/ ],
	[ 'gemini',   'content_filter', qr/stopped by SAFETY/ ],
	[ 'gemini',   'blocked_prompt', qr/prompt blocked/ ],
	[ 'openai',   'wrong_length',   qr/answer has \d+ values for 50 personas/ ],
	[ 'deepseek', 'wrong_length',   qr/answer has \d+ values for 50 personas/ ],
	[ 'gemini',   'non_binary',     qr/not 0 or 1/ ],
	[ 'openai',   'prose',          qr/not JSON/ ],
	[ 'deepseek', 'whitespace_content', qr/empty or whitespace/ ],
	[ 'deepseek', 'empty_body',     qr/empty response body/ ],
	[ 'deepseek', 'insufficient_system_resource', qr/insufficient_system_resource/ ],
	[ 'openai',   'http_500',       qr/HTTP 500/ ],
	[ 'gemini',   'http_503',       qr/HTTP 503 UNAVAILABLE/ ],
	[ 'openai',   'reset',          qr/(?i)server returned nothing|recv failure|reset|empty reply/ ],
	[ 'openai',   'bad_request_400', qr/provider "openai" rejected 20 requests: HTTP 400/ ],
	[ 'deepseek', 'unprocessable_422', qr/provider "deepseek" rejected 20 requests: HTTP 422/ ],
);
for my $c (@classes)
{
	my ($p, $kind, $re) = @$c;
	CtrDistTest::set_server($base, qq({"faults": [{"kind": "$kind"}]}));
	# (the only provider's breaker opens: the batches left wait for its
	# probe, whose failure counts for them; a short cooldown keeps it quick)
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{$p}'",
		pre => "SET ctr_dist.max_retries = 0; SET ctr_dist.breaker_cooldown = '100ms';");
	is($out, '1000|0|1000|0', "$p $kind: every row NULL, none invented");
	like($err, $re, "$p $kind: recognised");
	like($err, qr/1000 of 1000 personas got no prediction/, "$p $kind: WARNING counts the NULL rows");
}

# fatal for the provider: a bad key takes it out with a WARNING naming the setting
for my $p (qw(openai deepseek gemini))
{
	CtrDistTest::set_server($base, '{}');
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{$p}'",
		pre => "SET ctr_dist.${p}_model = 'no-such-model';");
	is($out, '1000|0|1000|0', "$p unknown model: rows NULL");
	like($err, qr/provider "$p" is taken out of this call: HTTP 404/, "$p unknown model: WARNING names provider and cause");
	like($err, qr/Check ctr_dist\.${p}_model/, "$p unknown model: hint names the setting");
	my $sent = CtrDistTest::stats($base)->{$p}{requests};
	ok($sent >= 1 && $sent <= 8, "$p unknown model: no request after the first answers ($sent sent, concurrency 8)");
}

# keys: never in the server log (debug5), NOTICEs, WARNINGs or errors
CtrDistTest::set_server($base, '{}');
# a key file holding a wrong key (a key file comes before the environment)
my $wrong = PostgreSQL::Test::Utils::tempdir() . '/wrong.key';
open(my $fh, '>', $wrong) or die;
print $fh "sk-wrong-key-9876\n";
close($fh);
chmod 0600, $wrong;
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'",
	pre => "SET ctr_dist.openai_api_key_file = '$wrong';");
like($err, qr/provider "openai" is taken out of this call: HTTP 401 invalid_api_key/, 'bad key: provider taken out');
unlike($err, qr/sk-wrong-key|9876/, 'bad key: not in the WARNING');
my $log = slurp_file($node->logfile);
ok(length($log) > 10000, 'server log at debug5 has content');
for my $key (qw(sk-test-openai sk-test-deepseek gm-test-gemini))
{
	unlike($log, qr/\Q$key\E/, "key $key never appears in the server log");
}
unlike($log, qr/sk-wrong-key/, 'the key from the key file never appears in the server log');
my $gem = CtrDistTest::stats($base);
ok(!grep({ /key sent in URL/ } @{ $gem->{violations} }), 'Gemini key never sent in the URL');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
