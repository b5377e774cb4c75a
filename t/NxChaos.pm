# t/NxChaos.pm
#   The chaos run shared by t/043_chaos.pl (short, in the suite) and
#   bench/chaos.sh (long, a report): while a workload runs on a cluster
#   whose supervisor runs the router, kill -9 at random moments an app
#   process, an nx-init, the router, the supervisor, and now and then the
#   whole cluster (pg_ctl -m immediate, then start); after each kill
#   measure the time until the platform has converged again; at the end
#   check the invariants and that no committed row was lost.
#
#   Workload: CLIENTS processes pushing, promoting, rolling back,
#   stopping, starting and removing deployments of sandboxes h1..h4 with
#   psql, each recording every call that returned success (so committed)
#   with the id it created; and two wrk processes against the production
#   URLs of sandboxes web1 and web2 through the router the supervisor runs.
#
#   Converged after a kill: the supervisor runs (a new one after a kill of
#   it or of the cluster), the router runs (a new one after a kill of it),
#   the killed deployment runs again as a new process, every deployment
#   that was ready before the kill and is still wanted running is ready,
#   and both production URLs answer 200 through the router.
#
#   Glossary:
#	  kind		what a kill hits: app, nx-init, router, supervisor, postmaster
#	  converge	seconds from the kill until converged (above)
#	  backoff	for a killed app or nx-init: how long the supervisor said
#			it would wait before starting the deployment again (its
#			crash backoff, 250 ms for a first crash in a minute,
#			doubling with each further one); the report gives the
#			converge beyond it too
package NxChaos;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IO::Socket::INET;
use List::Util qw(shuffle sum0);
use NxTest;
use POSIX ();
use PostgreSQL::Test::Utils;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(chaos_setup chaos_run chaos_invariants chaos_report);

my @HAMMER = qw(h1 h2 h3 h4);
my @WEB = qw(web1 web2);

# children (workload clients, wrk) still to reap; killed if the test dies
my @children;
my $parent = $$;

END
{
	if ($$ == $parent)
	{
		kill 'KILL', @children if @children;
		waitpid($_, 0) for @children;
	}
}

# psql_q(NODE, SQL): output of one psql call, undef on failure (the
# cluster may be down: callers retry or count it)
sub psql_q
{
	my ($node, $sql) = @_;
	my $connstr = $node->connstr('postgres');
	open(my $ph, '-|', 'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $connstr, '-c', $sql)
	  or return undef;
	local $/;
	my $out = <$ph> // '';
	close $ph;
	return undef if $? != 0;
	$out =~ s/\s+\z//;
	return $out;
}

# http_status(PORT, HOST): the status code the router answers, 0 if none
sub http_status
{
	my ($port, $host) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp', Timeout => 2)
	  or return 0;
	$s->autoflush(1);
	print $s "GET / HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n";
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	my $line = '';
	$line = <$s> // '' if select(my $r = $rin, undef, undef, 3);
	close $s;
	return $line =~ m{^HTTP/1\.[01] (\d+)} ? $1 : 0;
}

# chaos_setup(NODE, HELLO, HTTP_PORT): the sandboxes, each with a ready
# production deployment of HELLO; returns a context for chaos_run
sub chaos_setup
{
	my ($node, $hello, $port) = @_;
	my %ctx = (node => $node, hello => $hello, port => $port, dir => $node->basedir . '/chaos');
	mkdir $ctx{dir};
	for my $s (@WEB, @HAMMER)
	{
		$node->safe_psql('postgres', "SELECT nx.create_sandbox('$s')");
		my $id = $node->safe_psql('postgres',
			"SELECT deployment FROM nx.push('$s', pg_read_binary_file('$hello'))");
		$node->poll_query_until('postgres', "SELECT state = 'ready' FROM nx.status WHERE deployment = $id")
		  or die "deployment $id of $s did not become ready";
		$node->safe_psql('postgres', "SELECT nx.promote('$s', $id)");
	}
	for my $s (@WEB)
	{
		my $ok = 0;
		for (1 .. 200)
		{
			if (http_status($port, "$s.localhost") == 200) { $ok = 1; last; }
			usleep(50_000);
		}
		die "the router does not serve $s.localhost" unless $ok;
	}
	return \%ctx;
}

# hammer_client(CTX, I, UNTIL): one workload client (a child process);
# appends "push ID" / "promote ID" to its log for each committed call
sub hammer_client
{
	my ($ctx, $i, $until) = @_;
	my $node = $ctx->{node};
	srand($$ ^ time);
	open my $log, '>>', "$ctx->{dir}/client_$i.log" or die;
	$log->autoflush(1);
	my %n = (ok => 0, refused => 0, failed => 0);
	while (time < $until)
	{
		my $s = $HAMMER[ int(rand(@HAMMER)) ];
		my $live = psql_q($node, "SELECT string_agg(id || ':' || is_production::int || ':' || desired_state, ' ')
			FROM nx.deployments WHERE sandbox = '$s' AND desired_state <> 'removed'");
		if (!defined $live) { $n{failed}++; usleep(200_000); next; }
		my @d = map { [ split /:/ ] } split ' ', $live;
		my @other = grep { !$_->[1] } @d;
		my $r = rand();
		my ($sql, $kind);
		if (@d < 3 && $r < 0.3 || @d < 2)
		{
			($kind, $sql) = ('push', "SELECT deployment FROM nx.push('$s', pg_read_binary_file('$ctx->{hello}'), label => 'c$i')");
		}
		elsif ($r < 0.45 && @other)
		{
			my $t = $other[ int(rand(@other)) ][0];
			($kind, $sql) = ('promote', "SELECT nx.promote('$s', $t) IS NOT NULL; "
				  . "SELECT currval(pg_catalog.pg_get_serial_sequence('nx.promotions', 'id'))");
		}
		elsif ($r < 0.55)
		{
			($kind, $sql) = ('promote', "SELECT nx.rollback('$s') IS NOT NULL; "
				  . "SELECT currval(pg_catalog.pg_get_serial_sequence('nx.promotions', 'id'))");
		}
		elsif ($r < 0.75 && @other)
		{
			my $t = $other[ int(rand(@other)) ];
			($kind, $sql) = ('state', $t->[2] eq 'running' ? "SELECT nx.stop($t->[0]) IS NOT NULL" : "SELECT nx.start($t->[0]) IS NOT NULL");
		}
		elsif (@other && @d >= 3)
		{
			($kind, $sql) = ('remove', "SELECT nx.remove($other[int(rand(@other))][0]) IS NOT NULL");
		}
		else
		{
			($kind, $sql) = ('state', "SELECT nx.restart($d[int(rand(@d))][0]) IS NOT NULL");
		}
		my $out = psql_q($node, $sql);
		if (!defined $out)
		{
			# refused (a race with another client, nothing to roll back) or
			# the cluster was away: the outcome is unknown, nothing recorded
			$n{refused}++;
			usleep(100_000);
			next;
		}
		$n{ok}++;
		my @lines = split /\n/, $out;
		print $log "push $lines[-1]\n" if $kind eq 'push';
		print $log "promote $lines[-1]\n" if $kind eq 'promote';
		usleep(50_000 + int(rand(250_000)));
	}
	print $log "stats $n{ok} $n{refused} $n{failed}\n";
	close $log;
	return;
}

# proc_cmdline(PID): the command line with spaces, '' if gone
sub proc_cmdline
{
	my $c = eval { slurp_file("/proc/$_[0]/cmdline") } // '';
	$c =~ tr/\0/ /;
	return $c;
}

# router_pid(CTX): pid of the router the supervisor runs for this cluster
sub router_pid
{
	my ($ctx) = @_;
	my $run = $ctx->{node}->data_dir . '/nx/run';
	opendir my $d, '/proc' or return 0;
	for my $p (grep { /^\d+$/ } readdir $d)
	{
		my $c = proc_cmdline($p);
		return $p if $c =~ /nx-router / && index($c, $run) >= 0;
	}
	return 0;
}

# ready_pids(CTX): { deployment => pid } of the ready deployments
sub ready_pids
{
	my ($ctx) = @_;
	my $out = psql_q($ctx->{node}, q{SELECT string_agg(deployment || ':' || pid, ' ') FROM nx.status
		WHERE state = 'ready' AND desired_state = 'running'}) // '';
	return { map { split /:/ } split ' ', $out };
}

# kill_one(CTX, KIND): kill -9 one thing of that kind; returns what the
# converge check needs, or undef when there was nothing to kill
sub kill_one
{
	my ($ctx, $kind) = @_;
	my $node = $ctx->{node};
	my $before = ready_pids($ctx);
	my %k = (kind => $kind, before => $before);
	if ($kind eq 'app' || $kind eq 'nx-init')
	{
		# A deployment that exits again within a minute is restarted only
		# after the supervisor's crash backoff (250 ms, doubling with each
		# exit in 60 s): prefer one this run has not killed in the last
		# minute, so that a kill measures the converge of one crash (what
		# the issue bounds), and record the backoff the supervisor
		# announced either way (chaos_run).
		my $recent = $ctx->{killed_at} //= {};
		my $minute_ago = time - 61;
		my @ids = shuffle(keys %$before);
		@ids = ((grep { ($recent->{$_} // 0) < $minute_ago } @ids),
			(grep { ($recent->{$_} // 0) >= $minute_ago } @ids));
		$k{events_before} = psql_q($node, 'SELECT coalesce(max(id), 0) FROM nx.events') // 0;
		for my $id (@ids)
		{
			for my $p (nx_cgroup_procs($node, $id))
			{
				my $c = proc_cmdline($p);
				if (($kind eq 'app' && $c =~ m{^/app/}) || ($kind eq 'nx-init' && $c =~ m{^/nx/nx-init}))
				{
					@k{qw(deployment old_pid)} = ($id, $before->{$id});
					$k{t0} = time;
					$recent->{$id} = $k{t0};
					kill 'KILL', $p;
					return \%k;
				}
			}
		}
		return undef;
	}
	if ($kind eq 'router')
	{
		my $p = router_pid($ctx) or return undef;
		$k{old_router} = $p;
		$k{t0} = time;
		kill 'KILL', $p;
		return \%k;
	}
	my $sup = psql_q($node, 'SELECT nx._supervisor_pid()') or return undef;
	$k{old_supervisor} = $sup;
	$k{t0} = time;
	if ($kind eq 'supervisor')
	{
		kill 'KILL', $sup;
	}
	else
	{
		$node->stop('immediate', fail_ok => 1);
		$node->start(fail_ok => 1) or $node->start(fail_ok => 1);
	}
	return \%k;
}

# converged(CTX, K): is the platform back after kill K?  One psql call
# per check, so that the check itself adds little to the time measured.
sub converged
{
	my ($ctx, $k) = @_;
	my $node = $ctx->{node};
	my $ids = join(',', keys %{ $k->{before} }) || '0';
	my $dep = $k->{deployment} // 0;
	my $out = psql_q($node, "SELECT nx._supervisor_pid() || '|' || coalesce((SELECT string_agg(deployment || ':'
		|| state || ':' || coalesce(last_error, ''), ' ') FROM nx.status WHERE deployment IN ($ids)
		AND desired_state = 'running' AND state <> 'ready'), '') || '|' || coalesce((SELECT coalesce(pid, 0)
		|| ':' || state || ':' || desired_state FROM nx.status WHERE deployment = $dep), '')");
	if (!defined $out)
	{
		$k->{why} = 'the cluster does not answer';
		return 0;
	}
	my ($sup, $notready, $now) = split /\|/, $out, 3;
	if ($k->{old_supervisor} && ($sup == 0 || $sup == $k->{old_supervisor}))
	{
		$k->{why} = "supervisor pid $sup";
		return 0;
	}
	if ($notready ne '')
	{
		$k->{why} = "not ready: $notready";
		return 0;
	}
	if ($dep && $now ne '')
	{
		my ($pid, $state, $desired) = split /:/, $now;
		$k->{why} = "killed deployment: $now (old pid $k->{old_pid})";
		return 0 if $desired eq 'running' && ($pid == $k->{old_pid} || $state ne 'ready');
	}
	if ($k->{old_router})
	{
		my $p = router_pid($ctx);
		$k->{why} = "router pid $p";
		return 0 if $p == 0 || $p == $k->{old_router};
	}
	for my $s (@WEB)
	{
		my $code = http_status($ctx->{port}, "$s.localhost");
		$k->{why} = "$s.localhost answers $code";
		return 0 if $code != 200;
	}
	return 1;
}

# crash_backoff(CTX, K): seconds the supervisor said it would wait before
# starting the deployment K killed again (its "crash" event's
# restart_in_ms), 0 if it wrote none (a kill that raced with a stop)
sub crash_backoff
{
	my ($ctx, $k) = @_;
	my $ms = psql_q($ctx->{node}, "SELECT coalesce(max((details->>'restart_in_ms')::int), 0) FROM nx.events
		WHERE action = 'crash' AND deployment = $k->{deployment} AND id > $k->{events_before}") // 0;
	return $ms / 1000;
}

# wrk_start(CTX, HOST, SECONDS): wrk in the background, output to a file
sub wrk_start
{
	my ($ctx, $host, $secs) = @_;
	my $out = "$ctx->{dir}/wrk_$host.txt";
	my $pid = fork();
	if ($pid == 0)
	{
		open STDOUT, '>', $out or POSIX::_exit(1);
		open STDERR, '>&', \*STDOUT;
		{ exec('wrk', '-t1', '-c4', "-d${secs}s", '--timeout', '5s', '-H', "Host: $host",
			"http://127.0.0.1:$ctx->{port}/"); }
		POSIX::_exit(127);
	}
	return { pid => $pid, out => $out, host => $host };
}

# wrk_result(W): { requests, failed } from a finished wrk's output
sub wrk_result
{
	my ($w) = @_;
	my $o = eval { slurp_file($w->{out}) } // '';
	my ($req) = $o =~ /(\d+) requests in/;
	my $failed = 0;
	$failed += sum0($1, $2, $3, $4) if $o =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
	$failed += $1 if $o =~ /Non-2xx or 3xx responses: (\d+)/;
	return { host => $w->{host}, requests => $req // 0, failed => $failed, raw => $o };
}

# chaos_run(CTX, SECONDS, %opts): the run; opts: clients (3), gap ([4, 8]
# seconds between converge and the next kill), postmaster_every (every
# Nth kill is of the cluster, 8), deadline (seconds a converge may take
# before it counts as failed, 120), every_kind (kinds that must each be
# killed once: on a slow machine, where converging takes long, the run
# goes on past SECONDS, up to 180 s more, killing only the kinds still
# missing), log (a sub called with progress lines)
sub chaos_run
{
	my ($ctx, $secs, %o) = @_;
	my $clients = $o{clients} // 3;
	my ($gmin, $gmax) = @{ $o{gap} // [ 4, 8 ] };
	my $pm_every = $o{postmaster_every} // 8;
	my $deadline = $o{deadline} // 120;
	my $say = $o{log} // sub { };
	my $until = time + $secs;
	my $overtime_until = $until + 180;
	my %killed;
	my $missing = sub { return grep { !$killed{$_} } @{ $o{every_kind} // [] }; };

	my @kids;
	for my $i (1 .. $clients)
	{
		my $pid = fork();
		if ($pid == 0)
		{
			hammer_client($ctx, $i, $until);
			POSIX::_exit(0);	# not exit: the test harness's END blocks belong to the parent
		}
		push @kids, $pid;
	}
	my @wrk = map { wrk_start($ctx, "$_.localhost", $secs) } @WEB;
	@children = (@kids, map { $_->{pid} } @wrk);

	my @kills;
	my @order;
	while (time < $until - 5 || ($missing->() && time < $overtime_until))
	{
		usleep(1e6 * ($gmin + rand($gmax - $gmin)));
		my ($kind, $overtime);
		if (time >= $until - 5)
		{
			($kind) = $missing->() or last;
			$overtime = 1;
		}
		else
		{
			# each kind in turn in a shuffled order, the cluster every Nth kill
			@order = shuffle(qw(app nx-init router supervisor)) unless @order;
			$kind = (@kills + 1) % $pm_every == 0 ? 'postmaster' : shift @order;
		}
		my $k = kill_one($ctx, $kind);
		if (!$k)
		{
			# nothing of that kind to kill right now: its turn comes again
			push @order, $kind unless $kind eq 'postmaster' || $overtime;
			next;
		}
		$killed{$kind} = 1;
		my ($ok, $last) = (0, '');
		$k->{trace} = [];
		while (time - $k->{t0} < $deadline)
		{
			if (converged($ctx, $k)) { $ok = 1; last; }
			# what was still missing when, for the report
			push @{ $k->{trace} }, sprintf('%.2f %s', time - $k->{t0}, $last = $k->{why}) if $k->{why} ne $last;
			usleep(20_000);
		}
		$k->{seconds} = time - $k->{t0};
		$k->{converged} = $ok;
		$k->{backoff} = crash_backoff($ctx, $k) if $k->{deployment};
		push @kills, $k;
		$say->(sprintf('kill %d: %s%s, %s after %.2f s%s', scalar(@kills), $kind,
			$k->{deployment} ? " (deployment $k->{deployment})" : '',
			$ok ? 'converged' : "NOT converged ($k->{why})", $k->{seconds},
			$k->{deployment} ? sprintf(' (crash backoff %.2f s)', $k->{backoff}) : ''));
	}
	waitpid($_, 0) for @kids;
	waitpid($_->{pid}, 0) for @wrk;
	@children = ();

	my (%committed, @stats);
	for my $i (1 .. $clients)
	{
		for (split /\n/, eval { slurp_file("$ctx->{dir}/client_$i.log") } // '')
		{
			push @{ $committed{$1} }, $2 if /^(push|promote) (\d+)$/;
			push @stats, [ $1, $2, $3 ] if /^stats (\d+) (\d+) (\d+)$/;
		}
	}
	return {
		seconds => $secs,
		kills => \@kills,
		wrk => [ map { wrk_result($_) } @wrk ],
		committed => \%committed,
		calls_ok => sum0(map { $_->[0] } @stats),
		calls_refused => sum0(map { $_->[1] } @stats),
		calls_failed => sum0(map { $_->[2] } @stats),
	};
}

# chaos_invariants(CTX, RESULT): waits (up to 120 s) for everything wanted
# to run, then returns a list of [name, ok, detail]
sub chaos_invariants
{
	my ($ctx, $res) = @_;
	my $node = $ctx->{node};
	my @r;
	my $q = sub { return $node->safe_psql('postgres', $_[0]); };

	my $all_ready = $node->poll_query_until('postgres',
		q{SELECT count(*) FROM nx.status WHERE desired_state = 'running' AND state <> 'ready'}, '0');
	push @r, [ 'every desired-running deployment is ready', $all_ready,
		$q->(q{SELECT coalesce(string_agg(deployment || ' ' || state || ' ' || coalesce(last_error, ''), '; '), '')
			  FROM nx.status WHERE desired_state = 'running' AND state <> 'ready'}) ];
	my $multi = $q->(q{SELECT coalesce(string_agg(sandbox, ','), '') FROM (SELECT sandbox FROM nx.deployments
		WHERE is_production GROUP BY sandbox HAVING count(*) > 1) x});
	push @r, [ 'at most one production deployment per sandbox', $multi eq '', $multi ];
	my $noprod = $q->(q{SELECT coalesce(string_agg(name, ','), '') FROM nx.sandboxes s
		WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.sandbox = s.name AND d.is_production)});
	push @r, [ 'every sandbox still has its production deployment', $noprod eq '', $noprod ];
	my $removed = $q->(q{SELECT count(*) FROM nx.deployments WHERE is_production AND desired_state = 'removed'});
	push @r, [ 'no production deployment is removed', $removed eq '0', $removed ];
	my $dup = $q->(q{SELECT coalesce(string_agg(port::text, ','), '') FROM (SELECT port FROM nx.deployments
		WHERE port IS NOT NULL GROUP BY port HAVING count(*) > 1) x});
	push @r, [ 'ports are unique', $dup eq '', $dup ];

	# processes and cgroups: exactly one nx-init per desired-running
	# deployment, none for anything else, one router.  A client's last stop
	# or remove may still be in its stop grace: look again for up to 30 s.
	my $sysid = sprintf('%016x', $q->('SELECT system_identifier FROM pg_control_system()'));
	my $run = $node->data_dir . '/nx/run';
	my (@unwanted, @wrong_count, $routers);
	for (my $until = time + 30;; usleep(200_000))
	{
		my %want = map { $_ => 1 } split ' ',
		  $q->(q{SELECT string_agg(id::text, ' ') FROM nx.deployments WHERE desired_state = 'running'});
		(@unwanted, @wrong_count) = ();
		for my $dir (glob("/sys/fs/cgroup/pids/nx_sandbox/c${sysid}_d* /sys/fs/cgroup/nx_sandbox/c${sysid}_d*"))
		{
			my ($id) = $dir =~ /_d(\d+)$/;
			my @procs = grep { /\d/ } split /\n/, (eval { slurp_file("$dir/cgroup.procs") } // '');
			push @unwanted, "d$id(" . scalar(@procs) . ' procs)' if !$want{$id} && @procs;
		}
		for my $id (sort keys %want)
		{
			my $inits = grep { proc_cmdline($_) =~ m{^/nx/nx-init } } nx_cgroup_procs($node, $id);
			push @wrong_count, "d$id:$inits" if $inits != 1;
		}
		$routers = 0;
		opendir my $d, '/proc';
		for my $p (grep { /^\d+$/ } readdir $d)
		{
			my $c = proc_cmdline($p);
			$routers++ if $c =~ /nx-router / && index($c, $run) >= 0;
		}
		closedir $d;
		last if (!@unwanted && !@wrong_count && $routers == 1) || time >= $until;
	}
	push @r, [ 'no process without a row that wants it', !@unwanted, join(' ', @unwanted) ];
	push @r, [ 'exactly one nx-init per desired-running deployment', !@wrong_count, join(' ', @wrong_count) ];
	push @r, [ 'exactly one router', $routers == 1, $routers ];

	# zero lost rows: every push and promotion a client saw commit
	my $lost = '';
	for my $kind ([ 'push', 'nx.deployments' ], [ 'promote', 'nx.promotions' ])
	{
		my @ids = @{ $res->{committed}{ $kind->[0] } // [] };
		next unless @ids;
		my $missing = $q->("SELECT coalesce(string_agg(i::text, ','), '') FROM unnest(ARRAY[" . join(',', @ids)
			  . "]::bigint[]) i WHERE NOT EXISTS (SELECT 1 FROM $kind->[1] t WHERE t.id = i)");
		$lost .= "$kind->[0]: $missing " if $missing ne '';
	}
	push @r, [ sprintf('no committed row lost (%d pushes, %d promotions checked)',
		scalar(@{ $res->{committed}{push} // [] }), scalar(@{ $res->{committed}{promote} // [] })), $lost eq '', $lost ];
	return @r;
}

# pct(P, LIST): nearest-rank percentile
sub pct
{
	my ($p, @v) = @_;
	return 'n/a' unless @v;
	@v = sort { $a <=> $b } @v;
	my $r = int($p / 100 * @v + 0.999999);
	$r = 1 if $r < 1;
	return sprintf('%.2f', $v[ $r - 1 ]);
}

# chaos_report(RESULT, INVARIANTS): the report, as lines
sub chaos_report
{
	my ($res, @inv) = @_;
	my @k = @{ $res->{kills} };
	my @lines = (sprintf('chaos run: %d s, %d kills, %d converged', $res->{seconds}, scalar(@k),
		scalar(grep { $_->{converged} } @k)));
	for my $kind (qw(app nx-init router supervisor postmaster), 'all')
	{
		my @s = map { $_->{seconds} } grep { $kind eq 'all' || $_->{kind} eq $kind } @k;
		next unless @s;
		push @lines, sprintf('  converge %-11s n=%-3d p50=%s s  p99=%s s  max=%s s', $kind, scalar(@s),
			pct(50, @s), pct(99, @s), pct(100, @s));
	}
	# app and nx-init kills: the time beyond the crash backoff the
	# supervisor announced (250 ms for a first crash in a minute, doubling
	# with each further one), and how many were repeat crashes
	for my $kind (qw(app nx-init))
	{
		my @kk = grep { $_->{kind} eq $kind && defined $_->{backoff} } @k;
		next unless @kk;
		# 0 when the deployment needed no restart (the workload stopped it)
		my @s = map { my $beyond = $_->{seconds} - $_->{backoff}; $beyond > 0 ? $beyond : 0 } @kk;
		push @lines, sprintf('  %-22s n=%-3d p50=%s s  p99=%s s  max=%s s  (%d a repeat crash, backoff > 0.25 s)',
			"$kind beyond backoff", scalar(@s), pct(50, @s), pct(99, @s), pct(100, @s),
			scalar(grep { $_->{backoff} > 0.25 } @kk));
	}
	for my $w (@{ $res->{wrk} })
	{
		push @lines, sprintf('  wrk %-16s requests=%d failed=%d (%.3f%%)', $w->{host}, $w->{requests}, $w->{failed},
			$w->{requests} ? 100 * $w->{failed} / $w->{requests} : 0);
	}
	push @lines, sprintf('  workload calls: %d succeeded, %d refused or unknown outcome, %d could not read state',
		$res->{calls_ok}, $res->{calls_refused}, $res->{calls_failed});
	push @lines, map { sprintf('  invariant %-4s %s%s', $_->[1] ? 'ok' : 'FAIL', $_->[0],
		$_->[1] || $_->[2] eq '' ? '' : " ($_->[2])") } @inv;
	return @lines;
}

1;
