# t/018_no_preload.pl
#   The DBA's other install order: CREATE EXTENSION on a cluster that does
#   not preload the library yet.  The session survives (0.3.0 ended it with
#   FATAL: cannot create PGC_POSTMASTER variables after startup), the
#   control plane works, nx.status and nx.check_setup() say why nothing
#   runs, and once the DBA adds the preload and restarts, the supervisor
#   runs what was pushed meanwhile.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# nx_node's cluster, with the preload taken out again (the last line wins)
my $node = nx_node('no_preload', "shared_preload_libraries = ''\n", undef, 1);
my $hello = nx_build_app($node, 'hello_app');

my ($rc, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION nx_sandbox');
is($rc, 0, 'CREATE EXTENSION without the preload succeeds');
unlike($err, qr/FATAL/, 'and does not end the session');

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('early')});
my $id = $node->safe_psql('postgres',
	qq{SELECT deployment FROM nx.push('early', pg_read_binary_file('$hello'))});
is($node->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $id"),
	'pending', 'a push is recorded and pending');
like($node->safe_psql('postgres', "SELECT last_error FROM nx.status WHERE deployment = $id"),
	qr/supervisor is not running.*shared_preload_libraries/, 'nx.status says why nothing runs');
like($node->safe_psql('postgres',
	q{SELECT ok || ' ' || fix FROM nx.check_setup() WHERE check_name = 'shared_preload_libraries'}),
	qr/^false add nx_sandbox to shared_preload_libraries/, 'nx.check_setup gives the fix');
like($node->safe_psql('postgres',
	q{SELECT ok || ' ' || fix FROM nx.check_setup() WHERE check_name = 'supervisor'}),
	qr/^false it runs only when nx_sandbox is in shared_preload_libraries/,
	'and says the supervisor waits for it');
# every session loads the library on its first nx call
is($node->safe_psql('postgres', q{SELECT count(*) FROM nx.sandbox_info}), '1',
	'a new session uses the API');

# the DBA adds the preload and restarts: what was pushed starts
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'nx_sandbox'\n");
$node->restart;
nx_wait_state($node, $id, 'ready', 'after the preload and a restart, the early push runs');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM nx.check_setup() WHERE check_name IN ('shared_preload_libraries', 'supervisor') AND ok}),
	'2', 'check_setup is satisfied');

$node->stop;
done_testing();
