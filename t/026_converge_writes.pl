# t/026_converge_writes.pl
#   A converge pass costs what changed: with many deployments running, one
#   more push causes O(1) writes to nx.runtime, not one per deployment.
#   The writes are counted by PostgreSQL itself (pg_stat_user_tables:
#   n_tup_ins + n_tup_upd + n_tup_del of nx.runtime, which the supervisor
#   reports as any backend does), not by a counter of the supervisor's.
#   nx.naptime is an hour, so only the passes the push causes run; the
#   periodic pass (the safety net, which refreshes every running row's
#   cgroup statistics) stays out of the count.  1,000 deployments: 200
#   running and 800 stopped (NX_TEST_WRITES_N, NX_TEST_WRITES_STOPPED).
#   Then idle: the supervisor commits nothing, the quota check included.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $n = $ENV{NX_TEST_WRITES_N} // 200;
my $stopped = $ENV{NX_TEST_WRITES_STOPPED} // 800;

my $node = nx_node('writes', qq{
nx.naptime = 3600
nx.max_deployments_per_sandbox = 2000
});
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# writes(): nx.runtime's row writes so far, once the count has settled (the
# supervisor sends its statistics at most once a second: read until three
# reads 1.5 s apart agree)
sub writes
{
	my $q = q{SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables
			  WHERE schemaname = 'nx' AND relname = 'runtime'};
	my $last = sql($q);
	my $same = 0;
	for (1 .. 40)
	{
		usleep(1_500_000);
		my $now = sql($q);
		$same = $now eq $last ? $same + 1 : 0;
		return $now if $same == 2;
		$last = $now;
	}
	return $last;
}

sql(q{SELECT nx.create_sandbox('many')});
# the stopped ones first: pushed and stopped in one transaction, never run
sql(qq{SELECT count(nx.stop(d.deployment)) FROM generate_series(1, $stopped) g,
	   (SELECT pg_read_binary_file('$hello') AS b) f, LATERAL nx.push('many', f.b, label => 's' || g) d}) if $stopped > 0;
sql(qq{SELECT count(nx.push('many', b)) FROM generate_series(1, $n),
	   (SELECT pg_read_binary_file('$hello') AS b) f});
my $t0 = time;
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) FILTER (WHERE state = 'ready') FROM nx.status WHERE sandbox = 'many'}, $n),
	"all $n deployments are ready");
note(sprintf('%d deployments ready %.1f s after the push', $n, time - $t0));
is(sql(q{SELECT count(*) FROM nx.status WHERE sandbox = 'many' AND state = 'stopped'}), $stopped,
	"and $stopped more are stopped");

my $before = writes();
my $t_before = sql('SELECT clock_timestamp()');
ok($before >= $n, "pg_stat_user_tables counts the supervisor's writes to nx.runtime ($before so far)");

# one more push: it starts (a row inserted), becomes ready (one update)
my $d = sql(qq{SELECT deployment FROM nx.push('many', pg_read_binary_file('$hello'))});
nx_wait_state($node, $d, 'ready', 'one more deployment becomes ready');
my $after = writes();
my $delta = $after - $before;
note("nx.runtime row writes caused by one push with $n deployments running and $stopped stopped: $delta");
ok($delta <= 6, "one push writes O(1) nx.runtime rows, not O(" . ($n + $stopped) . "): $delta")
  or diag(sql(qq{SELECT string_agg(format('%s %s pid %s restarts %s mem %s cpu %s at %s', deployment, state,
		pid, restarts, memory_bytes, cpu_usec, updated_at), E'\n' ORDER BY updated_at)
	FROM nx.runtime WHERE updated_at > '$t_before'}));

# a stop of one deployment: its row is updated (stopping, stopped; the row
# itself goes on the next periodic pass), the others are not touched
$before = $after;
sql(qq{SELECT nx.stop($d)});
nx_wait_state($node, $d, 'stopped', 'the deployment stops');
$after = writes();
$delta = $after - $before;
note("nx.runtime row writes caused by one stop: $delta");
ok($delta <= 6, "one stop writes O(1) nx.runtime rows: $delta");

# what nx.status shows is still right for all of them
is(sql(q{SELECT count(*) FROM nx.status WHERE sandbox = 'many' AND state = 'ready' AND pid > 0}),
	$n, 'every other deployment is still shown ready, with its pid');

# idle: with nothing happening, the supervisor runs no statement at all
# (no converge pass with nx.naptime an hour, and the quota check, due every
# second, skipped: no tenant session, no new transactions).  Counted by
# PostgreSQL: the control database's commits over 8 s, of which one is
# this test's own read.
sleep 3;
my $commits = q{SELECT pg_stat_get_db_xact_commit(oid) FROM pg_database WHERE datname = 'postgres'};
my $c0 = sql($commits);
sleep 8;
my $idle_commits = sql($commits) - $c0;
note("transactions in the control database over 8 idle seconds: $idle_commits");
ok($idle_commits <= 3, "an idle supervisor commits nothing (the quota check is skipped): $idle_commits in 8 s");

$node->stop;
done_testing();
