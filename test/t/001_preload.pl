# ctr_dist loads through shared_preload_libraries and answers with the mock
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $node = CtrDistTest::new_node('preload');

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), 'ctr_dist',
	'cluster runs with ctr_dist preloaded');

# reserved prefix is active from server start, before any use
my ($ret, $out, $err) = $node->psql('postgres', 'SET ctr_dist.no_such_setting = 1');
like($err, qr/reserved prefix/, 'ctr_dist prefix is reserved at start');

($ret, $out, $err) = $node->psql('postgres',
	"SELECT count(*), count(click), min(ord), max(ord), count(DISTINCT provider)
	   FROM ctr_predict('personas', 50, ad => 'Premium fitness subscription - first month free')");
is($ret, 0, 'ctr_predict runs');
is($out, '1200|1200|1|1200|1', 'one answered row per persona, ord 1..N, one provider');
like($err, qr/offline mock predictor is answering/, 'NOTICE says the mock answers');
like($err, qr/1200 personas in 24 batches: mock=24/, 'NOTICE reports batches per provider');

# the mock needs no background worker
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'"),
	'0', 'no worker left behind');

# same answers in a second session (deterministic)
my $a = $node->safe_psql('postgres',
	"SELECT string_agg(click::text, '' ORDER BY ord) FROM ctr_predict('personas', 50, ad => 'Gaming laptop')");
my $b = $node->safe_psql('postgres',
	"SELECT string_agg(click::text, '' ORDER BY ord) FROM ctr_predict('personas', 13, ad => 'Gaming laptop')");
is($a, $b, 'mock answers do not depend on session or batch size');

$node->stop;
done_testing();
