# t/019_uid_slices.pl
#   Tenant uid slices (issue 10 item 10, contract C6, invariant I15): two
#   clusters of the same OS user on one host give their sandboxes distinct
#   host uids.  Each supervisor claims a slice of the user's subordinate
#   range in a registry the clusters share (here a private one, so that
#   other clusters on the host do not change what this test sees), keeps
#   it across a restart and a kill -9 of its supervisor, and gives it back
#   when it stops.  A cluster with another slice size does not take an
#   overlapping slice; one that finds no free slice starts nothing and says
#   why.  A retired uid offset is forgotten only once nothing runs as it.
use strict;
use warnings FATAL => 'all';

use Fcntl qw(:flock);
use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $registry = PostgreSQL::Test::Utils::tempdir() . '/registry';
my ($subuid, $count) = map { /^postgres:(\d+):(\d+)/ ? ($1, $2) : () } split /\n/, slurp_file('/etc/subuid');

sub node
{
	my ($name, $extra) = @_;
	return nx_node($name, "nx.uid_slice_registry = '$registry'\n" . ($extra // ''));
}

# slice(NODE): the slice its supervisor recorded ("start" in nx/uid_slice)
sub slice
{
	my $f = $_[0]->data_dir . '/nx/uid_slice';
	return -e $f ? (slurp_file($f) =~ /^start (\d+)$/m)[0] : undef;
}

# host_uids(NODE, DEPLOYMENT): the host uids of its nx-init and app
sub host_uids
{
	my ($node, $id) = @_;
	my $init = nx_init_pid($node, $id);
	my ($app) = split /\s+/, slurp_file("/proc/$init/task/$init/children");
	return map { (slurp_file("/proc/$_/status") =~ /^Uid:\s+(\d+)/m)[0] } ($init, $app);
}

# start_app(NODE): a sandbox 'app' running hello; its deployment id
sub start_app
{
	my ($node, $hello) = @_;
	$node->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
	my $id = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$hello'))});
	nx_wait_state($node, $id, 'ready', $node->name . ': app is ready');
	return $id;
}

my $a = node('a');
nx_require_host_setup($a);
my $hello = nx_build_app($a, 'hello_app');
my $b = node('b');

my $ida = start_app($a, $hello);
my $idb = start_app($b, $hello);
my ($sa, $sb) = (slice($a), slice($b));
ok(defined $sa && defined $sb, "each cluster recorded its slice (a: $sa, b: " . ($sb // '?') . ')');
isnt($sa, $sb, 'the two clusters hold different slices');
my @ua = host_uids($a, $ida);
my @ub = host_uids($b, $idb);
is($a->safe_psql('postgres', q{SELECT uid_offset FROM nx.sandboxes}),
	$b->safe_psql('postgres', q{SELECT uid_offset FROM nx.sandboxes}),
	'both first sandboxes have the same uid offset (what 0.3.0 turned into one host uid)');
is($ua[0], $ua[1], "a: nx-init and the app run as one host uid ($ua[0])");
is($ub[0], $ub[1], "b: nx-init and the app run as one host uid ($ub[0])");
isnt($ua[0], $ub[0], "the two clusters' sandboxes run as different host uids ($ua[0], $ub[0])");
my $offset = $a->safe_psql('postgres', q{SELECT uid_offset FROM nx.sandboxes});
is($ua[0], $subuid + $sa + $offset, 'a: host uid = subuid start + slice start + offset');
is($ub[0], $subuid + $sb + $offset, 'b: host uid = subuid start + slice start + offset');
# held(FILE): is the registry file's flock held (by a supervisor)?
sub held
{
	open(my $fh, '<', $_[0]) or return 0;
	my $free = flock($fh, LOCK_EX | LOCK_NB);
	close $fh;
	return !$free;
}
my @locks = sort grep { held("$registry/$_") } grep { !/\.lock$/ } map { s{.*/}{}r } glob("$registry/*");
is(scalar(@locks), 2, 'two slices are claimed (held) in the registry (' . join(' ', @locks) . ')');
like(slurp_file("$registry/" . ($subuid + $sa) . '-' . ($subuid + $sa + 4095)),
	qr/data_directory \Q${\ $a->data_dir}\E/, "a's lock file names a's data directory");

# --- a restart, and a kill -9 of the supervisor: the same slice again
$a->restart;
nx_wait_ready_since_start($a, $ida, 'a: app ready again after a restart');
is(slice($a), $sa, 'a keeps its slice across a restart');
is((host_uids($a, $ida))[0], $ua[0], 'a: the same host uid as before');
my $sup = $b->safe_psql('postgres', 'SELECT nx._supervisor_pid()');
kill 'KILL', $sup;
nx_wait_ready_since_start($b, $idb, 'b: app ready again after kill -9 of the supervisor');
is(slice($b), $sb, 'b claims its slice again after the crash');
isnt((host_uids($b, $idb))[0], (host_uids($a, $ida))[0], 'still different host uids');

# --- a retired offset is forgotten only once nothing runs as it
# offset 77: nothing runs as it; the app's offset: its sandbox runs
$a->safe_psql('postgres', "INSERT INTO nx.retired_uid_offsets VALUES (77), ($offset)");
ok($a->poll_query_until('postgres', 'SELECT count(*) FROM nx.retired_uid_offsets WHERE uid_offset = 77', '0'),
	'an offset nothing runs as is forgotten');
sleep 2;
is($a->safe_psql('postgres', "SELECT count(*) FROM nx.retired_uid_offsets WHERE uid_offset = $offset"), '1',
	'an offset a sandbox still runs as is kept');
$a->safe_psql('postgres', q{SELECT nx.drop_sandbox('app')});
ok($a->poll_query_until('postgres', "SELECT count(*) FROM nx.retired_uid_offsets WHERE uid_offset = $offset", '0'),
	'... and forgotten once its sandbox is gone');

# --- a stopped cluster gives its slice back
$b->stop('fast');
my $c = node('c');
my $idc = start_app($c, $hello);
# the lowest free slice: the one b gave back, or a lower one that another
# cluster on this host (the quickstart's, other suites') gave back since
my $sc = slice($c);
ok(defined $sc && $sc <= $sb && $sc != $sa,
	'a new cluster takes the lowest free slice (' . ($sc // '?') . "): at most the one the stopped cluster gave back ($sb), never a running cluster's ($sa)");

# --- another slice size: no slice overlapping a claimed one
my $d = node('d', "nx.uid_slice_size = 32768\n");
$d->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
my $idd = $d->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$hello'))});
if ($sa < 32768 || $sb < 32768)
{
	nx_wait_state($d, $idd, 'ready', 'd (32768 uids per slice) starts its app');
	is(slice($d), 32768, 'd takes the second half: the first overlaps the claims of a and c');
	my $e = node('e', "nx.uid_slice_size = 32768\n");
	$e->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
	my $ide = $e->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$hello'))});
	ok($e->poll_query_until('postgres',
		"SELECT last_error LIKE 'no free tenant uid slice%' FROM nx.status WHERE deployment = $ide"),
		'e finds no free slice: its app waits, and says why');
	is($e->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $ide"), 'pending', 'e: pending');
	like($e->safe_psql('postgres', "SELECT last_error FROM nx.status WHERE deployment = $ide"),
		qr/fix: .*nx\.uid_slice_size/, 'e: the message gives the fix');
	$e->stop('fast');
}
$_->stop('fast') for ($a, $c, $d);
done_testing();
