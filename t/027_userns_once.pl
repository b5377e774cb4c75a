# t/027_userns_once.pl
#   A sandbox's user namespace is mapped once (issue 12): when the sandbox
#   is made, ahead of its first start (newuidmap/newgidmap, which the
#   supervisor logs); its first start, 20 restarts and a second deployment
#   join the kept namespace with no mapping, their processes still running
#   as the sandbox's own host uid.  A second sandbox maps its own, and a
#   sandbox pushed to before its namespace was mapped ahead maps it at
#   its first start, once, and namespaces are kept beyond PostgreSQL's
#   budget of external descriptors (max_files_per_process).  The seccomp
#   filter is compiled once too: the supervisor holds one memfd of it
#   (that no sandbox process holds one is make runtime-test's check of
#   the probe's descriptors).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('usernsonce');
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

# mapped_for(SANDBOX): how many user namespaces were mapped for SANDBOX,
# from the supervisor's log: at a start of one of its deployments, or
# ahead of its first start
sub mapped_for
{
	my ($sandbox) = @_;
	my @lines = grep {
		/of sandbox "\Q$sandbox\E" maps a new user namespace/
		  || /sandbox "\Q$sandbox\E" has its user namespace mapped ahead/
	} split /\n/, slurp_file($node->logfile);
	return scalar @lines;
}

# mapped_ahead(SANDBOX): was its namespace mapped when it was made?
sub mapped_ahead
{
	my ($sandbox) = @_;
	return slurp_file($node->logfile) =~
	  /sandbox "\Q$sandbox\E" has its user namespace mapped ahead of its first start/;
}

# host_uid(DEPLOYMENT): the host uid its nx-init runs as
sub host_uid
{
	my ($deployment) = @_;
	my $pid = nx_init_pid($node, $deployment);
	my $status = eval { slurp_file("/proc/$pid/status") } // '';
	return $status =~ /^Uid:\s+(\d+)/m ? $1 : -1;
}

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('one')});

for (my $i = 0; $i < 600 && !mapped_ahead('one'); $i++) { usleep(100_000); }
ok(mapped_ahead('one'), "a new sandbox's user namespace is mapped before anything is pushed");
my $d1 = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('one', pg_read_binary_file('$hello'))});
nx_wait_state($node, $d1, 'ready', 'the first deployment is ready');
is(mapped_for('one'), 1, 'its first start mapped no user namespace of its own');
my $uid = host_uid($d1);
cmp_ok($uid, '>', 0, "it runs as host uid $uid");

my $restarted = 0;
for my $i (1 .. 20)
{
	my $before = $node->safe_psql('postgres', "SELECT started_at FROM nx.status WHERE deployment = $d1");
	$node->safe_psql('postgres', "SELECT nx.restart($d1)");
	$restarted++ if $node->poll_query_until('postgres',
		"SELECT state = 'ready' AND started_at > '$before' FROM nx.status WHERE deployment = $d1");
}
is($restarted, 20, '20 restarts, each ready again');
is(host_uid($d1), $uid, 'after them it still runs as the same host uid');

my $d2 = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('one', pg_read_binary_file('$hello'), label => 'two')});
nx_wait_state($node, $d2, 'ready', 'a second deployment of the sandbox is ready');
is(host_uid($d2), $uid, 'the second deployment runs as the sandbox\'s host uid');
is(mapped_for('one'), 1, '21 starts and a second deployment mapped no further user namespace');

# made and pushed to in one transaction: the pass that creates its role
# starts its deployment too, before any mapping ahead could run
my $d3 = $node->safe_psql('postgres',
	qq{BEGIN;
	   DO \$\$BEGIN PERFORM nx.create_sandbox('two'); END\$\$;
	   SELECT deployment FROM nx.push('two', pg_read_binary_file('$hello'));
	   COMMIT;});
nx_wait_state($node, $d3, 'ready', 'a deployment of a second sandbox is ready');
is(mapped_for('two'), 1, 'the second sandbox maps its own, once');
ok(!mapped_ahead('two'), 'at its first start, which came before a mapping ahead');
isnt(host_uid($d3), $uid, 'and runs as another host uid');

# filter_memfds(PID): how many of PID's descriptors are the kept filter
sub filter_memfds
{
	my ($pid) = @_;
	my $n = 0;
	opendir(my $dh, "/proc/$pid/fd") or return -1;
	for my $fd (readdir $dh)
	{
		my $target = readlink("/proc/$pid/fd/$fd") // '';
		$n++ if $target =~ m{^/memfd:nx-seccomp };
	}
	closedir $dh;
	return $n;
}
my $supervisor = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE application_name = 'nx supervisor'});
is(filter_memfds($supervisor), 1,
	'the supervisor keeps one compiled seccomp filter for every start');
unlike(slurp_file($node->logfile), qr/could not compile the sandbox filter once/,
	'and compiling it once did not fail');

# a host prepared by control/nx-setup (as CI's is) has cgroup migrations
# without an RCU grace period, where the kernel offers it
my $features = -r '/sys/kernel/cgroup/features' ? slurp_file('/sys/kernel/cgroup/features') : '';
SKIP:
{
	skip 'host not prepared by control/nx-setup, or kernel without favordynmods', 1
	  unless $ENV{NX_REQUIRE_SANDBOXES} && $features =~ /^favordynmods$/m;
	is($node->safe_psql('postgres',
			q{SELECT ok FROM nx.check_setup() WHERE check_name = 'cgroup migrations'}),
		't', 'nx.check_setup: a cgroup hierarchy is mounted with favordynmods');
}

# open_files(PID): the soft and hard open file limits of PID
sub open_files
{
	my ($pid) = @_;
	my $limits = eval { slurp_file("/proc/$pid/limits") } // '';
	return $limits =~ /^Max open files\s+(\d+)\s+(\d+)/m ? ($1, $2) : (0, 0);
}

# Kept namespaces have a descriptor budget of their own: a quarter of what
# the supervisor gained by raising its open file limit to the hard one.
# fd.c's budget for descriptors it does not open (a third of
# max_files_per_process) held them for only ~330 sandboxes, and mapping
# ahead leaves 100 of it free: at max_files_per_process = 80 (a budget
# of about 20), no namespace at all would be mapped ahead with it alone.
my ($soft, $hard) = open_files($node->safe_psql('postgres', 'SELECT pg_backend_pid()'));
SKIP:
{
	skip "the open file limit cannot be raised here (soft $soft, hard $hard)", 5
	  unless $hard >= $soft + 4 * 120;
	$node->append_conf('postgresql.conf', 'max_files_per_process = 80');
	$node->restart;
	$node->safe_psql('postgres',
		q{SELECT nx.create_sandbox('many' || i) FROM generate_series(1, 12) i});
	my $ahead = 0;
	for (my $i = 0; $i < 600; $i++)
	{
		$ahead = grep { mapped_ahead("many$_") } 1 .. 12;
		last if $ahead == 12;
		usleep(100_000);
	}
	is($ahead, 12,
		'with max_files_per_process = 80, all 12 new sandboxes are mapped ahead');
	$supervisor = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE application_name = 'nx supervisor'});
	my ($sv_soft, $sv_hard) = open_files($supervisor);
	is($sv_soft, $sv_hard, 'the supervisor runs with its open file limit raised to the hard one');
	my $d4 = $node->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('many12', pg_read_binary_file('$hello'))});
	nx_wait_state($node, $d4, 'ready', 'a deployment of the twelfth is ready');
	my $before = $node->safe_psql('postgres', "SELECT started_at FROM nx.status WHERE deployment = $d4");
	$node->safe_psql('postgres', "SELECT nx.restart($d4)");
	ok($node->poll_query_until('postgres',
			"SELECT state = 'ready' AND started_at > '$before' FROM nx.status WHERE deployment = $d4"),
		'and ready again after a restart');
	is(mapped_for('many12'), 1, 'its start and restart mapped no namespace of their own');
}

$node->stop;
done_testing();
