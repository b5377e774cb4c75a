# t/001_dump_restore.pl
#   pg_dump of the control database is the whole platform state (invariant
#   I1): restore it into a brand-new cluster with the extension and every
#   row, every sequence and every blob's bytes come back identical, and the
#   restored platform keeps working (new ids, new ports, rollback history).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# new_node starts a cluster with the extension preloaded.
sub new_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'nx_sandbox'\nnx.supervisor = off\nnx.default_preview_database = production");
	$node->start;
	return $node;
}

my $source = new_node('source');
$source->safe_psql('postgres', 'CREATE DATABASE control');
$source->safe_psql('control', q{
	CREATE EXTENSION nx_sandbox;
	CREATE ROLE alice IN ROLE nx_user;
	CREATE ROLE bob IN ROLE nx_user;
	CREATE TEMP TABLE bin AS SELECT pg_read_binary_file('/usr/bin/true') AS t,
		pg_read_binary_file('/usr/bin/false') AS f, pg_read_binary_file('/usr/bin/ls') AS l;
	SELECT nx.create_sandbox('app', owner => 'alice');
	SELECT nx.create_sandbox('web', owner => 'bob', memory_limit => '512MB', idle_timeout => '0');
	SELECT nx.create_sandbox('gone', owner => 'bob');
	SELECT nx.push('app', t, label => 'v1') FROM bin;
	SELECT nx.push('app', f, label => 'v2', args => ARRAY['-x', 'y z'], env => '{"MODE": "a b"}') FROM bin;
	SELECT nx.push('app', l, label => 'v3') FROM bin;
	SELECT nx.push('web', t) FROM bin;
	SELECT nx.push('gone', l) FROM bin;
	SELECT nx.promote('app', 1, force => true);
	SELECT nx.promote('app', 2, force => true);
	SELECT nx.promote('app', 3, force => true);
	SELECT nx.rollback('app', force => true);
	SELECT nx.promote('web', force => true);
	SELECT nx.push('web', f, label => 'preview', database => 'branch') FROM bin;
	SELECT nx.add_domain('app', 'shop.example.com');
	SELECT nx.stop(4);
	SELECT nx.set_env('app', 'SECRET', E'with \'quotes\' and\nnewlines');
	SELECT nx.set_env('web', 'EMPTY', '');
	SELECT nx.drop_sandbox('gone', keep_database => true);
});

# every table as text, in a stable order; blobs by digest of their bytes
my %queries = (
	sandboxes => 'SELECT s::text FROM nx.sandboxes s ORDER BY name',
	secrets => 'SELECT x::text FROM nx.sandbox_secrets x ORDER BY sandbox',
	deployment_secrets => 'SELECT x::text FROM nx.deployment_secrets x ORDER BY deployment',
	owners => 'SELECT o::text FROM nx.owners o ORDER BY owner',
	blobs => q{SELECT sandbox, sha256, size, machine, linkage, interpreter, created_at,
		encode(sha256(bytes), 'hex') FROM nx.blobs ORDER BY sandbox, sha256},
	deployments => 'SELECT d::text FROM nx.deployments d ORDER BY id',
	promotions => 'SELECT p::text FROM nx.promotions p ORDER BY id',
	env => 'SELECT e::text FROM nx.env e ORDER BY sandbox, name',
	domains => 'SELECT m::text FROM nx.domains m ORDER BY domain, sandbox',
	kept_databases => 'SELECT k::text FROM nx.kept_databases k ORDER BY database_name',
	events => 'SELECT e::text FROM nx.events e ORDER BY id',
	sequences => q{SELECT last_value FROM nx.deployments_id_seq UNION ALL
		SELECT last_value FROM nx.promotions_id_seq UNION ALL
		SELECT last_value FROM nx.events_id_seq},
);
my %before = map { $_ => $source->safe_psql('control', $queries{$_}) } keys %queries;
cmp_ok(scalar(split /\n/, $before{deployments}), '==', 5, 'source has 5 deployments (dropped sandbox gone)');
cmp_ok(scalar(split /\n/, $before{blobs}), '==', 5, 'source has 5 blobs (3 in app, 2 in web: blobs belong to a sandbox)');
cmp_ok(scalar(split /\n/, $before{deployment_secrets}), '==', 1, 'the branch deployment has its own secret');

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/control.dump';
$source->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $source->connstr('control') ],
	'pg_dump of the control database');

my $target = new_node('target');
$target->safe_psql('postgres', 'CREATE DATABASE control');
$target->command_ok([ 'pg_restore', '--exit-on-error', '-d', $target->connstr('control'), $dump ],
	'pg_restore into a fresh cluster');

for my $what (sort keys %queries)
{
	is($target->safe_psql('control', $queries{$what}), $before{$what}, "restored $what identical");
}
is($target->safe_psql('control',
	q{SELECT count(*) FROM nx.blobs WHERE encode(sha256(bytes), 'hex') <> sha256}),
	'0', 'every restored blob matches its sha256');
is($target->safe_psql('control', q{SELECT count(*) FROM pg_roles WHERE rolname IN ('nx_user', 'nx_admin', 'nx_tenant')}),
	'3', 'CREATE EXTENSION on restore made the platform roles');

# the restored platform keeps working where the source left off
$target->safe_psql('control', 'CREATE ROLE alice IN ROLE nx_user');
my $new = $target->safe_psql('control', q{
	CREATE TEMP TABLE bin AS SELECT pg_read_binary_file('/usr/bin/true') AS t;
	GRANT SELECT ON bin TO alice;
	SET ROLE alice;
	SELECT deployment || ' ' || port FROM bin, nx.push('app', bin.t, label => 'after');
});
my ($max_id, $max_port) = split / /, $source->safe_psql('control',
	q{SELECT max(id) || ' ' || max(port) FROM nx.deployments});
like($new, qr/^\d+ \d+$/, 'push works after restore');
my ($new_id, $new_port) = split / /, $new;
cmp_ok($new_id, '>', $max_id, 'deployment ids continue after the restored sequence');
is($target->safe_psql('control', 'SELECT count(*) = count(DISTINCT port) FROM nx.deployments WHERE port IS NOT NULL'),
	't', 'ports stay unique after restore');
is($target->safe_psql('control', q{SET ROLE alice; SELECT deployment FROM nx.rollback('app', force => true)}),
	'1', 'rollback continues the restored promotion history');
is($target->safe_psql('control', q{SET ROLE alice; SELECT count(*) FROM nx.sandbox_info}),
	'1', 'row-level security applies to the restored rows');

$source->stop;
$target->stop;
done_testing();
