# t/020_router.pl
#   nx-router in front of real sandboxes: production and preview hosts
#   reach the right deployment, a promote switches new requests (also on
#   open connections),
#   keep-alive and a 1 MiB body pass through, X-Forwarded-* are set and
#   cannot be forged; unknown or missing Host is 404, a huge head 431,
#   garbage 400, a slow head 408, a stopped deployment 503; an app that
#   never answers, a client killed mid-request, 300 slow clients and a
#   lost route-table connection do not stop it; over --max-connections it
#   answers 503, past --idle-timeout 504; IPv6 listening works; SIGTERM
#   drains it (no new connections, open ones finish) and ends it; it runs
#   with no_new_privs and a seccomp filter.  NX_ROUTER_BENCH=SECONDS adds wrk figures (diag only).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use IO::Socket::INET;
use IO::Socket::IP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('router');
nx_require_host_setup($node);

my $hello = nx_build_app($node, 'hello_app');
my $dbapp = nx_build_app($node, 'dbapp', '-lpq');
my $echo = nx_build_app($node, 'echo_app');

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
my %id;
for my $app ([ hello => $hello ], [ dbapp => $dbapp ], [ echo => $echo ])
{
	$id{ $app->[0] } = $node->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$app->[1]'), '$app->[0]')});
}
nx_wait_state($node, $id{$_}, 'ready', "$_ is ready") for qw(hello dbapp echo);
$node->safe_psql('postgres', "SELECT nx.promote('app', $id{hello})");
my %slug = map {
	$_ => $node->safe_psql('postgres', "SELECT slug FROM nx.deployments WHERE id = $id{$_}")
} keys %id;

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = start_router($port, '--head-timeout', '1', '--ready-timeout', '3');

# the shared helpers of NxTest.pm, for this test's node and router port
sub start_router { return nx_start_router($node, @_); }
sub request { my ($data, $p) = @_; return nx_http_request($p // $port, $data); }
sub read_all { return nx_read_all($_[0]); }
sub get { return nx_http_get($port, @_); }

# read_response reads exactly one response (head + Content-Length body)
sub read_response
{
	my ($s) = @_;
	my $out = '';
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	while (select(my $r = $rin, undef, undef, 10))
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$out .= $buf;
		if ($out =~ /^(.*?\r\n\r\n)/s)
		{
			my $head = $1;
			my ($len) = $head =~ /Content-Length: (\d+)/i;
			return $out if length($out) >= length($head) + ($len // 0);
		}
	}
	return $out;
}

# wait until the router serves the production host
my $up = 0;
for (1 .. 300)
{
	if (get('app.localhost') =~ /200 OK/) { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'the router serves after start') or diag(slurp_file($router_log));

# it runs jailed: no new privileges, a seccomp filter
{
	my $status = slurp_file('/proc/' . $router->{KIDS}[0]{PID} . '/status');
	like($status, qr/^NoNewPrivs:\s+1$/m, 'the router runs with no_new_privs');
	like($status, qr/^Seccomp:\s+2$/m, 'and under a seccomp filter');
	like(slurp_file($router_log), qr/jailed: no new privileges; \d+ system calls refused/, 'and says so');
}

# --- routing on Host
like(get('app.localhost'), qr{^HTTP/1.1 200 OK.*hello from sandbox app, deployment $id{hello}\n}s,
	'production host reaches the production deployment');
like(get('APP.LocalHost.:8080'), qr{deployment $id{hello}\n}, 'Host is normalised (case, port, trailing dot)');
like(get("$slug{hello}.preview.localhost"), qr{hello from sandbox app, deployment $id{hello}\n},
	'preview host of hello');
like(get("$slug{dbapp}.preview.localhost"), qr{visit \d+ from deployment $id{dbapp}\n}, 'preview host of dbapp');
like(get("$slug{echo}.preview.localhost", '/x?y=1'),
	qr{echo from deployment $id{echo}: GET /x\?y=1 body=0 sum=0 xff=127\.0\.0\.1 xfh=$slug{echo}\.preview\.localhost xfp=http\n},
	'preview host of echo, with X-Forwarded-For/-Host/-Proto');
like(request("GET / HTTP/1.1\r\nHost: $slug{echo}.preview.localhost\r\nX-Forwarded-For: 6.6.6.6\r\n"
		  . "Forwarded: for=6.6.6.6\r\nConnection: close\r\n\r\n"),
	qr{xff=127\.0\.0\.1 }, 'a client cannot forge X-Forwarded-For');

# --- promote switches new connections
$node->safe_psql('postgres', "SELECT nx.promote('app', $id{echo})");
my $switched = 0;
for (1 .. 100)
{
	if (get('app.localhost') =~ /echo from deployment $id{echo}:/) { $switched = 1; last; }
	usleep(50_000);
}
ok($switched, 'after promote, the production host reaches the new deployment');

# --- keep-alive: two requests on one connection
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
	$s->autoflush(1);
	print $s "GET /one HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
	my $r1 = read_response($s);
	print $s "GET /two HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
	my $r2 = read_response($s);
	like($r1, qr{GET /one body=0}, 'keep-alive: first response');
	like($r2, qr{GET /two body=0}, 'keep-alive: second response on the same connection');
	close $s;
}

# --- a 1 MiB body passes through intact
{
	my $body = join('', map { chr(($_ * 7 + 3) % 256) } 0 .. 1023) x 1024;
	my $sum = 0;
	$sum += $_ for unpack('C*', $body);
	like(request("POST /upload HTTP/1.1\r\nHost: $slug{echo}.preview.localhost\r\nContent-Length: "
			  . length($body) . "\r\nConnection: close\r\n\r\n$body"),
		qr{POST /upload body=1048576 sum=$sum }, 'a 1 MiB POST body arrives intact');
}

# --- errors
like(get('nope.localhost'), qr{^HTTP/1.1 404 Not Found\r\n.*no site at this address}s, '404 for an unknown host');
like(request("GET / HTTP/1.0\r\n\r\n"), qr{^HTTP/1.1 404 Not Found\r\n.*no Host}s, '404 without Host');
like(request("GET / HTTP/1.1\r\nHost: app.localhost\r\nX-Big: " . ('x' x (70 * 1024)) . "\r\n\r\n"),
	qr{^HTTP/1.1 431 }, '431 for a 70 KiB head');
like(request("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n"), qr{^HTTP/1.1 400 Bad Request\r\n},
	'400 for garbage (a TLS hello)');
like(request("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), qr{^HTTP/1.1 400 }, '400 for two Host fields');
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
	$s->autoflush(1);
	print $s "GET / HTTP/1.1\r\nHost: app.loc";
	my $t0 = time;
	my $r = read_all($s);
	like($r, qr{^HTTP/1.1 408 Request Timeout\r\n}, '408 for a head that does not arrive in time');
	ok(time - $t0 <= 5, 'the 408 comes after about --head-timeout');
}

# --- an app that never answers does not block others
{
	my $hang = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
	$hang->autoflush(1);
	print $hang "GET /hang HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
	usleep(200_000);
	like(get("$slug{hello}.preview.localhost"), qr{200 OK}, 'others are served while an app request hangs');
	like(get('app.localhost', '/after-hang'), qr{GET /after-hang}, 'the same app serves others meanwhile');
	close $hang;
}

# --- a client killed mid-request does not stop the router
{
	my $pid = fork();
	if ($pid == 0)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
		$s->autoflush(1);
		print $s "POST / HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 100000\r\n\r\n" . ('z' x 5000);
		sleep 30;
		exit 0;
	}
	usleep(300_000);
	kill 'KILL', $pid;
	waitpid($pid, 0);
	my $pid2 = fork();
	if ($pid2 == 0)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
		print $s "GET / HTTP/1.1\r\nHost: app.lo";
		sleep 30;
		exit 0;
	}
	usleep(300_000);
	kill 'KILL', $pid2;
	waitpid($pid2, 0);
	like(get('app.localhost', '/after-kill'), qr{GET /after-kill}, 'the router serves after clients were killed mid-request');
}

# --- a stopped deployment: 503
$node->safe_psql('postgres', "SELECT nx.stop($id{dbapp})");
nx_wait_state($node, $id{dbapp}, 'stopped');
my $stopped = '';
for (1 .. 50)
{
	$stopped = get("$slug{dbapp}.preview.localhost");
	last if $stopped =~ /503/;
	usleep(100_000);
}
like($stopped, qr{^HTTP/1.1 503 Service Unavailable\r\n.*not running}s, '503 for a stopped deployment');

# --- the route table connection is lost: the router reconnects and reloads
my $killed = $node->safe_psql('postgres',
	q{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	  WHERE application_name = 'nx-router'});
is($killed, '1', "the router's database session is terminated");
like(get('app.localhost', '/meanwhile'), qr{GET /meanwhile}, 'it keeps serving with the last table');
# a keep-alive connection opened before the promote stays where it started
my $ka = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
$ka->autoflush(1);
print $ka "GET /before HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
like(read_response($ka), qr{echo from deployment $id{echo}: GET /before}, 'keep-alive connection on the old production');
$node->safe_psql('postgres', "SELECT nx.promote('app', $id{hello})");
$switched = 0;
for (1 .. 100)
{
	if (get('app.localhost') =~ /hello from sandbox app, deployment $id{hello}\n/) { $switched = 1; last; }
	usleep(100_000);
}
ok($switched, 'after reconnecting it follows a promote again');
print $ka "GET /after HTTP/1.1\r\nHost: app.localhost\r\n\r\n";
like(read_response($ka), qr{hello from sandbox app, deployment $id{hello}\n},
	'routing is per request: the next request on an open connection reaches the new deployment');
close $ka;

# --- the wake and report connection is lost: it comes back, and reports again
{
	my $pid0 = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'nx-router wakes'});
	ok($pid0 > 0, 'the router has a second session, for wakes and reports');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid0)");
	ok($node->poll_query_until('postgres',
			qq{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nx-router wakes' AND pid <> $pid0}, '1'),
		'it reconnects');
	my $at = $node->safe_psql('postgres', 'SELECT reported_at FROM nx.router_heartbeat');
	ok($node->poll_query_until('postgres', "SELECT reported_at > '$at' FROM nx.router_heartbeat"),
		'and reports again');
}

# --- a promote that commits while the router reads its table after a
# reconnect is not missed: the router commits its LISTEN before reading (a
# LISTEN counts only from its commit).  A lock on nx.domains holds the read
# after its snapshot is taken, and the promote commits meanwhile.
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('BEGIN; LOCK TABLE nx.domains IN ACCESS EXCLUSIVE MODE');
	$node->safe_psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nx-router'});
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nx-router' AND wait_event_type = 'Lock'},
			'1'),
		'the reconnected router waits to read its table');
	$node->safe_psql('postgres', "SELECT nx.promote('app', $id{echo})");
	$locker->query_safe('COMMIT');
	$locker->quit;
	my $followed = 0;
	for (my $until = time + 20; time < $until; usleep(100_000))
	{
		if (get('app.localhost', '/race') =~ /echo from deployment $id{echo}: GET \/race/) { $followed = 1; last; }
	}
	ok($followed, 'a promote committed while the router read its table after a reconnect is followed');
	# back to hello, as the rest expects
	$node->safe_psql('postgres', "SELECT nx.promote('app', $id{hello})");
	my $back = 0;
	for (my $until = time + 20; time < $until; usleep(100_000))
	{
		if (get('app.localhost') =~ /hello from sandbox app, deployment $id{hello}\n/) { $back = 1; last; }
	}
	ok($back, 'and the next promote too');
}

# --- over --max-connections: 503 for the extra one, the others unharmed
{
	my $port2 = PostgreSQL::Test::Cluster::get_free_port();
	my $port3 = PostgreSQL::Test::Cluster::get_free_port();
	# --idle-timeout 3: short enough to test the 504, long enough that a
	# loaded machine does not turn an ordinary answer into one
	my ($r2) = start_router($port2, '--max-connections', '2', '--listen', "[::1]:$port3",
		'--idle-timeout', '3');
	my $ok2 = 0;
	for (1 .. 100)
	{
		if (request("GET / HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n", $port2) =~ /200 OK/)
		{
			$ok2 = 1;
			last;
		}
		usleep(100_000);
	}
	ok($ok2, 'second router serves');
	my @held = map {
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port2, Proto => 'tcp');
		$s->autoflush(1);
		print $s "GET / HTTP/1.1\r\n";
		$s;
	} 1 .. 2;
	usleep(200_000);
	like(request("GET / HTTP/1.1\r\nHost: app.localhost\r\n\r\n", $port2), qr{^HTTP/1.1 503 .*too many connections}s,
		'503 over --max-connections');
	my $s = $held[0];
	print $s "Host: app.localhost\r\nConnection: close\r\n\r\n";
	like(read_all($s), qr{200 OK}, 'a connection held open meanwhile is still served');
	close $_ for @held;
	my $v6 = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port3, Proto => 'tcp');
	ok($v6, 'the second router listens on [::1] too');
	if ($v6)
	{
		print $v6 "GET /v6 HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n";
		like(read_all($v6), qr{200 OK.*deployment $id{hello}\n}s, 'a request over IPv6 is routed');
	}
	my $t0 = Time::HiRes::time();
	like(request("GET /hang HTTP/1.1\r\nHost: $slug{echo}.preview.localhost\r\n\r\n", $port2),
		qr{^HTTP/1.1 504 Gateway Timeout\r\n}, '504 when the app does not answer within --idle-timeout');
	ok(Time::HiRes::time() - $t0 < 15, 'the 504 comes after about --idle-timeout');

	# graceful drain: after SIGTERM no new connection is accepted, an open
	# keep-alive connection is still served, and the router exits when it
	# closes
	my $ka = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port2, Proto => 'tcp');
	$ka->autoflush(1);
	print $ka "GET /before HTTP/1.1\r\nHost: $slug{echo}.preview.localhost\r\n\r\n";
	like(read_response($ka), qr{200 OK.*GET /before}s, 'a keep-alive connection before SIGTERM');
	$r2->signal('TERM');
	my $refused = 0;
	for (my $until = time + 20; time < $until; usleep(50_000))
	{
		my $n = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port2, Proto => 'tcp');
		if (!$n) { $refused = 1; last; }
		close $n;
	}
	ok($refused, 'draining: new connections are refused');
	print $ka "GET /during HTTP/1.1\r\nHost: $slug{echo}.preview.localhost\r\nConnection: close\r\n\r\n";
	like(read_all($ka), qr{200 OK.*GET /during}s, 'draining: the open connection is still served');
	close $ka;
	$r2->finish;
	is($r2->full_result(0), 0, 'SIGTERM: the second router exits with status 0 once drained');
	like(slurp_file($node->basedir . "/router_$port2.log"), qr{stopping: every connection finished},
		'it says it drained');
}

# --- slowloris: many connections trickling a head do not delay others
{
	my @slow;
	for (1 .. 300)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or last;
		$s->autoflush(1);
		print $s "GET / HTTP/1.1\r\nHost: app.loc";
		push @slow, $s;
	}
	is(scalar(@slow), 300, '300 slow clients connected');
	my $t0 = Time::HiRes::time();
	like(get("$slug{hello}.preview.localhost"), qr{200 OK}, 'a request is served among them');
	# a router that served them one at a time would make it wait at least
	# one --head-timeout (1 s) per slow client; 5 s allows for a loaded machine
	ok(Time::HiRes::time() - $t0 < 5, 'and promptly');
	like(read_all($slow[-1]), qr{^HTTP/1.1 408 }, 'the slow clients get 408');
	close $_ for @slow;
}

# --- optional figures (NX_ROUTER_BENCH=SECONDS): wrk through the router,
# keep-alive (echo: one hand-off per connection) and one connection per
# request (hello closes: one hand-off per request), with the router's CPU
# time per request from /proc
if ($ENV{NX_ROUTER_BENCH} && `which wrk` ne '')
{
	my $rpid = $router->{KIDS}[0]{PID};
	for my $case ([ 'keep-alive, echo_app', "$slug{echo}.preview.localhost" ],
		[ 'connection per request, hello_app', "$slug{hello}.preview.localhost" ])
	{
		my @t0 = (split ' ', slurp_file("/proc/$rpid/stat"))[ 13, 14 ];
		my $out = `wrk -t1 -c32 -d$ENV{NX_ROUTER_BENCH}s --latency -H 'Host: $case->[1]' http://127.0.0.1:$port/ 2>&1`;
		my @t1 = (split ' ', slurp_file("/proc/$rpid/stat"))[ 13, 14 ];
		my ($requests) = $out =~ /(\d+) requests in/;
		my ($rps) = $out =~ /Requests\/sec:\s+(\S+)/;
		my ($p50) = $out =~ /^\s+50%\s+(\S+)/m;
		my ($p99) = $out =~ /^\s+99%\s+(\S+)/m;
		my ($errors) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
		my $cpu_us = ($t1[0] + $t1[1] - $t0[0] - $t0[1]) * 1e6 / 100 / ($requests || 1);
		diag(sprintf('%s: c=32 req/s=%s p50=%s p99=%s non-2xx=%d router CPU %.1f us/request',
			$case->[0], $rps // '?', $p50 // '?', $p99 // '?', $errors // 0, $cpu_us));
	}
}

# --- the router is still alive and stops on SIGTERM
like(get("$slug{hello}.preview.localhost"), qr{200 OK}, 'the router is still serving at the end');
$router->signal('TERM');
$router->finish;
is($router->full_result(0), 0, 'SIGTERM: the router exits with status 0');
like(slurp_file($router_log), qr{404 no site at this address}, 'errors are logged');

# --- the router the supervisor runs: logs in as nx_router (routes only),
# comes back within milliseconds after kill -9, and stops with the cluster
my $sport = PostgreSQL::Test::Cluster::get_free_port();
$node->append_conf('postgresql.conf', "nx.router = on\nnx.http_port = $sport\n");
$node->restart;
nx_wait_ready_since_start($node, $id{hello}, 'hello runs again after the restart');
# router_pid: the newest "router started (pid N)" line of the server log
sub router_pid
{
	my @pids = slurp_file($node->logfile) =~ /router started \(pid (\d+)\)/g;
	return $pids[-1] // 0;
}
my $served = 0;
for (my $until = time + 60; time < $until; usleep(50_000))
{
	if (request("GET / HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n", $sport) =~ /200 OK/)
	{
		$served = 1;
		last;
	}
}
ok($served, 'the supervisor\'s router serves the production host');
my $spid = router_pid();
ok($spid > 0, 'the supervisor started the router');
like(slurp_file("/proc/$spid/status"), qr/^Seccomp:\s+2$/m, 'the supervisor\'s router is jailed too');
is($node->safe_psql('postgres', "SELECT usename FROM pg_stat_activity WHERE application_name = 'nx-router'"),
	'nx_router', 'it is logged in as nx_router');
is($node->safe_psql('postgres', q{SELECT has_table_privilege('nx_router', 'nx.deployments', 'SELECT')
	OR has_table_privilege('nx_router', 'nx.sandboxes', 'SELECT')}), 'f', 'nx_router cannot read the tables');

kill 'KILL', $spid;
my $t0 = [ Time::HiRes::gettimeofday() ];
my $back = 0;
# restarting takes ~140 ms on a quiet machine; allow for a loaded one
for (my $until = time + 30; time < $until; usleep(5_000))
{
	if (router_pid() != $spid
		&& request("GET / HTTP/1.1\r\nHost: app.localhost\r\nConnection: close\r\n\r\n", $sport) =~ /200 OK/)
	{
		$back = 1;
		last;
	}
}
ok($back, 'after kill -9 the supervisor starts a new router');
diag(sprintf('router back and serving %.0f ms after kill -9', 1000 * Time::HiRes::tv_interval($t0))) if $back;
my $spid2 = router_pid();
$node->stop('fast');
ok(!kill(0, $spid2), 'pg_ctl stop: the router is gone');

done_testing();
