# t/046_stop_while_starting.pl
#   A stop that arrives while its deployment is still starting ends it
#   at once, not after nx.stop_timeout.  Inside its pid namespace the
#   sandbox's first process (bwrap's child while it sets the sandbox up,
#   then nx-init until it has blocked its signals) is pid 1 without a
#   SIGTERM handler, and the kernel drops such a signal to a namespace's
#   init: the SIGTERM of a graceful stop sent in that window was lost and
#   the stop waited the whole grace for its SIGKILL (found by the chaos
#   run: a restart of a starting deployment took 3 s, the test clusters'
#   nx.stop_timeout).  Here nx.stop_timeout is 60 s and the stop follows
#   the start after 0 to 60 ms, which sweeps that window: every stop must
#   end well before the grace would, and most of the 21 starts must have
#   reached the supervisor before their stop (it rewrote the deployment's
#   nx.runtime row), or the test would prove nothing.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = nx_node('stopstart', "nx.stop_timeout = '60s'\nnx.naptime = 3600\n");
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

sub sql { return $node->safe_psql('postgres', $_[0]); }

sql("SELECT nx.create_sandbox('ss')");
my $d = sql("SELECT deployment FROM nx.push('ss', pg_read_binary_file('$hello'))");
nx_wait_state($node, $d, 'ready', 'the deployment is ready');
sql("SELECT nx.stop($d)");
nx_wait_state($node, $d, 'stopped', 'and stopped');

# one psql session per attempt: start, sleep, stop, each its own
# transaction, so the stop commits DELAY ms after the start did
my $script = $node->basedir . '/startstop.sql';
my ($slowest, @slow) = (0);
my $acted = 0;
for (my $delay = 0; $delay <= 60; $delay += 3)
{
	# the supervisor writes the deployment's nx.runtime row when it starts
	# it and when it has stopped it (or deletes it, once it forgets a
	# stopped slot): a row not changed means it saw the stop before the
	# start, which tests nothing
	my $row_at = sql("SELECT coalesce((SELECT updated_at::text FROM nx.runtime WHERE deployment = $d), 'none')");
	open my $fh, '>', $script or die;
	printf $fh "SELECT nx.start(%d) IS NOT NULL;\nSELECT pg_sleep(%.3f);\nSELECT nx.stop(%d) IS NOT NULL;\n",
		$d, $delay / 1000, $d;
	close $fh;
	$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $script ],
		"start, then stop after $delay ms");
	my $t0 = time;
	my ($state, $rewritten) = ('', 0);
	while (time - $t0 < 50)
	{
		($state, $rewritten) = split /\|/, sql("SELECT s.state, coalesce(r.updated_at::text, 'none') <> '$row_at'
			FROM nx.status s LEFT JOIN nx.runtime r USING (deployment) WHERE s.deployment = $d");
		# stopped once the supervisor has acted; or after 3 s, not acted on
		last if $state eq 'stopped' && ($rewritten eq 't' || time - $t0 > 3);
		usleep(20_000);
	}
	$acted++ if $rewritten eq 't';
	my $took = time - $t0;
	$slowest = $took if $took > $slowest;
	push @slow, sprintf('%d ms: %.2f s (%s)', $delay, $took, $state) if $took > 10;
}
is(scalar(@slow), 0, 'every stop of a starting deployment ended within 10 s (grace 60 s)')
  or diag("slow stops: @slow");
diag(sprintf('slowest stop: %.2f s; the supervisor acted on %d of the 21 starts', $slowest, $acted));
# a stop the supervisor saw before the start proves nothing: most of the
# 21 starts must have reached it first
cmp_ok($acted, '>=', 5, 'the supervisor acted on at least 5 of the 21 starts before their stop');
is(sql("SELECT count(*) FROM nx.events WHERE deployment = $d AND action IN ('crash', 'crashloop', 'failed')"),
	'0', 'no stop counted as a crash or a failure');

# and the deployment still starts normally afterwards
sql("SELECT nx.start($d)");
nx_wait_state($node, $d, 'ready', 'the deployment starts again');

$node->stop('fast');
done_testing();
