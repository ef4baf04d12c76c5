# API keys where 009_keys does not look: the texts that come with an error
# in the server log, key files that are not plain files, the block the
# kernel shows as /proc/<pid>/environ, what a call leaves in the backend's
# memory, environment keys that are not valid, pg_stat_statements.
#
# Each block checks one promise of the README's "API keys" section, with
# PostgreSQL's default log settings.
use strict;
use warnings;
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $keydir = tempdir(CLEANUP => 1);
chmod 0700, $keydir;
my $conf = "log_statement = none\n"
  . "ctr_dist.openai_base_url = '$base/openai/v1'\n";

# every key a step gives, so that the server logs are checked for all
my %used;

sub key
{
	my ($name) = @_;
	my $k = "sk-test-$name-" . int(rand(1e9));
	$used{$k} = $name;
	return $k;
}

sub no_key_in
{
	my ($text, $what, @keys) = @_;
	@keys = keys %used unless @keys;
	my @seen = grep { index($text, $_) >= 0 } @keys;
	is(scalar(@seen), 0, $what) or diag("seen: @used{@seen}");
}

sub write_key
{
	my ($path, $content) = @_;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	print $fh $content;
	close($fh);
	chmod(0600, $path);
}

sub log_since
{
	my ($node, $offset) = @_;
	return substr(slurp_file($node->logfile), $offset);
}

# the TAP framework's psql, without stopping at errors
sub sql
{
	my ($node, $sql, %opts) = @_;
	my $user = delete $opts{user};
	my ($ret, $out, $err) = $node->psql('postgres', $sql, on_error_stop => 0,
		($user ? (extra_params => [ '-U', $user ]) : ()), %opts);
	return ($ret, $out, $err);
}

my $call = "SELECT provider, count(*) FROM ctr_predict('tagged', 10, ad => 'Gym', providers => '{openai}') GROUP BY 1";

my %nodes;
for my $preloaded (1, 0)
{
	my $cfg = $preloaded ? 'preloaded' : 'not preloaded';
	my $node = CtrDistTest::new_node($preloaded ? 'keys_more_pre' : 'keys_more_nopre',
		preload => $preloaded ? 'ctr_dist' : '', conf => $conf);
	$nodes{$preloaded} = $node;
	CtrDistTest::create_tagged_personas($node, 'tagged', 10);
	$node->safe_psql('postgres', q{
		CREATE ROLE mallory LOGIN;
		GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) TO mallory;
		GRANT SELECT ON tagged TO mallory;
		CREATE TABLE app_users (id int, api_key text, openai_api_key text);
		GRANT SELECT ON app_users TO mallory;
	});
	my $load = $preloaded ? '' : "LOAD 'ctr_dist';\n";
	# (LOAD is for superusers)
	my $load_any = $preloaded ? '' : "SELECT count(*) FROM ctr_predict('tagged', 5, ad => 'x', providers => '{mock}');\n";
	my ($ret, $out, $err, $offset);

	# 1. A refused key setting: the log keeps the ERROR, but neither the
	# statement, the internal query, the context nor a syntax error's token,
	# however the setting was named; every one of these carried the key
	my @refused = (
		[ 'CONTEXT of EXECUTE', q{DO $$ BEGIN EXECUTE format('SET %s = %L', 'ctr_dist.openai_api_key', '<k>'); END $$} ],
		[ 'STATEMENT calling a function', q{SELECT setkey('<k>')} ],
		[ 'STATEMENT with a name built in SQL', q{SELECT set_config(n, '<k>', false) FROM (SELECT 'ctr_dist.openai_api' || '_key' AS n) s} ],
		[ 'QUERY of EXECUTE', q{DO $$ BEGIN EXECUTE 'SET ctr_dist.openai_api_key = ''<k>'' oops'; END $$} ],
		[ 'a syntax error at the key', q{SET ctr_dist.openai_api_key '<k>'} ],
		[ 'a syntax error at the key, in EXECUTE', q{DO $$ BEGIN EXECUTE 'SET ctr_dist.openai_api_key ' || quote_literal('<k>'); END $$} ],
		[ 'a function building the name at run time', q{SELECT setkey_built('<k>')} ],
		[ 'the name quoted, in capitals', q{SET "ctr_dist"."OPENAI_API_KEY" TO '<k>'} ],
		[ 'ALTER SYSTEM with an invalid key', q{ALTER SYSTEM SET ctr_dist . openai_api_key = E'<k>\\tx'} ]);
	$node->safe_psql('postgres', q{
		CREATE FUNCTION setkey(k text) RETURNS void LANGUAGE plpgsql
		  AS $f$ BEGIN PERFORM set_config('ctr_dist.openai_api_key', k, false); END $f$;
		CREATE FUNCTION setkey_built(k text) RETURNS void LANGUAGE plpgsql
		  AS $f$ BEGIN EXECUTE format('SET %I.%I = %L', 'ctr_dist', 'openai_' || 'api_key', k); END $f$;
	});
	my @keys = map { key('refused') } @refused;
	$offset = -s $node->logfile;
	($ret, $out, $err) = sql($node,
		$load . join('', map { $refused[$_][1] =~ s/<k>/$keys[$_]/r . ";\n" } 0 .. $#refused));
	my $log = log_since($node, $offset);
	is(scalar(() = $log =~ /^.*\] (?:\S+ )?ERROR:  /mg), scalar(@refused),
		"$cfg: every refused statement left its ERROR in the log") or diag($log);
	for my $i (0 .. $#refused)
	{
		no_key_in($log, "$cfg: the log does not show the key: $refused[$i][0]", $keys[$i]);
	}
	like($log, qr/ERROR:  syntax error at or near "\.\.\." at character \d+\n/,
		"$cfg: a syntax error in such a statement is logged without its token");
	unlike($log, qr/^.*\] (?:\S+ )?(?:STATEMENT|QUERY|CONTEXT):  /m,
		"$cfg: no STATEMENT, QUERY or CONTEXT line after those errors");
	like($err, qr/ctr_dist\.openai_api_key/, "$cfg: the client gets the errors, naming the setting");

	# ... but a statement that names no key setting and fails for another
	# reason is logged as usual, even with a key in it (documented)
	$node->safe_psql('postgres', q{
		CREATE FUNCTION use_key(k text) RETURNS void LANGUAGE plpgsql
		  AS $f$ BEGIN PERFORM 1 / 0; PERFORM set_config('ctr_dist.openai_api_key', k, false); END $f$;
	});
	my $kd = 'sk-test-documented-' . int(rand(1e9));
	$offset = -s $node->logfile;
	sql($node, "${load}SELECT use_key('$kd');");
	like(log_since($node, $offset), qr/ERROR:  division by zero\n(?:.*\n)*?.*STATEMENT:  SELECT use_key\('\Q$kd\E'\);/,
		"$cfg: a statement that fails before it names a key setting is logged as any other (documented)");

	# 2. ... and other statements keep their STATEMENT line (mallory: any role)
	for my $stmt ('SELECT api_key FROM app_users WHERE nope',
		'SELECT openai_api_key FROM app_users WHERE nope',
		'SHOW ctr_dist.openai_api_key_file')
	{
		$offset = -s $node->logfile;
		sql($node, "$load_any$stmt;", user => 'mallory');
		like(log_since($node, $offset), qr/ERROR:  .*\n(.*\n)?.*STATEMENT:  \Q$stmt\E;/,
			"$cfg: a failing statement that names no key setting keeps its STATEMENT line: $stmt");
	}

	# 3. A FIFO as key file: an error at once, not a backend that waits for
	# a writer and that no cancel or terminate can end
	my $fifo = "$keydir/fifo-$preloaded.key";
	mkfifo($fifo, 0600) or die "mkfifo: $!";
	$node->safe_psql('postgres', "${load}ALTER SYSTEM SET ctr_dist.openai_api_key_file = '$fifo'; SELECT pg_reload_conf();");
	my $timed_out = 0;
	($ret, $out, $err) = sql($node, "SET statement_timeout = '20s';\n$call;",
		user => 'mallory', timeout => 60, timed_out => \$timed_out);
	if ($timed_out)
	{
		# let the backend go, or the node would not stop
		my $w;
		close($w) if sysopen($w, $fifo, POSIX::O_WRONLY | POSIX::O_NONBLOCK);
	}
	is($timed_out, 0, "$cfg: a FIFO key file does not hang the call");
	like($err, qr/API key file "\Q$fifo\E" is not a regular file/, "$cfg: a FIFO key file: the error says so");
	$node->safe_psql('postgres', "${load}ALTER SYSTEM RESET ctr_dist.openai_api_key_file; SELECT pg_reload_conf();");

	# 4. An environment key that is not valid: a WARNING naming the variable,
	# preloaded (at start, in the log) as not (at each call)
	my $kcr = key('env-cr');
	{
		local $ENV{OPENAI_API_KEY} = "$kcr\r";
		$offset = -s $node->logfile;
		$node->restart;
	}
	($ret, $out, $err) = sql($node, $call, user => 'mallory');
	my $warning = qr/WARNING:  server environment variable OPENAI_API_KEY does not hold a valid API key, ignoring it\n.*DETAIL:  An API key is at most 511 printable characters without spaces\./;
	like($preloaded ? log_since($node, $offset) : $err, $warning,
		$preloaded ? "$cfg: an invalid environment key: WARNING at start naming the variable"
		: "$cfg: an invalid environment key: WARNING at the call naming the variable");
	like($out, qr/^mock\|10$/m, "$cfg: the invalid environment key is not used");
	no_key_in("$out$err", "$cfg: the WARNING does not show the value", $kcr);
}

# 5. Preloaded, the postmaster wipes the environment keys from the block
# the kernel shows as /proc/<pid>/environ; the rest of the environment stays
{
	my $node = $nodes{1};
	my $ke = key('env');
	{
		local $ENV{OPENAI_API_KEY} = $ke;
		local $ENV{CTR_DIST_ENV_MARKER} = 'kept';
		$node->restart;
	}
	CtrDistTest::set_server($base, qq({"keys": {"openai": "$ke"}}));
	my ($ret, $out, $err) = sql($node, $call, user => 'mallory');
	like($out, qr/^openai\|10$/m, 'environment key: it reaches the provider') or diag($err);
	my $pm = $node->safe_psql('postgres', "SELECT pg_read_file('postmaster.pid')") =~ s/\n.*//sr;
	my $environ = slurp_file("/proc/$pm/environ");
	like($environ, qr/(^|\0)CTR_DIST_ENV_MARKER=kept\0/, "environment: /proc/$pm/environ is the postmaster's, read as its OS user");
	no_key_in($environ, 'environment: /proc/<postmaster>/environ holds no key', $ke);
	unlike($environ, qr/OPENAI_API_KEY=/, 'environment: nor the variable');
	$node->safe_psql('postgres', q{
		CREATE ROLE reader LOGIN IN ROLE pg_read_server_files;
		GRANT EXECUTE ON FUNCTION pg_read_binary_file(text) TO reader;
	});
	($ret, $out, $err) = sql($node,
		"SELECT position('CTR_DIST_ENV_MARKER=kept' in e) > 0, position('OPENAI_API_KEY' in e) = 0"
		  . " FROM encode(pg_read_binary_file('/proc/$pm/environ'), 'escape') e",
		user => 'reader');
	is($out, 't|t', "environment: a pg_read_server_files member reads the postmaster's environment, without the key")
	  or diag($err);
	$node->restart;

	# without preloading, nothing takes the key out (documented)
	$node = $nodes{0};
	my $kn = 'sk-test-env-not-preloaded-' . int(rand(1e9));
	{
		local $ENV{OPENAI_API_KEY} = $kn;
		$node->restart;
	}
	$pm = $node->safe_psql('postgres', "SELECT pg_read_file('postmaster.pid')") =~ s/\n.*//sr;
	like(slurp_file("/proc/$pm/environ"), qr/(^|\0)OPENAI_API_KEY=\Q$kn\E\0/,
		'environment, not preloaded: /proc/<postmaster>/environ shows the key (documented)');
	$node->restart;
}

# 6. A call leaves no copy of its request header (with the key) in the
# calling backend's memory but libcurl's request buffer (documented), as a
# role that can read server files finds in /proc/self/mem.  (On a server
# built with assertions pfree() clobbers what it frees: only a production
# build shows a palloc'd copy that was freed unwiped.)
{
	my $node = $nodes{1};
	$node->safe_psql('postgres', q{
		GRANT EXECUTE ON FUNCTION pg_read_file(text), pg_read_binary_file(text, bigint, bigint) TO reader;
		GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) TO reader;
		GRANT SELECT ON tagged TO reader;
		-- the bytes whose hex is needle, in the private writable mappings of
		-- this backend, but not after a CRLF (libcurl's HTTP request)
		CREATE FUNCTION mem_copies(needle text) RETURNS int LANGUAGE plpgsql AS $f$
		DECLARE
			m text[];
			h text;
			at int;
			pos int;
			n int := 0;
		BEGIN
			FOR m IN SELECT regexp_matches(pg_read_file('/proc/self/maps'), '^([0-9a-f]+)-([0-9a-f]+) rw-p', 'gn')
			LOOP
				h := encode(pg_read_binary_file('/proc/self/mem', ('x' || lpad(m[1], 16, '0'))::bit(64)::bigint,
					('x' || lpad(m[2], 16, '0'))::bit(64)::bigint - ('x' || lpad(m[1], 16, '0'))::bit(64)::bigint), 'hex');
				at := 0;
				LOOP
					pos := strpos(substr(h, at + 1), needle);
					EXIT WHEN pos = 0;
					at := at + pos;
					IF at % 2 = 1 AND (at < 5 OR substr(h, at - 4, 4) <> '0d0a') THEN
						n := n + 1;
					END IF;
				END LOOP;
			END LOOP;
			RETURN n;
		END $f$;
	});
	# long enough that a first guess at the header's size is too small
	my $kl = key('long');
	$kl .= join('', map { ('a' .. 'z')[ int(rand(26)) ] } 1 .. 150);
	$used{$kl} = 'long';
	write_key("$keydir/long.key", "$kl\n");
	CtrDistTest::set_server($base, qq({"keys": {"openai": "$kl"}}));
	$node->safe_psql('postgres', "ALTER SYSTEM SET ctr_dist.openai_api_key_file = '$keydir/long.key'; SELECT pg_reload_conf();");
	# the needle is hex: the query text holds it, never the bytes it stands for
	my $needle = unpack('H*', 'Authorization: Bearer ' . substr($kl, 0, 40));
	my ($ret, $out, $err) = sql($node,
		"SET ctr_dist.max_workers = 0;\n$call;\nSELECT mem_copies('$needle');\n"
		  . "SELECT mem_copies('" . unpack('H*', 'ctr_dist.max_workers') . "') > 0;",
		user => 'reader');
	like($out, qr/^openai\|10\n0\n/, 'memory: after a call with a 166-character key, no copy of its header is left')
	  or diag("$out\n$err");
	like($out, qr/\nt$/, "memory: a pg_read_server_files member reads its backend's memory (documented)");
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ctr_dist.openai_api_key_file; SELECT pg_reload_conf();');
}

# 7. pg_stat_statements keeps the text of ALTER SYSTEM SET with the key
# (documented); a refused SET is not kept
SKIP:
{
	my $pkglibdir = `pg_config --pkglibdir`;
	chomp $pkglibdir;
	skip 'pg_stat_statements is not installed', 2 unless -e "$pkglibdir/pg_stat_statements.so";
	my $node = $nodes{1};
	$node->append_conf('postgresql.conf', "shared_preload_libraries = 'ctr_dist,pg_stat_statements'\n");
	$node->restart;
	my $ks = key('pgss-stored');
	my $kr = key('pgss-refused');
	$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');
	sql($node, "ALTER SYSTEM SET ctr_dist.openai_api_key = '$ks';\nSET ctr_dist.openai_api_key = '$kr';");
	my $texts = $node->safe_psql('postgres', 'SELECT string_agg(query, E\'\n\') FROM pg_stat_statements');
	# 18 normalizes utility statements' constants: the value becomes $1
	if ($node->pg_version >= 18)
	{
		no_key_in($texts, 'pg_stat_statements 18: ALTER SYSTEM SET keeps $1, not the key (documented)', $ks);
	}
	else
	{
		like($texts, qr/\Q$ks\E/, 'pg_stat_statements: ALTER SYSTEM SET keeps the key in its text (documented)');
	}
	no_key_in($texts, 'pg_stat_statements: a refused SET is not kept', $kr);
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ctr_dist.openai_api_key');
}

# 8. pg_read_all_settings, and so pg_monitor, the role monitoring tools are
# given, can SHOW a key given as the setting (documented)
{
	my $node = $nodes{1};
	my $ks = key('monitor');
	$node->safe_psql('postgres', qq{
		CREATE ROLE monitor LOGIN IN ROLE pg_monitor;
		ALTER SYSTEM SET ctr_dist.openai_api_key = '$ks';
	});
	$node->restart;
	my ($ret, $out, $err) = sql($node, 'SHOW ctr_dist.openai_api_key', user => 'monitor');
	is($out, $ks, 'a pg_monitor member can SHOW a key given as the setting (documented)');
	($ret, $out, $err) = sql($node, 'SHOW ctr_dist.openai_api_key', user => 'mallory');
	like($err, qr/(?:must be superuser or have privileges of pg_read_all_settings to examine|permission denied to examine) "ctr_dist\.openai_api_key"/,
		'a role without it cannot');
	$node->safe_psql('postgres', 'ALTER SYSTEM RESET ctr_dist.openai_api_key');
	$node->restart;
}

for my $preloaded (1, 0)
{
	my $node = $nodes{$preloaded};
	$node->stop;
	no_key_in(slurp_file($node->logfile),
		($preloaded ? 'preloaded' : 'not preloaded') . ': no key anywhere in the server log');
}

CtrDistTest::stop_provider_server($server);
done_testing();
