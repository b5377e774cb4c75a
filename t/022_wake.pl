# t/022_wake.pl
#   Scale to zero: a deployment nobody uses for its sandbox's idle_timeout
#   is stopped by the supervisor (event idle_stop, state asleep, nothing
#   left running); the next request wakes it and is answered 200 once it
#   is up, with no retry page; concurrent requests cause one wake; an open
#   connection, even a quiet one, keeps it awake; a user's open transaction
#   around another deployment's wake does not delay it; traffic shows in
#   nx.stat_deployments; a deployment stopped on purpose is not woken.
#   Without a router reporting, nothing is stopped for being idle.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use IO::Socket::INET;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = nx_node('wake');
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{SELECT nx.create_sandbox('sleepy', idle_timeout => '2 seconds')});
my $d = sql(qq{SELECT deployment FROM nx.push('sleepy', pg_read_binary_file('$hello'))});
nx_wait_state($node, $d, 'ready', 'the deployment starts');
sql(qq{SELECT nx.promote('sleepy', $d)});

# no router, no reports: idle stop never happens (nothing could wake it)
sleep(4);
is(sql(qq{SELECT state FROM nx.status WHERE deployment = $d}), 'ready',
	'without a router reporting, an idle deployment keeps running');

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port, '--ready-timeout', '20');

# get(HOST[, PATH]): one request on its own connection, the whole response
# (30 s of silence allowed: a wake holds the request)
sub get { return nx_http_get($port, $_[0], $_[1], 30); }

my $up = 0;
for (1 .. 300)
{
	if (get('sleepy.localhost') =~ /200 OK/) { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'the router serves the production host') or diag(slurp_file($router_log));
like(get('sleepy.localhost'), qr{200 OK.*deployment $d\n}s, 'answered by the deployment');

# a custom domain reaches production; the TLS proxy's question is answered
# (claimed, then verified: here by an administrator, not by DNS)
sql(q{SELECT nx.add_domain('sleepy', 'Shop.Example.com')});
sql(q{SELECT nx.approve_domain('shop.example.com', 'sleepy')});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM nx.router_routes() WHERE host = 'shop.example.com'}, '1'), 'the domain is routed');
my $got;
for (1 .. 50)
{
	$got = get('shop.example.com');
	last if $got =~ /200 OK/;
	usleep(100_000);
}
like($got, qr{200 OK.*deployment $d\n}s, 'a custom domain reaches the production deployment');
like(get("127.0.0.1:$port", '/.nx/ask?domain=shop.example.com'), qr{^HTTP/1.1 200 }, '/.nx/ask: a routed domain is known');
like(get("127.0.0.1:$port", '/.nx/ask?domain=SLEEPY.localhost.'), qr{^HTTP/1.1 200 }, '/.nx/ask: the production host, normalised');
like(get("127.0.0.1:$port", '/.nx/ask?domain=evil.example.com'), qr{^HTTP/1.1 404 }, '/.nx/ask: an unknown name is not');
like(get("127.0.0.1:$port", '/.nx/ask?domain=a%00b'), qr{^HTTP/1.1 400 }, '/.nx/ask: a malformed name is refused');
like(get('sleepy.localhost', '/.nx/ask?domain=evil.example.com'), qr{200 OK.*deployment $d\n}s,
	'on a routed host, /.nx/ask is the app\'s own path');

# the router's reports reach nx.stat_deployments
ok($node->poll_query_until('postgres',
		qq{SELECT connections >= 4 AND bytes_in > 0 AND bytes_out > 0 AND open_connections = 0
		   FROM nx.stat_deployments WHERE deployment = $d}),
	'nx.stat_deployments shows the connections and bytes');

# --- idle stop (the router's first report may already have put it to
# sleep once, before the requests above woke it)
my $count = sub {
	my ($action, $id) = @_;
	return sql(qq{SELECT count(*) FROM nx.events WHERE action = '$action' AND deployment = $id});
};
ok($node->poll_query_until('postgres', qq{SELECT state FROM nx.status WHERE deployment = $d}, 'asleep'),
	'idle past its timeout: asleep') or nx_diag_deployment($node, $d);
is(sql(qq{SELECT desired_state || ' ' || (asleep_since IS NOT NULL) FROM nx.deployments WHERE id = $d}),
	'running true', 'the row still wants it running, asleep');
# exactly one stop since it was last woken (a count read before the wait
# could already include this stop on a slow machine)
is(sql(qq{SELECT count(*) FROM nx.events WHERE action = 'idle_stop' AND deployment = $d
		  AND id > (SELECT coalesce(max(id), 0) FROM nx.events WHERE action = 'wake' AND deployment = $d)}),
	'1', 'one idle_stop event since its last wake');
is(sql(qq{SELECT actor FROM nx.events WHERE action = 'idle_stop' AND deployment = $d ORDER BY id DESC LIMIT 1}),
	'supervisor', 'by the supervisor');
my @left;
for (1 .. 100)
{
	@left = nx_cgroup_procs($node, $d);
	last unless @left;
	usleep(100_000);
}
is(scalar(@left), 0, 'nothing of it runs any more');
is(sql(q{SELECT desired_state FROM nx.router_routes() WHERE host = 'sleepy.localhost'}), 'asleep',
	'the router sees it asleep');

# --- wake on request: five at once, one wake, all answered
my $wakes0 = $count->('wake', $d);
my @kids;
my $t0 = time();
for my $i (1 .. 5)
{
	my $pid = fork();
	if ($pid == 0)
	{
		my $r = get('sleepy.localhost');
		# _exit: a plain exit would run the test harness's END blocks
		POSIX::_exit($r =~ m{^HTTP/1.1 200 OK.*deployment $d\n}s ? 0 : 1);
	}
	push @kids, $pid;
}
my $failed = 0;
for my $pid (@kids)
{
	waitpid($pid, 0);
	$failed++ if $? != 0;
}
my $took = time() - $t0;
is($failed, 0, 'five concurrent requests to the asleep deployment: all 200 from it')
  or diag(slurp_file($router_log));
diag(sprintf('wake to first answer: %.0f ms (5 concurrent requests)', $took * 1000));
is($count->('wake', $d), $wakes0 + 1, 'they caused exactly one wake');
is(sql(qq{SELECT state FROM nx.status WHERE deployment = $d}), 'ready', 'awake and ready again');

# --- a quiet open connection keeps it awake (echo_app keeps connections
# alive; hello_app closes each after one answer)
my $echo = nx_build_app($node, 'echo_app');
sql(q{SELECT nx.create_sandbox('keepy', idle_timeout => '2 seconds')});
my $e = sql(qq{SELECT deployment FROM nx.push('keepy', pg_read_binary_file('$echo'))});
nx_wait_state($node, $e, 'ready', 'a keep-alive app starts');
sql(qq{SELECT nx.promote('keepy', $e)});
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM nx.router_routes() WHERE host = 'keepy.localhost'}, '1'),
	'the router has its route');
my $held = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp');
$held->autoflush(1);
print $held "GET /one HTTP/1.1\r\nHost: keepy.localhost\r\n\r\n";
my $first = '';
sysread($held, $first, 65536);
like($first, qr/200 OK/, 'a keep-alive connection got its answer');
ok($node->poll_query_until('postgres',
		qq{SELECT open_connections FROM nx.stat_deployments WHERE deployment = $e}, '1'),
	'the open connection is reported');
sleep(7);
is(sql(qq{SELECT state FROM nx.status WHERE deployment = $e}), 'ready',
	'with a connection open (and quiet for 3x the timeout) it is not stopped');
print $held "GET /two HTTP/1.1\r\nHost: keepy.localhost\r\nConnection: close\r\n\r\n";
my $second = '';
while (sysread($held, my $buf, 65536)) { $second .= $buf; }
like($second, qr{200 OK.*/two}s, 'and that connection still works');
# (it may have been put to sleep once before the connection opened, on a
# slow machine: count from here)
my $e_stops0 = $count->('idle_stop', $e);
close($held);
ok($node->poll_query_until('postgres', qq{SELECT state FROM nx.status WHERE deployment = $e}, 'asleep'),
	'after it closes, the deployment goes to sleep');
is($count->('idle_stop', $e), $e_stops0 + 1, 'one idle_stop for it');
ok($node->poll_query_until('postgres', qq{SELECT state FROM nx.status WHERE deployment = $d}, 'asleep'),
	'the first deployment is asleep again too');
# a site with two deployments, to promote while a user holds a lock below
sql(q{SELECT nx.create_sandbox('pair')});
my @pair = map { sql(qq{SELECT deployment FROM nx.push('pair', pg_read_binary_file('$hello'))}) } 1 .. 2;
nx_wait_state($node, $_, 'ready', "pair: deployment $_ starts") for @pair;
sql(qq{SELECT nx.promote('pair', $pair[0])});
ok($node->poll_query_until('postgres',
		q{SELECT deployment FROM nx.router_routes() WHERE host = 'pair.localhost'}, $pair[0]),
	'pair: the router has its route');

# a transaction holding the other deployment's row (an open
# BEGIN; SELECT nx.wake(...)) and a request waiting for that deployment do
# not delay this wake: the router's statements never wait on a user's lock
# for more than a second; and its route table, on a connection of its own,
# follows another site's promote meanwhile
my $holder = $node->background_psql('postgres');
$holder->query_safe("BEGIN; SELECT nx.wake($e)");
my $waiter = fork();
if ($waiter == 0)
{
	get('keepy.localhost');
	POSIX::_exit(0);
}
usleep(300_000);
{
	my $t_promote = time;
	sql(qq{SELECT nx.promote('pair', $pair[1])});
	my $followed = 0;
	for (1 .. 200)
	{
		if (get('pair.localhost') =~ /deployment $pair[1]\n/) { $followed = 1; last; }
		usleep(5_000);
	}
	my $took = time - $t_promote;
	ok($followed && $took < 1,
		sprintf('meanwhile a promote of another site is followed at once (%.3f s; a wake waits up to 1 s)', $took));
}
my $t_wake = time;
like(get('sleepy.localhost'), qr{200 OK.*deployment $d\n}s, 'and wakes again on the next request');
my $wake_took = time - $t_wake;
ok($wake_took < 3, sprintf('while a user holds another deployment\'s wake open (%.2f s)', $wake_took));
$holder->query_safe('COMMIT');
$holder->quit;
waitpid($waiter, 0);

# --- a deployment stopped on purpose is not woken
sql(qq{SELECT nx.stop($d)});
$wakes0 = $count->('wake', $d);
nx_wait_state($node, $d, 'stopped', 'stopped on purpose');
like(get('sleepy.localhost'), qr{^HTTP/1.1 503 .*not running}s, 'a stopped deployment gets 503, not a wake');
is($count->('wake', $d), $wakes0, 'no wake for it');

# --- a crashlooping production deployment gets 503 with Retry-After at
# once, not after the router's ready timeout
my $misbehave = nx_build_app($node, 'misbehave', '-lpq');
sql(q{SELECT nx.create_sandbox('broken')});
my $b = sql(qq{SELECT deployment FROM nx.push('broken', pg_read_binary_file('$misbehave'), args => ARRAY['exit'])});
sql(qq{SELECT nx.promote('broken', $b, force => true)});
nx_wait_state($node, $b, 'crashloop', 'a production deployment that exits at once crashloops');
my $broken = '';
for (1 .. 50)
{
	$broken = get('broken.localhost');
	last if $broken =~ /^HTTP\/1.1 503 /;
	usleep(100_000);
}
my $t_broken = time;
$broken = get('broken.localhost');
my $broken_took = time - $t_broken;
like($broken, qr{^HTTP/1.1 503 .*\r\nRetry-After: \d+\r\n}s, 'it gets 503 with Retry-After');
diag(sprintf('503 for the crashlooping deployment in %.1f ms', $broken_took * 1000));
ok($broken_took < 2, 'at once, not after the ready timeout');

$router->signal('TERM');
$router->finish;
$node->stop;
done_testing();
