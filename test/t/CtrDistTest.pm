# Shared set-up for the ctr_dist TAP tests: a cluster with the extension
# preloaded and the sample personas, and the local test provider server.
package CtrDistTest;

use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our $testdir = $ENV{CTR_DIST_TEST} // 'test';

# A started cluster with ctr_dist preloaded (preload => '' for none), the
# extension and the personas (fresh => 1: neither)
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	# keys come from the server's environment: ALTER SYSTEM + reload would make
	# PostgreSQL itself log "parameter ... changed to ..." with the value
	# (set for the rest of the test, so that restarts keep them)
	if ($opts{keys})
	{
		$ENV{OPENAI_API_KEY} = 'sk-test-openai';
		$ENV{DEEPSEEK_API_KEY} = 'sk-test-deepseek';
		$ENV{GEMINI_API_KEY} = 'gm-test-gemini';
	}
	else
	{
		delete @ENV{qw(OPENAI_API_KEY DEEPSEEK_API_KEY GEMINI_API_KEY)};
	}
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = '" . ($opts{preload} // 'ctr_dist') . "'\n"
		  . ($opts{conf} // '')
		  . ($opts{conf_fn} ? $opts{conf_fn}->($node) : ''));
	$node->start;
	return $node if $opts{fresh};	# no extension, no personas
	$node->safe_psql('postgres', 'CREATE EXTENSION ctr_dist');
	my ($ret, $out, $err) = $node->psql('postgres', undef,
		extra_params => [ '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$testdir/sample_personas.sql" ]);
	die "loading personas failed: $err" if $ret != 0;
	return $node;
}

# Start test/provider_server.py on a free port; returns (pid, base URL)
# (log => PATH: its request log, one JSON line per request)
sub start_provider_server
{
	my (%opts) = @_;
	my $dir = tempdir(CLEANUP => 1);
	my $portfile = "$dir/port";
	my @cmd = ('python3', "$testdir/provider_server.py", '--port', '0',
		'--port-file', $portfile, '--parent-pid', $$);
	push @cmd, '--config', $opts{config} if $opts{config};
	push @cmd, '--log', $opts{log} if $opts{log};
	push @cmd, '--log-prompts' if $opts{log_prompts};
	my $pid = fork();
	die "fork failed" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/server.out");
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or die "exec failed";
	}
	for (1 .. 200)
	{
		last if -s $portfile;
		usleep(50_000);
	}
	die "provider server did not start" unless -s $portfile;
	my $port = slurp_file($portfile);
	chomp $port;
	return ($pid, "http://127.0.0.1:$port");
}

sub stop_provider_server
{
	my ($pid) = @_;
	kill 'TERM', $pid;
	waitpid($pid, 0);
}

# GET or POST a control URL of the provider server; returns the body
sub control
{
	my ($base, $path, $body) = @_;
	my @cmd = ('curl', '-sS', '--max-time', '10');
	push @cmd, ('-X', 'POST', '-H', 'Content-Type: application/json', '--data-binary', $body)
	  if defined $body;
	my $out = `@{[ join ' ', map { "'$_'" } (@cmd, "$base$path") ]}`;
	die "control $path failed" if $? != 0;
	return $out;
}

1;

package CtrDistTest;

# Point the three providers at the test server (keys: new_node(keys => 1))
sub configure_providers
{
	my ($node, $base) = @_;
	$node->safe_psql('postgres', qq{
		ALTER SYSTEM SET ctr_dist.openai_base_url = '$base/openai/v1';
		ALTER SYSTEM SET ctr_dist.deepseek_base_url = '$base/deepseek';
		ALTER SYSTEM SET ctr_dist.gemini_base_url = '$base/gemini/v1beta';
		SELECT pg_reload_conf();
	});
}

# A persona table whose intended answers the test server knows: 1 for 'CLICK'
sub create_tagged_personas
{
	my ($node, $name, $n) = @_;
	$node->safe_psql('postgres', qq{
		CREATE TABLE $name (id int PRIMARY KEY, age int, occupation text, tag text);
		INSERT INTO $name
		SELECT g, 18 + g % 60, (ARRAY['nurse','teacher','driver','coder'])[1 + g % 4],
		       CASE WHEN (g * 7919) % 13 < 5 THEN 'CLICK' ELSE 'pass' END
		  FROM generate_series(1, $n) g;
	});
}

# Run ctr_predict and compare every row with the server's intended answer.
# Returns (psql status, "rows|exact|nulls|mock", stderr).
sub run_exact
{
	my ($node, $table, $args, %opts) = @_;
	my $sql = ($opts{pre} // '') . qq{
		SELECT count(*), count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int),
		       count(*) FILTER (WHERE r.click IS NULL), count(*) FILTER (WHERE r.provider = 'mock')
		  FROM ctr_predict('$table', $args) r JOIN $table t ON t.id::text = r.persona_key;
	};
	my ($ret, $out, $err) = $node->psql('postgres', $sql, timeout => $opts{timeout} // 180);
	return ($ret, $out, $err);
}

sub stats
{
	my ($base) = @_;
	require JSON::PP;
	return JSON::PP::decode_json(control($base, '/_control/stats'));
}

# Is pg_cron installed for the PostgreSQL on PATH?  Not every major has a
# pg_cron package (19 from experimental has none): tests skip their pg_cron
# parts without it.
sub have_pg_cron
{
	my $pkglibdir = `pg_config --pkglibdir`;
	chomp $pkglibdir;
	return -e "$pkglibdir/pg_cron.so";
}

sub set_server
{
	my ($base, $json) = @_;
	control($base, '/_control/config', $json);
	control($base, '/_control/reset', '{}');
}

1;
