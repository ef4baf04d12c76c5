# Context and output limits, and retries that can succeed (issue 15): a
# batch too large for the model's context (OpenAI context_length_exceeded,
# Gemini's input token count, DeepSeek's context length) or for its output
# limit is sent again in halves, never "a bug in ctr_dist", never NULL while
# a smaller request would do; the output limit has room for answers written
# with spaces, even on a character-level engine; an unusable answer is not
# asked again as it was: another provider first, else in halves.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('limits', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 500);
$node->safe_psql('postgres', q{
	CREATE TABLE wordy (id int PRIMARY KEY, bio text, tag text);
	INSERT INTO wordy
	SELECT g, 'enjoys ' || repeat('long walks and quiet evenings, ', 12) || g,
	       CASE WHEN (g * 7919) % 13 < 5 THEN 'CLICK' ELSE 'pass' END
	  FROM generate_series(1, 400) g;});
my ($ret, $out, $err, $st);

# ---- a 4,096-token context (a llama.cpp server's): 50 personas do not fit ----
for my $case (
	[ 'openai', 'local-4k', 'context' ],
	[ 'deepseek', 'local-4k', 'context' ],
	[ 'gemini', 'local-4k', 'input' ])
{
	my ($p, $model, $what) = @$case;
	CtrDistTest::set_server($base, qq({"models": {"$p": ["$model"]},
		"model_info": {"$model": {"context": 4096}}}));
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'wordy', "50, ad => 'Gym', providers => '{$p}'",
		pre => "SET ctr_dist.${p}_model = '$model';");
	is($out, '400|400|0|0', "$p, 4,096-token context: every prediction exact, none NULL");
	unlike($err, qr/WARNING/, "$p: no WARNING, no \"bug in ctr_dist\"");
	like($err, qr/too large [1-9]\d*, .*splits [1-9]/, "$p: the batches that did not fit were split");
	$st = CtrDistTest::stats($base);
	ok(grep({ /(context|input) of local-4k (exceeded|over its limit)/ } @{ $st->{violations} }),
		"$p: the server did refuse the whole batches");
}

# ---- an output limit below the answer's room: split until it fits ----
CtrDistTest::set_server($base, '{"model_info": {"gpt-6-luna": {"max_output": 100}}}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'");
is($out, '500|500|0|0', 'max output 100 tokens: exact, in smaller requests');
like($err, qr/too large [1-9]\d*, .*splits [1-9]/, 'max output: split');
unlike($err, qr/WARNING/, 'max output: no WARNING');

# ---- one persona too large for the model: that batch fails over, the rest is answered ----
$node->safe_psql('postgres', "UPDATE tagged SET occupation = repeat('x', 20000) WHERE id = 7");
CtrDistTest::set_server($base, '{"model_info": {"gpt-6-luna": {"context": 4096}}}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai,deepseek}'");
is($out, '500|500|0|0', 'a persona over the context: its batch went to the other provider');
$node->safe_psql('postgres', "UPDATE tagged SET occupation = 'nurse' WHERE id = 7");

# ---- answers with spaces, one token per character: the limit has room ----
for my $n (11, 50, 200)
{
	CtrDistTest::set_server($base, '{"answer_spacing": true, "token_unit": "char"}');
	($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "$n, ad => 'Gym'",
		pre => 'SET ctr_dist.max_retries = 0;');
	is($out, '500|500|0|0', "\"[1, 0, ...]\" at one token per character, batch $n: never cut off");
	like($err, qr/bad answers 0, .*splits 0,/, "batch $n: no answer was cut, nothing split");
}

# ---- an unusable answer is not asked again as it was ----
# the only provider: the halves are new requests, never the same one again
CtrDistTest::set_server($base, '{"faults": [{"kind": "wrong_length", "first": 6}]}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym', providers => '{openai}'");
is($out, '500|500|0|0', 'bad answers, one provider: exact');
$st = CtrDistTest::stats($base);
is($st->{openai}{identical_repeats}, 0, 'bad answers, one provider: no request was sent twice');
like($err, qr/bad answers 6, .*splits 6,/, 'bad answers, one provider: each one split');
# several providers: another one answers first
CtrDistTest::set_server($base, '{"faults": [{"kind": "wrong_length", "provider": "openai", "first": 3}]}');
($ret, $out, $err) = CtrDistTest::run_exact($node, 'tagged', "50, ad => 'Gym'");
is($out, '500|500|0|0', 'bad answers, three providers: exact');
like($err, qr/bad answers 3, .*splits 0, failovers 3,/, 'bad answers, three providers: another provider answered each');
is(CtrDistTest::stats($base)->{openai}{identical_repeats}, 0, 'and none was sent to openai again');

# ---- the mock is never split and keeps reading the same text ----
($ret, $out, $err) = $node->psql('postgres',
	"SELECT count(*), count(click) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{mock}')");
is($out, '500|500', 'the mock answers every persona');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
