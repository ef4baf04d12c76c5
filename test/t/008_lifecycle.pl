# Extension lifecycle: pg_dump and restore keep every stored run and
# prediction; ALTER EXTENSION ctr_dist UPDATE from 0.1.0 keeps them too, and
# leaves exactly the objects a fresh install of the default version makes;
# the upgrade script's hazard fixes hold.  The offline mock answers (no keys).
use strict;
use warnings;
use File::Compare;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $node = CtrDistTest::new_node('lifecycle');
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $default_version = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'ctr_dist'");

# what must survive: counts, every row of the three tables, the sequence
# (run_providers: its 0.1.0 columns; 0.2.0 adds tokens_cached and
# tokens_reasoning, 0 for the runs stored before them)
sub fingerprint
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
		SELECT (SELECT count(*) FROM ctr_dist.runs) || ' runs, '
		    || (SELECT count(*) FROM ctr_dist.predictions) || ' predictions, '
		    || (SELECT count(*) FROM ctr_dist.run_providers) || ' run_providers; '
		    || (SELECT md5(coalesce(string_agg(r::text, E'\n' ORDER BY r.id), '')) FROM ctr_dist.runs r) || ' '
		    || (SELECT md5(coalesce(string_agg(p::text, E'\n' ORDER BY p.run_id, p.ord), '')) FROM ctr_dist.predictions p) || ' '
		    || (SELECT md5(coalesce(string_agg((rp.run_id, rp.provider, rp.model, rp.batches, rp.requests, rp.retries,
		                                     rp.failovers, rp.tokens_in, rp.tokens_out, rp.cost_usd, rp.seconds)::text,
		                                    E'\n' ORDER BY rp.run_id, rp.provider), '')) FROM ctr_dist.run_providers rp) || '; last id '
		    || (SELECT last_value FROM ctr_dist.runs_id_seq)});
}

# two succeeded runs (different ads, labels) and a failed one
sub store_runs
{
	my ($db, $table) = @_;
	$node->safe_psql($db, qq{
		CREATE FUNCTION boom(int) RETURNS text LANGUAGE plpgsql AS \$\$
		BEGIN IF \$1 = 150 THEN RAISE EXCEPTION 'disk on fire'; END IF; RETURN 'x'; END \$\$;
		CREATE VIEW fragile AS SELECT id, boom(id) AS note FROM $table;
		SELECT ctr_dist.run('$table', 50, ad => 'Premium fitness subscription - first month free', label => 'gym');
		SELECT ctr_dist.run('$table', 40, ad => 'Retirement planning webinar', platform => 'linkedin', label => 'money');
		SET client_min_messages = error;
		SELECT ctr_dist.run('fragile', 50, ad => 'Gym');});
	my $n = $node->safe_psql($db, "SELECT count(*) FROM $table");
	is($node->safe_psql($db, "SELECT string_agg(status || ':' || personas, ',' ORDER BY id) FROM ctr_dist.runs"),
		"succeeded:$n,succeeded:$n,failed:0", "$db: two runs stored and a failed one");
}

# dump DB (format: custom through pg_restore, or plain through psql) and
# restore it into a new database; returns the new database's name
sub dump_restore
{
	my ($db, $format) = @_;
	my $new = "${db}_$format";
	my $file = "$tmp/$db.$format";
	$node->safe_psql('postgres', "CREATE DATABASE $new");
	if ($format eq 'custom')
	{
		$node->command_ok([ 'pg_dump', '-Fc', '-f', $file, '-d', $db ], "$db: pg_dump -Fc");
		$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new, $file ], "$db: pg_restore into $new");
	}
	else
	{
		$node->command_ok([ 'pg_dump', '-f', $file, '-d', $db ], "$db: pg_dump (plain)");
		$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', $file, '-d', $new ],
			"$db: psql into $new");
	}
	return $new;
}

# ---------------------------------------------------------------------
# pg_dump keeps the stored runs of a default-version install
# ---------------------------------------------------------------------
store_runs('postgres', 'personas');
my $before = fingerprint('postgres');
like($before, qr/^3 runs, 2400 predictions, \d+ run_providers; /, 'runs stored: ' . $before);
foreach my $format ('custom', 'plain')
{
	my $new = dump_restore('postgres', $format);
	is(fingerprint($new), $before, "$format dump: every run, prediction and provider row restored, sequence too");
	# the sequence goes on where it was: no duplicate run id
	is($node->safe_psql($new, "SELECT ctr_dist.run('personas', 100, ad => 'Gym', label => 'after')"),
		$node->safe_psql('postgres', 'SELECT last_value + 1 FROM ctr_dist.runs_id_seq'),
		"$format dump: a new run in the restored database takes the next id");
}

# ---------------------------------------------------------------------
# ALTER EXTENSION UPDATE from 0.1.0 keeps the stored runs
# ---------------------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('updated', q{
	CREATE EXTENSION ctr_dist VERSION '0.1.0';
	CREATE TABLE people (id int PRIMARY KEY, age int, occupation text, interests text);
	INSERT INTO people
	SELECT g, 18 + g % 60, (ARRAY['nurse','teacher','driver','coder'])[1 + g % 4],
	       (ARRAY['fitness, running','retirement, savings','travel','games'])[1 + g % 3]
	  FROM generate_series(1, 300) g;});
is($node->safe_psql('updated', "SELECT extversion || ' ' || (extconfig IS NULL) FROM pg_extension WHERE extname = 'ctr_dist'"),
	'0.1.0 true', 'CREATE EXTENSION VERSION 0.1.0 installs 0.1.0, which marks no table for pg_dump');
store_runs('updated', 'people');
$before = fingerprint('updated');
$node->safe_psql('updated', 'ALTER EXTENSION ctr_dist UPDATE');
is($node->safe_psql('updated', "SELECT extversion FROM pg_extension WHERE extname = 'ctr_dist'"),
	$default_version, "ALTER EXTENSION UPDATE reaches the default version $default_version");
is(fingerprint('updated'), $before, 'after the update: every run, prediction and provider row kept');
is($node->safe_psql('updated', 'SELECT count(*) || \' \' || sum(tokens_cached + tokens_reasoning) FROM ctr_dist.run_providers'),
	'3 0', 'after the update: the runs stored before it count no cached or reasoning tokens');
is($node->safe_psql('updated', "SELECT ctr_dist.run('people', 100, ad => 'Gym', label => 'after')"),
	'4', 'after the update: a new run takes the next id');
$before = fingerprint('updated');
is(fingerprint(dump_restore('updated', 'custom')), $before, 'after the update: pg_dump keeps the runs too');

# ---------------------------------------------------------------------
# an updated install has exactly the objects of a fresh one
# ---------------------------------------------------------------------
# pg_dump --binary-upgrade writes out every member of an extension (a normal
# dump writes just CREATE EXTENSION); the OIDs it pins and the transaction
# ids it sets differ between databases, and so does the extension's list of
# configuration tables (OIDs), which is compared by name below
sub members
{
	my ($db) = @_;
	my $file = "$tmp/members.$db.sql";
	$node->command_ok([ 'pg_dump', '--binary-upgrade', '--schema-only', '-f', "$file.raw", '-d', $db ],
		"$db: pg_dump --binary-upgrade --schema-only");
	open(my $in, '<', "$file.raw") or die;
	open(my $out, '>', $file) or die;
	while (<$in>)
	{
		next if /binary_upgrade_set_next_|^SET relfrozenxid |^WHERE oid = '\d+';$|^\\(un)?restrict |^--/;
		s/(binary_upgrade_create_empty_extension\('ctr_dist'.*?)'\{[0-9,]*\}'/$1'{config OIDs}'/;
		print $out $_;
	}
	close($out);
	my $config = $node->safe_psql($db, q{
		SELECT extconfig::regclass[]::text || ' ' || array_to_string(extcondition, '|')
		  FROM pg_extension WHERE extname = 'ctr_dist'});
	return ($file, $config);
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh; CREATE DATABASE stepped');
$node->safe_psql('fresh', 'CREATE EXTENSION ctr_dist');
$node->safe_psql('stepped', "CREATE EXTENSION ctr_dist VERSION '0.1.0'; ALTER EXTENSION ctr_dist UPDATE");
my ($fresh, $fresh_config) = members('fresh');
my ($stepped, $stepped_config) = members('stepped');
ok(compare($fresh, $stepped) == 0, 'updated from 0.1.0 and fresh: the same objects, definitions, owners, grants and comments')
  or diag(`diff -u $fresh $stepped | head -n 80`);
my $dump = slurp_file($fresh);
ok($dump =~ /CREATE TABLE ctr_dist\.runs / && $dump =~ /CREATE VIEW ctr_dist\.run_summary /
	  && $dump =~ /CREATE FUNCTION ctr_dist\.purge_runs/ && $dump =~ /CREATE FUNCTION public\.ctr_predict/,
	'the member dump has the members');
is($stepped_config, $fresh_config, 'the same tables are dumped with their data: ' . $fresh_config);

# ---------------------------------------------------------------------
# hazards fixed by the upgrade script, in a fresh and an updated install
# ---------------------------------------------------------------------
# purge_runs under a search_path that puts a schema of another role ahead of
# pg_catalog: that role's clock_timestamp() and < must not run
$node->safe_psql('postgres', q{
	CREATE ROLE mallory;
	CREATE SCHEMA mal AUTHORIZATION mallory;});
$node->safe_psql('postgres', q{
	SET ROLE mallory;
	CREATE TABLE mal.ran (what text);
	GRANT INSERT ON mal.ran TO PUBLIC;
	CREATE FUNCTION mal.clock_timestamp() RETURNS timestamptz LANGUAGE sql
	    AS $$ INSERT INTO mal.ran VALUES ('clock_timestamp'); SELECT 'infinity'::timestamptz $$;
	CREATE FUNCTION mal.lt(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql
	    AS $$ INSERT INTO mal.ran VALUES ('<'); SELECT true $$;
	CREATE OPERATOR mal.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = mal.lt);});
my $kept = $node->safe_psql('postgres', "SELECT count(*) FROM ctr_dist.runs WHERE status <> 'running'");
is($node->safe_psql('postgres', q{
	SET search_path = mal, pg_catalog;
	SELECT ctr_dist.purge_runs('1 day');}), '0', 'purge_runs under a hostile search_path: nothing purged');
is($node->safe_psql('postgres', 'SELECT count(*) FROM mal.ran'), '0',
	'purge_runs runs none of the functions or operators of a schema ahead of pg_catalog');
is($node->safe_psql('postgres', "SELECT count(*) FROM ctr_dist.runs WHERE status <> 'running'"), $kept,
	'and every run is still there');
is($node->safe_psql('updated', q{
	SELECT array_to_string(proconfig, ',') FROM pg_proc
	 WHERE oid = 'ctr_dist.purge_runs(interval)'::regprocedure}), 'search_path=pg_catalog, pg_temp',
	'updated from 0.1.0: purge_runs has its search_path pinned');

$node->stop;
done_testing();
