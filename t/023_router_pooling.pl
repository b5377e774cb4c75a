# t/023_router_pooling.pl
#   nx-router behind the pooling proxies people put in front for TLS:
#   nginx with upstream keepalive, HAProxy with http-reuse always, Caddy's
#   default reverse_proxy.  Two tenants' apps (each names itself); 240
#   requests through each proxy alternate the two hosts, from 40 client
#   addresses: none is answered by the wrong tenant, none fails, the
#   router's X-Forwarded-For is right on every request (the client the
#   trusted proxy named, then the proxy), the trusted proxy's
#   X-Forwarded-Proto reaches the app while an untrusted client's does
#   not, and the apps see few connections (the router pools them).  Then
#   10 s of wrk (8 connections) alternating the hosts through each proxy:
#   0 wrong answers, 0 non-2xx, and the router accepted no more
#   connections than the proxy pools (a router that closed the connection
#   at each host switch would accept one per request) and asked nx-init
#   for few app connections (its own pool).
#   The proxies are required: the test fails, never skips, without them.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my %bin = (nginx => '/usr/sbin/nginx', haproxy => '/usr/sbin/haproxy', caddy => '/usr/bin/caddy');
for (sort keys %bin)
{
	ok(-x $bin{$_}, "$_ is installed ($bin{$_})") or BAIL_OUT("$_ is missing: install nginx, haproxy and caddy");
}

my $node = nx_node('pooling');
nx_require_host_setup($node);
my $app = nx_build_app($node, 'frame_app');
sub sql { return $node->safe_psql('postgres', $_[0]); }

my %dep;
for my $t (qw(ta tb))
{
	sql(qq{SELECT nx.create_sandbox('$t')});
	$dep{$t} = sql(qq{SELECT deployment FROM nx.push('$t', pg_read_binary_file('$app'))});
}
nx_wait_state($node, $dep{$_}, 'ready', "$_ is ready") for qw(ta tb);
sql(qq{SELECT nx.promote('$_', $dep{$_})}) for qw(ta tb);

# start_router(): a router that trusts the proxies (all on 127.0.0.1),
# nobody else; waits until it serves both tenants
my ($router, $router_log, $rport);
my $probes;    # connections the test itself made to the router
sub start_router
{
	$rport = PostgreSQL::Test::Cluster::get_free_port();
	($router, $router_log) = nx_start_router($node, $rport, '--trusted-proxies', '127.0.0.1/32');
	$probes = 0;
	for (1 .. 300)
	{
		$probes += 2;
		return 1
		  if nx_http_get($rport, 'ta.localhost') =~ /200 OK/ && nx_http_get($rport, 'tb.localhost') =~ /200 OK/;
		usleep(100_000);
	}
	diag(slurp_file($router_log));
	return 0;
}

# stop_router(): SIGTERM; returns the figures of its last line
sub stop_router
{
	$router->signal('TERM');
	$router->finish;
	my ($req, $acc, $hand, $reused) = slurp_file($router_log)
	  =~ /served (\d+) requests on (\d+) client connections; (\d+) app connections handed over, (\d+) requests on pooled/;
	return ($req // -1, $acc // -1, $hand // -1, $reused // -1);
}

# the wrk script: requests alternate the hosts, each asks for the tenant
# it expects in its path; an answer from another tenant counts as wrong
my $lua = $node->basedir . '/alternate.lua';
open my $lfh, '>', $lua or die;
print $lfh <<'EOL';
local i = 0
request = function()
	i = i + 1
	local t = (i % 2 == 0) and "ta" or "tb"
	return wrk.format("GET", "/expect-" .. t, {["Host"] = t .. ".localhost"})
end
wrong = 0
response = function(status, headers, body)
	local got, want = string.match(body or "", "sandbox (%w+) .* GET /expect%-(%w+) ")
	if got == nil or got ~= want then wrong = wrong + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
	for _, t in ipairs(threads) do io.write(string.format("wrong %d\n", t:get("wrong"))) end
end
EOL
close $lfh;

my $dir = $node->basedir . '/proxies';
mkdir $dir;
mkdir "$dir/$_" for qw(tmp caddy);

# request(PORT, HOST, PATH, FROM, EXTRA): one request from 127.0.0.FROM on
# its own connection, the whole answer
sub request
{
	my ($port, $host, $path, $from, $extra) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, LocalAddr => "127.0.0.$from",
		Proto => 'tcp') or return "connect failed: $!";
	$s->autoflush(1);
	print $s "GET $path HTTP/1.1\r\nHost: $host\r\n" . ($extra // '') . "Connection: close\r\n\r\n";
	my $r = nx_read_all($s, 10);
	close $s;
	return $r;
}

# start_proxy(NAME, PORT, CMD...): run it in the background; wait until it answers
sub start_proxy
{
	my ($name, $port, @cmd) = @_;
	my $h = IPC::Run::start(\@cmd, '<', '/dev/null', '>', "$dir/$name.out", '2>&1');
	for (1 .. 200)
	{
		last if request($port, 'ta.localhost', '/up', 1) =~ /^HTTP\/1.1 200/;
		usleep(50_000);
	}
	return $h;
}

# run_load(NAME, PORT, XFP, POOL): 240 requests alternating the tenants,
# from 40 client addresses, then 10 s of wrk; checks who answered, what
# the app saw, and how many connections the router took
sub run_load
{
	my ($name, $port, $xfp, $pool) = @_;
	my ($ok, $wrong, $failed, $bad_xff, $bad_xfp) = (0, 0, 0, 0, 0);
	my %conns;
	for my $i (1 .. 240)
	{
		my $t = $i % 2 ? 'ta' : 'tb';
		my $from = 2 + $i % 40;
		my $r = request($port, "$t.localhost", "/$name/$i", $from);
		if ($r !~ m{^HTTP/1.1 200 }) { $failed++; diag("$name: $r") if $failed < 3; next; }
		if ($r !~ m{frame from sandbox $t deployment $dep{$t} conn (\d+): GET /$name/$i }) { $wrong++; next; }
		$conns{"$t $1"}++;
		$ok++;
		my ($xff) = $r =~ / xff=(.*?) xfp=/;
		my ($got_xfp) = $r =~ / xfp=(\S*) /;
		$bad_xff++ unless $xff eq "127.0.0.$from, 127.0.0.1";
		$bad_xfp++ unless $got_xfp eq $xfp;
		diag("$name: xff=$xff xfp=$got_xfp") if ($bad_xff || $bad_xfp) && $bad_xff + $bad_xfp < 3;
	}
	is($ok, 240, "$name: 240 requests alternating two tenants answered 200");
	is($wrong, 0, "$name: none answered by the wrong tenant");
	is($failed, 0, "$name: none failed");
	is($bad_xff, 0, "$name: X-Forwarded-For is the client, then the proxy, on every request");
	is($bad_xfp, 0, "$name: the trusted proxy's X-Forwarded-Proto ($xfp) reaches the app");
	my $app_conns = scalar(keys %conns);
	ok($app_conns >= 2 && $app_conns <= 8, "$name: the apps saw $app_conns connections for 240 requests (pooled)")
	  or diag(join(' ', map { "$_:$conns{$_}" } sort keys %conns));

	my $out = `wrk -t1 -c8 -d10s -s $lua http://127.0.0.1:$port/ 2>&1`;
	my ($requests) = $out =~ /(\d+) requests in /;
	my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
	my ($wrong_wrk) = $out =~ /^wrong (\d+)$/m;
	my ($e1, $e2, $e3, $e4) = $out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
	ok(($requests // 0) > 1000, "$name: wrk made " . ($requests // 0) . " requests in 10 s") or diag($out);
	is($wrong_wrk // -1, 0, "$name: wrk: 0 answers from the wrong tenant");
	is($non2xx // 0, 0, "$name: wrk: 0 non-2xx");
	is(($e1 // 0) + ($e2 // 0) + ($e3 // 0) + ($e4 // 0), 0, "$name: wrk: no socket error") or diag($out);
	return $requests // 0;
}

# check_router(NAME, REQUESTS, POOL): the router's own figures after a proxy's run
sub check_router
{
	my ($name, $wrk_requests, $pool) = @_;
	my ($req, $acc, $hand, $reused) = stop_router();
	diag("$name: router: $req requests on $acc client connections, $hand hand-offs, $reused on pooled app connections");
	ok($req >= $wrk_requests, "$name: the router served every request");
	# no more than the proxy's pool holds: a router that closed the
	# connection at every host switch would need one per request,
	# thousands here
	ok($acc - $probes >= 1 && $acc - $probes <= $pool,
		"$name: the router accepted " . ($acc - $probes) . " client connections from the proxy for $req requests, "
		  . "no more than its pool ($pool) holds");
	# at most what the proxy sends at once, per tenant (the router's pool
	# keeps them; a connection idle for 2 s is closed and made again later)
	ok($hand >= 2 && $hand <= 2 * $pool,
		"$name: nx-init handed over $hand app connections for $req requests (pooled by the router)");
}

# --- nginx with upstream keepalive
{
	ok(start_router(), 'nginx: the router serves both tenants');
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $h = start_proxy('nginx', $port, nx_pooling_nginx("$dir/nginx", $port, $rport,
		"\t\t\tproxy_set_header X-Forwarded-For \$remote_addr;\n\t\t\tproxy_set_header X-Forwarded-Proto https;"));
	my $n = run_load('nginx', $port, 'https');
	$h->signal('QUIT');
	$h->finish;
	check_router('nginx', $n, 16);
}

# --- HAProxy with http-reuse always
{
	ok(start_router(), 'haproxy: the router serves both tenants');
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	open my $fh, '>', "$dir/haproxy.cfg" or die;
	print $fh <<"EOC";
global
	# one thread: one pool of idle server connections (each thread keeps its own)
	nbthread 1
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	http-reuse always
frontend fe
	bind 127.0.0.1:$port
	option forwardfor
	http-request set-header X-Forwarded-Proto https
	default_backend be
backend be
	# a pool of 16 idle connections kept for the whole run (by default
	# HAProxy purges idle server connections every 5 s, per thread, and
	# opens new ones: more connections, none of them a host switch)
	server router 127.0.0.1:$rport pool-max-conn 16 pool-purge-delay 60s
EOC
	close $fh;
	my $h = start_proxy('haproxy', $port, $bin{haproxy}, '-f', "$dir/haproxy.cfg", '-db');
	my $n = run_load('haproxy', $port, 'https');
	$h->signal('TERM');
	$h->finish;
	check_router('haproxy', $n, 16);
}

# --- Caddy's reverse_proxy with its default transport (pooled)
{
	ok(start_router(), 'caddy: the router serves both tenants');
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	open my $fh, '>', "$dir/Caddyfile" or die;
	print $fh <<"EOC";
{
	admin off
	auto_https off
	storage file_system $dir/caddy
}
http://:$port {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$rport {
		header_up X-Forwarded-Proto https
	}
}
EOC
	close $fh;
	local $ENV{HOME} = "$dir/caddy";
	local $ENV{XDG_DATA_HOME} = "$dir/caddy";
	local $ENV{XDG_CONFIG_HOME} = "$dir/caddy";
	my $h = start_proxy('caddy', $port, $bin{caddy}, 'run', '--config', "$dir/Caddyfile", '--adapter', 'caddyfile');
	my $n = run_load('caddy', $port, 'https');
	$h->signal('TERM');
	$h->finish;
	check_router('caddy', $n, 16);
}

# --- an untrusted client's X-Forwarded-* are replaced
{
	ok(start_router(), 'the router serves both tenants');
	my $r = request($rport, 'ta.localhost', '/direct', 7,
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n");
	like($r, qr{ xff=127\.0\.0\.7 xfp=http xfh=ta\.localhost$}m,
		'an untrusted client: its X-Forwarded-For/-Proto/-Host are replaced');
	$r = request($rport, 'ta.localhost', '/trusted', 1, "X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Proto: https\r\n");
	like($r, qr{ xff=10\.1\.2\.3, 127\.0\.0\.1 xfp=https xfh=ta\.localhost$}m,
		'a trusted proxy: its X-Forwarded-For is kept (the proxy appended), its X-Forwarded-Proto too');
}

stop_router();
is($router->full_result(0), 0, 'SIGTERM: the router exits with status 0');
done_testing();
