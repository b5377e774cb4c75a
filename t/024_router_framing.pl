# t/024_router_framing.pl
#   nx-router routes every request on its own Host and frames it exactly
#   (RFC 9112): two tenants' apps behind one router, raw sockets.  Smuggling
#   attempts (Content-Length with Transfer-Encoding, two Content-Lengths,
#   codings other than one chunked, obs-fold, bare LF, control bytes,
#   invalid chunk sizes) get 400 and a closed connection, and the request
#   smuggled behind them is never answered; requests for two hosts on one
#   connection (pipelined and not) reach the right app in order; chunked
#   bodies with extensions and trailers both ways, HEAD, 204, 304,
#   Expect: 100-continue, a close-delimited response, an app that closes
#   after answering, and a malformed response (502) keep the connection
#   usable where they should; X-Forwarded-For is set on every request.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use IO::Socket::INET;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('framing');
nx_require_host_setup($node);

my $app = nx_build_app($node, 'frame_app');
my %id;
for my $t (qw(ta tb))
{
	$node->safe_psql('postgres', qq{SELECT nx.create_sandbox('$t')});
	$id{$t} = $node->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('$t', pg_read_binary_file('$app'))});
	nx_wait_state($node, $id{$t}, 'ready', "$t is ready");
	$node->safe_psql('postgres', qq{SELECT nx.promote('$t', $id{$t})});
}

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port, '--ready-timeout', '5');

my $up = 0;
for (1 .. 300)
{
	if (nx_http_get($port, 'tb.localhost') =~ /200 OK/ && nx_http_get($port, 'ta.localhost') =~ /200 OK/)
	{
		$up = 1;
		last;
	}
	usleep(100_000);
}
ok($up, 'the router serves both tenants') or diag(slurp_file($router_log));

sub connect_router
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "connect: $!";
	$s->autoflush(1);
	return $s;
}

# read_more(SOCKET, BUF): append what arrives within 10 s; false at EOF
sub read_more
{
	my ($s, $bufref) = @_;
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	return 0 unless select(my $r = $rin, undef, undef, 10);
	my $n = sysread($s, my $b, 65536);
	return 0 unless $n;
	$$bufref .= $b;
	return 1;
}

# read_response(SOCKET, NO_BODY): one framed response (Content-Length,
# chunked with trailers, or none), returned raw; bytes past it stay in
# the socket's pending buffer
my %pending;
sub read_response
{
	my ($s, $no_body) = @_;
	my $buf = delete $pending{$s} // '';
	while ($buf !~ /\r\n\r\n/) { read_more($s, \$buf) or return $buf; }
	my ($head) = $buf =~ /^(.*?\r\n\r\n)/s;
	my $pos = length($head);
	my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
	if ($no_body || ($status // 0) < 200 || $status == 204 || $status == 304) { }
	elsif ($head =~ /^Transfer-Encoding: chunked\r$/mi)
	{
		for (;;)
		{
			while (substr($buf, $pos) !~ /^([0-9a-fA-F]+)[^\r]*\r\n/) { read_more($s, \$buf) or return $buf; }
			substr($buf, $pos) =~ /^([0-9a-fA-F]+)[^\r]*\r\n/;
			my $size = hex($1);
			$pos += length($&);
			if ($size == 0)
			{
				while (substr($buf, $pos) !~ /\r\n\r\n|^\r\n/) { read_more($s, \$buf) or return $buf; }
				substr($buf, $pos) =~ /^(?:.*?\r\n)??\r\n/s;
				$pos += length($&);
				last;
			}
			while (length($buf) < $pos + $size + 2) { read_more($s, \$buf) or return $buf; }
			$pos += $size + 2;
		}
	}
	elsif ($head =~ /^Content-Length: (\d+)\r$/mi)
	{
		my $len = $1;
		while (length($buf) < $pos + $len) { read_more($s, \$buf) or return $buf; }
		$pos += $len;
	}
	else
	{
		while (read_more($s, \$buf)) { }
		$pos = length($buf);
	}
	$pending{$s} = substr($buf, $pos) if length($buf) > $pos;
	return substr($buf, 0, $pos);
}

# closed(SOCKET): the router closed the connection (EOF within 5 s)
sub closed
{
	my ($s) = @_;
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	return 0 unless select(my $r = $rin, undef, undef, 5);
	my $n = sysread($s, my $b, 1);
	return defined($n) && $n == 0 || !defined($n);
}

# --- smuggling: 400 and close, and what was smuggled behind is not answered
my $smuggled = "GET /smuggled HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
my @attacks = (
	[ 'Content-Length and Transfer-Encoding',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
	[ 'Transfer-Encoding and Content-Length',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" ],
	[ 'two equal Content-Lengths',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc" ],
	[ 'two different Content-Lengths',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 0\r\nContent-Length: 46\r\n\r\n" ],
	[ 'a Content-Length list', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: 0, 46\r\n\r\n" ],
	[ 'a signed Content-Length', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nContent-Length: +0\r\n\r\n" ],
	[ 'Transfer-Encoding: gzip, chunked',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" ],
	[ 'Transfer-Encoding: chunked, identity',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" ],
	[ 'Transfer-Encoding: xchunked', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" ],
	[ 'two Transfer-Encodings',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
	[ 'Transfer-Encoding in HTTP/1.0', "POST / HTTP/1.0\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" ],
	[ 'a space before the colon',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" ],
	[ 'obs-fold', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" ],
	[ 'a vertical tab', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" ],
	[ 'bare LF', "GET / HTTP/1.1\nHost: ta.localhost\n\n" ],
	[ 'a NUL byte', "GET /\0 HTTP/1.1\r\nHost: ta.localhost\r\n\r\n" ],
	[ 'a control byte', "GET / HTTP/1.1\r\nHost: ta.localhost\r\nX: \x01\r\n\r\n" ],
	[ 'a negative chunk size', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n" ],
	[ 'a 0x chunk size', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0x2e\r\n" ],
	[ 'a chunk size with a space', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n2 e\r\n" ],
	[ 'an overflowing chunk size',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n" ],
	[ 'a bare LF after a chunk size', "POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n" ],
	[ 'a chunk longer than its size',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n" ],
	[ 'a trailer with obs-fold',
		"POST / HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n 2\r\n\r\n" ],
	[ 'CONNECT', "CONNECT tb.localhost:80 HTTP/1.1\r\nHost: tb.localhost\r\n\r\n" ],
);
for my $a (@attacks)
{
	my ($name, $data) = @$a;
	my $s = connect_router();
	print $s $data . $smuggled;
	my $all = nx_read_all($s, 5);
	close $s;
	like($all, qr{\AHTTP/1\.1 400 }, "$name: 400");
	my $responses = () = $all =~ m{HTTP/1\.1 \d\d\d }g;
	is($responses, 1, "$name: one response, then closed; the smuggled request is not answered");
}

# --- requests for two hosts on one connection, pipelined: right app, in order
{
	my $s = connect_router();
	print $s join('', map { "GET /p$_ HTTP/1.1\r\nHost: " . ($_ % 2 ? 'tb' : 'ta') . ".localhost\r\n\r\n" } 1 .. 6);
	my @got = map { read_response($s) } 1 .. 6;
	my $right = grep {
		$got[ $_ - 1 ] =~ m{frame from deployment $id{$_ % 2 ? 'tb' : 'ta'}: GET /p$_ }
	} 1 .. 6;
	is($right, 6, 'pipelined A, B, A, B ... on one connection: each answered by its own app, in order')
	  or diag(join("\n---\n", @got));

	# and one at a time on the same connection, with a forged X-Forwarded-For
	my $ok = 0;
	for my $i (1 .. 20)
	{
		my $t = $i % 2 ? 'ta' : 'tb';
		print $s "GET /k$i HTTP/1.1\r\nHost: $t.localhost\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n\r\n";
		$ok++ if read_response($s) =~ m{frame from deployment $id{$t}: GET /k$i body=0 sum=0 trailer= xff=127\.0\.0\.1 xfp=http xfh=$t\.localhost\n};
	}
	is($ok, 20, 'alternating hosts one at a time: right app, X-Forwarded-* set (forged ones dropped) on every request');
	close $s;
}

# --- bodies and responses of every framing on one keep-alive connection
{
	my $s = connect_router();
	print $s "POST /c HTTP/1.1\r\nHost: ta.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
	  . "3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n";
	like(read_response($s), qr{frame from deployment $id{ta}: POST /c body=5 sum=495 trailer=X-Checksum: 1 },
		'chunked request body with an extension and a trailer reaches the app whole');

	print $s "GET /chunked HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	like(read_response($s), qr{Transfer-Encoding: chunked\r\n(?:.*\r\n)?\r\n5\r\nhello\r\n7;ext=1\r\n from $id{tb}\r\n0\r\nX-Trailer: yes\r\n\r\n\z}s,
		'chunked response with an extension and a trailer passes untouched');

	print $s "HEAD /h HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	my $h = read_response($s, 1);
	like($h, qr{^HTTP/1\.1 200 .*Content-Length: \d+\r\n(?:.*\r\n)?\r\n\z}s, 'HEAD: the length, no body');

	print $s "GET /204 HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	like(read_response($s), qr{^HTTP/1\.1 204 .*X-D: $id{ta}\r\n}s, 'a 204 response');
	print $s "GET /304 HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	like(read_response($s), qr{^HTTP/1\.1 304 .*\r\n\r\n\z}s, 'a 304 response (its Content-Length frames nothing)');

	# Expect: 100-continue: the interim 100 comes before the body is sent
	print $s "PUT /e HTTP/1.1\r\nHost: tb.localhost\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
	my $interim = read_response($s);
	like($interim, qr{^HTTP/1\.1 100 Continue\r\n\r\n\z}, 'Expect: 100-continue gets the interim 100');
	print $s 'wxyz';
	like(read_response($s), qr{frame from deployment $id{tb}: PUT /e body=4 }, 'then the final answer, after the body');

	# the app closes after answering: the client connection goes on
	print $s "GET /close HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	my $c = read_response($s);
	like($c, qr{frame from deployment $id{ta}: GET /close }, 'an app that closes after its answer');
	unlike($c, qr{^Connection: close}mi, 'its Connection: close is not passed on (hop-by-hop)');
	print $s "GET /after-close HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	like(read_response($s), qr{frame from deployment $id{ta}: GET /after-close }, 'and the next request gets a new app connection');

	# a malformed response: 502, and the client connection is closed
	print $s "GET /bad HTTP/1.1\r\nHost: tb.localhost\r\n\r\n";
	like(read_response($s), qr{^HTTP/1\.1 502 }, 'a malformed response from the app: 502');
	ok(closed($s), 'and the connection is closed');
	close $s;
}

# a close-delimited response: passed on, then the router closes
{
	my $s = connect_router();
	print $s "GET /until-close HTTP/1.1\r\nHost: ta.localhost\r\n\r\n";
	my $all = nx_read_all($s, 5);
	like($all, qr{^HTTP/1\.1 200 .*Connection: close\r\n.*until close from $id{ta}\n\z}s,
		'a response delimited by closing reaches the client whole, marked Connection: close');
	close $s;
}

# a client that asks to close gets Connection: close and a closed connection
{
	my $s = connect_router();
	print $s "GET /x HTTP/1.1\r\nHost: tb.localhost\r\nConnection: close\r\n\r\n";
	my $all = nx_read_all($s, 5);
	like($all, qr{^HTTP/1\.1 200 .*Connection: close\r\n.*GET /x }s, 'Connection: close from the client is honoured');
	close $s;
}

$router->signal('TERM');
$router->finish;
done_testing();
