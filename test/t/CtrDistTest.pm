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

# A started cluster with ctr_dist preloaded, the extension and the personas
sub new_node
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = '" . ($opts{preload} // 'ctr_dist') . "'\n"
		  . ($opts{conf} // ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION ctr_dist');
	my ($ret, $out, $err) = $node->psql('postgres', undef,
		extra_params => [ '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$testdir/sample_personas.sql" ]);
	die "loading personas failed: $err" if $ret != 0;
	return $node;
}

# Start test/provider_server.py on a free port; returns (pid, base URL)
sub start_provider_server
{
	my (%opts) = @_;
	my $dir = tempdir(CLEANUP => 1);
	my $portfile = "$dir/port";
	my @cmd = ('python3', "$testdir/provider_server.py", '--port', '0',
		'--port-file', $portfile, '--parent-pid', $$);
	push @cmd, '--config', $opts{config} if $opts{config};
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
