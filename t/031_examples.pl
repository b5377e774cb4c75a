# t/031_examples.pl
#   The example apps of examples/ as a user would run them: built with
#   their own Makefiles (visits-c: C, libpq, dynamically linked; visits-go:
#   Go, lib/pq, static, built offline with Debian's Go), pushed with the
#   nx client (build/nx), promoted, and fetched on their production URL
#   through nx-router (build/nx-router, started here as t/020_router.pl
#   does): the counter goes N, N+1; its row is in the sandbox's own
#   database, owned by the sandbox's role; after the app's database session
#   is terminated the next visit still counts; bad requests get 4xx and
#   the app keeps serving.  A 32-bit ELF is refused by nx push before any
#   connection.  The TLS proxy configurations of docs/operations.md
#   (examples/tls/) parse: caddy validate, nginx -t (each skipped when the
#   program is missing).  Everything is destroyed again.
#
#   The Go example is skipped when go or Debian's lib/pq is missing, unless
#   NX_REQUIRE_SANDBOXES is set (then it is a failure).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use File::Copy qw(copy);
use IPC::Run;
use JSON::PP;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $nx_bin = 'build/nx';
my $router_bin = $ENV{NX_ROUTER} // 'build/nx-router';
BAIL_OUT("$nx_bin is missing: make build/nx") unless -x $nx_bin;
BAIL_OUT("$router_bin is missing: make build/nx-router") unless -x $router_bin;

my $node = nx_node('examples');
nx_require_host_setup($node);
my $dir = $node->basedir;
my $json = JSON::PP->new;

sub sql { return $node->safe_psql(@_ > 1 ? @_ : ('postgres', $_[0])); }

# nx(ARGS...) runs the client against the node; (exit code, stdout, stderr)
sub nx
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	IPC::Run::run([ $nx_bin, @args ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(180));
	return ($? >> 8, $out, $err);
}

# nx_ok: exit 0, stdout returned
sub nx_ok
{
	my ($name, @args) = @_;
	my ($rc, $out, $err) = nx(@args);
	is($rc, 0, "$name: exit 0") or diag("stdout: $out\nstderr: $err");
	return $out;
}

# build(NAME, COMMAND...): copy examples/NAME next to the node and run the
# README's build command there (the tree stays clean); the binary's path
sub build
{
	my ($name, @cmd) = @_;
	my $src = "$dir/$name";
	system('cp', '-R', "examples/$name", $src) == 0 or die "cannot copy examples/$name";
	unlink "$src/$name";
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ 'sh', '-c', 'cd "$1" && shift && exec "$@"', 'sh', $src, @cmd ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(600));
	ok($ok && -x "$src/$name", "examples/$name builds with: @cmd") or diag("$out\n$err");
	return "$src/$name";
}

my $port = PostgreSQL::Test::Cluster::get_free_port();

# request(DATA): raw bytes to the router, everything until it closes
sub request { return nx_http_request($port, $_[0]); }

sub get
{
	my ($host, $path, $method) = @_;
	return request(($method // 'GET') . ' ' . ($path // '/')
		  . " HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n");
}

# visits(HOST): the count a GET / answered, or undef (with the response)
sub visits
{
	my ($host) = @_;
	my $r = get($host);
	return ($r =~ m{\AHTTP/1.1 200 OK\r\n.*\r\n\r\nvisits: (\d+)\n\z}s ? $1 : undef, $r);
}

# --- build
my $visits_c = build('visits-c', 'make');
my %apps = ('visits-c' => $visits_c);
my $have_go = `sh -c 'command -v go'` ne '' && -d '/usr/share/gocode/src/github.com/lib/pq';
if ($have_go)
{
	$apps{'visits-go'} = build('visits-go', './build.sh');
}
elsif ($ENV{NX_REQUIRE_SANDBOXES})
{
	fail('go and golang-github-lib-pq-dev are installed (NX_REQUIRE_SANDBOXES is set)');
}
else
{
	diag('skipping examples/visits-go: go or /usr/share/gocode/src/github.com/lib/pq is missing '
		  . '(apt-get install golang-go golang-github-lib-pq-dev)');
}

# what the server and the client see in each binary
{
	my $rep = $json->decode(nx_ok('verify visits-c', 'verify', $visits_c, '--json'));
	ok($rep->{ok} && $rep->{linkage} eq 'dynamic' && grep({ $_ eq 'libpq.so.5' } @{ $rep->{needed} }),
		'visits-c is dynamically linked against libpq.so.5');
	is(sql("SELECT ok FROM nx.verify_binary(pg_read_binary_file('$visits_c'))"), 't',
		'the server accepts it: its interpreter and libraries exist here');
	if ($apps{'visits-go'})
	{
		$rep = $json->decode(nx_ok('verify visits-go', 'verify', $apps{'visits-go'}, '--json'));
		ok($rep->{ok} && $rep->{linkage} eq 'static', 'visits-go is a static binary');
	}
}

# --- the router in front, on a port of this test's range
my ($router, $router_log) = nx_start_router($node, $port);

for my $name (sort keys %apps)
{
	my $bin = $apps{$name};

	# create, push, promote with the nx client
	like(nx_ok("$name: nx create", 'create', $name), qr/created sandbox $name/, "$name: created");
	my $out = nx_ok("$name: nx push", 'push', $name, $bin, '--label', 'v1');
	my ($id) = $out =~ /pushed deployment (\d+) \(label v1\) to sandbox $name/;
	ok($id, "$name: pushed as deployment " . ($id // '?')) or next;
	like($out, qr/deployment $id is ready/, "$name: ready") or nx_diag_deployment($node, $id);
	like(nx_ok("$name: nx promote", 'promote', $name), qr/deployment $id of sandbox $name is production/,
		"$name: promoted");
	my ($db, $role) = split /\|/, sql(qq{SELECT database_name || '|' || role_name FROM nx.sandbox_info WHERE sandbox = '$name'});
	is($db, "nx_$name", "$name: its database");

	# the production URL through the router, twice: N, then N+1
	my $host = "$name.localhost";
	my ($n, $r);
	for (1 .. 100)
	{
		($n, $r) = visits($host);
		last if defined $n;
		usleep(100_000);
	}
	ok(defined $n, "$name: GET http://$host/ through the router answers visits: N") or diag($r);
	next unless defined $n;
	my ($n2, $r2) = visits($host);
	is($n2, $n + 1, "$name: the second visit counts N+1 ($n, then " . ($n2 // 'none') . ')') or diag($r2);

	# the rows are in the sandbox's own database, made by its own role
	is(sql($db, q{SELECT count FROM visits WHERE page = '/'}), $n + 1, "$name: the count is in database $db");
	is(sql($db, q{SELECT tableowner FROM pg_tables WHERE tablename = 'visits'}), $role,
		"$name: table visits belongs to role $role");
	is(sql(q{SELECT count(*) FROM pg_tables WHERE tablename = 'visits'}), '0',
		"$name: nothing of it in the control database");
	ok(sql(qq{SELECT count(*) FROM pg_stat_activity WHERE datname = '$db' AND usename = '$role'}) >= 1,
		"$name: the app is connected to $db as $role");

	# its database session ends: the next visit still counts
	ok(sql(qq{SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '$db' AND usename = '$role'}) >= 1,
		"$name: the app's database sessions are terminated");
	my ($n3, $r3) = visits($host);
	is($n3, $n + 2, "$name: after the lost connection the app reconnects and counts N+2") or diag($r3);

	# bad requests: answered, and the app goes on
	like(get($host, '/nope'), qr{\AHTTP/1.1 404 }, "$name: 404 for another path");
	like(get($host, '/', 'POST'), qr{\AHTTP/1.1 405 }, "$name: 405 for POST");
	like(request("GET / HTTP/1.1\r\nHost: $host\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"),
		qr{\AHTTP/1.1 200 OK\r\n.*visits: @{[ $n + 3 ]}\n}s, "$name: a GET with a body");
	my $slug = sql("SELECT slug FROM nx.deployments WHERE id = $id");
	my ($n4) = visits("$slug.preview.localhost");
	is($n4, $n + 4, "$name: the preview URL reaches the same deployment and database");
	is(sql($db, q{SELECT count FROM visits WHERE page = '/'}), $n + 4, "$name: every visit is a row update");
	like(nx_ok("$name: nx logs", 'logs', $name), qr/^$name: listening on 127\.0\.0\.1:\d+$/m,
		"$name: its log line");
	is(sql("SELECT state || ' ' || restarts FROM nx.status WHERE deployment = $id"), 'ready 0',
		"$name: still ready, never restarted");
	$apps{$name} = $id;
}

# --- a 32-bit ELF is refused by nx push, locally, before connecting
{
	my $bad = "$dir/app32";
	if (system("gcc -m32 -o $bad examples/hello/hello.c >/dev/null 2>&1") == 0)
	{
		note('32-bit ELF built with gcc -m32');
	}
	else
	{
		# no multilib: the same file with EI_CLASS (byte 4) = ELFCLASS32
		copy($visits_c, $bad) or die "copy: $!";
		open my $fh, '+<', $bad or die "$bad: $!";
		binmode $fh;
		seek $fh, 4, 0;
		print $fh "\x01";
		close $fh;
		note('32-bit ELF made by setting EI_CLASS to ELFCLASS32 (no gcc multilib)');
	}
	my $before = sql('SELECT count(*) FROM nx.deployments');
	my ($rc, $out, $err) = nx('-d', "host=$dir/no-such-socket-dir port=1", 'push', 'visits-c', $bad);
	is($rc, 3, 'push of a 32-bit ELF: exit 3');
	like($err, qr/^nx: error: \S+ cannot run here: file is a 32-bit ELF/m, 'push of a 32-bit ELF: the problem');
	like($err, qr/^  hint: build a 64-bit Linux/m, 'push of a 32-bit ELF: the hint');
	unlike($err, qr/connect/, 'push of a 32-bit ELF: refused before connecting (the server is unreachable)');
	($rc, $out, $err) = nx('push', 'visits-c', $bad);
	is($rc, 3, 'push of a 32-bit ELF with the server reachable: exit 3 too');
	is(sql('SELECT count(*) FROM nx.deployments'), $before, 'nothing was uploaded');
}

# --- the TLS proxy configurations of docs/operations.md parse (Caddy and
# nginx are optional: scripts/install-deps.sh --bench installs them)
SKIP:
{
	skip 'caddy is not installed', 2 if `sh -c 'command -v caddy'` eq '';
	local $ENV{XDG_DATA_HOME} = "$dir/caddy";
	local $ENV{XDG_CONFIG_HOME} = "$dir/caddy";
	for my $f ('Caddyfile', 'Caddyfile.on-demand')
	{
		my ($out, $err) = ('', '');
		IPC::Run::run([ 'caddy', 'validate', '--config', "examples/tls/$f", '--adapter', 'caddyfile' ],
			'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
		like("$out$err", qr/Valid configuration/, "caddy validate examples/tls/$f") or diag("$out$err");
	}
}
SKIP:
{
	my $nginx = -x '/usr/sbin/nginx' ? '/usr/sbin/nginx' : `sh -c 'command -v nginx'`;
	chomp $nginx;
	skip 'nginx is not installed', 1 if $nginx eq '';
	# the same file with a self-signed certificate and logs in this test's
	# directory (nginx -t opens them)
	system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=example.com',
		'-keyout', "$dir/privkey.pem", '-out', "$dir/fullchain.pem", '-loglevel', 'error') == 0
	  || system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=example.com -keyout $dir/privkey.pem -out $dir/fullchain.pem >/dev/null 2>&1") == 0
	  or die 'openssl req failed';
	my $conf = slurp_file('examples/tls/nginx.conf');
	$conf =~ s{/etc/letsencrypt/live/example\.com}{$dir}g;
	$conf =~ s{/var/log/nginx/}{$dir/}g;
	$conf =~ s{/run/nginx-nx\.pid}{$dir/nginx.pid}g;
	# nginx -t binds its ports: unprivileged ones of this test's range
	my $p80 = PostgreSQL::Test::Cluster::get_free_port();
	my $p443 = PostgreSQL::Test::Cluster::get_free_port();
	$conf =~ s{^\s*listen \[::\]:\d+[^;]*;\n}{}mg;
	$conf =~ s{listen 80;}{listen 127.0.0.1:$p80;}g;
	$conf =~ s{listen 443 }{listen 127.0.0.1:$p443 }g;
	# temporary directories in this test's directory too: the compiled-in
	# ones (/var/lib/nginx/...) are root's, and nginx -t creates them
	my $built = `$nginx -V 2>&1`;
	my $temps = '';
	for my $kind (qw(client-body proxy fastcgi uwsgi scgi))
	{
		next unless $built =~ /--http-$kind-temp-path=/;
		(my $directive = $kind) =~ s/-/_/g;
		$temps .= "    ${directive}_temp_path $dir/$directive;\n";
	}
	$conf =~ s{^(\s*http\s*\{\s*\n)}{$1$temps}m or die "no http block in examples/tls/nginx.conf";
	open my $fh, '>', "$dir/nginx.conf" or die;
	print $fh $conf;
	close $fh;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $nginx, '-t', '-q', '-p', $dir, '-e', "$dir/nginx-error.log", '-c', "$dir/nginx.conf" ],
		'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	is($? >> 8, 0, 'nginx -t examples/tls/nginx.conf') or diag("$out$err");
}

# --- clean up: the sandboxes, their databases, processes and cgroups go
for my $name (sort keys %apps)
{
	my $id = $apps{$name};
	like(nx_ok("$name: nx destroy", 'destroy', $name), qr/destroyed sandbox $name/, "$name: destroyed");
	ok($node->poll_query_until('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'nx_$name'", '0'),
		"$name: its database is dropped");
	next unless $id =~ /^\d+$/;
	my $gone = 0;
	for (1 .. 100)
	{
		if (!nx_cgroup_procs($node, $id)) { $gone = 1; last; }
		usleep(100_000);
	}
	ok($gone, "$name: no process of deployment $id is left");
}
$router->signal('TERM');
$router->finish;
is($router->full_result(0), 0, 'the router exits with status 0 on SIGTERM');
$node->stop('fast');
done_testing();
