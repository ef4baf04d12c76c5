# API keys stay secret in every configuration the README allows: preloaded
# and not, at the default log_min_messages and at debug5.
#
# For every documented way of giving a key (key file, server environment,
# and when preloaded the setting in postgresql.conf / ALTER SYSTEM) the key
# reaches its provider, and a role without superuser cannot read it, in a
# fresh session and after ctr_dist is loaded, through SHOW, SHOW ALL,
# current_setting, pg_settings, pg_file_settings, pg_db_role_setting,
# pg_proc, pg_stat_activity, ctr_dist's views, error messages or NOTICEs.
# Every way the README refuses is refused with a message that names the
# setting and not the value.  The server log never shows any of the keys,
# after reloads, restarts and failed statements.
use strict;
use warnings;
use File::Temp qw(tempdir);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CtrDistTest;

my ($server, $base) = CtrDistTest::start_provider_server();
my $keydir = tempdir(CLEANUP => 1);
chmod 0700, $keydir;

# every key any step uses, so that the log and the read paths are checked for all
my %used;

sub key
{
	my ($name) = @_;
	my $k = "sk-test-$name-" . int(rand(1e9));
	$used{$k} = $name;
	return $k;
}

sub write_key
{
	my ($path, $content, $mode) = @_;
	open(my $fh, '>', $path) or die "cannot write $path: $!";
	print $fh $content;
	close($fh);
	chmod(($mode // 0600), $path);
}

# the server accepts exactly this openai key
sub server_key
{
	my ($k) = @_;
	CtrDistTest::set_server($base, qq({"keys": {"openai": "$k"}}));
}

sub mallory
{
	my ($node, $sql, %opts) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql,
		extra_params => [ '-U', 'mallory' ], on_error_stop => 0, %opts);
	return ($ret, $out, $err);
}

# every row answered by openai with the answer the server intended
sub call_exact
{
	my ($node, $what) = @_;
	my ($ret, $out, $err) = mallory($node, q{
		SELECT count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int AND r.provider = 'openai')
		  FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}') r
		  JOIN tagged t ON t.id::text = r.persona_key});
	is($out, '100', "$what: the key reached the provider, 100 exact answers") or diag($err);
	return $err;
}

my @reads = (
	'SHOW ctr_dist.openai_api_key',
	"SELECT current_setting('ctr_dist.openai_api_key')",
	"SELECT current_setting('ctr_dist.openai_api_key', true)",
	"SELECT set_config('ctr_dist.openai_api_key', 'x', false)",
	"SET ctr_dist.openai_api_key = 'x'",
	'SHOW ctr_dist.openai_api_key_file',
	'SHOW ALL',
	'SELECT * FROM pg_settings',
	'SELECT * FROM pg_file_settings',
	'SELECT * FROM pg_db_role_setting',
	'SELECT proname, proconfig FROM pg_proc WHERE proconfig IS NOT NULL',
	'SELECT * FROM pg_stat_activity',
	"SELECT pg_read_file('postgresql.auto.conf')");
my @reads_loaded = (
	"SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai,deepseek}')",
	"SELECT ctr_dist.run('tagged', 50, ad => 'Gym', providers => '{openai}')",
	'SELECT * FROM ctr_dist.runs', 'SELECT * FROM ctr_dist.run_providers',
	'SELECT * FROM ctr_dist.provider_stats', 'SELECT * FROM ctr_dist.progress',
	'SELECT * FROM ctr_dist.last_call_stats()');

# what mallory can see, in a fresh session and once ctr_dist is loaded
sub mallory_sees
{
	my ($node) = @_;
	my ($r1, $fresh_out, $fresh_err) = mallory($node, join(";\n", @reads) . ";\n");
	my ($r2, $out, $err) = mallory($node,
		"SELECT count(*) FROM ctr_predict('tagged', 5, ad => 'x', providers => '{mock}');\n"
		  . join(";\n", @reads, @reads_loaded) . ";\n");
	return "$fresh_out\n$fresh_err\n$out\n$err";
}

sub no_key_in
{
	my ($text, $what, @keys) = @_;
	@keys = keys %used unless @keys;
	my @seen = grep { index($text, $_) >= 0 } @keys;
	is(scalar(@seen), 0, $what) or diag("seen: @used{@seen}");
}

sub mallory_cannot_read
{
	my ($node, $way, $key) = @_;
	my $seen = mallory_sees($node);
	like($seen, qr/ctr_predict: 100 personas/, "$way: mallory's reads ran, the library loaded");
	no_key_in($seen, "$way: mallory reads no key, fresh or loaded", $key);
}

for my $preloaded (1, 0)
{
	my $cfg = $preloaded ? 'preloaded' : 'not preloaded';
	my $node = CtrDistTest::new_node($preloaded ? 'keys_pre' : 'keys_nopre',
		preload => $preloaded ? 'ctr_dist' : '',
		# PostgreSQL's default (the TAP framework logs every statement)
		conf => "log_statement = none\n"
		  . "ctr_dist.openai_base_url = '$base/openai/v1'\n"
		  . "ctr_dist.deepseek_base_url = '$base/deepseek'\n"
		  . "ctr_dist.gemini_base_url = '$base/gemini/v1beta'\n");
	CtrDistTest::create_tagged_personas($node, 'tagged', 100);
	$node->safe_psql('postgres', q{
		CREATE ROLE mallory LOGIN;
		GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]) TO mallory;
		GRANT EXECUTE ON FUNCTION ctr_dist.run(regclass, integer, text, text, text[], text) TO mallory;
		GRANT SELECT, INSERT, UPDATE ON ctr_dist.runs, ctr_dist.predictions, ctr_dist.run_providers TO mallory;
		GRANT USAGE ON SEQUENCE ctr_dist.runs_id_seq TO mallory;
		GRANT SELECT ON tagged TO mallory;
	});
	my $load = $preloaded ? '' : "LOAD 'ctr_dist';\n";
	# (loaded by a query, the settings' descriptions outlive it)
	is($node->safe_psql('postgres', "SELECT count(*) FROM ctr_predict('tagged', 5, ad => 'x', providers => '{mock}');\n"
		  . "SELECT short_desc FROM pg_settings WHERE name = 'ctr_dist.openai_model'"),
		"100\nModel asked at openai.", "$cfg: setting descriptions stay valid after the loading query");
	my $debug5 = 0;

	# a restart with keys in the server's environment cannot be at debug3 or
	# below: the postmaster prints its environment before it loads any library
	my $restart = sub {
		my $env = grep { $ENV{$_} } qw(OPENAI_API_KEY DEEPSEEK_API_KEY GEMINI_API_KEY);
		if ($debug5 && $env)
		{
			$node->safe_psql('postgres', 'ALTER SYSTEM RESET log_min_messages');
			$node->restart;
			$node->safe_psql('postgres', 'ALTER SYSTEM SET log_min_messages = debug5; SELECT pg_reload_conf()');
		}
		else
		{
			$node->restart;
		}
	};

	for my $level ('default', 'debug5')
	{
		my $at = "$cfg, $level";
		if ($level eq 'debug5')
		{
			$debug5 = 1;
			$node->safe_psql('postgres', 'ALTER SYSTEM SET log_min_messages = debug5');
			$restart->();
		}

		# 1. key file: read at each call, rotated without reload
		my $file = "$keydir/openai.key";
		my $k1 = key('file');
		write_key($file, "$k1\n");
		server_key($k1);
		$node->safe_psql('postgres', "${load}ALTER SYSTEM SET ctr_dist.openai_api_key_file = '$file'; SELECT pg_reload_conf();");
		call_exact($node, "$at: key file");
		my $k2 = key('file-rotated');
		write_key($file, "$k2\r\n");
		server_key($k2);
		call_exact($node, "$at: key file rotated, no reload");
		mallory_cannot_read($node, "$at: key file", $k2);
		# its path: superusers only, but without preloading every role reads it
		# in a session that has not loaded ctr_dist (documented)
		{
			my ($r, $pout, $perr) = mallory($node, 'SHOW ctr_dist.openai_api_key_file');
			if ($preloaded)
			{
				like($perr, qr/(?:must be superuser or have privileges of pg_read_all_settings to examine|permission denied to examine) "ctr_dist\.openai_api_key_file"/,
					"$at: key file: mallory cannot SHOW its path");
			}
			else
			{
				is($pout, $file, "$at: key file: mallory can SHOW its path in a session that has not loaded ctr_dist (documented)");
			}
			($r, $pout, $perr) = mallory($node,
				"SELECT count(*) FROM ctr_predict('tagged', 5, ad => 'x', providers => '{mock}');\nSHOW ctr_dist.openai_api_key_file;");
			like($perr, qr/(?:must be superuser or have privileges of pg_read_all_settings to examine|permission denied to examine) "ctr_dist\.openai_api_key_file"/,
				"$at: key file: once ctr_dist is loaded, mallory cannot SHOW its path");
			unlike($pout, qr/\Q$file\E/, "$at: key file: nor is it shown");
		}

		# a key file that is not safe is an error that names it, never its content
		my $bad = key('bad-content');
		for my $case (
			[ 'mode 0644', "$keydir/world.key", "$bad\n", 0644, qr/API key file "\Q$keydir\E\/world.key" has group or world access/ ],
			[ 'mode 0640', "$keydir/group.key", "$bad\n", 0640, qr/has group or world access/ ],
			[ 'mode 0604', "$keydir/other.key", "$bad\n", 0604, qr/has group or world access/ ],
			[ 'owned by root', '/etc/passwd', undef, undef, qr{API key file "/etc/passwd" must be owned by the database server's operating system user} ],
			[ 'a directory', $keydir, undef, undef, qr/API key file "\Q$keydir\E" is not a regular file/ ],
			[ 'missing', "$keydir/missing.key", undef, undef, qr/could not open API key file "\Q$keydir\E\/missing.key": No such file or directory/ ],
			[ 'empty', "$keydir/empty.key", "\n", 0600, qr/API key file "\Q$keydir\E\/empty.key" is empty/ ],
			[ 'two lines', "$keydir/two.key", "$bad\n$bad\n", 0600, qr/does not hold a valid API key/ ],
			[ 'a space', "$keydir/space.key", "$bad x\n", 0600, qr/does not hold a valid API key/ ],
			[ 'too long', "$keydir/long.key", ('k' x 600) . $bad, 0600, qr/does not hold a valid API key/ ],
			[ 'a NUL byte', "$keydir/nul.key", "$bad\0more text\nsecond line\n", 0600, qr/does not hold a valid API key/ ])
		{
			my ($what, $path, $content, $mode, $re) = @$case;
			write_key($path, $content, $mode) if defined $content;
			$node->safe_psql('postgres', "${load}ALTER SYSTEM SET ctr_dist.openai_api_key_file = '$path'; SELECT pg_reload_conf();");
			my ($ret, $out, $err) = mallory($node, "SELECT count(*) FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}')");
			like($err, $re, "$at: key file $what: a clear error naming the file");
			like($err, qr/named by ctr_dist\.openai_api_key_file/, "$at: key file $what: the error names the setting");
			no_key_in($err, "$at: key file $what: nothing of its content in the error", $bad);
		}
		$node->safe_psql('postgres', "${load}ALTER SYSTEM RESET ctr_dist.openai_api_key_file; SELECT pg_reload_conf();");

		# 2. the server environment
		my $ke = key('env');
		$ENV{OPENAI_API_KEY} = $ke;
		$restart->();
		delete $ENV{OPENAI_API_KEY};
		server_key($ke);
		call_exact($node, "$at: environment");
		mallory_cannot_read($node, "$at: environment", $ke);
		# programs the server starts do not inherit it, when preloaded
		my $envout = $node->safe_psql('postgres', q{
			CREATE TEMP TABLE e (l text); COPY e FROM PROGRAM 'env';
			SELECT count(*) FROM e WHERE l LIKE 'OPENAI_API_KEY=%'});
		is($envout, $preloaded ? '0' : '1',
			$preloaded ? "$at: programs the server runs see no key in their environment"
			: "$at: without preload, programs the server runs inherit the environment key (documented)");

		# 3. the setting: preloaded only, read at server start
		if ($preloaded)
		{
			my $ks = key('setting');
			my $offset = -s $node->logfile;
			$node->safe_psql('postgres', "ALTER SYSTEM SET ctr_dist.openai_api_key = '$ks'; SELECT pg_reload_conf();");
			$node->wait_for_log(qr/received SIGHUP, reloading configuration files/, $offset);
			my $reload = '';
			for (1 .. 100)
			{
				$reload = substr(slurp_file($node->logfile), $offset);
				last if $reload =~ /parameter "ctr_dist\.openai_api_key"/;
				usleep(50_000);
			}
			like($reload, qr/LOG:  parameter "ctr_dist\.openai_api_key" cannot be changed without restarting the server/,
				"$at: setting: a reload logs only that a restart is needed");
			$restart->();
			server_key($ks);
			call_exact($node, "$at: setting, after restart");
			my $bg = $node->background_psql('postgres');
			# a superuser session whose last statement holds the key stays open
			$bg->query_safe("ALTER SYSTEM SET ctr_dist.openai_api_key = '$ks'");
			mallory_cannot_read($node, "$at: setting (and a superuser session whose statement names it)", $ks);
			$bg->quit;
			$node->safe_psql('postgres', 'ALTER SYSTEM RESET ctr_dist.openai_api_key');
			$restart->();
		}
		else
		{
			my $ks = key('setting-refused');
			my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nLOAD 'ctr_dist'; ALTER SYSTEM SET ctr_dist.openai_api_key = '$ks';");
			like($err, qr/ERROR:  55000: parameter "ctr_dist\.openai_api_key" can be set only when ctr_dist is in shared_preload_libraries/,
				"$at: setting: refused (object_not_in_prerequisite_state), the message says why");
			like($err, qr/HINT:  Put the key in the file named by ctr_dist\.openai_api_key_file, or in the server environment variable OPENAI_API_KEY\./,
				"$at: setting: the hint names the safe ways");
			no_key_in($err, "$at: setting: the error does not show the value", $ks);
			unlike(slurp_file($node->data_dir . '/postgresql.auto.conf'), qr/ctr_dist\.openai_api_key = /, "$at: setting: nothing was written");
		}

		# the server's command line, which every user of the machine can read (ps)
		if ($preloaded && $level eq 'default')
		{
			my $ka = key('argv');
			$node->stop;
			system_or_bail('pg_ctl', '-D', $node->data_dir, '-l', $node->logfile, '-w',
				'-o', "-c ctr_dist.openai_api_key=$ka", 'start');
			server_key($ka);
			my ($ret, $out, $err) = mallory($node,
				"SELECT count(*) FILTER (WHERE provider = 'openai') FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}')");
			is($out, '0', "$at: a key on the server's command line is not used");
			like(slurp_file($node->logfile),
				qr/WARNING:  parameter "ctr_dist\.openai_api_key" can be set only in postgresql\.conf or with ALTER SYSTEM\n.*DETAIL:  Every user of the machine can read the server's command line\./,
				"$at: a key on the server's command line: WARNING at start, naming the setting");
			system_or_bail('pg_ctl', '-D', $node->data_dir, '-w', 'stop');
			$node->start;
		}

		# refused: everywhere else a key setting could be stored or given
		for my $stmt (
			"SET ctr_dist.openai_api_key = '%s'",
			"SELECT set_config('ctr_dist.openai_api_key', '%s', false)",
			"ALTER ROLE mallory SET ctr_dist.openai_api_key = '%s'",
			"ALTER DATABASE postgres SET ctr_dist.openai_api_key = '%s'",
			"ALTER ROLE mallory IN DATABASE postgres SET ctr_dist.openai_api_key = '%s'",
			"CREATE FUNCTION public.f() RETURNS int LANGUAGE sql SET ctr_dist.openai_api_key = '%s' AS 'SELECT 1'",
			"ALTER SYSTEM SET ctr_dist.openai_api_key = E'%s\\tx'")
		{
			my $k = key('refused');
			my $sql = sprintf($stmt, $k);
			my ($ret, $out, $err) = $node->psql('postgres', "$load$sql;");
			isnt($ret, 0, "$at: refused: $stmt");
			like($err, qr/ctr_dist\.openai_api_key/, "$at: refused with a message naming the setting: $stmt");
			no_key_in($err, "$at: the refusal does not show the value: $stmt", $k);
		}
		is($node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%api_key%')
			     + (SELECT count(*) FROM pg_proc WHERE array_to_string(proconfig, ',') LIKE '%api_key%')}),
			'0', "$at: no key was stored in pg_db_role_setting or pg_proc");
		{
			my $k = key('pgoptions');
			local $ENV{PGOPTIONS} = "-c ctr_dist.openai_api_key=$k";
			my ($ret, $out, $err) = $node->psql('postgres', "LOAD 'ctr_dist'; SHOW ctr_dist.openai_api_key;");
			if ($preloaded)
			{
				like($err, qr/parameter "ctr_dist\.openai_api_key" cannot be changed without restarting the server/,
					"$at: refused as a connection option");
			}
			else
			{
				like($err, qr/WARNING:  parameter "ctr_dist\.openai_api_key" can be set only when ctr_dist is in shared_preload_libraries/,
					"$at: a connection option is refused when ctr_dist loads");
				is($out, '', "$at: the connection option's value is not used");
			}
			no_key_in("$out$err", "$at: the connection option's value is not shown", $k);
		}

		# without preload, PostgreSQL stores a setting where ctr_dist is not loaded
		# (documented as unsafe); ctr_dist refuses to use it
		if (!$preloaded)
		{
			my $k = key('placeholder');
			$node->safe_psql('postgres', "ALTER ROLE mallory SET ctr_dist.openai_api_key = '$k'");
			server_key($k);
			my ($ret, $out, $err) = mallory($node,
				"SELECT count(*), count(*) FILTER (WHERE provider = 'openai') FROM ctr_predict('tagged', 50, ad => 'Gym', providers => '{openai}')");
			like($err, qr/WARNING:  parameter "ctr_dist\.openai_api_key" can be set only when ctr_dist is in shared_preload_libraries/,
				"$at: a key stored by ALTER ROLE where ctr_dist was not loaded: WARNING naming the setting");
			is($out, '100|0', "$at: that key is not used");
			no_key_in($err, "$at: the WARNING does not show it", $k);
			$node->safe_psql('postgres', 'ALTER ROLE mallory RESET ctr_dist.openai_api_key');
		}
	}

	# the whole server log, at the default level and at debug5
	my $log = slurp_file($node->logfile);
	like($log, qr/DEBUG:  /, "$cfg: the log has debug5 output");
	no_key_in($log, "$cfg: no key anywhere in the server log");
	$node->stop;
}

CtrDistTest::stop_provider_server($server);
done_testing();
