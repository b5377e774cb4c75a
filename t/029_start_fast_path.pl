# t/029_start_fast_path.pl
#   The start fast path (issue 12): nx.push (on the sandbox's database),
#   nx.start and nx.wake start their deployment without a full converge
#   pass; with nx.start_fast_path = off each costs a pass, as before 0.4.0.
#   Full passes are counted by PostgreSQL itself: every pass calls
#   nx._hba_check() (a PL/pgSQL function), and with track_functions = 'pl'
#   pg_stat_user_functions counts the supervisor's calls as any backend's.
#   A push that must wait for what only a pass makes (a new sandbox's
#   database, a preview's own database) still starts.  Deployments that
#   wait for a start slot (nx.max_concurrent_starts) start as slots come
#   free, without a full pass each.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('fastpath', qq{
nx.naptime = 3600
track_functions = 'pl'
nx.max_deployments_per_sandbox = 50
});
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

sub sql { return $node->safe_psql('postgres', $_[0]); }

# passes(): the supervisor's full converge passes so far, once the count
# has settled (it sends its statistics at most once a second: read until
# three reads 1.5 s apart agree).  Nothing else in this test calls
# nx._hba_check (nx.check_setup does; it is not called after the start).
sub passes
{
	my $q = q{SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
			  WHERE schemaname = 'nx' AND funcname = '_hba_check'};
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

sub push_hello
{
	my ($sandbox, $extra) = @_;
	return sql(qq{SELECT deployment FROM nx.push('$sandbox', pg_read_binary_file('$hello')$extra)});
}

sql(q{SELECT nx.create_sandbox('fast')});
my $first = push_hello('fast', '');
nx_wait_state($node, $first, 'ready', 'the first deployment is ready');
my $before = passes();
cmp_ok($before, '>', 0, "pg_stat_user_functions counts the supervisor's passes ($before so far)");

# five pushes, each waited for: no full pass
my @pushed;
for my $i (1 .. 5)
{
	my $d = push_hello('fast', ", label => 'p$i'");
	nx_wait_state($node, $d, 'ready', "push $i is ready");
	push @pushed, $d;
}
my $after = passes();
is($after - $before, 0, 'five pushes started their deployments without a full pass');

# a stop is a full pass; the start after it is not
sql(qq{SELECT nx.stop($pushed[0])});
nx_wait_state($node, $pushed[0], 'stopped', 'a stopped deployment');
$before = passes();
sql(qq{SELECT nx.start($pushed[0])});
nx_wait_state($node, $pushed[0], 'ready', 'nx.start makes it ready again');
is(passes() - $before, 0, 'nx.start started it without a full pass');

# start fast path off: each push costs a pass again
sql(q{ALTER SYSTEM SET nx.start_fast_path = off});
sql(q{SELECT pg_reload_conf()});
$before = passes();
for my $i (1 .. 3)
{
	my $d = push_hello('fast', ", label => 'slow$i'");
	nx_wait_state($node, $d, 'ready', "push $i with the fast path off is ready");
}
cmp_ok(passes() - $before, '>=', 3, 'with nx.start_fast_path = off every push is a full pass');
sql(q{ALTER SYSTEM RESET nx.start_fast_path});
sql(q{SELECT pg_reload_conf()});
usleep(500_000);

# what only a pass makes: a new sandbox's database (pushed right after its
# creation, in another transaction), a preview's own database
sql(q{SELECT nx.create_sandbox('fresh')});
my $fresh = push_hello('fresh', '');
nx_wait_state($node, $fresh, 'ready', "a push right after its sandbox's creation is ready");
my $preview = push_hello('fast', ", label => 'own', database => 'empty'");
nx_wait_state($node, $preview, 'ready', 'a preview on a database of its own is ready');
is(sql(qq{SELECT database_mode FROM nx.deployments WHERE id = $preview}), 'empty',
	'and it runs on its own database');

# a start cap: deployments waiting for their turn are asked for on the
# fast path as start slots come free, only their rows read; at most one full
# pass (a slot that comes free after the last was asked for finds none
# waiting).  Before, every finished start was a full pass.
sql(q{ALTER SYSTEM SET nx.max_concurrent_starts = 2});
sql(q{SELECT pg_reload_conf()});
usleep(500_000);	# the reload's pass reads the cap
$before = passes();
my @capped = split /\n/, sql(qq{SELECT p.deployment FROM generate_series(1, 8) g,
	LATERAL nx.push('fast', pg_read_binary_file('$hello'), label => 'cap' || g) p});
my $waited = 0;
for (1 .. 200)
{
	$waited = 1 if sql(q{SELECT count(*) FROM nx.status WHERE state = 'pending'
		AND last_error LIKE 'waiting for its turn to start%'}) > 0;
	last if $waited;
	usleep(10_000);
}
ok($waited, 'with nx.max_concurrent_starts = 2, pushed deployments waited for their turn');
nx_wait_state($node, $_, 'ready', "capped deployment $_ is ready") for @capped;
my $capped_passes = passes() - $before;
cmp_ok($capped_passes, '<=', 1, "eight capped starts cost at most one full pass ($capped_passes)");
sql(q{ALTER SYSTEM RESET nx.max_concurrent_starts});
sql(q{SELECT pg_reload_conf()});

# every deployment is still shown with the state the rows want
is(sql(q{SELECT count(*) FROM nx.status WHERE sandbox = 'fast' AND state = 'ready'}),
	sql(q{SELECT count(*) FROM nx.deployments WHERE sandbox = 'fast' AND desired_state = 'running'}),
	'every deployment that should run is ready');

$node->stop;
done_testing();
