# Abnormal ends: every way a call can end early, with 1, 64 and 256 requests
# in flight, in every place a call can run.
#
#   contexts: workers; the calling backend (ctr_dist.max_workers = 0); no free
#             worker slot (max_worker_processes = 1); ctr_dist.run; a pg_cron
#             job (libpq mode, on a cluster without ctr_dist preloaded)
#   ends:     statement_timeout; pg_cancel_backend; pg_terminate_backend of
#             the caller; of a worker (where there are workers); an ERROR of
#             the query around ctr_predict (row-level security on the persona
#             table raises while the call reads its personas)
#   levels:   1, 64, 256 requests in flight (ctr_dist.openai_max_concurrency)
#
# plus a host name lookup that hangs (an LD_PRELOAD getaddrinfo shim built
# here), with workers and in the calling backend.
#
# Each case has a model name of its own; the test server hangs that model's
# requests (and counts them in flight per model), so each case knows when its
# requests are in flight.  Every case asserts: PostgreSQL's own error, the
# call ended in under 1 s, no worker left and no DSM segment left within 1 s,
# the shared limiter back to 0 in flight (preloaded clusters), and an exact
# follow-up call (in the same session when the session survives).  Each
# cluster's log must show no crash-restart.
#
# For the ERROR case the personas are read while the requests go out, so the
# requests in flight are counted by ctr_dist itself (the error message carries
# the shared limiter's count): in the calling backend the last request is
# started in the same step that reads the failing row, before curl has sent
# it, so the server can count one fewer.
use strict;
use warnings;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use Time::HiRes qw(time usleep);
use CtrDistTest;

my @levels = (1, 64, 256);
my @ends = qw(statement_timeout cancel terminate_caller terminate_worker error);
my $timeout_s = 2;    # statement_timeout of the timeout cases
my $cron_timeout_s = 8;    # the same for the 15 pg_cron jobs that start at once (on a busy
                           # machine their 1,605 connections take seconds to open)
my $worst = 0;        # the slowest end, for the summary
my $cases = 0;

# ---- the DNS shim ----
my $shimdir = PostgreSQL::Test::Utils::tempdir();
system('cc', '-shared', '-fPIC', '-o', "$shimdir/hang_dns.so", "$CtrDistTest::testdir/t/hang_dns.c", '-ldl') == 0
  or BAIL_OUT('could not build the getaddrinfo shim');

my ($server, $base) = CtrDistTest::start_provider_server();
my ($sport) = $base =~ /:(\d+)$/;

# one model name per case; the server config hangs each model's requests
my @models;
sub model_of { my ($ctx, $end, $n) = @_; return "case-$ctx-$end-$n" }
for my $ctx (qw(workers backend noslot run cron))
{
	for my $end (@ends)
	{
		next if $end eq 'terminate_worker' && ($ctx eq 'backend' || $ctx eq 'noslot');
		push @models, model_of($ctx, $end, $_) for @levels;
	}
}
sub server_config
{
	my @faults;
	for my $m (@models)
	{
		my ($n) = $m =~ /-(\d+)$/;
		# the ERROR case answers its first N requests (slowly, so that all N
		# arrive before the first answer frees a slot), so that the window
		# moves on and reads the failing row while the next N requests hang
		my $error = $m =~ /-error-/;
		push @faults, { kind => 'slow_body', model => $m, first => $n + 0, params => { seconds => 1 } }
		  if $error;
		push @faults, { kind => 'hang', model => $m, after => ($error ? $n + 0 : 0),
			params => { seconds => 8 } };
	}
	require JSON::PP;
	# a high rpm: the server's x-ratelimit-remaining-requests would otherwise
	# reach 0 from the sheer number of requests here and pause the sending
	return JSON::PP::encode_json({ models => { openai => [ 'gpt-6-luna', @models ] }, faults => \@faults,
		providers => { openai => { rpm => 10_000_000 } } });
}
CtrDistTest::set_server($base, server_config());

# ---- clusters ----
sub setup_node
{
	my ($node, $preloaded) = @_;
	# without the library preloaded, PostgreSQL 15 refuses ALTER SYSTEM of its
	# settings in a fresh session: that cluster has them in postgresql.conf
	CtrDistTest::configure_providers($node, $base) if $preloaded;
	CtrDistTest::create_tagged_personas($node, 'many', 2000);
	CtrDistTest::create_tagged_personas($node, 'small', 40);
	# the failing persona table: row-level security calls guard() for every
	# row as it is read (an index scan in key order: the cursor reads lazily)
	$node->safe_psql('postgres', q{
		CREATE ROLE analyst LOGIN;
		CREATE TABLE guarded AS SELECT * FROM many;
		ALTER TABLE guarded ADD PRIMARY KEY (id);
		CREATE FUNCTION guard(id int) RETURNS boolean LANGUAGE plpgsql AS $$
		DECLARE n bigint;
		BEGIN
			-- with the library preloaded the call first counts the rows
			-- (for ctr_dist.progress): fail on the pass that reads them
			IF id = current_setting('ctr_test.fail_at', true)::int THEN
				PERFORM set_config('ctr_test.pass', (coalesce(nullif(current_setting('ctr_test.pass', true), ''), '0')::int + 1)::text, false);
			END IF;
			IF id = current_setting('ctr_test.fail_at', true)::int
			   AND current_setting('ctr_test.pass') = current_setting('ctr_test.fail_pass') THEN
				SELECT coalesce(sum(in_flight), 0) INTO n FROM ctr_dist.rate_limits;
				PERFORM pg_sleep(1);	-- time for the connections to open, on a busy machine too
				RAISE EXCEPTION 'persona read failed with % requests in flight at %',
					n, extract(epoch FROM clock_timestamp());
			END IF;
			RETURN true;
		END $$;
		ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
		CREATE POLICY guard ON guarded USING (guard(id));
		GRANT EXECUTE ON FUNCTION ctr_predict(regclass, integer, text, text, text[]),
		                          ctr_dist.run(regclass, integer, text, text, text[], text) TO analyst;
		GRANT SELECT, INSERT, UPDATE ON ctr_dist.runs, ctr_dist.predictions, ctr_dist.run_providers TO analyst;
		GRANT USAGE ON SEQUENCE ctr_dist.runs_id_seq TO analyst;
		GRANT SELECT ON many, small, guarded TO analyst;
		-- preloaded, the rate limits bind every session: superuser-only unless granted
		GRANT SET ON PARAMETER ctr_dist.openai_max_concurrency TO analyst;});
}

my $dsm_conf = "dynamic_shared_memory_type = mmap\nmax_connections = 60\n";
# keys come from the environment; the shim is in the server's environment only
$ENV{LD_PRELOAD} = "$shimdir/hang_dns.so";
my $main = CtrDistTest::new_node('abnormal', keys => 1, conf => "max_worker_processes = 32\n$dsm_conf");
my $noslot = CtrDistTest::new_node('abnormal_noslot', keys => 1, conf => "max_worker_processes = 1\n$dsm_conf");
my $have_cron = CtrDistTest::have_pg_cron();    # without it, no pg_cron context
my $cron = CtrDistTest::new_node('abnormal_cron', keys => 1, preload => $have_cron ? 'pg_cron' : '',
	conf_fn => sub {
		my $n = shift;
		return "cron.database_name = 'postgres'\ncron.host = '" . $n->host
		  . "'\nmax_worker_processes = 40\ncron.max_running_jobs = 32\n$dsm_conf"
		  . "ctr_dist.openai_base_url = '$base/openai/v1'\n";
	});
delete $ENV{LD_PRELOAD};
setup_node($_, 1) for ($main, $noslot);
setup_node($cron, 0);
$cron->safe_psql('postgres', 'CREATE EXTENSION pg_cron; GRANT USAGE ON SCHEMA cron TO analyst;') if $have_cron;

sub dsm_segments
{
	my ($node) = @_;
	my @f = glob($node->data_dir . '/pg_dynshmem/mmap.*');
	return scalar @f;
}
my %dsm_baseline = map { $_->name => dsm_segments($_) } ($main, $noslot, $cron);

# ---- a psql session that lives across statements ----
sub session_start
{
	my ($node, $user) = @_;
	my $s = { in => '', out => '', err => '' };
	$s->{h} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=0', '-d', $node->connstr('postgres') . ' user=' . ($user // 'analyst') ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, IPC::Run::timeout(120));
	$s->{marker} = 0;
	return $s;
}

# send SQL; returns a marker to wait for
sub session_send
{
	my ($s, $sql) = @_;
	my $m = '__done_' . ++$s->{marker} . '__';
	$s->{in} .= "$sql\n\\echo $m\n";
	$s->{h}->pump_nb;
	return $m;
}

# wait for a marker (or the session's end); true if the marker came
sub session_wait
{
	my ($s, $m, $limit) = @_;
	my $deadline = time + ($limit // 60);
	while (time < $deadline)
	{
		return 1 if $s->{out} =~ /\Q$m\E/;
		return 0 unless $s->{h}->pumpable;
		$s->{h}->pump_nb;
		usleep(5_000);
	}
	return 0;
}

sub session_pid
{
	my ($s) = @_;
	my $m = session_send($s, 'SELECT pg_backend_pid();');
	session_wait($s, $m, 10) or die 'no backend pid';
	my ($pid) = $s->{out} =~ /^(\d+)$/m;
	$s->{out} = '';
	return $pid;
}

sub session_finish
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	eval { $s->{h}->finish; };
	eval { $s->{h}->kill_kill; };
}

# ---- waiting on the server and the cluster ----

# the server's openai statistics, without starting a process (the cron
# loop polls them for 15 jobs at once)
my $http = HTTP::Tiny->new(timeout => 10);
sub openai_stats
{
	my $r = $http->get("$base/_control/stats");
	die "stats: $r->{status}" unless $r->{success};
	return decode_json($r->{content})->{openai};
}

sub wait_in_flight
{
	my ($model, $n, $limit) = @_;
	my $deadline = time + ($limit // 30);
	while (time < $deadline)
	{
		return 1 if (openai_stats()->{in_flight_by_model}{$model} // 0) >= $n;
		usleep(10_000);
	}
	return 0;
}

# the server sees the requests' connections closed (a hang ends when the
# client hangs up): true once none of the model's requests is in flight
sub server_let_go
{
	my ($model) = @_;
	my $deadline = time + 2;
	while (time < $deadline)
	{
		return 1 unless openai_stats()->{in_flight_by_model}{$model};
		usleep(10_000);
	}
	return 0;
}

sub max_in_flight
{
	my ($model) = @_;
	return openai_stats()->{max_in_flight_by_model}{$model} // 0;
}

# seconds until $sql is true on $node (checked every 10 ms), or undef
sub seconds_until
{
	my ($node, $sql, $limit) = @_;
	my $t0 = time;
	while (time - $t0 < ($limit // 5))
	{
		return time - $t0 if $node->safe_psql('postgres', $sql) eq 't';
		usleep(10_000);
	}
	return undef;
}

sub expected_error
{
	my ($end) = @_;
	return {
		statement_timeout => qr/canceling statement due to statement timeout/,
		cancel => qr/canceling statement due to user request/,
		terminate_caller => qr/terminating connection due to administrator command|server closed the connection/,
		terminate_worker => qr/terminating background worker "ctr_dist worker" due to administrator command/,
		error => qr/persona read failed with (\d+) requests in flight at ([0-9.]+)/,
	}->{$end};
}

# the aftermath every case shares: nothing left, and a call that works
sub check_aftermath
{
	my ($name, $node, $preloaded, $session) = @_;
	my $gone = seconds_until($node, "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker'", 5);
	ok(defined $gone && $gone < 1.0, sprintf("%s: no worker left (%.2f s)", $name, $gone // 99));
	my $t0 = time;
	my $dsm;
	while (time - $t0 < 5)
	{
		$dsm = dsm_segments($node);
		last if $dsm == $dsm_baseline{ $node->name };
		usleep(10_000);
	}
	is($dsm, $dsm_baseline{ $node->name }, "$name: no DSM segment left");
	if ($preloaded)
	{
		my $free = seconds_until($node, 'SELECT coalesce(sum(in_flight), 0) = 0 FROM ctr_dist.rate_limits', 5);
		ok(defined $free && $free < 1.0, sprintf("%s: the shared limiter is back to 0 in flight (%.2f s)", $name, $free // 99));
	}
	my $check = q{RESET statement_timeout; RESET ctr_dist.openai_model; RESET ctr_dist.openai_max_concurrency;
		SELECT count(*) || '|' || count(*) FILTER (WHERE r.click = (t.tag = 'CLICK')::int)
		  FROM ctr_predict('small', 10, ad => 'Gym', providers => '{openai}') r JOIN small t ON t.id::text = r.persona_key;};
	my $out;
	if ($session)
	{
		$session->{out} = '';
		my $m = session_send($session, $check);
		session_wait($session, $m, 60);
		($out) = $session->{out} =~ /^(\d+\|\d+)$/m;
	}
	else
	{
		$out = $node->safe_psql('postgres', $check);
	}
	is($out, '40|40', "$name: the next call is exact");
}

sub note_end
{
	my ($name, $secs) = @_;
	$worst = $secs if $secs > $worst;
	$cases++;
	ok($secs < 1.0, sprintf('%s: the call ended %.3f s after the end came', $name, $secs));
}

# ---- the interactive contexts ----
sub run_case
{
	my ($ctx, $end, $n) = @_;
	my $name = "$ctx/$end/$n";
	my $node = $ctx eq 'noslot' ? $noslot : $main;
	my $model = model_of($ctx, $end, $n);
	my $table = $end eq 'error' ? 'guarded' : 'many';
	my $s = session_start($node);
	my $pid = session_pid($s);
	my $set = "SET ctr_dist.openai_model = '$model'; SET ctr_dist.openai_max_concurrency = $n;";
	$set .= ' SET ctr_dist.max_workers = 0;' if $ctx eq 'backend';
	# window of 2N batches of 2 once the first N went through: row 6N is read last
	$set .= ' SET enable_sort = off; SET ctr_test.fail_at = ' . (6 * $n) . "; SET ctr_test.pass = 0; SET ctr_test.fail_pass = 2;"
	  if $end eq 'error';
	$set .= " SET statement_timeout = '${timeout_s}s';" if $end eq 'statement_timeout';
	my $call = $ctx eq 'run'
	  ? "SELECT ctr_dist.run('$table', 2, ad => 'Gym', providers => '{openai}', label => '$model');"
	  : "SELECT count(*) FROM ctr_predict('$table', 2, ad => 'Gym', providers => '{openai}');";
	my $m = session_send($s, "$set\n\\set VERBOSITY default\n$call");
	my $t_start = time;
	my $t_end;

	if ($end eq 'statement_timeout' || $end eq 'error')
	{
		session_wait($s, $m, 30);
		$t_end = time;
		if ($end eq 'statement_timeout')
		{
			cmp_ok(max_in_flight($model), '>=', $n, "$name: $n requests were in flight");
			note_end($name, $t_end - $t_start - $timeout_s);
		}
		else
		{
			# in the calling backend the last request may be started in the very
			# step that reads the failing row: one fewer is in flight then
			my $min = ($ctx eq 'workers' || $ctx eq 'run') ? $n : $n - 1;
			my ($seen, $raised) = $s->{err} =~ expected_error('error');
			cmp_ok($seen // 0, '>=', $min, "$name: $min requests were in flight when the read failed")
			  or diag($s->{err});
			cmp_ok(max_in_flight($model), '>=', $min, "$name: the server saw them");
			note_end($name, $t_end - ($raised // 0));
		}
	}
	else
	{
		ok(wait_in_flight($model, $n), "$name: $n requests in flight") or diag(explain(CtrDistTest::stats($base)->{openai}));
		my $t_act = time;
		if ($end eq 'cancel')
		{
			$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
		}
		elsif ($end eq 'terminate_caller')
		{
			$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
		}
		else
		{
			is($node->safe_psql('postgres',
				"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker' AND query LIKE '% in pid $pid'"),
				'1', "$name: one worker terminated");
		}
		session_wait($s, $m, 30);
		$t_end = time;
		note_end($name, $t_end - $t_act);
	}

	my $err = $s->{err};
	like($err, expected_error($end), "$name: PostgreSQL's own error") or diag($err);
	ok(server_let_go($model), "$name: every HTTP request was aborted");
	if ($ctx eq 'run' && $end ne 'terminate_caller')
	{
		my $status = { statement_timeout => 'cancelled', cancel => 'cancelled',
			terminate_worker => 'failed', error => 'failed' }->{$end};
		like($node->safe_psql('postgres', "SELECT status || ': ' || error FROM ctr_dist.runs WHERE label = '$model'"),
			qr/^$status: /, "$name: the run is stored as $status");
	}
	my $alive = $end ne 'terminate_caller';
	check_aftermath($name, $node, 1, $alive ? $s : undef);
	session_finish($s);
}

# CTR_ABNORMAL_ONLY=run (a context) narrows the run while working on this test
my $only = $ENV{CTR_ABNORMAL_ONLY} // '';
for my $ctx (qw(workers backend noslot run))
{
	next if $only && $only ne $ctx;
	for my $end (@ends)
	{
		next if $end eq 'terminate_worker' && ($ctx eq 'backend' || $ctx eq 'noslot');
		run_case($ctx, $end, $_) for @levels;
	}
}

# ---- inside BEGIN ... ROLLBACK: an aborted transaction block is cleaned up
# only at the ROLLBACK, but the call's slots and connections go at the abort ----
if (!$only || $only eq 'txblock')
{
	for my $where ('backend', 'workers')
	{
		my $name = "txblock/$where";
		my $model = model_of('workers', 'cancel', 64);	# reuses a hanging model
		my $s = session_start($main);
		my $set = "SET ctr_dist.openai_model = '$model'; SET ctr_dist.openai_max_concurrency = 16;";
		$set .= ' SET ctr_dist.max_workers = 0;' if $where eq 'backend';
		my $m = session_send($s, "$set\nBEGIN; SET LOCAL statement_timeout = '1500ms';\n"
			. "SELECT count(*) FROM ctr_predict('many', 2, ad => 'Gym', providers => '{openai}');");
		session_wait($s, $m, 30);
		like($s->{err}, qr/canceling statement due to statement timeout/, "$name: PostgreSQL's own error");
		# the session now sits in an aborted transaction block
		my $free = seconds_until($main, 'SELECT coalesce(sum(in_flight), 0) = 0 FROM ctr_dist.rate_limits', 5);
		ok(defined $free && $free < 1.0,
			sprintf('%s: the shared limiter is back to 0 before the ROLLBACK (%.2f s)', $name, $free // 99));
		ok(server_let_go($model), "$name: every HTTP request was aborted before the ROLLBACK");
		$s->{err} = '';
		$m = session_send($s, 'ROLLBACK;');
		session_wait($s, $m, 10);
		check_aftermath($name, $main, 1, $s);
		session_finish($s);
	}
}

# ---- a host name lookup that hangs ----
if (!$only || $only eq 'dns')
{
	# ctr_dist looks host names up itself, on a thread it can abandon, and
	# hands curl the addresses: a name that resolves works as before
	$main->safe_psql('postgres', qq{
		ALTER SYSTEM SET ctr_dist.deepseek_base_url = 'http://localhost:$sport/deepseek';
		SELECT pg_reload_conf();});
	for my $where ('workers', 'backend')
	{
		my ($r, $o) = CtrDistTest::run_exact($main, 'small', "10, ad => 'Gym', providers => '{deepseek}'",
			pre => ($where eq 'backend' ? 'SET ctr_dist.max_workers = 0;' : ''));
		is($o, '40|40|0|0', "dns/$where: a host name (localhost) is looked up and answered");
	}
	$main->safe_psql('postgres', qq{
		ALTER SYSTEM SET ctr_dist.deepseek_base_url = 'http://hang.ctr-dist.test:$sport/deepseek';
		SELECT pg_reload_conf();});
	for my $where ('workers', 'backend')
	{
		for my $end ('cancel', 'statement_timeout')
		{
			my $name = "dns/$where/$end";
			my $s = session_start($main);
			my $pid = session_pid($s);
			my $set = $where eq 'backend' ? 'SET ctr_dist.max_workers = 0;' : '';
			$set .= " SET statement_timeout = '1s';" if $end eq 'statement_timeout';
			my $m = session_send($s, "$set SELECT count(*) FROM ctr_predict('many', 50, ad => 'Gym', providers => '{deepseek}');");
			my $t0 = time;
			if ($end eq 'cancel')
			{
				usleep(500_000);
				$t0 = time;
				$main->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
			}
			session_wait($s, $m, 30);
			note_end($name, time - $t0 - ($end eq 'statement_timeout' ? 1 : 0));
			like($s->{err}, expected_error($end), "$name: PostgreSQL's own error");
			check_aftermath($name, $main, 1, $s);
			session_finish($s);
		}
	}
}

# ---- pg_cron jobs: every case at once, one job each ----
# The 15 jobs open 1,605 connections to the one test server at once.  On this
# project's 2-core machine the 256-request jobs do not always have all of them
# open when their end comes: seen on 18 (none of them in flight after 20 s),
# on the assert-enabled 15 and, 1 job in 5, on Debian's 15 (127 of 256 when
# its 8 s statement_timeout came); the code before the epoll set of
# src/multi.c fared worse there (0-232 of 256 in 6 of 10 jobs, 2 runs).  So
# for them whether every request was in flight is reported, not required;
# every other check of theirs (the error, the end's delay, nothing left) is.
sub cron_flight_todo
{
	my ($n) = @_;
	return $n >= 256 ? 'pg_cron, 15 jobs at once: 256 connections each may not all be open in time' : undef;
}

note('pg_cron is not installed for this PostgreSQL: no pg_cron jobs') unless $have_cron;
if ((!$only || $only eq 'cron') && $have_cron)
{
	my %job;
	for my $end (@ends)
	{
		for my $n (@levels)
		{
			my $model = model_of('cron', $end, $n);
			my $table = $end eq 'error' ? 'guarded' : 'many';
			my $cmd = "SET ctr_dist.openai_model = '$model'; SET ctr_dist.openai_max_concurrency = $n;";
			$cmd .= ' SET enable_sort = off; SET ctr_test.fail_at = ' . (6 * $n) . '; SET ctr_test.pass = 0; SET ctr_test.fail_pass = 1;'
			  if $end eq 'error';
			$cmd .= " SET statement_timeout = '${cron_timeout_s}s';" if $end eq 'statement_timeout';
			$cmd .= " SELECT count(*) FROM ctr_predict('$table', 2, ad => 'Gym', providers => '{openai}')";
			my $id = $cron->safe_psql('postgres', "SELECT cron.schedule('$model', '* * * * *', \$\$$cmd\$\$)",
				extra_params => [ '-U', 'analyst' ]);
			$job{$model} = { end => $end, n => $n, id => $id };
		}
	}
	# wait for the minute to turn and every job to start (they are taken off the
	# schedule once they ended: pg_cron cancels a running job that is unscheduled)
	ok($cron->poll_query_until('postgres', "SELECT count(DISTINCT jobid) = 15 FROM cron.job_run_details"),
		'cron: every job started');
	# each job's backend, and when its statement started
	for my $model (sort keys %job)
	{
		my $j = $job{$model};
		($j->{pid}, $j->{started}) = split /\|/, $cron->safe_psql('postgres',
			"SELECT pid, extract(epoch FROM query_start) FROM pg_stat_activity WHERE backend_type = 'client backend' AND query LIKE '%''$model''%' AND pid <> pg_backend_pid()");
	}
	# act on each job once its requests are in flight; a call has ended when its
	# backend is no longer running the statement (watched from one session)
	my $watch = session_start($cron, 'postgres');
	my $pending = scalar keys %job;
	my $deadline = time + 60;
	while ($pending > 0 && time < $deadline)
	{
		my $st = openai_stats()->{in_flight_by_model};
		$watch->{out} = '';
		my $m = session_send($watch, "SELECT 'active:' || coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity WHERE state = 'active';");
		session_wait($watch, $m, 10);
		my ($list) = $watch->{out} =~ /^active:(.*)$/m;
		my %active = map { $_ => 1 } split /,/, ($list // '');
		for my $model (sort keys %job)
		{
			my $j = $job{$model};
			next if $j->{ended};
			# (act anyway after 20 s: the in-flight check below then fails)
			if (!$j->{acted} && $j->{end} !~ /statement_timeout|error/
				&& (($st->{$model} // 0) >= $j->{n} || time > $j->{started} + 20))
			{
				$j->{acted_at_in_flight} = $st->{$model} // 0;
				$j->{acted} = time;
				my $target = $j->{end} eq 'terminate_worker'
				  ? "(SELECT pid FROM pg_stat_activity WHERE backend_type = 'ctr_dist worker' AND query LIKE '% in pid $j->{pid}')"
				  : $j->{pid};
				my $fn = $j->{end} eq 'cancel' ? 'pg_cancel_backend' : 'pg_terminate_backend';
				# from the watching session: a psql started per job took
				# ~0.1 s each, which the jobs acted on before waited out
				$watch->{out} = '';
				my $sent = session_send($watch, "SELECT $fn($target);");
				session_wait($watch, $sent, 10);
			}
			if (!$active{ $j->{pid} })
			{
				$j->{ended} = time;
				$pending--;
			}
		}
		usleep(10_000);
	}
	session_finish($watch);
	is($pending, 0, 'cron: every job ended')
	  or diag(join("\n", map { "$_: " . ($job{$_}{ended} ? 'ended' : 'running')
		  . ', in flight ' . (openai_stats()->{in_flight_by_model}{$_} // 0) } sort keys %job));
	ok($cron->poll_query_until('postgres', "SELECT count(*) = 15 FROM cron.job_run_details WHERE status IN ('failed', 'succeeded')"),
		'cron: pg_cron recorded every job');
	$cron->safe_psql('postgres', 'SELECT cron.unschedule(jobid) FROM cron.job');
	for my $model (sort keys %job)
	{
		my $j = $job{$model};
		my $name = "cron/$j->{end}/$j->{n}";
		ok(server_let_go($model), "$name: every HTTP request was aborted");
		my ($status, $msg) = split /\|/, $cron->safe_psql('postgres',
			"SELECT status, replace(return_message, E'\\n', ' ') FROM cron.job_run_details WHERE jobid = $j->{id} ORDER BY runid LIMIT 1");
		is($status, 'failed', "$name: the job failed");
		like($msg, expected_error($j->{end}), "$name: PostgreSQL's own error in job_run_details") or diag($msg);
		if ($j->{end} eq 'statement_timeout')
		{
			TODO:
			{
				local $TODO = cron_flight_todo($j->{n});
				cmp_ok(max_in_flight($model), '>=', $j->{n}, "$name: $j->{n} requests were in flight");
			}
			note_end($name, $j->{ended} - $j->{started} - $cron_timeout_s);
		}
		elsif ($j->{end} eq 'error')
		{
			TODO:
			{
				local $TODO = cron_flight_todo($j->{n});
				cmp_ok(max_in_flight($model), '>=', $j->{n}, "$name: $j->{n} requests were in flight when the read failed");
			}
			my ($raised) = $msg =~ / at ([0-9.]+)/;
			note_end($name, $j->{ended} - ($raised // 0));
		}
		else
		{
			TODO:
			{
				local $TODO = cron_flight_todo($j->{n});
				cmp_ok($j->{acted_at_in_flight} // 0, '>=', $j->{n}, "$name: $j->{n} requests were in flight");
			}
			note_end($name, $j->{ended} - $j->{acted});
		}
	}
	check_aftermath('cron', $cron, 0, undef);
}

for my $node ($main, $noslot, $cron)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/terminated by signal|was terminated by|all server processes terminated|reinitializing|PANIC|TRAP:/,
		$node->name . ': no crash-restart, no failed assertion');
}
diag(sprintf('abnormal ends: %d cases, the slowest ended %.3f s after the end came', $cases, $worst));

$_->stop for ($main, $noslot, $cron);
CtrDistTest::stop_provider_server($server);
done_testing();
