# t/012_hostile.pl
#   A hostile tenant: t/apps/hostile_probe is pushed into sandbox
#   'attacker' (small limits) next to a real other tenant ('victim', dbapp
#   with its database and run directory).  Before it listens the probe
#   tries to read the host's and the victim's files, see and signal host
#   processes, look into its own nx-init (/proc/1/fd, /proc/1/mem,
#   pidfd_getfd), use the system calls the filter denies, reach the host's
#   network and the cluster as someone else, write outside /tmp and
#   /dev/shm, and exhaust pids, memory, descriptors, /tmp, /dev/shm and
#   inodes; it prints BLOCKED or ESCAPED for each.  Every
#   attempt must be BLOCKED, its own database must work, and from the host
#   the victim, its database and the postmaster must be untouched.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use IO::Socket::INET;
use IO::Socket::UNIX;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Socket qw(SOCK_STREAM);
use Test::More;

# the cluster also listens on TCP, so that "the cluster's port" is a real
# target the sandbox must not reach
my $node = nx_node('hostile', "listen_addresses = '127.0.0.1'\n");
nx_require_host_setup($node);

my $dbapp = nx_build_app($node, 'dbapp', '-lpq');
my $probe = nx_build_app($node, 'hostile_probe', '-lpq');
my $handoff = nx_build_app($node, 'handoff_get');
my $pgdata = $node->data_dir;

# Every attempt the probe makes: each must report BLOCKED (a missing line
# means the attempt was skipped or crashed, which fails too).
my @attempts = qw(
  inherited_fds
  read_pgdata_conf read_pg_control list_pgdata read_etc_shadow list_var_lib_postgresql
  list_victim_run_dir read_victim_blob list_host_sys connect_victim_init_sock
  proc_only_own_pids proc_postmaster kill_postmaster_0 kill_postmaster_sigkill kill_victim_sigkill
  ptrace_attach_init ptrace_traceme process_vm_readv_init proc_init_fd proc_init_mem pidfd_getfd_init
  unshare_user unshare_ns setns_net clone_newuser clone3_newuser fsopen
  keyctl add_key request_key bpf perf_event_open userfaultfd setuid_root
  mount_tmpfs umount
  capabilities seccomp_no_new_privs
  socket_packet socket_raw_icmp
  tcp_cluster_port tcp_host_listener tcp_port_22 tcp_port_8080 tcp_host_ip tcp_outside
  abstract_unix net_interfaces
  pg_postgres_no_password pg_postgres_own_password pg_victim_wrong_password
  pg_victim_db_own_creds pg_postgres_db_own_creds pg_template1_own_creds
  sql_read_server_file sql_copy_program sql_alter_role_superuser sql_set_role_postgres
  tiocsti_stdin tiocsti_dev_tty tiocsti_pty
  write_root write_usr write_etc write_app_dir write_app_binary write_dev write_run_nx
  fork_bomb fd_exhaustion raise_rlimit_nofile tmp_fill shm_fill tmp_inodes memory_bomb
);

# --- the victim: a real tenant with a database, a run dir and a blob
$node->safe_psql('postgres', q{SELECT nx.create_sandbox('victim')});
my $vid = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('victim', pg_read_binary_file('$dbapp'))});
nx_wait_state($node, $vid, 'ready', 'victim dbapp is ready');
my $victim_init = nx_init_pid($node, $vid);
my $victim_app = (split /\s+/, slurp_file("/proc/$victim_init/task/$victim_init/children"))[0];
my $victim_run = "$pgdata/nx/run/d$vid";
my $victim_blob = "$pgdata/nx/blobs/"
  . $node->safe_psql('postgres', "SELECT blob FROM nx.deployments WHERE id = $vid");
ok(-d $victim_run && -S "$victim_run/init.sock", "the victim's run dir exists on the host ($victim_run)");
ok(-f $victim_blob, "the victim's blob exists on the host");
my $victim_rows_sql = q{SELECT (SELECT count(*) FROM starts) || '/' || (SELECT count(*) FROM visits)
  || '/' || (SELECT count(*) FROM pg_class WHERE relname = 'hostile')};
my $victim_rows = $node->safe_psql('nx_victim', $victim_rows_sql);

# --- what the host offers the probe to aim at (each really there)
my $pm_pid = (split /\n/, slurp_file("$pgdata/postmaster.pid"))[0];
my $pm_start = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');
ok(kill(0, $pm_pid), "postmaster pid $pm_pid is alive");
my $cluster_port = $node->port;
ok(IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $cluster_port, Proto => 'tcp'),
	"the host reaches the cluster on 127.0.0.1:$cluster_port");
my $listener = IO::Socket::INET->new(LocalAddr => '0.0.0.0', LocalPort => 0, Listen => 16,
	Proto => 'tcp', ReuseAddr => 1) or die "cannot listen: $!";
my $host_port = $listener->sockport;
my $abstract = "nx-hostile-$$";
my $abs_listener = IO::Socket::UNIX->new(Type => SOCK_STREAM, Local => "\0$abstract", Listen => 16)
  or die "cannot listen on abstract socket: $!";
ok(IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => "\0$abstract"),
	'the host reaches its abstract socket');
my $host_ip = 'none';
{
	my $u = IO::Socket::INET->new(Proto => 'udp', PeerAddr => '192.0.2.1', PeerPort => 9);
	$host_ip = $u->sockhost if $u && $u->sockhost && $u->sockhost ne '0.0.0.0';
}
note("host ip: $host_ip");
# drain the host's own test connections to the listeners
$_->blocking(0) for ($listener, $abs_listener);
1 while $abs_listener->accept;

# --- the attacker
my ($pids_limit, $nofile, $tmp_bytes) = (64, 128, 8 * 1024 * 1024);
$node->safe_psql('postgres',
	qq{SELECT nx.create_sandbox('attacker', memory_limit => '64MB', pids_limit => $pids_limit,
	   open_files_limit => $nofile, tmp_size => '8MB')});
my @args = (
	"pgdata=$pgdata", "victim_run=$victim_run", "victim_blob=$victim_blob",
	'victim_db=nx_victim', 'victim_role=nx_victim', "postmaster_pid=$pm_pid",
	"victim_pid=$victim_init", "cluster_port=$cluster_port", "host_port=$host_port",
	"host_ip=$host_ip", "abstract=$abstract", "pids_limit=$pids_limit",
	"nofile=$nofile", "tmp_bytes=$tmp_bytes");
my $args_sql = 'ARRAY[' . join(', ', map { my $a = $_; $a =~ s/'/''/g; "'$a'" } @args) . ']';
my $aid = $node->safe_psql('postgres',
	qq{SELECT deployment FROM nx.push('attacker', pg_read_binary_file('$probe'), args => $args_sql)});
nx_wait_state($node, $aid, 'ready', 'the probe becomes ready (all attempts done within nx.start_timeout)');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM nx.logs('attacker', lines => 1000) WHERE line LIKE '%PROBE DONE%'}, '1'),
	'PROBE DONE in the logs');

my @lines = split /\n/, $node->safe_psql('postgres',
	q{SELECT string_agg(line, E'\n') FROM nx.logs('attacker', lines => 1000)});
note(join("\n", @lines));
my (%blocked, @escaped, @inconclusive);
for (@lines)
{
	if (/\b(BLOCKED|ESCAPED|INCONCLUSIVE) ([a-z0-9_]+): (.*)$/)
	{
		$blocked{$2} = $3 if $1 eq 'BLOCKED';
		push @escaped, "$2: $3" if $1 eq 'ESCAPED';
		push @inconclusive, "$2: $3" if $1 eq 'INCONCLUSIVE';
	}
}
is(scalar(grep { /PROBE DONE/ } @lines), 1, 'the probe ran to the end exactly once');
is(scalar(@escaped), 0, 'no attempt escaped')
  or diag(join("\n", map { "ESCAPED $_" } @escaped));
is(scalar(@inconclusive), 0, 'no attempt was inconclusive')
  or diag(join("\n", map { "INCONCLUSIVE $_" } @inconclusive));
for my $name (@attempts)
{
	ok(exists $blocked{$name}, "BLOCKED $name" . (exists $blocked{$name} ? ": $blocked{$name}" : ''));
}
my %known = map { $_ => 1 } @attempts;
is(join(' ', grep { !$known{$_} } sort keys %blocked), '', 'the probe made no attempt this test does not list');
ok(scalar(grep { /OWN_DB ok/ } @lines), 'the probe used its own database (OWN_DB ok)');
my ($forks) = ($blocked{fork_bomb} // '') =~ /after (\d+) children/;
ok(defined $forks && $forks < $pids_limit, 'the fork bomb stopped below pids_limit (' . ($forks // '?') . ' forks)');
like($blocked{memory_bomb} // '', qr/SIGKILL/, 'memory bomb: the child was OOM-killed');
like($blocked{fd_exhaustion} // '', qr/EMFILE/, 'descriptors stop with EMFILE');
like($blocked{tmp_fill} // '', qr/ENOSPC after (\d+) bytes/, '/tmp stops with ENOSPC');

# --- from the host: the attacker is alive and alone in its cgroup, it
# never crashed, and its OOM kill was its own
is($node->safe_psql('postgres', "SELECT count(*) FROM nx.events WHERE action = 'crash'"), '0',
	'no deployment crashed');
my $attacker_sock = "$pgdata/nx/run/d$aid/init.sock";
like(`$handoff $attacker_sock`, qr{HTTP/1.1 200 OK.*probe}s, 'the probe serves HTTP after its attempts');
my @procs = nx_cgroup_procs($node, $aid);
cmp_ok(scalar(@procs), '<=', 4, 'the fork bomb left no processes (' . join(',', @procs) . ')');
my $oom_a = nx_cgroup_v1_file($node, $aid, 'memory', 'memory.oom_control');
my $oom_v = nx_cgroup_v1_file($node, $vid, 'memory', 'memory.oom_control');
SKIP:
{
	skip 'no v1 memory.oom_control with oom_kill', 2
	  unless defined $oom_a && defined $oom_v && $oom_a =~ /^oom_kill /m;
	cmp_ok(($oom_a =~ /^oom_kill (\d+)/m)[0], '>=', 1, "the OOM killer acted in the attacker's cgroup");
	is(($oom_v =~ /^oom_kill (\d+)/m)[0], '0', "the OOM killer did not act in the victim's cgroup");
}

# --- from the host: the victim, its database and the postmaster
is($node->safe_psql('nx_victim', $victim_rows_sql), $victim_rows,
	"the victim's tables are unchanged and hold nothing of the attacker");
is($node->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $vid"), 'ready',
	'the victim is still ready');
is(nx_init_pid($node, $vid), $victim_init, "the victim's nx-init is the same process");
ok(kill(0, $victim_app), "the victim's app (pid $victim_app) survived the attacker's OOM and kills");
like(`$handoff $victim_run/init.sock`, qr{HTTP/1.1 200 OK.*from deployment $vid}s, 'the victim still serves');
ok(kill(0, $pm_pid), 'the postmaster still runs');
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $pm_start,
	'the postmaster did not restart (no backend crashed)');
is($listener->accept, undef, "nothing connected to the host's TCP listener");
is($abs_listener->accept, undef, "nothing connected to the host's abstract socket");
ok(!-e "$pgdata/hostile-was-here" && !-e '/hostile-was-here', 'no file of the probe on the host');

$node->stop('fast');
done_testing();
