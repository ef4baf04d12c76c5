# ctr_dist.models(provider) (issue 15): the models each provider with a key
# offers, as its API lists them (Gemini in pages, only what can
# generateContent), OpenAI's shutdown dates, which model the settings name;
# superuser or a granted role; the engine's timeouts, retries and key rules;
# no workers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('models', keys => 1);
CtrDistTest::configure_providers($node, $base);
my ($ret, $out, $err, $st);

CtrDistTest::set_server($base, '{"providers": {"gemini": {"models_page_size": 2}}}');
is($node->safe_psql('postgres', q{
	SELECT string_agg(provider || ':' || model || ':' || coalesce(shutdown_date::text, '-') || ':' || in_use, ' ' ORDER BY provider, model)
	  FROM ctr_dist.models()}),
	'deepseek:deepseek-chat:-:false deepseek:deepseek-flash:-:true deepseek:deepseek-v4-flash:-:false '
	  . 'gemini:gemini-2.5-flash:-:false gemini:gemini-2.5-flash-lite:-:true gemini:gemini-2.5-pro:-:false '
	  . 'gemini:gemini-3.1-flash-lite:-:false '
	  . 'openai:gpt-4.1-mini:2027-01-14:false openai:gpt-4o-mini:2027-01-14:false openai:gpt-5-mini:2026-12-11:false '
	  . 'openai:gpt-6-luna:-:true openai:text-embedding-3-small:-:false',
	'every provider: its models, OpenAI\'s shutdown dates, the ones in use; Gemini only what generates');
$st = CtrDistTest::stats($base);
is($st->{gemini}{models_requests}, 3, 'Gemini\'s list came in 3 pages of 2');
is(join(',', map { $st->{$_}{requests} } qw(openai deepseek gemini)), '1,1,3', 'one GET each (Gemini: per page)');
is($node->safe_psql('postgres', q{
	SELECT display_name || '|' || input_token_limit || '|' || output_token_limit
	  FROM ctr_dist.models('gemini') WHERE model = 'gemini-2.5-flash-lite'}),
	'Gemini 2.5 Flash-Lite|1048576|65536', 'Gemini gives names and token limits');
is($node->safe_psql('postgres', "SELECT count(*) FROM ctr_dist.models('openai') WHERE input_token_limit IS NULL"),
	'5', 'OpenAI gives no token limits: NULL');

# the models the settings name now
is($node->safe_psql('postgres', q{
	SET ctr_dist.openai_model = 'gpt-5-mini';
	SELECT string_agg(model, ',') FROM ctr_dist.models('openai') WHERE in_use}), 'gpt-5-mini',
	'in_use follows the session\'s setting');

# errors
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM ctr_dist.models('mock')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: unknown provider "mock"/, 'the mock has no model list: 22023');
($ret, $out, $err) = $node->psql('postgres', "SELECT * FROM ctr_dist.models('claude')", extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/22023: unknown provider "claude"/, 'an unknown provider: 22023');

# a bad key: a WARNING for that provider, the others listed
CtrDistTest::set_server($base, '{"faults": [{"kind": "auth", "provider": "deepseek"}]}');
($ret, $out, $err) = $node->psql('postgres', 'SELECT provider, count(*) FROM ctr_dist.models() GROUP BY 1 ORDER BY 1');
is($out, "gemini|4\nopenai|5", 'a provider refusing the key: the others are listed');
like($err, qr/WARNING:  could not list the models of provider "deepseek": HTTP 401/, 'and a WARNING names it');
unlike($err, qr/sk-test/, 'no key in the message');

# transient errors are retried, as for predictions
CtrDistTest::set_server($base, '{"faults": [{"kind": "http_503", "provider": "openai", "first": 2}]}');
is($node->safe_psql('postgres', "SELECT count(*) FROM ctr_dist.models('openai')"), '5', '503s are retried');
is(CtrDistTest::stats($base)->{openai}{requests}, 3, 'two 503s, then the list');

# the request timeout holds, and a cancel ends it
CtrDistTest::set_server($base, '{"faults": [{"kind": "hang", "provider": "openai", "params": {"seconds": 30}}]}');
my $t0 = time;
($ret, $out, $err) = $node->psql('postgres',
	"SET ctr_dist.request_timeout = '500ms'; SET ctr_dist.max_retries = 0; SELECT count(*) FROM ctr_dist.models('openai')");
cmp_ok(time - $t0, '<', 10, 'a hanging server: the request timeout ends it');
like($err, qr/could not list the models of provider "openai": .*(?i:timeout|timed out)/, 'with the timeout as the reason');
$t0 = time;
($ret, $out, $err) = $node->psql('postgres', "SET statement_timeout = '1s'; SELECT count(*) FROM ctr_dist.models('openai')");
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout cancels it');
cmp_ok(time - $t0, '<', 5, 'within a second or so');
is($node->safe_psql('postgres', 'SELECT coalesce(sum(in_flight), 0) FROM ctr_dist.rate_limits'), '0',
	'nothing left in flight');

# a provider without a key is skipped; no workers are started
CtrDistTest::set_server($base, '{}');
my $nokey = CtrDistTest::new_node('models_nokey');
$nokey->safe_psql('postgres', qq{
	ALTER SYSTEM SET ctr_dist.openai_base_url = '$base/openai/v1'; SELECT pg_reload_conf();});
($ret, $out, $err) = $nokey->psql('postgres', 'SELECT count(*) FROM ctr_dist.models()');
is($out, '0', 'no key: nothing listed');
like($err, qr/skipping providers without an API key: openai, deepseek, gemini/, 'no key: NOTICE names them');
$nokey->stop;

# privileges: not PUBLIC; a granted role may
$node->safe_psql('postgres', 'CREATE ROLE viewer LOGIN; CREATE ROLE lister LOGIN; GRANT EXECUTE ON FUNCTION ctr_dist.models(text) TO lister;');
($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM ctr_dist.models()', extra_params => [ '-U', 'viewer' ]);
like($err, qr/permission denied for function models/, 'a role without the grant: permission denied');
($ret, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM ctr_dist.models('gemini')", extra_params => [ '-U', 'lister' ]);
is($out, '4', 'a granted role lists them');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'"), '0',
	'no worker was started');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
