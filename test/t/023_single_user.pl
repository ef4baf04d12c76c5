# A stand-alone backend (postgres --single: what one runs to repair a
# cluster) has no postmaster and no background workers: ctr_predict still
# answers, from the calling backend, with the providers it has keys for,
# with and without ctr_dist.max_workers = 0.
use strict;
use warnings;
use IPC::Run qw(run);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $node = CtrDistTest::new_node('single', keys => 1);
CtrDistTest::configure_providers($node, $base);
CtrDistTest::create_tagged_personas($node, 'tagged', 200);
$node->stop;

for my $setting ('', 'SET ctr_dist.max_workers = 0;')
{
	my $sql = "$setting\nSELECT count(*), count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int), "
	  . "count(DISTINCT r.provider) FROM ctr_predict('tagged', 20, ad => 'Shoes') r JOIN tagged t ON t.id::text = r.persona_key;\n";
	my ($out, $err);
	run([ 'postgres', '--single', '-D', $node->data_dir, 'postgres' ], '<', \$sql, '>', \$out, '2>', \$err);
	like($out, qr/count = "200".*count = "200".*count = "3"/s,
		"stand-alone backend" . ($setting ? ' with max_workers = 0' : '') . ': 200 exact answers from 3 providers')
	  or diag("out: $out\nerr: $err");
	unlike($err, qr/ERROR|epoll/, 'no error') or diag($err);
}

CtrDistTest::stop_provider_server($server);
done_testing();
