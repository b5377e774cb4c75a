# t/021_router_traffic.pl
#   Real traffic through nx-router in front of real sandboxes: wrk against
#   the production URL while the test promotes back and forth between two
#   deployments (keep-alive, a new connection per request, and through
#   nginx with upstream keepalive): no non-2xx, no socket error, both
#   answers served, new connections take the last promote; meanwhile a
#   probe on one keep-alive connection measures how long after each
#   promote's commit the first request went out that the new deployment
#   answered (its p99 is reported, the bound asserted is a loose one); a websocket echo round trip (t/apps/ws_echo.c); server-sent
#   events arriving while the response is still open; a 64 MiB chunked
#   upload arriving intact; several pipelined requests in one write.
#   Nothing here asserts a duration: on a loaded machine things are only
#   slower (timeouts are generous).  NX_TEST_HTTP_PORT picks the router's
#   port (default: a free one).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use Digest::SHA qw(sha1 sha1_hex);
use IO::Socket::INET;
use IPC::Run;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

plan skip_all => 'wrk is not installed (scripts/install-deps.sh)' if `which wrk` eq '';
my $nginx = '/usr/sbin/nginx';
ok(-x $nginx, "nginx is installed ($nginx)") or BAIL_OUT('nginx is missing: scripts/install-deps.sh installs it');

my $node = nx_node('traffic');
nx_require_host_setup($node);

my $stream = nx_build_app($node, 'stream_app');
my $ws = nx_build_app($node, 'ws_echo');

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('flip'), nx.create_sandbox('ws')});
my ($da, $db, $w) = map {
	$node->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('$_->[0]', pg_read_binary_file('$_->[1]'), '$_->[2]')})
} ([ 'flip', $stream, 'a' ], [ 'flip', $stream, 'b' ], [ 'ws', $ws, 'ws' ]);
nx_wait_state($node, $_, 'ready') for ($da, $db, $w);
$node->safe_psql('postgres', "SELECT nx.promote('flip', $da), nx.promote('ws', $w)");

my $port = $ENV{NX_TEST_HTTP_PORT} // PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port);

# connect_router opens a blocking connection to the router
sub connect_router
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or die "cannot connect to the router: $!";
	$s->autoflush(1);
	return $s;
}

# read_some(SOCKET, TIMEOUT): the next bytes, '' at EOF, undef on timeout
sub read_some
{
	my ($s, $timeout) = @_;
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	return undef unless select(my $r = $rin, undef, undef, $timeout);
	my $n = sysread($s, my $buf, 1 << 20);
	return $n ? $buf : '';
}

# read_exactly(SOCKET, N, BUFREF): N bytes, from *BUFREF first; undef when
# the connection ends or 60 s pass without a byte
sub read_exactly
{
	my ($s, $n, $buf) = @_;
	while (length($$buf) < $n)
	{
		my $more = read_some($s, 60);
		return undef unless defined $more && $more ne '';
		$$buf .= $more;
	}
	return substr($$buf, 0, $n, '');
}

# read_all: everything until EOF (or 60 s of silence)
sub read_all { return nx_read_all($_[0], 60); }

# get(HOST, PATH): one request on a new connection, the whole answer
sub get { return nx_http_get($port, $_[0], $_[1], 60); }

# split_responses parses a byte string of Content-Length responses into
# [ head, body ] pairs (what is left unparsed is dropped)
sub split_responses
{
	my ($data) = @_;
	my @out;
	while ($data =~ /\A(HTTP\/1\.1 .*?\r\n\r\n)/s)
	{
		my $head = $1;
		my ($len) = $head =~ /\r\nContent-Length: (\d+)\r\n/i;
		last unless defined $len && length($data) >= length($head) + $len;
		push @out, [ $head, substr($data, length($head), $len) ];
		substr($data, 0, length($head) + $len, '');
	}
	return @out;
}

my $up = 0;
for (1 .. 600)
{
	if ((eval { get(q{flip.localhost}) } // q{}) =~ /200 OK/) { $up = 1; last; }
	usleep(100_000);
}
ok($up, 'the router serves') or diag(slurp_file($router_log));
like(get('flip.localhost', '/hi'), qr{^HTTP/1.1 200 OK\r\n.*answer from deployment $da: GET /hi\n}s,
	'production reaches deployment a');

# --- wrk against production while promoting back and forth
my $lua = $node->basedir . '/count_answers.lua';
open my $fh, '>', $lua or die "cannot write $lua: $!";
print $fh <<'EOF';
-- count the answers by the deployment named in the body
counts = {}
function response(status, headers, body)
	local d = string.match(body, "deployment (%d+):") or "other"
	counts[d] = (counts[d] or 0) + 1
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
	for _, t in ipairs(threads) do
		for k, v in pairs(t:get("counts")) do io.write(string.format("answer %s %d\n", k, v)) end
	end
end
EOF
close $fh;

# start_probe(PORT): a child that sends GET requests for the production
# host one after another on one keep-alive connection (a new one if it
# closes) and writes "SENT_AT DEPLOYMENT" for each answer to a file, until
# the stop file exists.  Returns (pid, file, stop file).
sub start_probe
{
	my ($pport) = @_;
	my $base = $node->basedir . "/probe_$pport";
	my ($file, $stop) = ("$base.log", "$base.stop");
	unlink $file, $stop;
	my $pid = fork() // die "fork: $!";
	return ($pid, $file, $stop) if $pid;
	open my $out, '>', $file or POSIX::_exit(1);
	$out->autoflush(1);
	my ($s, $buf);
	while (!-e $stop)
	{
		$s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $pport, Proto => 'tcp');
		unless ($s) { usleep(1000); next; }
		$s->autoflush(1);
		$buf = '';
		my $t = Time::HiRes::time();
		my $ok = syswrite($s, "GET /probe HTTP/1.1\r\nHost: flip.localhost\r\n\r\n");
		my $want;	# head and body length, once the head is in
		while ($ok && (!defined $want || length($buf) < $want))
		{
			my $more = read_some($s, 10);
			$ok = defined $more && $more ne '';
			$buf .= $more if $ok;
			if (!defined $want && $buf =~ /\A(.*?\r\n\r\n)/s)
			{
				my $head = $1;
				$want = length($head) + ($head =~ /\r\nContent-Length: (\d+)\r\n/i ? $1 : 0);
			}
		}
		if ($ok && $buf =~ /answer from deployment (\d+):/)
		{
			printf $out "%.6f %s\n", $t, $1;
		}
		else
		{
			undef $s;	# closed or broken: a new connection
		}
	}
	POSIX::_exit(0);
}

# stop_probe(PID, FILE, STOP): stops the child; its [sent_at, deployment] records
sub stop_probe
{
	my ($pid, $file, $stop) = @_;
	open my $fh, '>', $stop or die;
	close $fh;
	waitpid($pid, 0);
	my @records = map { [ split / / ] } split /\n/, slurp_file($file);
	return @records;
}

# wrk_while_promoting(LABEL, PORT, WRK OPTIONS...): wrk on production
# through PORT for at least 10 s while promoting a and b alternately at
# least 20 times, and the probe through PORT meanwhile; then the figures of
# wrk's report are checked.  Returns the last production deployment and,
# for each promote, how long after its commit the first request went out
# that the new deployment answered.
sub wrk_while_promoting
{
	my ($label, $wport, @opts) = @_;
	my ($out, $err) = ('', '');
	my $wrk = IPC::Run::start(
		[ 'wrk', '-t1', '-c8', '-d600s', '--timeout', '60s', '-s', $lua, '-H', 'Host: flip.localhost', @opts,
			"http://127.0.0.1:$wport/" ],
		'<', '/dev/null', '>', \$out, '2>', \$err);
	my @probe = start_probe($wport);
	my $t0 = Time::HiRes::time();
	sleep 1;
	my $promotes = 0;
	my $target = $da;
	my @commits;	# [ committed_at, target ]
	while ($promotes < 20 || Time::HiRes::time() - $t0 < 10)
	{
		$target = $target == $da ? $db : $da;
		# the second statement runs after the first one's commit
		my $at = $node->safe_psql('postgres',
			"SELECT nx.promote('flip', $target); SELECT extract(epoch FROM clock_timestamp())");
		push @commits, [ (split /\n/, $at)[-1], $target ];
		$promotes++;
		usleep(300_000);
		last if $promotes >= 200;
	}
	sleep 1;
	my @records = stop_probe(@probe);
	$wrk->signal('INT');	# wrk stops and prints its report
	$wrk->finish;
	my $seconds = Time::HiRes::time() - $t0;
	my ($requests) = $out =~ /(\d+) requests in /;
	my ($non2xx) = $out =~ /Non-2xx or 3xx responses: (\d+)/;
	my ($connect, $read, $write, $timeout) =
	  $out =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
	my %answers = $out =~ /^answer (\S+) (\d+)$/mg;
	diag(sprintf('%s: %d promotes in %.1f s, %s requests (a=%d b=%d), %d probe requests', $label, $promotes,
		$seconds, $requests // '?', $answers{$da} // 0, $answers{$db} // 0, scalar(@records)));
	ok($promotes >= 20 && $seconds >= 10, "$label: wrk ran >= 10 s across >= 20 promotes");
	ok(($requests // 0) > 0, "$label: wrk made requests") or diag("wrk: $out$err");
	is($non2xx // 0, 0, "$label: no non-2xx response");
	is(($connect // 0) + ($read // 0) + ($write // 0) + ($timeout // 0), 0, "$label: no socket error")
	  or diag($out);
	ok(($answers{$da} // 0) > 0 && ($answers{$db} // 0) > 0, "$label: both deployments answered")
	  or diag($out);
	is(scalar(grep { $_ ne $da && $_ ne $db } keys %answers), 0, "$label: no other answer");

	# the switch: for each promote, how long after its commit the first
	# probe request went out that the new deployment answered (the
	# commit's time is read by the statement after it, a fraction of a
	# millisecond late)
	my @lags;
	for my $c (@commits)
	{
		my ($from, $want) = @$c;
		my ($first) = grep { $_->[0] >= $from && $_->[1] == $want } @records;
		push @lags, defined $first ? $first->[0] - $from : 9e9;
	}
	ok(scalar(@records) > 10 * $promotes, "$label: the probe made requests throughout");

	# after the last promote, new connections reach its deployment (once
	# the router has the new table: wait for it, then every one must)
	my $switched = 0;
	for (1 .. 200)
	{
		if (get('flip.localhost') =~ /answer from deployment $target:/) { $switched = 1; last; }
		usleep(50_000);
	}
	ok($switched, "$label: after the last promote the new deployment answers");
	my $all = grep { get('flip.localhost') =~ /answer from deployment $target:/ } 1 .. 20;
	is($all, 20, "$label: and every new connection after it");
	return ($target, @lags);
}

# nginx with upstream keepalive in front: its pooled connections carry
# requests across promotes
my $nport = PostgreSQL::Test::Cluster::get_free_port();
my $ndir = $node->basedir . '/nginx';
my $nginx_h = IPC::Run::start([ nx_pooling_nginx($ndir, $nport, $port) ], '<', '/dev/null', '>', "$ndir/out", '2>&1');
my $nginx_up = 0;
for (1 .. 200)
{
	if ((eval { nx_http_get($nport, 'flip.localhost', '/', 5) } // '') =~ /^HTTP\/1.1 200/) { $nginx_up = 1; last; }
	usleep(50_000);
}
ok($nginx_up, 'nginx in front of the router serves') or diag(slurp_file("$ndir/error.log"));

my ($production, @lags, @more);
($production, @lags) = wrk_while_promoting('keep-alive', $port);
($production, @more) = wrk_while_promoting('Connection: close', $port, '-H', 'Connection: close');
push @lags, @more;
($production, @more) = wrk_while_promoting('nginx with upstream keepalive', $nport);
push @lags, @more;
$nginx_h->signal('QUIT');
$nginx_h->finish;

# how long after a promote's commit the first request went out that the
# new deployment answered: reported (the target is 20 ms at p99); the assertion is only
# that every promote took within 2 s, so that a loaded machine does not fail it
{
	my @sorted = sort { $a <=> $b } @lags;
	my $p99 = $sorted[ int(0.99 * $#sorted + 0.5) ];
	my $p50 = $sorted[ int(0.5 * $#sorted + 0.5) ];
	diag(sprintf('promote switch over %d promotes: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target: p99 <= 20 ms)',
		scalar(@sorted), $p50 * 1000, $p99 * 1000, $sorted[-1] * 1000));
	ok(@sorted >= 40, 'at least 40 promotes under load');
	ok($sorted[-1] < 2, 'every promote reached the next request within 2 s of its commit');
}

# --- websocket echo round trip
{
	my $s = connect_router();
	my $key = encode_base64(join('', map { chr(int(rand(256))) } 1 .. 16), '');
	print $s "GET /chat HTTP/1.1\r\nHost: ws.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	  . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n\r\n";
	my $buf = '';
	while ($buf !~ /\r\n\r\n/)
	{
		my $more = read_some($s, 60);
		last unless defined $more && $more ne '';
		$buf .= $more;
	}
	my ($head) = $buf =~ /\A(.*?\r\n\r\n)/s;
	$head //= $buf;
	substr($buf, 0, length($head), '');
	like($head, qr{^HTTP/1.1 101 Switching Protocols\r\n}, 'websocket: 101 through the router');
	my $expect = encode_base64(sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
	like($head, qr{\r\nSec-WebSocket-Accept: \Q$expect\E\r\n}i, 'websocket: the accept key is right');

	# a masked client frame
	my $frame = sub {
		my ($opcode, $payload) = @_;
		my $len = length($payload);
		my $mask = pack('N', int(rand(2**32)));
		my $h = chr(0x80 | $opcode);
		$h .= $len < 126 ? chr(0x80 | $len) : $len < 65536 ? chr(0x80 | 126) . pack('n', $len)
		  : chr(0x80 | 127) . pack('Q>', $len);
		my $m = substr($mask x (int($len / 4) + 1), 0, $len);
		return $h . $mask . ($payload ^ $m);
	};
	# read one server frame: (opcode, payload), unmasked as the RFC says
	my $next = sub {
		my $h = read_exactly($s, 2, \$buf) // return (-1, '');
		my ($b0, $b1) = unpack('CC', $h);
		return (-2, '') if $b1 & 0x80;
		my $len = $b1 & 0x7f;
		$len = unpack('n', read_exactly($s, 2, \$buf) // return (-1, '')) if $len == 126;
		$len = unpack('Q>', read_exactly($s, 8, \$buf) // return (-1, '')) if $len == 127;
		my $p = $len ? read_exactly($s, $len, \$buf) : '';
		return (-1, '') unless defined $p;
		return ($b0 & 0x0f, $p);
	};
	my $big = join('', map { chr(($_ * 31 + 7) % 256) } 1 .. 70000);
	for my $case ([ 'text frame', 1, 'hello through the router' ],
		[ 'binary frame of 300 bytes (16-bit length)', 2, substr($big, 0, 300) ],
		[ 'binary frame of 70000 bytes (64-bit length)', 2, $big ],
		[ 'ping answered with pong', 9, 'are you there' ])
	{
		print $s $frame->($case->[1], $case->[2]);
		my ($op, $payload) = $next->();
		ok($op == ($case->[1] == 9 ? 10 : $case->[1]) && $payload eq $case->[2], "websocket: $case->[0]")
		  or diag("opcode $op, " . length($payload) . ' bytes back');
	}
	print $s $frame->(8, pack('n', 1000));
	my ($op, $payload) = $next->();
	ok($op == 8 && $payload eq pack('n', 1000), 'websocket: close answered with close');
	is(read_all($s) . $buf, '', 'websocket: then the connection ends');
}

# --- server-sent events: the stream never ends, so events that arrive
# prove the path does not wait for the end of the response
{
	my $s = connect_router();
	print $s "GET /events HTTP/1.1\r\nHost: flip.localhost\r\nAccept: text/event-stream\r\n\r\n";
	my $buf = '';
	my @events;
	my @at;
	my $t0 = Time::HiRes::time();
	while (@events < 3 && Time::HiRes::time() - $t0 < 120)
	{
		my $more = read_some($s, 60);
		last unless defined $more && $more ne '';
		$buf .= $more;
		if (!@at && $buf =~ s/\A(HTTP\/1\.1 .*?\r\n\r\n)//s)
		{
			my $head = $1;
			like($head, qr{^HTTP/1.1 200 OK\r\n(?:.*\r\n)?Content-Type: text/event-stream\r\n}s,
				'server-sent events: the head');
			push @at, Time::HiRes::time();
		}
		next unless @at;
		while ($buf =~ s/\A(id: \d+\ndata: [^\n]*\n)\n//)
		{
			push @events, $1;
			push @at, Time::HiRes::time();
		}
	}
	is(scalar(@events), 3, 'server-sent events: three events arrive while the response is open');
	like($events[$_ - 1] // '', qr{\Aid: $_\ndata: event $_ from deployment $production\n\z},
		"server-sent events: event $_") for 1 .. 3;
	diag(sprintf('events arrived %s ms after the head',
		join(', ', map { sprintf('%.0f', 1000 * ($at[$_] - $at[0])) } 1 .. $#at)));
	close $s;
}

# --- a 64 MiB chunked upload (chunks of varying sizes) arrives intact
{
	my $block = join('', map { pack('N', ($_ * 2654435761) % 4294967296) } 0 .. 262143);	# 1 MiB
	$block .= $block;
	my $total = 64 << 20;
	my $sha = Digest::SHA->new(1);
	my $s = connect_router();
	print $s "POST /upload HTTP/1.1\r\nHost: flip.localhost\r\nTransfer-Encoding: chunked\r\n"
	  . "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n";
	my $sent = 0;
	for (my $i = 0; $sent < $total; $i++)
	{
		my $n = 1 + ($i * 104729) % (1 << 20);
		$n = $total - $sent if $n > $total - $sent;
		my $chunk = substr($block, ($i * 4099) % (1 << 20), $n);
		$sha->add($chunk);
		print $s sprintf('%x', $n) . "\r\n" . $chunk . "\r\n";
		$sent += $n;
	}
	print $s "0\r\n\r\n";
	my $hex = $sha->hexdigest;
	like(read_all($s), qr{^HTTP/1.1 200 OK\r\n.*upload to deployment $production: bytes=$total sha1=$hex\n}s,
		'a 64 MiB chunked upload arrives intact (byte count and SHA-1)');
}

# --- pipelining: five requests (one with a body) in one write, five
# answers in order on the same connection
{
	my $s = connect_router();
	my $batch = '';
	$batch .= "GET /p$_ HTTP/1.1\r\nHost: flip.localhost\r\n\r\n" for 1 .. 2;
	$batch .= "POST /p3 HTTP/1.1\r\nHost: flip.localhost\r\nContent-Length: 5\r\n\r\nhello";
	$batch .= "GET /p4 HTTP/1.1\r\nHost: flip.localhost\r\n\r\n";
	$batch .= "GET /p5 HTTP/1.1\r\nHost: flip.localhost\r\nConnection: close\r\n\r\n";
	syswrite($s, $batch) == length($batch) or die "short write";
	my @r = split_responses(read_all($s));
	is(scalar(@r), 5, 'pipelining: five responses');
	my $hello_sha = sha1_hex('hello');
	my @want = (
		"answer from deployment $production: GET /p1\n",
		"answer from deployment $production: GET /p2\n",
		"upload to deployment $production: bytes=5 sha1=$hello_sha\n",
		"answer from deployment $production: GET /p4\n",
		"answer from deployment $production: GET /p5\n");
	is_deeply([ map { $_->[1] } @r ], \@want, 'pipelining: answered in order, bodies intact');
}

like(get('flip.localhost', '/end'), qr{200 OK.*GET /end}s, 'the router still serves at the end');
$router->signal('TERM');
$router->finish;
is($router->full_result(0), 0, 'SIGTERM: the router exits with status 0');
$node->stop('fast');

done_testing();
