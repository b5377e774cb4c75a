# t/023_router_pooling.pl
#   nx-router behind the pooling front proxies people actually use: nginx
#   with upstream keepalive, HAProxy with http-reuse always, Caddy's
#   default reverse_proxy.  Each sends requests for two tenants over its
#   pooled upstream connections; every request must reach its own tenant's
#   app (each app stamps its deployment id), with X-Forwarded-For carrying
#   that request's client (the proxy is in nx.trusted_proxies, so its
#   X-Forwarded-Proto: https reaches the app too), and the router must have
#   been given no more connections than the proxy pools.  A client that is
#   not a trusted proxy cannot set X-Forwarded-Proto or -For.  The proxies
#   must be installed (they fail this test, never skip it, when missing).
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

my $node = nx_node('pooling');
nx_require_host_setup($node);

my $echo = nx_build_app($node, 'echo_app');
my %id;
for my $t (qw(ta tb))
{
	$node->safe_psql('postgres', qq{SELECT nx.create_sandbox('$t')});
	$id{$t} = $node->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('$t', pg_read_binary_file('$echo'))});
	nx_wait_state($node, $id{$t}, 'ready', "$t is ready");
	$node->safe_psql('postgres', qq{SELECT nx.promote('$t', $id{$t})});
}

# the proxies connect from 127.0.0.1: trusted; test clients use other
# loopback addresses, so that each request's client is known
my $rport = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $rport, '--trusted-proxies', '127.0.0.1/32');
my $up = 0;
for (1 .. 300)
{
	if (nx_http_get($rport, 'ta.localhost') =~ /200 OK/ && nx_http_get($rport, 'tb.localhost') =~ /200 OK/)
	{
		$up = 1;
		last;
	}
	usleep(100_000);
}
ok($up, 'the router serves both tenants') or diag(slurp_file($router_log));

# read_response(SOCKET): one response with a Content-Length body
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

# router_conns: established connections into the router's port now
sub router_conns
{
	my @lines = grep { /ESTAB/ && /127\.0\.0\.1:$rport\s/ } split /\n/, `ss -Htn`;
	return scalar @lines;
}

# alternate(NAME, PORT, N): N requests alternating the two tenants, over
# 4 keep-alive client connections from 127.0.0.11-14; counts the wrong
# tenant, wrong X-Forwarded-For/-Proto, and non-200 answers
sub alternate
{
	my ($name, $port, $n) = @_;
	my @clients;
	for my $c (1 .. 4)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
			LocalAddr => "127.0.0.1$c", Proto => 'tcp');
		ok($s, "$name: client $c connects") or return;
		$s->autoflush(1);
		push @clients, $s;
	}
	my ($wrong, $bad_xff, $bad_proto, $errors) = (0, 0, 0, 0);
	for my $i (1 .. $n)
	{
		my $c = $i % 4;
		my $s = $clients[$c];
		my $t = ($i % 3) ? 'ta' : 'tb';
		my $client = '127.0.0.1' . ($c + 1);
		print $s "GET /r$i HTTP/1.1\r\nHost: $t.localhost\r\n\r\n";
		my $r = read_response($s);
		if ($r !~ m{^HTTP/1\.1 200 }) { $errors++; diag("$name: $r") if $errors < 3; next; }
		my ($d, $xff, $xfp) = $r =~ m{echo from deployment (\d+): GET /r$i body=0 sum=0 xff=(.*?) xfh=\S* xfp=(\S*)\n};
		$wrong++ unless defined $d && $d == $id{$t};
		$bad_xff++ unless defined $xff && $xff eq "$client, 127.0.0.1";
		$bad_proto++ unless defined $xfp && $xfp eq 'https';
		diag("$name: $r") if (!defined $xff || $xff ne "$client, 127.0.0.1") && $bad_xff < 3;
	}
	my $conns = router_conns();
	close $_ for @clients;
	is($errors, 0, "$name: $n requests, all 200");
	is($wrong, 0, "$name: none answered by the other tenant's app");
	is($bad_xff, 0, "$name: X-Forwarded-For is each request's client, then the proxy");
	is($bad_proto, 0, "$name: the trusted proxy's X-Forwarded-Proto reaches the app");
	ok($conns >= 1 && $conns <= 8, "$name: the proxy pooled its connections to the router ($conns open)");
	return;
}

my $dir = $node->basedir;

# --- nginx with upstream keepalive
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	mkdir "$dir/nginx";
	mkdir "$dir/nginx/tmp";
	open(my $f, '>', "$dir/nginx/nginx.conf") or die;
	print $f <<"EOC";
daemon off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $dir/nginx/tmp/body;
	proxy_temp_path $dir/nginx/tmp/proxy;
	fastcgi_temp_path $dir/nginx/tmp/fastcgi;
	uwsgi_temp_path $dir/nginx/tmp/uwsgi;
	scgi_temp_path $dir/nginx/tmp/scgi;
	upstream router { server 127.0.0.1:$rport; keepalive 8; }
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_pass http://router;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto https;
		}
	}
}
EOC
	close $f;
	my $h = IPC::Run::start([ '/usr/sbin/nginx', '-p', "$dir/nginx", '-e', "$dir/nginx/error.log",
			'-c', "$dir/nginx/nginx.conf" ], '<', '/dev/null', '>', "$dir/nginx/out.log", '2>&1');
	my $ok = 0;
	for (1 .. 100) { if (nx_http_get($port, 'ta.localhost') =~ /200 OK/) { $ok = 1; last; } usleep(100_000); }
	ok($ok, 'nginx runs') or diag(slurp_file("$dir/nginx/out.log") . slurp_file("$dir/nginx/error.log"));
	alternate('nginx keepalive', $port, 240);
	$h->signal('QUIT');
	$h->finish;
}

# --- HAProxy with http-reuse always
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	mkdir "$dir/haproxy";
	open(my $f, '>', "$dir/haproxy/haproxy.cfg") or die;
	print $f <<"EOC";
global
	maxconn 256
defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
	http-reuse always
frontend f
	bind 127.0.0.1:$port
	option forwardfor
	http-request set-header X-Forwarded-Proto https
	default_backend b
backend b
	server router 127.0.0.1:$rport maxconn 8
EOC
	close $f;
	my $h = IPC::Run::start([ '/usr/sbin/haproxy', '-db', '-f', "$dir/haproxy/haproxy.cfg" ],
		'<', '/dev/null', '>', "$dir/haproxy/out.log", '2>&1');
	my $ok = 0;
	for (1 .. 100) { if (nx_http_get($port, 'ta.localhost') =~ /200 OK/) { $ok = 1; last; } usleep(100_000); }
	ok($ok, 'haproxy runs') or diag(slurp_file("$dir/haproxy/out.log"));
	alternate('haproxy http-reuse always', $port, 240);
	$h->signal('TERM');
	$h->finish;
}

# --- Caddy's default reverse_proxy (pools upstream connections)
{
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	mkdir "$dir/caddy";
	open(my $f, '>', "$dir/caddy/Caddyfile") or die;
	print $f <<"EOC";
{
	admin off
	auto_https off
	storage file_system $dir/caddy/data
}
http://:$port {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$rport {
		header_up X-Forwarded-Proto https
	}
}
EOC
	close $f;
	local $ENV{HOME} = "$dir/caddy";
	local $ENV{XDG_DATA_HOME} = "$dir/caddy/data";
	local $ENV{XDG_CONFIG_HOME} = "$dir/caddy/config";
	my $h = IPC::Run::start([ '/usr/bin/caddy', 'run', '--config', "$dir/caddy/Caddyfile", '--adapter', 'caddyfile' ],
		'<', '/dev/null', '>', "$dir/caddy/out.log", '2>&1');
	my $ok = 0;
	for (1 .. 100) { if (nx_http_get($port, 'ta.localhost') =~ /200 OK/) { $ok = 1; last; } usleep(100_000); }
	ok($ok, 'caddy runs') or diag(slurp_file("$dir/caddy/out.log"));
	alternate('caddy reverse_proxy', $port, 240);
	$h->signal('TERM');
	$h->finish;
}

# --- a client that is not a trusted proxy cannot set the forwarded fields
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport,
		LocalAddr => '127.0.0.3', Proto => 'tcp') or die;
	$s->autoflush(1);
	my $ok = 0;
	for my $i (1 .. 4)
	{
		print $s "GET /u$i HTTP/1.1\r\nHost: ta.localhost\r\nX-Forwarded-For: 6.6.6.6\r\n"
		  . "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n";
		$ok++ if read_response($s) =~ m{GET /u$i body=0 sum=0 xff=127\.0\.0\.3 xfh=ta\.localhost xfp=http\n};
	}
	is($ok, 4, 'an untrusted client: X-Forwarded-For/-Proto/-Host replaced on every request of its connection');
	close $s;
}

$router->signal('TERM');
$router->finish;
done_testing();
