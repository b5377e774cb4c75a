# t/014_start_cap.pl
#   nx.max_concurrent_starts: with a cap of 2, six deployments pushed in
#   one statement never have more than 2 starting at once (sampled all
#   along), the others wait as pending with the reason, and all six end up
#   ready.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = nx_node('startcap', "nx.max_concurrent_starts = 2\n");
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('s' || g) FROM generate_series(1, 6) g});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_database WHERE datname LIKE 'nx\_s_'}, '6'), 'six sandboxes with databases');
$node->safe_psql('postgres',
	qq{SELECT count(nx.push('s' || g, pg_read_binary_file('$hello'))) FROM generate_series(1, 6) g});

my ($most, $waited, $ready) = (0, 0, 0);
for (1 .. 1500)
{
	my ($starting, $pending_turn, $r) = split /\|/, $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE state = 'starting'),
			   count(*) FILTER (WHERE state = 'pending' AND last_error LIKE 'waiting for its turn to start%'),
			   count(*) FILTER (WHERE state = 'ready')
		FROM nx.status});
	$most = $starting if $starting > $most;
	$waited = 1 if $pending_turn > 0;
	$ready = $r;
	last if $ready == 6;
	usleep(20_000);
}
is($ready, 6, 'all six become ready');
cmp_ok($most, '<=', 2, "never more than nx.max_concurrent_starts starting at once (at most $most seen)");
diag($waited ? 'some waited for their turn (seen as pending)' : 'no wait was sampled (the starts were quick)');

$node->stop;
done_testing();
