# t/002_concurrent_push.pl
#   Many sessions pushing and promoting at once: every deployment gets its
#   own port and slug, each sandbox keeps at most one production deployment,
#   and nobody sees an error, in READ COMMITTED and (with pgbench's retries
#   of serialization failures) in REPEATABLE READ.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('concurrent');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'nx_sandbox'
nx.supervisor = off
nx.max_deployments_per_sandbox = 10000
nx.max_deployments_per_owner = 100000
max_connections = 40
# each push is a preview on the production database: this test is about
# concurrent allocation, not about the databases of previews
nx.default_preview_database = production
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION nx_sandbox;
	CREATE TABLE bin AS SELECT pg_read_binary_file('/usr/bin/true') AS b;
	SELECT nx.create_sandbox('s' || i) FROM generate_series(0, 3) i;
});

$node->pgbench('--no-vacuum --client=8 --jobs=2 --transactions=25',
	0, [qr{processed: 200/200}], [qr{^$}], 'pushes and promotions from 8 sessions',
	{
		'001_push_promote' => q{
\set s random(0, 3)
SELECT deployment FROM nx.push('s' || :s, (SELECT b FROM bin));
SELECT deployment FROM nx.promote('s' || :s, force => true);
}
	});

$node->pgbench('--no-vacuum --client=8 --jobs=2 --transactions=25 --max-tries=100',
	0, [qr{processed: 200/200}], [qr{^$}], 'pushes in REPEATABLE READ, serialization failures retried',
	{
		'002_push_rr' => q{
\set s random(0, 3)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT deployment FROM nx.push('s' || :s, (SELECT b FROM bin));
COMMIT;
}
	});

is($node->safe_psql('postgres', q{SELECT count(*), count(DISTINCT port), count(DISTINCT slug) FROM nx.deployments}),
	'400|400|400', '400 deployments, 400 distinct ports and slugs');
is($node->safe_psql('postgres', q{SELECT min(port) >= 20000 AND max(port) <= 29999 FROM nx.deployments}),
	't', 'every port inside nx.port_range');
is($node->safe_psql('postgres', q{SELECT count(*) FROM nx.deployments WHERE is_production}),
	'4', 'exactly one production deployment per sandbox');
is($node->safe_psql('postgres', q{SELECT count(*) FROM nx.blobs}), '4',
	'one blob per sandbox for 400 pushes of the same bytes into 4 sandboxes');
is($node->safe_psql('postgres', q{SELECT count(*) FROM nx.events WHERE action = 'push'}),
	'400', 'one push event per push');

$node->stop;
done_testing();
