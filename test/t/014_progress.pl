# ctr_dist.progress shows the calls of the database it is read in, and
# only those: a relation OID means something only in its own database's
# catalog.  Two databases, one call running in each at once.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('progress', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 20);
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', q{
	CREATE EXTENSION ctr_dist;
	CREATE TABLE other_personas (id int PRIMARY KEY, tag text);
	INSERT INTO other_personas SELECT g, 'pass' FROM generate_series(1, 30) g;
});

# each call is one request the server holds for 4 s
CtrDistTest::set_server($base, '{"latency_ms": 4000}');
my @calls;
for my $c ([ 'postgres', 'tagged' ], [ 'other', 'other_personas' ])
{
	my ($in, $out, $err) = ('', '', '');
	push @calls, IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr($c->[0]), '-c',
		  "SELECT count(*) FROM ctr_predict('$c->[1]', 50, ad => 'Gym', providers => '{openai}')" ],
		\$in, \$out, \$err, IPC::Run::timeout(60));
}

ok($node->poll_query_until('postgres', "SELECT count(*) > 0 FROM ctr_dist.progress"), 'postgres: its call shows');
ok($node->poll_query_until('other', "SELECT count(*) > 0 FROM ctr_dist.progress"), 'other: its call shows');
my $view = q{SELECT string_agg(relation::text || ' ' || personas_total, ',') FROM ctr_dist.progress};
is($node->safe_psql('postgres', $view), 'tagged 20', 'postgres sees only its own call, under its name');
is($node->safe_psql('other', $view), 'other_personas 30', 'other sees only its own call, under its name');

$_->finish for @calls;
is($node->safe_psql('postgres', 'SELECT count(*) FROM ctr_dist.progress'), '0', 'no call left in progress');

$node->stop;
CtrDistTest::stop_provider_server($server);
done_testing();
