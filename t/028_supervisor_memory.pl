# t/028_supervisor_memory.pl
#   The supervisor's memory does not grow with its work (issue 12): its
#   memory contexts' grand total (pg_log_backend_memory_contexts) grows by
#   less than 1 MB across 10,000 control events (each a commit that wakes
#   it for a pass) and 2,000 start/stop cycles of deployments.
#   NX_MEMTEST_EVENTS and NX_MEMTEST_CYCLES scale it down for a quick run.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $events = $ENV{NX_MEMTEST_EVENTS} // 10_000;
my $cycles = $ENV{NX_MEMTEST_CYCLES} // 2_000;
my $width = 8;    # deployments restarted together in one round

my $node = nx_node('supmem', "max_connections = 40\n");
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');
sub sql { return $node->safe_psql('postgres', $_[0]); }

sql(q{SELECT nx.create_sandbox('mem')});
my @ids = split /\n/, sql(qq{SELECT deployment FROM generate_series(1, $width) g,
	LATERAL nx.push('mem', pg_read_binary_file('$hello'), label => 'v' || g)});
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM nx.status WHERE sandbox = 'mem' AND state = 'ready'}, $width),
	"$width deployments ready");
my $list = join(',', @ids);

# supervisor_bytes: the grand total of the supervisor's memory contexts,
# as it logs them when asked
sub supervisor_bytes
{
	my $pid = sql(q{SELECT pid FROM pg_stat_activity WHERE application_name = 'nx supervisor'});
	my $offset = -s $node->logfile;
	sql("SELECT pg_log_backend_memory_contexts($pid)");
	for (1 .. 200)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $1 if $log =~ /Grand total: (\d+) bytes/;
		select(undef, undef, undef, 0.05);
	}
	die 'the supervisor did not log its memory contexts';
}

# restart_rounds(N): N rounds of restarting every deployment and waiting
# until all are ready again in new processes
sub restart_rounds
{
	my ($n) = @_;
	my $done = 0;
	for (1 .. $n)
	{
		my $t = sql('SELECT now()');
		sql("SELECT nx.restart(d) FROM unnest(ARRAY[$list]::bigint[]) d");
		$done++ if $node->poll_query_until('postgres',
			"SELECT count(*) FROM nx.status WHERE deployment IN ($list) AND state = 'ready' AND started_at > '$t'",
			$width);
	}
	return $done;
}

# events(N): N commits of nx.set_env, each an event that wakes the supervisor
my $event_runs = 0;

sub events
{
	my ($n) = @_;
	$event_runs++;
	my $clients = 4;
	$node->pgbench("--no-vacuum --client=$clients --jobs=2 --transactions=" . int($n / $clients),
		0, [qr{processed: \d+/\d+}], [qr{^$}], "$n events",
		{ "memtest_env_$event_runs" => q{\set r random(1, 1000000)
SELECT nx.set_env('mem', 'K' || :client_id, :r::text);
} });
}
# warm up: caches, the wait set, hash tables at their working size
restart_rounds(5);
events(400);
my $before = supervisor_bytes();

my $t0 = time;
events($events);
my $rounds = int($cycles / $width);
is(restart_rounds($rounds), $rounds, "$rounds rounds of $width restarts ($cycles start/stop cycles)");
my $secs = time - $t0;
my $after = supervisor_bytes();
my $growth = $after - $before;
diag(sprintf('supervisor memory contexts: %d bytes before, %d after %d events and %d cycles (%+d bytes, %.0f s)',
		$before, $after, $events, $rounds * $width, $growth, $secs));
cmp_ok($growth, '<', 1024 * 1024, 'the supervisor\'s memory grew by less than 1 MB');

$node->stop;
done_testing();
