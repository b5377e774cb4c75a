# t/NxTest.pm
#   What the TAP tests that run real sandboxes share: a cluster set up the
#   way nx-setup sets one up (preloaded library, pg_hba lines for tenants),
#   the test apps built from t/apps/, waiting for a deployment's state, and
#   a router in front of it with plain HTTP requests to it.
package NxTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(nx_node nx_require_host_setup nx_build_app nx_wait_state nx_wait_ready_since_start
  nx_cgroup_procs nx_init_pid nx_diag_deployment nx_cgroup_v1_file nx_start_router nx_read_all
  nx_http_request nx_http_get nx_pooling_nginx);

# The watchdog: a test that has run NX_TEST_TIMEOUT seconds (900) ends
# with what every cluster it started was waiting on, instead of hanging
# until CI's own limit ends the whole run with nothing to read (a CI run
# of t/041 hung for over an hour that way).  Each query gets 10 s.
my @nodes;
$SIG{ALRM} = sub {
	for my $node (@nodes)
	{
		my ($out, $err) = ('', '');
		$node->psql('postgres', q{SELECT pid, backend_type, state, wait_event_type, wait_event,
			now() - query_start, left(query, 200) FROM pg_stat_activity WHERE pid <> pg_backend_pid()},
			stdout => \$out, stderr => \$err, timeout => 10);
		diag('watchdog: ' . $node->name . " sessions:\n$out$err");
		$out = $err = '';
		$node->psql('postgres', q{SELECT pid, locktype, mode, relation::regclass, database, objid FROM pg_locks WHERE NOT granted},
			stdout => \$out, stderr => \$err, timeout => 10);
		diag('watchdog: ' . $node->name . " waiting for a lock:\n$out$err");
	}
	die "watchdog: the test ran longer than " . ($ENV{NX_TEST_TIMEOUT} // 900) . " s\n";
};
alarm($ENV{NX_TEST_TIMEOUT} // 900);

# nx_pooling_nginx(DIR, LISTEN_PORT, UPSTREAM_PORT, EXTRA) writes the
# configuration of a single-process nginx on 127.0.0.1:LISTEN_PORT that
# proxies to 127.0.0.1:UPSTREAM_PORT with upstream keepalive (a pool of 16
# connections reused across clients, as front proxies are set up), EXTRA
# lines in its location; everything it writes goes under DIR.  Returns the
# command that runs it in the foreground.
sub nx_pooling_nginx
{
	my ($dir, $port, $upstream, $extra) = @_;
	mkdir $dir;
	mkdir "$dir/tmp";
	$extra //= '';
	open my $fh, '>', "$dir/nginx.conf" or die "cannot write $dir/nginx.conf: $!";
	print $fh <<"EOC";
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	# keepalive_requests: nginx closes a pooled connection after 1000 requests by default
	upstream router { server 127.0.0.1:$upstream; keepalive 16; keepalive_requests 10000000; }
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_pass http://router;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
$extra
		}
	}
}
EOC
	close $fh;
	return ('/usr/sbin/nginx', '-p', $dir, '-c', "$dir/nginx.conf", '-e', "$dir/error.log");
}

# nx_node(NAME, EXTRA_CONF, KEEP_TRUST, NO_EXTENSION) starts a cluster with
# the extension created in database postgres (the default nx.database) and
# tenants' pg_hba rules first; local trust lines become peer unless
# KEEP_TRUST.  NO_EXTENSION leaves the extension out (a cluster to restore
# a dump into).
sub nx_node
{
	my ($name, $extra, $keep_trust, $no_extension) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	push @nodes, $node;
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'nx_sandbox'
nx.naptime = 1
# generous: a loaded CI machine can take seconds to start an app
nx.start_timeout = '60s'
nx.stop_timeout = '3s'
nx.database_pool_size = 1
# tests push and create far more than one developer would
nx.max_deployments_per_owner = 100000
nx.max_sandboxes_per_owner = 65535
# tests of other features push previews onto the production database, as
# 0.3.0 did; the preview-database tests choose their modes themselves
nx.default_preview_database = 'production'
# the test harness turns this off; the platform relies on it (the default)
restart_after_crash = on
# tests start their own router on a free port (t/020_router.pl also tests
# the one the supervisor runs)
nx.router = off
} . ($extra // ''));
	my $hba = $node->data_dir . '/pg_hba.conf';
	my $rules = slurp_file($hba);
	# initdb -A trust (the harness's default) would let a sandbox log in as
	# postgres: the supervisor refuses to start sandboxes with it
	$rules =~ s/^(local\s+\S+\s+\S+\s+)trust/${1}peer/mg unless $keep_trust;
	open my $fh, '>', $hba or die "cannot write $hba: $!";
	print $fh "local sameuser +nx_tenant scram-sha-256\nlocal all +nx_tenant reject\n"
	  . "local postgres nx_router scram-sha-256\n" . $rules;
	close $fh;
	$node->start;
	nx_record_cluster($node);
	$node->safe_psql('postgres', 'CREATE EXTENSION nx_sandbox') unless $no_extension;
	return $node;
}

# nx_record_cluster(NODE): note NODE's system identifier in
# $NX_TEST_SYSID_FILE (scripts/test-all.sh sets it): its supervisor names
# its cgroups after it, and test clusters end with an immediate stop that
# leaves them behind.  test-all.sh removes those, and only those, at the
# end: other clusters on the host keep theirs.
sub nx_record_cluster
{
	my ($node) = @_;
	my $file = $ENV{NX_TEST_SYSID_FILE};
	return unless $file;
	my $sysid = $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
	open my $fh, '>>', $file or die "cannot append to $file: $!";
	printf $fh "%016x\n", $sysid;
	close $fh;
}

# nx_require_host_setup(NODE): skip the whole test when the host cannot run
# sandboxes (not root-prepared), unless NX_REQUIRE_SANDBOXES is set, in
# which case that is a failure (CI sets it).
sub nx_require_host_setup
{
	my ($node) = @_;
	my $missing = $node->safe_psql('postgres',
		q{SELECT string_agg(check_name || ': ' || detail || ' (fix: ' || fix || ')', E'\n')
		  FROM nx.check_setup() WHERE NOT ok AND required AND check_name NOT IN ('supervisor')});
	return if $missing eq '';
	if ($ENV{NX_REQUIRE_SANDBOXES})
	{
		BAIL_OUT("host is not set up for sandboxes:\n$missing");
	}
	plan skip_all => "host is not set up for sandboxes (run control/nx-setup as root):\n$missing";
}

# nx_build_app(NODE, NAME): compile t/apps/NAME.c into the node's directory.
sub nx_build_app
{
	my ($node, $name, @flags) = @_;
	my $out = $node->basedir . "/$name";
	my $incdir = `pg_config --includedir`;
	chomp $incdir;
	system('gcc', '-O2', '-Isrc/include', "-I$incdir", '-o', $out, "t/apps/$name.c", @flags) == 0
	  or die "cannot build t/apps/$name.c";
	return $out;
}

# nx_wait_state(NODE, DEPLOYMENT, STATE): poll nx.status until the
# deployment is in STATE; diagnose and fail otherwise.
sub nx_wait_state
{
	my ($node, $deployment, $state, $name) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT state FROM nx.status WHERE deployment = $deployment", $state);
	ok($ok, $name // "deployment $deployment is $state");
	nx_diag_deployment($node, $deployment) unless $ok;
	return $ok;
}

# nx_wait_ready_since_start(NODE, DEPLOYMENT, NAME): after a restart, poll
# until the deployment is ready in a process started since the postmaster
# was.  nx.runtime is unlogged but survives a clean shutdown: until the new
# supervisor's first pass rewrites it, it still says ready with the old pid.
sub nx_wait_ready_since_start
{
	my ($node, $deployment, $name) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT state = 'ready' AND started_at > pg_postmaster_start_time() FROM nx.status WHERE deployment = $deployment");
	ok($ok, $name);
	nx_diag_deployment($node, $deployment) unless $ok;
	return $ok;
}

# nx_diag_deployment prints what is known of a deployment that misbehaved.
sub nx_diag_deployment
{
	my ($node, $deployment) = @_;
	diag($node->safe_psql('postgres', "SELECT * FROM nx.status WHERE deployment = $deployment"));
	diag($node->safe_psql('postgres', "SELECT string_agg(line, E'\\n') FROM nx.logs((SELECT sandbox FROM nx.deployments WHERE id = $deployment), $deployment, 30)"));
	diag($node->safe_psql('postgres', 'SELECT string_agg(action || \' \' || details::text, E\'\n\' ORDER BY id) FROM nx.events'));
	my $log = slurp_file($node->logfile);
	diag(join("\n", grep { /nx|ERROR|FATAL|PANIC/ } split /\n/, $log));
}

# nx_init_pid: host pid of the deployment's nx-init (from nx.status).
sub nx_init_pid
{
	my ($node, $deployment) = @_;
	return $node->safe_psql('postgres', "SELECT coalesce(pid, 0) FROM nx.status WHERE deployment = $deployment");
}

# nx_cgroup_procs(NODE, DEPLOYMENT): pids in the deployment's pids cgroup
# (v1 layout, as on CI; v2 when that is what the host has).
my %sysid;	# node name -> system identifier, so this works while it is down

sub nx_cgroup_procs
{
	my ($node, $deployment) = @_;
	$sysid{ $node->name } //= $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
	my $sysid = $sysid{ $node->name };
	my $key = sprintf('c%016x_d%d', $sysid, $deployment);
	for my $dir ("/sys/fs/cgroup/pids/nx_sandbox/$key", "/sys/fs/cgroup/nx_sandbox/$key",
		"/sys/fs/cgroup/unified/nx_sandbox/$key")
	{
		next unless -e "$dir/cgroup.procs";
		my @pids = grep { /\d/ } split /\n/, slurp_file("$dir/cgroup.procs");
		return @pids;
	}
	my @none;
	return @none;
}

# nx_cgroup_v1_file(NODE, DEPLOYMENT, CONTROLLER, FILE): contents of a
# file of the deployment's cgroup in a v1 hierarchy, undef when absent.
sub nx_cgroup_v1_file
{
	my ($node, $deployment, $controller, $file) = @_;
	$sysid{ $node->name } //= $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
	my $path = sprintf('/sys/fs/cgroup/%s/nx_sandbox/c%016x_d%d/%s',
		$controller, $sysid{ $node->name }, $deployment, $file);
	return -e $path ? slurp_file($path) : undef;
}

# nx_start_router(NODE, PORT, OPTIONS...): nx-router ($NX_ROUTER, else
# build/nx-router) in front of NODE on 127.0.0.1:PORT, in the background;
# returns the IPC::Run handle and the log file (NODE's basedir/router_PORT.log).
sub nx_start_router
{
	my ($node, $port, @opts) = @_;
	require IPC::Run;
	my $log = $node->basedir . "/router_$port.log";
	my $h = IPC::Run::start(
		[ $ENV{NX_ROUTER} // 'build/nx-router', '-d', $node->connstr('postgres'),
			'--listen', "127.0.0.1:$port", @opts ],
		'<', '/dev/null', '>', $log, '2>&1');
	return ($h, $log);
}

# nx_read_all(SOCKET, SILENCE): everything read from SOCKET until the other
# side closes or SILENCE seconds (default 10) pass without a byte.
sub nx_read_all
{
	my ($s, $silence) = @_;
	my $out = '';
	my $rin = '';
	vec($rin, fileno($s), 1) = 1;
	while (select(my $r = $rin, undef, undef, $silence // 10))
	{
		my $n = sysread($s, my $buf, 65536);
		last unless $n;
		$out .= $buf;
	}
	return $out;
}

# nx_http_request(PORT, DATA, SILENCE): raw bytes to 127.0.0.1:PORT on a new
# connection, and everything read back (nx_read_all).
sub nx_http_request
{
	my ($port, $data, $silence) = @_;
	require IO::Socket::INET;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
	  or return "connect failed: $!";
	$s->autoflush(1);
	print $s $data;
	my $out = nx_read_all($s, $silence);
	close $s;
	return $out;
}

# nx_http_get(PORT, HOST, PATH, SILENCE): one HTTP/1.1 GET to 127.0.0.1:PORT
# with that Host, everything read until the server closes (or SILENCE
# seconds, default 10, of silence).
sub nx_http_get
{
	my ($port, $host, $path, $silence) = @_;
	return nx_http_request($port,
		'GET ' . ($path // '/') . " HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n", $silence);
}

1;
