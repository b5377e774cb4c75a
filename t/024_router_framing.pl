# t/024_router_framing.pl
#   Per-request routing and exact framing, over raw sockets: one client
#   connection carrying requests for two tenants (one at a time and
#   pipelined) gets each answered by the right app, in order; every
#   request-smuggling shape is refused with 400 and a closed connection,
#   and no byte of the smuggled request reaches any app; chunked request
#   bodies with extensions and trailers, chunked responses with trailers,
#   HEAD, 204, 304 and Expect: 100-continue are framed right on a
#   keep-alive connection; a malformed response is a 502; an app's
#   Connection: close is honoured (that socket is not reused); idle app
#   connections are pooled and reused across client connections (the
#   app counts the connections it accepted); X-Forwarded-For is right on
#   every request of a connection; a promote takes effect on the next
#   request of an open connection; --max-client-connections and
#   --max-app-connections answer 503 over their caps, others unharmed; a
#   descriptor from nx-init that is not a TCP socket is refused (502).
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

my $node = nx_node('framing');
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

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port, '--head-timeout', '5');

sub get { return nx_http_get($port, @_); }
sub connect_router
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	$s->autoflush(1);
	return $s;
}

my $up = 0;
for (1 .. 300)
{
	if (get('ta.localhost') =~ /200 OK/ && get('tb.localhost') =~ /200 OK/) { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'the router serves both tenants') or diag(slurp_file($router_log));

# --- a stream reader that frames responses like a client: Content-Length,
# chunked (trailers kept), no body for HEAD/1xx/204/304, else until close
my %pending;    # leftover bytes per socket

sub fill
{
	my ($s, $n) = @_;
	my $key = fileno($s);
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	while (length($pending{$key} // '') < $n)
	{
		return 0 unless select(my $r = $rin, undef, undef, 10);
		my $got = sysread($s, my $buf, 65536);
		return 0 unless $got;
		$pending{$key} .= $buf;
	}
	return 1;
}

sub take_line
{
	my ($s) = @_;
	my $key = fileno($s);
	for (;;)
	{
		$pending{$key} //= '';
		if ($pending{$key} =~ s/^(.*?)\r\n//s) { return $1; }
		return undef unless fill($s, length($pending{$key} // '') + 1);
	}
}

# read_response(SOCKET, HEAD_REQUEST): (status, head, body) of the next response
sub read_response
{
	my ($s, $head_request) = @_;
	my $key = fileno($s);
	my $status_line = take_line($s) // return (0, '', '');
	my ($status) = $status_line =~ m{^HTTP/1\.1 (\d{3})} or return (-1, $status_line, '');
	my $head = "$status_line\r\n";
	while (defined(my $l = take_line($s)))
	{
		last if $l eq '';
		$head .= "$l\r\n";
	}
	my $body = '';
	if ($head_request || $status < 200 || $status == 204 || $status == 304) { }
	elsif ($head =~ /^Transfer-Encoding:\s*chunked/mi)
	{
		for (;;)
		{
			my $line = take_line($s) // last;
			my ($hex) = $line =~ /^([0-9a-fA-F]+)/ or last;
			my $size = hex($hex);
			if ($size == 0)
			{
				while (defined(my $t = take_line($s))) { last if $t eq ''; $body .= "[trailer $t]"; }
				last;
			}
			fill($s, $size + 2) or last;
			$body .= substr($pending{$key}, 0, $size);
			substr($pending{$key}, 0, $size + 2) = '';
		}
	}
	elsif ($head =~ /^Content-Length:\s*(\d+)/mi)
	{
		fill($s, $1);
		$body = substr($pending{$key} // '', 0, $1, '');
	}
	else
	{
		1 while fill($s, length($pending{$key} // '') + 1);
		$body = delete $pending{$key} // '';
	}
	return ($status, $head, $body);
}

# closed(SOCKET): the router closed it (EOF within 5 s, nothing more)
sub closed
{
	my ($s) = @_;
	my $rest = nx_read_all($s, 5);
	return $rest eq '' && ($pending{ fileno($s) } // '') eq '';
}

# --- one connection, requests for both tenants, one at a time
{
	my $s = connect_router();
	my @order = qw(ta tb ta tb tb ta);
	my $right = 0;
	my $i = 0;
	for my $t (@order)
	{
		$i++;
		print $s "GET /seq$i HTTP/1.1\r\nHost: $t.localhost\r\n\r\n";
		my ($st, $h, $b) = read_response($s);
		$right++ if $st == 200 && $b =~ /^frame from sandbox $t deployment $dep{$t} conn \d+: GET \/seq$i /;
	}
	is($right, scalar(@order), 'one connection: each request answered by its own tenant');

	# pipelined: all written at once, answered in order
	my $all = join('', map { "GET /pipe$_ HTTP/1.1\r\nHost: $order[$_].localhost\r\n\r\n" } 0 .. $#order);
	print $s $all;
	my @got;
	for (0 .. $#order)
	{
		my ($st, $h, $b) = read_response($s);
		push @got, ($st == 200 && $b =~ /^frame from sandbox (\w+) deployment \d+ conn \d+: GET \/pipe$_ /) ? $1 : "?$st";
	}
	is("@got", "@order", 'pipelined requests for two tenants: answered in order, each by its tenant');

	# X-Forwarded-For is set on every request; forged values are dropped
	print $s "GET /xff HTTP/1.1\r\nHost: tb.localhost\r\nX-Forwarded-For: 6.6.6.6\r\n"
	  . "X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\n\r\n";
	my ($st, $h, $b) = read_response($s);
	like($b, qr{ xff=127\.0\.0\.1 xfp=http xfh=tb\.localhost$}m,
		'a later request on the connection: X-Forwarded-* set by the router, forged ones dropped');
	close $s;
}

# --- smuggling: each refused with 400, the connection closed, and the
# smuggled request never reaches an app
my @smuggle = (
	[ 'Content-Length and Transfer-Encoding',
		"POST /cl-te HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'Transfer-Encoding and Content-Length',
		"POST /te-cl HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n%S\r\n0\r\n\r\n" ],
	[ 'two differing Content-Length',
		"POST /cl-cl HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 0\r\nContent-Length: 44\r\n\r\n%S" ],
	[ 'a repeated Content-Length', "POST /cl2 HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n%S" ],
	[ 'a Content-Length list', "POST /cll HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 0, 0\r\n\r\n%S" ],
	[ 'a signed Content-Length', "POST /cls HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: +0\r\n\r\n%S" ],
	[ 'Transfer-Encoding not chunked', "POST /gzip HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: gzip\r\n\r\n%S" ],
	[ 'chunked not last', "POST /cid HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n%S" ],
	[ 'chunked twice', "POST /cc HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'xchunked', "POST /xc HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'a space before the colon', "POST /sp HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'Transfer-Encoding in HTTP/1.0', "POST /te10 HTTP/1.0\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'obs-fold of Transfer-Encoding', "POST /fold HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'obs-fold elsewhere', "GET /fold2 HTTP/1.1\r\nHost: ta.localhost\r\nX-A: b\r\n c\r\n\r\n%S" ],
	[ 'a bare LF', "GET /lf HTTP/1.1\nHost: ta.localhost\r\n\r\n%S" ],
	[ 'a bare LF ending the head', "GET /lf2 HTTP/1.1\r\nHost: ta.localhost\n\n%S" ],
	[ 'a NUL in the head', "GET /nul HTTP/1.1\r\nHost: ta.localhost\r\nX-A: a\0b\r\n\r\n%S" ],
	[ 'a control byte in the head', "GET /ctl HTTP/1.1\r\nHost: ta.localhost\r\nX-A: a\x0bb\r\n\r\n%S" ],
	[ 'a vertical tab before chunked', "POST /vt HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n%S" ],
	[ 'a chunk size that is not hex', "POST /nothex HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n%S" ],
	[ 'a chunk size with 0x', "POST /0x HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n%S" ],
	[ 'a negative chunk size', "POST /neg HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n%S" ],
	[ 'a chunk size with a space', "POST /spc HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0 \r\n\r\n%S" ],
	[ 'an overflowing chunk size',
		"POST /ovf HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n%S" ],
	[ 'a chunk size line ending in a bare LF', "POST /clf HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\n\r\n%S" ],
	[ 'chunk data longer than its size',
		"POST /long HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n%S" ],
	[ 'a folded trailer', "POST /tf HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n%S" ],
);
my $n = 0;
for my $case (@smuggle)
{
	$n++;
	my $smuggled = "GET /smuggled$n HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	(my $data = $case->[1]) =~ s/%S/$smuggled/;
	my $s = connect_router();
	print $s $data;
	my ($st, $h) = read_response($s);
	is($st, 400, "smuggling, $case->[0]: 400");
	ok(closed($s), "smuggling, $case->[0]: the connection is closed");
	close $s;
}
# what each app has received: no smuggled request
for my $t (qw(ta tb))
{
	my $targets = get("$t.localhost", '/targets');
	unlike($targets, qr{/smuggled}, "no smuggled request reached $t");
}

# --- bodies and responses framed right on one keep-alive connection
{
	my $s = connect_router();
	my $chunked = "5;name=value;x\r\nhello\r\nb\r\n world, hi!\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n";
	my $sum = 0;
	$sum += $_ for unpack('C*', 'hello world, hi!');
	print $s "POST /up HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n$chunked";
	my ($st, $h, $b) = read_response($s);
	like($b, qr{POST /up body=16 sum=$sum trailers=2 }, 'a chunked request body with extensions and trailers arrives whole');

	print $s "GET /chunked HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	($st, $h, $b) = read_response($s);
	like($b, qr{^firstframe from sandbox tb .*\[trailer X-Sum: 0\]$}s, 'a chunked response with a trailer, framed');

	print $s "HEAD /head HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	($st, $h, $b) = read_response($s, 1);
	ok($st == 200 && $h =~ /Content-Length: [1-9]/, 'HEAD: a head with Content-Length and no body');

	print $s "GET /204 HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	($st, $h, $b) = read_response($s);
	is($st, 204, 'a 204 has no body');
	print $s "GET /304 HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	($st, $h, $b) = read_response($s);
	ok($st == 304 && $h =~ /Content-Length: 1234/, '304 with a Content-Length, and no body');

	# Expect: 100-continue: the interim answer comes before the body is sent
	print $s "PUT /cont HTTP/1.1\r\nHost: tb.localhost\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
	($st, $h) = read_response($s);
	is($st, 100, 'Expect: 100-continue: 100 Continue passed on before the body');
	print $s "abc";
	($st, $h, $b) = read_response($s);
	like($b, qr{PUT /cont body=3 sum=294 }, 'then the final answer to the body');

	print $s "GET /after HTTP/1.1\r\nHost: ta.localhost\r\nConnection: close\r\n\r\n";
	($st, $h, $b) = read_response($s);
	like($b, qr{frame from sandbox ta .*GET /after }, 'after all of them the connection still frames right');
	like($h, qr{^Connection: close\r$}m, 'Connection: close asked by the client is answered');
	ok(closed($s), 'and the router closes the connection');
	close $s;
}

# --- a malformed response: 502, and the router keeps serving
{
	my $r = get('ta.localhost', '/bad');
	like($r, qr{^HTTP/1.1 502 Bad Gateway\r\n}, 'a response with Content-Length and Transfer-Encoding: 502');
	like(get('ta.localhost', '/ok'), qr{200 OK}, 'the next request is served');
}

# --- pooling: idle app connections are reused across client connections;
# one the app closed (Connection: close) is not
{
	my %conns;
	for my $i (1 .. 20)
	{
		my $r = get('tb.localhost', "/pool$i");
		$conns{$1}++ if $r =~ /conn (\d+): GET \/pool$i /;
	}
	my $total = 0;
	$total += $_ for values %conns;
	is($total, 20, '20 requests on 20 client connections answered');
	ok(scalar(keys %conns) <= 2, '... over at most 2 app connections (pooled, reused)')
	  or diag(join(' ', map { "$_:$conns{$_}" } sort keys %conns));
	my ($c1) = get('tb.localhost', '/close') =~ /conn (\d+):/;
	my ($c2) = get('tb.localhost', '/next') =~ /conn (\d+):/;
	ok(defined $c1 && defined $c2 && $c2 != $c1, 'an app connection the app closed is not reused');
}

# --- promote: the next request on an open connection takes the new route
{
	my $d2 = sql(qq{SELECT deployment FROM nx.push('ta', pg_read_binary_file('$app'))});
	nx_wait_state($node, $d2, 'ready', 'a second deployment of ta is ready');
	my $s = connect_router();
	print $s "GET /before HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	my ($st, $h, $b) = read_response($s);
	like($b, qr{deployment $dep{ta} }, 'before the promote: the old deployment');
	sql(qq{SELECT nx.promote('ta', $d2)});
	my $switched = 0;
	for (1 .. 100)
	{
		print $s "GET /after HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
		($st, $h, $b) = read_response($s);
		if ($b =~ /deployment $d2 /) { $switched = 1; last; }
		usleep(50_000);
	}
	ok($switched, 'after the promote: the next request on the same connection reaches the new deployment');
	close $s;
}

# --- caps: per client address, per deployment (a second router)
{
	my $port2 = PostgreSQL::Test::Cluster::get_free_port();
	my ($r2, $log2) = nx_start_router($node, $port2, '--max-app-connections', '2',
		'--max-client-connections', '3');
	my $ok = 0;
	for (1 .. 100)
	{
		if (nx_http_get($port2, 'tb.localhost') =~ /200 OK/) { $ok = 1; last; }
		usleep(100_000);
	}
	ok($ok, 'a router with caps serves');
	my $from = sub {
		my ($addr) = @_;
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port2, LocalAddr => $addr,
			Proto => 'tcp');
		$s->autoflush(1) if $s;
		return $s;
	};
	my @held = map { $from->('127.0.0.9') } 1 .. 3;
	usleep(200_000);
	my $fourth = $from->('127.0.0.9');
	like(nx_read_all($fourth, 5), qr{^HTTP/1.1 503 .*too many connections}s,
		'--max-client-connections: the 4th connection of one address gets 503');
	my $other = $from->('127.0.0.10');
	print $other "GET /other HTTP/1.1\r\nHost: tb.localhost\r\nConnection: close\r\n\r\n";
	like(nx_read_all($other), qr{200 OK}, 'another address is served meanwhile');
	close $_ for @held, $fourth, $other;

	# two requests whose bodies never finish hold both app connections of ta
	my @slow = map {
		my $s = $from->("127.0.0.1$_");
		print $s "POST /slow HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 100\r\n\r\nx";
		$s;
	} 1 .. 2;
	usleep(300_000);
	like(nx_http_get($port2, 'ta.localhost', '/third'), qr{^HTTP/1.1 503 .*too many connections to this app}s,
		'--max-app-connections: a third request for the same app gets 503');
	like(nx_http_get($port2, 'tb.localhost', '/b'), qr{200 OK}, 'another app is served meanwhile');
	close $_ for @slow;
	my $again = 0;
	for (1 .. 50)
	{
		if (nx_http_get($port2, 'ta.localhost', '/again') =~ /200 OK/) { $again = 1; last; }
		usleep(100_000);
	}
	ok($again, 'once they are gone the app is served again');
	$r2->signal('TERM');
	$r2->finish;
}

# --- a hand-off socket that is not TCP (a subverted nx-init) is refused
{
	my $fake = nx_build_app($node, 'fake_init');
	my $run = $node->basedir . '/fake_run';
	mkdir $run;
	mkdir "$run/d$dep{tb}";
	my $fh = IPC::Run::start([ $fake, "$run/d$dep{tb}/init.sock" ], '<', '/dev/null', '>', '/dev/null', '2>&1');
	my $port3 = PostgreSQL::Test::Cluster::get_free_port();
	my ($r3, $log3) = nx_start_router($node, $port3, '--run-dir', $run, '--ready-timeout', '2');
	my $r = '';
	for (1 .. 100)
	{
		$r = nx_http_get($port3, 'tb.localhost', '/fake');
		last if $r =~ /^HTTP\/1.1 502/;
		usleep(100_000);
	}
	like($r, qr{^HTTP/1.1 502 .*not TCP}s, 'a descriptor from nx-init that is not a TCP socket: 502');
	$r3->signal('TERM');
	$r3->finish;
	$fh->kill_kill;
}

like(get('tb.localhost', '/end'), qr{200 OK}, 'the router still serves at the end');
$router->signal('TERM');
$router->finish;
is($router->full_result(0), 0, 'SIGTERM: the router exits with status 0');
done_testing();
