# t/010_supervisor.pl
#   The supervisor converges the machine to the rows: a sandbox gets its
#   database and role, a pushed binary runs in a bwrap sandbox as its own
#   host uid with its database next door, stop/start/restart act, a crash
#   is restarted, and after kill -9 of the supervisor, a postmaster crash
#   and pg_ctl restart every desired-running deployment runs again exactly
#   once; pg_ctl stop leaves nothing of ours behind.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('supervisor');
nx_require_host_setup($node);

my $dbapp = nx_build_app($node, 'dbapp', '-lpq');
my $handoff = nx_build_app($node, 'handoff_get');

# --- a sandbox: database and role appear after commit
$node->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
	  WHERE d.datname = 'nx_app' AND r.rolname = 'nx_app'}, '1'),
	'database nx_app owned by role nx_app');
is($node->safe_psql('postgres', q{SELECT has_database_privilege('public', 'nx_app', 'CONNECT')}),
	'f', 'PUBLIC may not connect to the sandbox database');
is($node->safe_psql('postgres', q{SELECT pg_has_role('nx_app', 'nx_tenant', 'MEMBER')}),
	't', 'the sandbox role is a tenant');

# --- push: the app runs, as its own host uid, and uses its database
my $id = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$dbapp'))});
nx_wait_state($node, $id, 'ready', 'pushed dbapp becomes ready');
is($node->safe_psql('nx_app', 'SELECT deployment FROM starts'), $id,
	'the app wrote its start into its own database');
like($node->safe_psql('postgres', qq{SELECT string_agg(line, E'\\n') FROM nx.logs('app')}),
	qr/dbapp: started as uid 1000, database nx_app, user nx_app/, 'nx.logs shows the app output');
unlike($node->safe_psql('postgres', qq{SELECT string_agg(line, E'\n') FROM nx.logs('app')}),
	qr/readiness probe: .*sock_diag/, 'nx-init saw readiness through sock_diag inside the sandbox (no fallback)');

my $pid = nx_init_pid($node, $id);
ok($pid > 0, 'nx.status reports the sandbox pid');
my ($subuid) = map { /^postgres:(\d+):/ ? $1 : () } split /\n/, slurp_file('/etc/subuid');
my $offset = $node->safe_psql('postgres', q{SELECT uid_offset FROM nx.sandboxes WHERE name = 'app'});
# each cluster on the host takes a slice of the range (uidslice.c)
my ($slice_start) = slurp_file($node->data_dir . '/nx/uid_slice') =~ /^start (\d+)$/m;
my ($uid) = slurp_file("/proc/$pid/status") =~ /^Uid:\s+(\d+)/m;
is($uid, $subuid + $slice_start + $offset,
	"the sandbox runs as host uid subuid+slice+offset ($uid), not as the cluster user");

my $sock = $node->data_dir . "/nx/run/d$id/init.sock";
like(`$handoff $sock`, qr{HTTP/1.1 200 OK.*visit 1 from deployment $id}s,
	'a connection handed over by nx-init reaches the app');

# --- stop, start, restart
$node->safe_psql('postgres', "SELECT nx.stop($id)");
nx_wait_state($node, $id, 'stopped');
ok(!kill(0, $pid), 'the stopped sandbox is gone');
is(scalar(my @left = nx_cgroup_procs($node, $id)), 0, 'nothing left in its cgroup');

$node->safe_psql('postgres', "SELECT nx.start($id)");
nx_wait_state($node, $id, 'ready', 'started again');
my $pid2 = nx_init_pid($node, $id);
$node->safe_psql('postgres', "SELECT nx.restart($id)");
ok($node->poll_query_until('postgres', "SELECT pid <> $pid2 AND state = 'ready' FROM nx.status WHERE deployment = $id"),
	'restart gives a new process');

# --- a crash of the app is restarted
my $app_pid = (split /\s+/, slurp_file('/proc/' . nx_init_pid($node, $id) . '/task/' . nx_init_pid($node, $id) . '/children'))[0];
kill 'KILL', $app_pid;
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM nx.events WHERE action = 'crash'}),
	'the crash is recorded');
nx_wait_state($node, $id, 'ready', 'the crashed app runs again');

# running($pid): the process exists and is not a zombie (an orphan's exit
# waits there for whoever reaps orphans on this host)
sub running
{
	return (eval { slurp_file("/proc/$_[0]/stat") } // '') =~ /\)\s+[^Z]/;
}

# exactly one sandbox of this deployment runs: one nx-init in its cgroup
sub count_inits
{
	return scalar grep {
		my $cmd = eval { slurp_file("/proc/$_/cmdline") } // '';
		$cmd =~ m{^/nx/nx-init\0};
	} nx_cgroup_procs($node, $id);
}
is(count_inits(), 1, 'one nx-init for the deployment');

# --- adoption: once ready, bwrap's monitor is gone and nx-init is the
# supervisor's own child (slots.c); nothing but nx-init and the app runs
# in the deployment's cgroup
{
	my $init = nx_init_pid($node, $id);
	my $sup_pid = $node->safe_psql('postgres', 'SELECT nx._supervisor_pid()');
	my $ppid = (split /\s+/, (slurp_file("/proc/$init/stat") =~ s/^.*\)\s*//sr))[1];
	is($ppid, $sup_pid, 'the ready nx-init is the supervisor\'s child');
	my @bwrap = grep { (eval { slurp_file("/proc/$_/comm") } // '') =~ /^bwrap/ } nx_cgroup_procs($node, $id);
	is(scalar(@bwrap), 0, 'no bwrap process is left in the deployment\'s cgroup');
}

# --- kill -9 of the supervisor: the postmaster restarts everything
my $sup = $node->safe_psql('postgres', 'SELECT nx._supervisor_pid()');
kill 'KILL', $sup;
# (poll_query_until writes its query to psql's stdin: a psql refused at
# login while the cluster is still in recovery dies of EPIPE there)
my $restarted = 0;
for (1 .. 600)
{
	my $now = eval { $node->safe_psql('postgres', 'SELECT nx._supervisor_pid()') } // 0;
	if ($now && $now != $sup) { $restarted = 1; last; }
	usleep(100_000);
}
ok($restarted, 'supervisor restarted');
nx_wait_state($node, $id, 'ready', 'ready again after kill -9 of the supervisor');
is(count_inits(), 1, 'exactly one nx-init after the supervisor crash');

# --- pg_ctl restart
$node->restart;
nx_wait_ready_since_start($node, $id, 'ready again after pg_ctl restart');
is(count_inits(), 1, 'exactly one nx-init after restart');
is($node->safe_psql('nx_app', 'SELECT count(*) >= 4 FROM starts'), 't', 'the database kept its rows');

# --- immediate stop (a postmaster crash), then start
# nx-init, adopted, dies with the supervisor (its parent-death signal):
# with the cluster down nothing sweeps the cgroups, and nothing may run on
my $init_before = nx_init_pid($node, $id);
$node->stop('immediate');
my $gone = 0;
for (1 .. 100)
{
	if (!running($init_before)) { $gone = 1; last; }
	usleep(20_000);
}
ok($gone, 'an immediate stop ends the adopted nx-init with no supervisor to sweep');
is(scalar(grep { running($_) } nx_cgroup_procs($node, $id)), 0, 'nothing runs in the cgroup while the cluster is down');
$node->start;
nx_wait_state($node, $id, 'ready', 'ready again after an immediate shutdown');
is(count_inits(), 1, 'exactly one nx-init after an immediate shutdown');

# --- drop: process, database and role are gone
$node->safe_psql('postgres', q{SELECT nx.drop_sandbox('app')});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_database WHERE datname = 'nx_app'}, '0'), 'dropped sandbox: database gone');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_roles WHERE rolname = 'nx_app'}, '0'), 'dropped sandbox: role gone');
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM nx.runtime', '0'), 'dropped sandbox: no runtime row');
is(scalar(my @gone = nx_cgroup_procs($node, $id)), 0, 'dropped sandbox: no process');

# --- pg_ctl stop leaves nothing behind
$node->safe_psql('postgres', q{SELECT nx.create_sandbox('again')});
my $id2 = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('again', pg_read_binary_file('$dbapp'))});
nx_wait_state($node, $id2, 'ready', 'a second sandbox runs');
my $pid3 = nx_init_pid($node, $id2);
$node->stop('fast');
ok(!kill(0, $pid3), 'pg_ctl stop: the sandbox is gone');
is(scalar(my @after = nx_cgroup_procs($node, $id2)), 0, 'pg_ctl stop: its cgroup is empty');

done_testing();
