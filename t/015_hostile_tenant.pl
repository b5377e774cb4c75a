# t/015_hostile_tenant.pl
#   The hostile-tenant attacks of issue 10 (items 2-5 and 11), repeated as
#   they were made on 0.3.0, against two other sites served by a router:
#
#   - hijack (t/apps/hostile_tenant.c, mode hijack): from inside its
#     sandbox the tenant replaces the hand-off socket with a listener that
#     hands out SO_LINGER 20 s sockets, with a backlog-0 listener holding a
#     connection nobody accepts, and with a symlink to another site's
#     socket; steals nx-init's listening socket or status pipe
#     (/proc/1/fd, pidfd_getfd) and reads its memory (/proc/1/mem,
#     process_vm_readv).  Every attempt must be BLOCKED, the real sockets
#     untouched, every other site must answer with a p99 within 2x its
#     same-run baseline, and the supervisor must start other deployments
#     meanwhile.
#   - the same hijacks from the host (as if a tenant could still write
#     there: the supervisor's second wall): a backlog-0 listener and a
#     symlink at a sandbox's init.sock while its idle stop asks nx-init to
#     QUIESCE.  The supervisor must neither block nor follow the link.
#   - fill (mode fill): the tenant writes until ENOSPC in every place it
#     finds writable and floods stdout; the data directory's usage must stay
#     within 16 MB (the tenant's database aside), the supervisor's CPU
#     bounded, and nothing of it may be left after nx.drop_sandbox.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use File::Find;
use IO::Socket::UNIX;
use NxTest;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Socket qw(SOCK_SEQPACKET);
use Test::More;
use Time::HiRes qw(time usleep);

my $log_size = 256 * 1024;
my $node = nx_node('tenant', "nx.log_size = '256kB'\n");
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');
my $tenant = nx_build_app($node, 'hostile_tenant');
my $pgdata = $node->data_dir;
my $run = "$pgdata/nx/run";

sub query { return $node->safe_psql('postgres', $_[0]); }

# push_app(SANDBOX, BINARY, ARGS...): the new deployment's id
sub push_app
{
	my ($sandbox, $binary, @args) = @_;
	my $args = @args ? ', args => ARRAY[' . join(', ', map { "'$_'" } @args) . ']' : '';
	return query("SELECT deployment FROM nx.push('$sandbox', pg_read_binary_file('$binary')$args)");
}

# ready_seconds(ID): from the push's commit to ready, as the rows say
sub ready_seconds
{
	return query("SELECT extract(epoch FROM s.ready_at - d.created_at) FROM nx.status s "
		  . "JOIN nx.deployments d ON d.id = s.deployment WHERE s.deployment = $_[0]");
}

# lines(SANDBOX): its log lines (both files)
sub lines
{
	return split /\n/, query("SELECT string_agg(line, E'\\n') FROM nx.logs('$_[0]', lines => 100000)");
}

sub cpu_ticks
{
	my @f = split ' ', slurp_file("/proc/$_[0]/stat");
	return $f[13] + $f[14];
}

# --- two sites behind a router
my %site;
for my $name (qw(site1 site2))
{
	query("SELECT nx.create_sandbox('$name')");
	$site{$name} = push_app($name, $hello);
	nx_wait_state($node, $site{$name}, 'ready', "$name is ready");
	query("SELECT nx.promote('$name', $site{$name})");
}
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port);
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM nx.router_heartbeat WHERE reported_at > now() - interval '3 seconds'}, '1'),
	'the router reports');
for my $name (keys %site)
{
	my $ok = 0;
	for (1 .. 100)
	{
		$ok = nx_http_get($port, "$name.localhost", '/', 5) =~ m{^HTTP/1.1 200};
		last if $ok;
		usleep(100_000);
	}
	ok($ok, "$name answers through the router");
}

# latencies(N): N requests to each site, alternating; seconds per site
sub latencies
{
	my ($n) = @_;
	my %t;
	my $bad = 0;
	for (1 .. $n)
	{
		for my $name (sort keys %site)
		{
			my $t0 = time;
			my $r = nx_http_get($port, "$name.localhost", '/', 5);
			push @{ $t{$name} }, time - $t0;
			$bad++ unless $r =~ m{^HTTP/1.1 200};
		}
	}
	return ($bad, %t);
}

sub p99
{
	my @s = sort { $a <=> $b } @_;
	return $s[ int(0.99 * $#s + 0.5) ];
}

# round(): one measurement, made the same way in the baseline and under
# every attack: the supervisor starts a deployment (sandbox 'spare') while
# 200 requests go to each site.  Returns the failed requests, each site's
# p99 and the new deployment's id.
sub round
{
	my $id = push_app('spare', $hello);
	my ($bad, %t) = latencies(200);
	return ($bad, { map { $_ => p99(@{ $t{$_} }) } keys %t }, $id);
}

# started(WHAT, IDS...): each deployment becomes ready; the slowest's seconds
sub started
{
	my ($what, @ids) = @_;
	my $max = 0;
	for my $id (@ids)
	{
		nx_wait_state($node, $id, 'ready', "$what: the supervisor starts deployment $id");
		my $s = ready_seconds($id);
		$max = $s if $s > $max;
	}
	return $max;
}

# rounds(WHAT): three rounds; failed requests, each site's median p99,
# and the slowest start among them
sub rounds
{
	my ($what) = @_;
	my ($bad, @p99, @ids) = (0);
	for (1 .. 3)
	{
		my ($failed, $p, $id) = round();
		$bad += $failed;
		push @p99, $p;
		push @ids, $id;
	}
	my %median = map { my $n = $_; $n => (sort { $a <=> $b } map { $_->{$n} } @p99)[1] } keys %site;
	my $start = started($what, @ids);
	query("SELECT nx.remove($_)") for @ids;
	return ($bad, \%median, $start);
}

# check_p99(WHAT): three rounds during an attack against the baseline's.
# Each site's p99 (the median of the rounds) must stay within 2x its
# baseline, counting a baseline under 5 ms as 5 ms: the sites answer in a
# fraction of a millisecond, and on a shared 2-core machine the scheduler
# alone moves such a p99 by milliseconds; 0.3.0's hijacks stalled the
# sites for 18.8 s and the supervisor for 52 s.
my (%base, $start_base, $spare);
sub check_p99
{
	my ($what) = @_;
	my ($bad, $p99, $start);
	# other test suites share this machine: a measurement that misses is
	# made again, twice at most (an attack that stalls misses every time)
	for my $try (1 .. 3)
	{
		($bad, $p99, $start) = rounds($what);
		last unless $bad || grep { $p99->{$_} > 2 * ($base{$_} > 0.005 ? $base{$_} : 0.005) } keys %site;
		diag(sprintf('%s: measured again after p99 %s', $what,
			join(', ', map { sprintf('%s %.1f ms', $_, 1000 * $p99->{$_}) } sort keys %site)));
	}
	is($bad, 0, "$what: every request to the other sites answered 200");
	for my $name (sort keys %site)
	{
		my $limit = 2 * ($base{$name} > 0.005 ? $base{$name} : 0.005);
		cmp_ok($p99->{$name}, '<=', $limit,
			sprintf('%s: %s p99 %.1f ms, baseline %.1f ms (limit %.0f ms)', $what, $name,
				1000 * $p99->{$name}, 1000 * $base{$name}, 1000 * $limit));
	}
	cmp_ok($start, '<', 2 * $start_base + 2,
		sprintf('%s: the supervisor starts other deployments meanwhile, in %.2f s (baseline %.2f s)',
			$what, $start, $start_base));
}

query("SELECT nx.create_sandbox('spare')");
$spare = push_app('spare', $hello);
nx_wait_state($node, $spare, 'ready', 'a deployment to flood later is ready');
{
	my ($bad, $p99);
	($bad, $p99, $start_base) = rounds('baseline');
	is($bad, 0, 'baseline: every request answered 200');
	%base = %$p99;
}
diag(sprintf('baseline: p99 %s; a start takes %.2f s meanwhile',
	join(', ', map { sprintf('%s %.1f ms', $_, 1000 * $base{$_}) } sort keys %base), $start_base));

# ---------------------------------------------------------------------------
# 1. the hijacks, from inside a sandbox (items 2, 3, 4, 11)
my %inode_before = map { $_ => (stat("$run/d$site{$_}/init.sock"))[1] } keys %site;
ok(-S "$run/d$site{site1}/init.sock", 'site1 has its hand-off socket on the host');
is(sprintf('%o', (stat("$run/d$site{site1}"))[2] & 07777), '700', 'run directories are 0700');
query(q{SELECT nx.create_sandbox('attacker', tmp_size => '8MB')});
my $attacker = push_app('attacker', $tenant, 'hijack', "victim_run=$run/d$site{site1}", "run_parent=$run");
nx_wait_state($node, $attacker, 'ready', 'the hijacking tenant is ready (its attempts are done)');
my @hijack = lines('attacker');
ok(scalar(grep { /HIJACK DONE/ } @hijack), 'the tenant went through every attempt');
my @expected = qw(run_nx_visible run_nx_create
  hijack_linger_run_nx hijack_backlog0_run_nx hijack_symlink_run_nx
  hijack_linger_own_run_dir hijack_backlog0_own_run_dir hijack_symlink_own_run_dir
  inherited_listen_fd proc_init_fd_listen proc_init_status_pipe proc_init_fd_list proc_init_mem
  pidfd_getfd_init pidfd_getfd_init_status process_vm_readv_init);
my %blocked = map { /^BLOCKED (\S+): (.*)$/ ? ($1 => $2) : () } @hijack;
my @escaped = grep { /^ESCAPED / } @hijack;
is(scalar(@escaped), 0, 'no hijack attempt got through') or diag(join("\n", @escaped));
ok(exists $blocked{$_}, "BLOCKED $_" . (exists $blocked{$_} ? ": $blocked{$_}" : '')) for @expected;
my @writable = map { /^WRITABLE (\S+) dev=(\d+)$/ ? [ $1, $2 ] : () } @hijack;
my %devs = map { $_->[1] => 1 } @writable;
is(scalar(keys %devs), 1, 'everything the tenant can write is on one file system ('
	  . join(' ', map { $_->[0] } @writable) . ')');
ok(!grep({ $_->[0] !~ m{^/(tmp|dev/shm)(/|$)} } @writable), 'and under /tmp or /dev/shm');

# from the host: the sockets are the supervisor's, as before
for my $name (sort keys %site)
{
	my $sock = "$run/d$site{$name}/init.sock";
	ok(-S $sock && !-l $sock && (stat($sock))[4] == $>, "$name: init.sock is still a socket of the cluster's uid");
	is((stat($sock))[1], $inode_before{$name}, "$name: the same socket as before the attack");
}
my @own = grep { $_ ne 'init.sock' } map { s{.*/}{}r } glob("$run/d$attacker/* $run/d$attacker/.*");
is(join(' ', grep { $_ ne '.' && $_ ne '..' } @own), '', "nothing but init.sock in the attacker's run directory");

# the other sites while it runs, and the supervisor starting others
check_p99('after the hijacks');

# ---------------------------------------------------------------------------
# 2. the same from the host (the supervisor's second wall): a sandbox whose
# init.sock is replaced while its idle stop asks nx-init to QUIESCE
query(q{SELECT nx.create_sandbox('sleeper', idle_timeout => '0')});
my $sleeper = push_app('sleeper', $hello);
nx_wait_state($node, $sleeper, 'ready', 'sleeper is ready');
my $sleeper_sock = "$run/d$sleeper/init.sock";
rename($sleeper_sock, "$sleeper_sock.real") or die "rename: $!";

# backlog 0 and one connection never accepted: a blocking connect() hangs
my $full = IO::Socket::UNIX->new(Type => SOCK_SEQPACKET, Local => $sleeper_sock)
  or die "bind $sleeper_sock: $!";
$full->listen(0) or die "listen on $sleeper_sock: $!";
my @stuck;
for (1 .. 3)
{
	my $c = IO::Socket::UNIX->new(Type => SOCK_SEQPACKET);
	$c->blocking(0);
	$c->connect(Socket::pack_sockaddr_un($sleeper_sock));
	push @stuck, $c;
}
query(q{UPDATE nx.sandboxes SET idle_timeout = '1 second' WHERE name = 'sleeper'});
my $t_hijack = time;
check_p99('host-side backlog-0 init.sock');
sleep(1) while time - $t_hijack < 4;
is(query("SELECT state FROM nx.status WHERE deployment = $sleeper"), 'ready',
	'sleeper is not put to sleep without an answer from its nx-init');

# a symlink to another site's socket: the supervisor must not follow it,
# or its idle stop of sleeper would QUIESCE site1's nx-init
close $full;
unlink $sleeper_sock;
symlink("$run/d$site{site1}/init.sock", $sleeper_sock) or die "symlink: $!";
$t_hijack = time;
check_p99('host-side init.sock symlink to site1');
sleep(1) while time - $t_hijack < 4;
is(query("SELECT state FROM nx.status WHERE deployment = $sleeper"), 'ready',
	'sleeper is still up: the supervisor did not take the link for its socket');
like(nx_http_get($port, 'site1.localhost', '/', 5), qr{^HTTP/1.1 200}, 'site1 was not quiesced');

# the real socket back: the idle stop goes through (it kept trying)
unlink $sleeper_sock;
rename("$sleeper_sock.real", $sleeper_sock) or die "rename back: $!";
nx_wait_state($node, $sleeper, 'asleep', 'with its real socket back, sleeper is put to sleep');
close $_ for @stuck;

# a tenant that got hold of nx-init's status pipe, as 0.3.0 allowed
# (/proc/1/fd/3): the supervisor reads at most a few kB a second of it,
# whatever is written.  The test takes the pipe with pidfd_getfd (x86-64
# numbers), which the cluster uid may: it owns the sandbox's user namespace.
my $spare_init = nx_init_pid($node, $spare);
my $pidfd = syscall(434, $spare_init + 0, 0);
my $status_fd = $pidfd >= 0 ? syscall(438, $pidfd, 3, 0) : -1;
if ($status_fd >= 0 && open(my $status, '>>&=', $status_fd))
{
	my $sup = query('SELECT nx._supervisor_pid()');
	my ($c0, $w0) = (cpu_ticks($sup), time);
	my $pid = fork();
	if ($pid == 0)
	{
		$status->blocking(0);
		my $lines = "ready\nexited 0\n" x 4096;
		my $written = 0;
		while (time - $w0 < 5)
		{
			my $n = syswrite($status, $lines);
			$written += $n if $n;
			usleep(1000) unless $n;
		}
		if (open(my $out, '>', "$pgdata/../flood_written"))
		{
			print $out $written;
			close $out;
		}
		POSIX::_exit(0);		# not exit: the harness's END blocks would stop the node
	}
	check_p99("nx-init's status pipe flooded");
	waitpid($pid, 0);
	my $flood_cpu = (cpu_ticks($sup) - $c0) / 100 / (time - $w0);
	my $written = slurp_file("$pgdata/../flood_written");
	diag(sprintf('status pipe flood: %.1f MB written in 5 s; supervisor CPU %.1f%% of a core',
		$written / 1e6, 100 * $flood_cpu));
	cmp_ok($flood_cpu, '<', 0.10, 'the supervisor spends under 10% of a core on a flooded status pipe');
	is(query("SELECT state FROM nx.status WHERE deployment = $spare"), 'ready',
		'the flooded deployment is still ready (its pipes were only paused)');
	close $status;
}
else
{
	fail("pidfd_getfd(nx-init $spare_init, 3) from the host: $!");
}

# ---------------------------------------------------------------------------
# 3. filling every writable place, and stdout (item 5)
# usage(): bytes under PGDATA, the filler's own database aside (measured
# with du's way of counting: allocated blocks)
my $filler_db_dir;
sub usage
{
	my $total = 0;
	find({ no_chdir => 1, wanted => sub {
		return if defined $filler_db_dir && index($File::Find::name, $filler_db_dir) == 0;
		my @st = lstat($File::Find::name);
		$total += $st[12] * 512 if @st;
	} }, $pgdata);
	return $total;
}

sub df_free
{
	my ($avail) = (`df -B1 --output=avail $pgdata`)[1] =~ /(\d+)/;
	return $avail;
}
my $tmp_size = 32 * 1024 * 1024;
query(qq{SELECT nx.create_sandbox('filler', tmp_size => '32MB', memory_limit => '256MB')});
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_filler'}, '1'),
	"the filler's database exists");
$filler_db_dir = "$pgdata/base/" . query(q{SELECT oid FROM pg_database WHERE datname = 'nx_filler'});
query('CHECKPOINT');
my ($usage0, $free0) = (usage(), df_free());
my $sup = query('SELECT nx._supervisor_pid()');
my ($cpu0, $w0) = (cpu_ticks($sup), time);
my $filler = push_app('filler', $tenant, 'fill', 'stdout_mb=24');
nx_wait_state($node, $filler, 'ready', 'the filling tenant is ready (it has filled everything)');
my $cpu = (cpu_ticks($sup) - $cpu0) / 100 / (time - $w0);
my @fill = lines('filler');
ok(scalar(grep { /FILL DONE/ } @fill), 'the tenant filled everything it found and flooded stdout');
# the report printed after the flood (the first one is rotated away)
my %filled = map { /^FILLED (\S+) bytes=(\d+) files=(\d+) data_err=(\S+) files_err=(\S+)/ ? ($1 => [ $1, $2, $3, $4, $5 ]) : () } @fill;
my @filled = values %filled;
my %wr = map { /^WRITABLE (\S+) dev=/ ? ($1 => 1) : () } @fill;
my @wr = sort keys %wr;
is(scalar(@filled), 1, 'one writable file system (' . join(' ', @wr) . ')');
for my $f (@filled)
{
	note("filled $f->[0]: $f->[1] bytes, $f->[2] files, $f->[3] / $f->[4]");
	cmp_ok($f->[1], '<=', $tmp_size, "$f->[0]: $f->[1] bytes of data, within tmp_size");
	is($f->[3], 'ENOSPC', "$f->[0]: data stops with ENOSPC");
	cmp_ok($f->[2], '<=', $tmp_size / 8192, "$f->[0]: $f->[2] empty files, within the inode limit");
	is($f->[4], 'ENOSPC', "$f->[0]: files stop with ENOSPC");
}
my ($wrote, $secs) = map { /^STDOUT wrote (\d+) bytes in ([\d.]+) s/ ? ($1, $2) : () } @fill;
ok(defined $wrote && $wrote >= 24 * 1024 * 1024, 'the tenant wrote 24 MB to stdout');
diag(sprintf('stdout flood: %.1f MB in %.1f s (at most 4 MB/s are read); supervisor CPU %.1f%% of a core meanwhile',
	($wrote // 0) / 1e6, $secs // 0, 100 * $cpu));
cmp_ok($cpu, '<', 0.25, 'the supervisor spent at most a quarter of a core on it');
my $logs = 0;
$logs += -s $_ for grep { -e } ("$pgdata/nx/logs/d$filler.log", "$pgdata/nx/logs/d$filler.log.1");
cmp_ok($logs, '<=', 2 * $log_size, "its logs on disk: $logs bytes, at most 2 x nx.log_size");
query('CHECKPOINT');
my ($usage1, $free1) = (usage(), df_free());
diag(sprintf('data directory usage %+.1f MB (free space %+.1f MB, the file system is shared) with every place full',
	($usage1 - $usage0) / 1e6, ($free1 - $free0) / 1e6));
cmp_ok(abs($usage1 - $usage0), '<=', 16 * 1024 * 1024, 'the data directory grew by at most 16 MB');

# ---------------------------------------------------------------------------
# 4. nothing left after drop
my $offset = query(q{SELECT uid_offset FROM nx.sandboxes WHERE name = 'filler'});
my ($slice_start) = slurp_file("$pgdata/nx/uid_slice") =~ /^start (\d+)$/m;
my ($subuid) = map { /^postgres:(\d+):/ ? $1 : () } split /\n/, slurp_file('/etc/subuid');
my $uid = $subuid + $slice_start + $offset;
# proc_status(PID): /proc/PID/status, '' when the process is gone meanwhile
sub proc_status
{
	open(my $fh, '<', "/proc/$_[0]/status") or return '';
	local $/;
	my $s = <$fh> // '';
	close $fh;
	return $s;
}
my @procs = grep { proc_status($_) =~ /^Uid:\s+$uid\b/m } map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
ok(scalar(@procs) > 0, "the filler runs as host uid $uid (" . scalar(@procs) . ' processes)');
like(query(qq{BEGIN;
	SELECT nx.drop_sandbox('filler'), nx.drop_sandbox('attacker');
	SELECT 'retired ' || count(*) FROM nx.retired_uid_offsets WHERE uid_offset = $offset;
	COMMIT;}), qr/^retired 1$/m, 'nx.drop_sandbox retires the offset (C6)');
ok($node->poll_query_until('postgres',
	"SELECT count(*) FROM nx.retired_uid_offsets WHERE uid_offset = $offset", '0'),
	'the supervisor forgets the retired offset once nothing runs as it');
my $left = sub {
	my @l;
	push @l, grep { -e } ("$run/d$filler", "$run/d$attacker",
		map { ("$pgdata/nx/logs/d$_.log", "$pgdata/nx/logs/d$_.log.1") } ($filler, $attacker));
	push @l, map { "process $_" } grep {
		my $s = proc_status($_);
		$s =~ /^Uid:\s+$uid\b/m && $s !~ /^State:\s+Z/m
	} map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*');
	push @l, map { "cgroup $_ procs" } grep { $_ } nx_cgroup_procs($node, $filler);
	return @l;
};
my @l;
for (1 .. 100)
{
	@l = $left->();
	last unless @l;
	usleep(100_000);
}
is(join(', ', @l), '', 'nothing of the filler or the attacker is left: run directories, logs, processes');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_filler'}, '0'),
	"the filler's database is dropped");
$filler_db_dir = undef;
query('CHECKPOINT');
my ($usage2, $free2) = (usage(), df_free());
diag(sprintf('after drop: data directory usage %+.1f MB, free space %+.1f MB, against before the filler',
	($usage2 - $usage0) / 1e6, ($free2 - $free0) / 1e6));
cmp_ok(abs($usage2 - $usage0), '<=', 16 * 1024 * 1024, 'the data directory is back within 16 MB');

$router->signal('TERM');
$router->finish;
$node->stop('fast');
done_testing();
