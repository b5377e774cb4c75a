# t/011_setup_missing.pl
#   Without a subordinate uid range for the cluster user, the supervisor
#   starts no sandbox and says why: in the server log, in nx.status
#   (last_error) and in nx.check_setup() (with the fix).  The same cluster
#   runs the deployment as soon as the range is there (after a restart).
#   Likewise with a "local ... trust" line in pg_hba.conf, through which a
#   sandbox could log in as postgres: nothing starts until it is gone.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# a subuid file without a line for the cluster user stands in for a host
# where nobody ran nx-setup
my $dir = PostgreSQL::Test::Utils::tempdir;
open my $fh, '>', "$dir/subuid" or die;
print $fh "someoneelse:300000:65536\n";
close $fh;

my $node = nx_node('setup_missing', "nx.subuid_file = '$dir/subuid'\n");
my $hello = nx_build_app($node, 'hello_app');

my $row = $node->safe_psql('postgres',
	q{SELECT ok, detail, fix FROM nx.check_setup() WHERE check_name = 'subuid'});
my ($ok, $detail, $fix) = split /\|/, $row;
is($ok, 'f', 'check_setup: subuid not ok');
like($detail, qr/no range for user \S+ in \Q$dir\E\/subuid/, 'check_setup says what is missing');
like($fix, qr/usermod --add-subuids 200000-265535/, 'check_setup gives the exact fix');

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
my $id = $node->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$hello'))});
ok($node->poll_query_until('postgres',
	"SELECT last_error LIKE '%host setup incomplete (subuid)%' FROM nx.status WHERE deployment = $id"),
	'nx.status says why the deployment does not start');
is($node->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $id"), 'pending', 'it stays pending');
is(scalar(my @procs = nx_cgroup_procs($node, $id)), 0, 'nothing was started');
ok($node->log_contains('not starting any sandbox: host setup incomplete \(subuid\)'), 'the server log says why');

# the database and role do not depend on the uid range
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_app'}, '1'),
	'the sandbox database exists regardless');

# fix it: the deployment starts
$node->append_conf('postgresql.conf', "nx.subuid_file = '/etc/subuid'\n");
$node->restart;
SKIP:
{
	my $setup = $node->safe_psql('postgres',
		q{SELECT count(*) FROM nx.check_setup() WHERE NOT ok AND required AND check_name <> 'supervisor'});
	skip 'host not set up for sandboxes', 1 if $setup ne '0' && !$ENV{NX_REQUIRE_SANDBOXES};
	nx_wait_state($node, $id, 'ready', 'after the fix the deployment runs');
}

$node->stop;

# --- a local trust rule: no sandbox starts, check_setup says which line
my $trusting = nx_node('trusting', '', 1);
my $hba = $trusting->safe_psql('postgres', q{SELECT ok::int || '|' || detail FROM nx.check_setup() WHERE check_name = 'pg_hba'});
like($hba, qr/^0\|pg_hba.conf line \d+ lets local connections in with "trust"/, 'check_setup flags the local trust line');
$trusting->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
my $tid = $trusting->safe_psql('postgres', qq{SELECT deployment FROM nx.push('app', pg_read_binary_file('$hello'))});
ok($trusting->poll_query_until('postgres',
	"SELECT last_error LIKE '%host setup incomplete (pg_hba)%trust%' FROM nx.status WHERE deployment = $tid"),
	'with a local trust line the deployment does not start, and nx.status says why');
is(scalar(my @none = nx_cgroup_procs($trusting, $tid)), 0, 'nothing was started');
$trusting->stop;

done_testing();
