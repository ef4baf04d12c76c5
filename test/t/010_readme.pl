# The README's SQL examples run, and print what the README shows.
#
# Every ```sql block of README.md runs, in README order, as one psql script
# (psql meta-commands such as \i and \c work; relative paths are relative to
# the repository's root), as a superuser, in database postgres of a cluster
# with shared_preload_libraries = 'pg_cron,ctr_dist' and the three providers
# pointed at the test provider server.  Other blocks (sh, output, config)
# are not run.  An HTML comment on the line right before a block says more:
#
#   <!-- readme-test: skip: REASON -->   not run; REASON says why
#   <!-- readme-test: OPTIONS -->        run with, separated by spaces:
#       db=NAME      in database NAME, created empty when first used
#       personas     with the sample personas (test/sample_personas.sql)
#                    loaded into that database when it is created
#       nopreload    also on a fresh cluster without shared_preload_libraries
#       keydir       /etc/postgresql/ctr_dist, where the README keeps key
#                    files, is a directory of the test's (it cannot write
#                    /etc); the only change made to the block's text
#       before: SQL  (last) run SQL first: what the example assumes exists
#
# What the README shows inside a ```sql block is expected output, not SQL:
#   - messages: lines starting with NOTICE:, WARNING:, ERROR:, DETAIL:,
#     HINT: or INFO: (indented lines after one continue it); they must
#     appear in psql's messages in that order (others may come between);
#     token counts, costs and waits are normalised, as they vary with the
#     prompt and the timing; a block that shows no ERROR must raise none;
#   - result rows: a header line, a ----+---- line, rows and "(N rows)",
#     which must appear as such in psql's aligned output.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my $readme = "$CtrDistTest::testdir/../README.md";
my $keydir_readme = '/etc/postgresql/ctr_dist';

# ---- the blocks ----

my @blocks;
{
	my @lines = split /\n/, slurp_file($readme);
	my $marker;
	for (my $i = 0; $i < @lines; $i++)
	{
		if ($lines[$i] =~ /^<!-- readme-test: (.*?) -->$/)
		{
			$marker = $1;
			die "README.md line " . ($i + 1) . ": a readme-test marker must come right before a fenced block"
			  unless $i + 1 < @lines && $lines[ $i + 1 ] =~ /^```/;
			next;
		}
		next unless $lines[$i] =~ /^```(\S*)\s*$/;
		my %b = (lang => $1, line => $i + 2, body => []);
		for ($i++; $i < @lines && $lines[$i] !~ /^```\s*$/; $i++)
		{
			push @{ $b{body} }, $lines[$i];
		}
		if (defined $marker)
		{
			if ($marker =~ /^skip:\s*(.+)$/)
			{
				$b{skip} = $1;
			}
			else
			{
				$b{before} = $1 if $marker =~ s/\s*before:\s*(.*)$//;
				for my $opt (split ' ', $marker)
				{
					if ($opt =~ /^db=(\w+)$/) { $b{db} = $1; }
					elsif ($opt =~ /^(personas|nopreload|keydir)$/) { $b{$1} = 1; }
					else { die "README.md line $b{line}: unknown readme-test option '$opt'"; }
				}
				die "README.md line $b{line}: only sql blocks run" if $b{lang} ne 'sql';
			}
		}
		$marker = undef;
		push @blocks, \%b if $b{lang} eq 'sql';
	}
}
ok(scalar(grep { !$_->{skip} } @blocks) >= 5, 'README.md has SQL examples to run');

# split a block into its SQL, the messages and the result rows it shows
sub parse_block
{
	my ($b) = @_;
	my (@sql, @msgs, @tables);
	my @body = @{ $b->{body} };
	for (my $j = 0; $j < @body; $j++)
	{
		my $l = $body[$j];
		if ($l =~ /^(NOTICE|WARNING|ERROR|DETAIL|HINT|INFO):\s+(.*)$/)
		{
			my $m = "$1: $2";
			while ($j + 1 < @body && $body[ $j + 1 ] =~ /^\s+(\S.*)$/)
			{
				$m .= " $1";
				$j++;
			}
			push @msgs, $m;
			next;
		}
		if ($j + 1 < @body && $body[ $j + 1 ] =~ /^-+(\+-+)*$/ && $l !~ /;/)
		{
			my $k = $j + 2;
			$k++ while $k < @body && $body[$k] !~ /^\(\d+ rows?\)$/;
			die "README.md line $b->{line}: result rows without a (N rows) line" if $k >= @body;
			push @tables, [ @body[ $j .. $k ] ];
			$j = $k;
			next;
		}
		push @sql, $l;
	}
	return (join("\n", @sql) . "\n", \@msgs, \@tables);
}

# ---- comparing ----

sub normalise
{
	my ($m) = @_;
	$m =~ s/\s+/ /g;
	$m =~ s/ $//;
	$m =~ s/tokens in \d+ \(cached \d+\), out \d+ \(reasoning \d+\), estimated cost \$\d+\.\d+/tokens in N (cached N), out N (reasoning N), estimated cost \$N/g;
	$m =~ s/rate-limit waits \d+\.\d+ batch-s/rate-limit waits N batch-s/g;
	return $m;
}

# psql's messages, one string each (a message's later lines joined)
sub messages
{
	my ($stderr) = @_;
	my @m;
	for my $l (split /\n/, $stderr)
	{
		$l =~ s/^psql:[^:]*:\d+: //;
		if ($l =~ /^(?:[A-Z]+|LINE \d+):\s/)
		{
			push @m, $l;
		}
		elsif (@m)
		{
			$m[-1] .= " $l";
		}
	}
	return map { normalise($_) } @m;
}

# ---- the clusters ----

my ($server, $base) = CtrDistTest::start_provider_server();
my $keydir = tempdir(CLEANUP => 1);
chmod 0700, $keydir;
for ([ 'openai.key', 'sk-test-openai' ], [ 'gemini.key', 'gm-test-gemini' ])
{
	my ($file, $key) = @$_;
	open(my $fh, '>', "$keydir/$file") or die;
	print $fh "$key\n";
	close($fh);
	chmod 0600, "$keydir/$file";
}
my $providers = "ctr_dist.openai_base_url = '$base/openai/v1'\n"
  . "ctr_dist.deepseek_base_url = '$base/deepseek'\n"
  . "ctr_dist.gemini_base_url = '$base/gemini/v1beta'\n";
my $have_cron = CtrDistTest::have_pg_cron();    # without it, no pg_cron block
my %nodes = (
	preloaded => CtrDistTest::new_node('readme', fresh => 1, preload => $have_cron ? 'pg_cron,ctr_dist' : 'ctr_dist',
		conf => $providers . "cron.database_name = 'postgres'\n"),
	'not preloaded' => CtrDistTest::new_node('readme_nopre', fresh => 1, preload => '',
		conf => $providers));
my %dbs;

sub run_block
{
	my ($cfg, $b) = @_;
	my $node = $nodes{$cfg};
	my $db = $b->{db} // 'postgres';
	my $what = "README.md line $b->{line} ($cfg)";
	my ($sql, $msgs, $tables) = parse_block($b);

	if ($db ne 'postgres' && !$dbs{$cfg}{$db}++)
	{
		$node->safe_psql('postgres', "CREATE DATABASE $db");
	}
	if ($b->{personas} && !$dbs{$cfg}{"$db personas"}++)
	{
		$node->safe_psql($db, undef, extra_params => [ '-q', '-f', "$CtrDistTest::testdir/sample_personas.sql" ]);
	}
	if ($b->{keydir})
	{
		ok(index($sql, $keydir_readme) >= 0, "$what: the block uses $keydir_readme");
		$sql =~ s/\Q$keydir_readme\E/$keydir/g;
		$_ =~ s/\Q$keydir_readme\E/$keydir/g for @$msgs;
	}
	$node->safe_psql($db, $b->{before}) if $b->{before};

	my $want_error = grep { /^ERROR:/ } @$msgs;
	my ($ret, $out, $err) = $node->psql($db, $sql,
		on_error_stop => !$want_error,
		timeout => 300,
		extra_params => [ '-P', 'format=aligned', '-P', 'tuples_only=off' ]);
	my @got = messages($err);
	if (!$want_error)
	{
		is($ret, 0, "$what: runs") or diag($err);
		is(scalar(grep { /^ERROR:/ } @got), 0, "$what: raises no error") or diag($err);
	}

	# the messages shown, in order
	my $at = 0;
	for my $m (map { normalise($_) } @$msgs)
	{
		my ($found) = grep { $got[$_] eq $m } $at .. $#got;
		ok(defined $found, "$what: prints \"$m\"") or diag("psql printed:\n" . join("\n", @got));
		$at = $found + 1 if defined $found;
	}

	# the rows shown
	my $stdout = join("\n", map { s/\s+$//r } split(/\n/, $out));
	for my $t (@$tables)
	{
		my $rows = join("\n", map { s/\s+$//r } @$t);
		ok(index("\n$stdout\n", "\n$rows\n") >= 0, "$what: shows the rows\n$rows") or diag("psql printed:\n$out");
	}
}

# psql's \i and relative paths in the README start from the repository's root
chdir "$CtrDistTest::testdir/.." or die;
for my $b (@blocks)
{
	if ($b->{skip})
	{
		note("README.md line $b->{line}: skipped: $b->{skip}");
		next;
	}
	if (!$have_cron && grep { /\bcron\./ } @{ $b->{body} })
	{
		note("README.md line $b->{line}: skipped: pg_cron is not installed for this PostgreSQL");
		next;
	}
	run_block('preloaded', $b);
	run_block('not preloaded', $b) if $b->{nopreload};
}

$_->stop for values %nodes;
CtrDistTest::stop_provider_server($server);
done_testing();
