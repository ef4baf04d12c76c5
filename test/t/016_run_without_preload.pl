# ctr_dist.run works in any session, also where ctr_dist is not preloaded
# and nothing has loaded it yet: a fresh session (a superuser's and a
# role's without superuser, who may not LOAD it), one that set ctr_dist
# settings before the library knew them, and a pg_cron job (an @reboot job,
# so that the test need not wait for the next minute).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $node = CtrDistTest::new_node('run_without_preload', preload => 'pg_cron',
	conf_fn => sub {
		my $n = shift;
		return "cron.database_name = 'postgres'\ncron.host = '" . $n->host . "'\n";
	});
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE ROLE analyst LOGIN;
	GRANT SELECT ON personas TO analyst;
	GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]),
	                          ctr_dist.run(regclass, integer, text, text, text[], text) TO analyst;
	GRANT SELECT, INSERT, UPDATE ON ctr_dist.runs, ctr_dist.predictions, ctr_dist.run_providers TO analyst;
	GRANT USAGE ON SEQUENCE ctr_dist.runs_id_seq TO analyst;
	GRANT USAGE ON SCHEMA cron TO analyst;
});

# every psql call below is a fresh session that has not loaded ctr_dist
my $run = q{SELECT ctr_dist.run('personas', 50, ad => 'Gym') AS id \gset
SELECT status || ' ' || platform || ' ' || personas FROM ctr_dist.runs WHERE id = :id};
my $loaded = q{SELECT count(*) FROM pg_settings WHERE name = 'ctr_dist.platform'};
is($node->safe_psql('postgres', $loaded), '0', 'a fresh session has not loaded ctr_dist');
my ($ret, $out, $err) = $node->psql('postgres', $run);
is($out, 'succeeded facebook 1200', 'fresh session, superuser: the run succeeds with the default platform');
unlike($err, qr/ERROR|WARNING/, 'fresh session, superuser: no error, no warning');
($ret, $out, $err) = $node->psql('postgres', $run, extra_params => [ '-U', 'analyst' ]);
is($out, 'succeeded facebook 1200', 'fresh session, a role without superuser: the run succeeds');
($ret, $out, $err) = $node->psql('postgres', "SET ctr_dist.platform = 'tiktok'; $run");
is($out, 'succeeded tiktok 1200', 'a setting made before the library was loaded is the one the run uses');

# pg_cron runs the job in a session of its own, at start for @reboot
$node->safe_psql('postgres',
	q{SELECT cron.schedule('ctr-at-start', '@reboot', $$SELECT ctr_dist.run('personas', 50, ad => 'Gym', label => 'cron')$$)},
	extra_params => [ '-U', 'analyst' ]);
$node->restart;
ok($node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')}),
	'pg_cron ran the job at start');
is($node->safe_psql('postgres', q{SELECT status || ' ' || coalesce(return_message, '') FROM cron.job_run_details}),
	'succeeded 1 row', 'pg_cron job: succeeded');
is($node->safe_psql('postgres', q{SELECT status || ' ' || personas || ' ' || run_by FROM ctr_dist.runs WHERE label = 'cron'}),
	'succeeded 1200 analyst', 'pg_cron job: the run is stored, run by the role that scheduled it');

$node->stop;
done_testing();
