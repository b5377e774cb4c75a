# t/004_upgrade.pl
#   ALTER EXTENSION nx_sandbox UPDATE from every released version gives the
#   same schema as a fresh install of the current version, and keeps the
#   rows (existing sandboxes get distinct uid offsets).
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'nx_sandbox'\nnx.supervisor = off");
$node->start;

# everything about schema nx that an install defines, one line per fact
my $describe = q{
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
	SELECT 'function ' || p.oid::regprocedure || ' ' || md5(pg_get_functiondef(p.oid))
		|| ' ' || coalesce(p.proacl::text, '') FROM pg_proc p WHERE p.pronamespace = 'nx'::regnamespace
	UNION ALL
	SELECT 'relation ' || c.relname || ' ' || c.relkind::text || ' ' || c.relpersistence::text || ' '
		|| c.relrowsecurity || ' ' || coalesce(c.relacl::text, '') || ' ' || coalesce(obj_description(c.oid), '')
	FROM pg_class c WHERE c.relnamespace = 'nx'::regnamespace
	UNION ALL
	-- a column's place among the live ones: an upgrade that drops a
	-- column leaves a gap in attnum that a fresh install does not have
	SELECT 'column ' || c.relname || '.' || a.attname || ' '
		|| (SELECT count(*) FROM pg_attribute b WHERE b.attrelid = a.attrelid AND b.attnum > 0
			AND NOT b.attisdropped AND b.attnum <= a.attnum) || ' '
		|| format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || a.attcompression::text || ' '
		|| coalesce(pg_get_expr(d.adbin, d.adrelid), '') || ' ' || coalesce(col_description(c.oid, a.attnum), '')
	FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
	LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	WHERE c.relnamespace = 'nx'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
	FROM pg_constraint WHERE connamespace = 'nx'::regnamespace
	UNION ALL
	SELECT 'view ' || c.relname || ' ' || md5(pg_get_viewdef(c.oid)) || ' ' || coalesce(c.reloptions::text, '')
	FROM pg_class c WHERE c.relnamespace = 'nx'::regnamespace AND c.relkind = 'v'
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	WHERE c.relnamespace = 'nx'::regnamespace
	UNION ALL
	SELECT 'policy ' || tablename || ' ' || policyname || ' ' || roles::text || ' ' || cmd || ' ' || coalesce(qual, '')
	FROM pg_policies WHERE schemaname = 'nx'
	UNION ALL
	SELECT 'type ' || t.typname FROM pg_type t WHERE t.typnamespace = 'nx'::regnamespace AND t.typtype = 'c'
	UNION ALL
	SELECT 'config ' || unnest(extconfig)::regclass::text FROM pg_extension WHERE extname = 'nx_sandbox'
	UNION ALL
	SELECT 'member ' || pg_describe_object(classid, objid, objsubid) FROM pg_depend
	WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
	  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'nx_sandbox')
) s(x)};

$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('upgraded', q{
	CREATE EXTENSION nx_sandbox VERSION '0.1.0';
	SELECT nx.create_sandbox('first');
	SELECT nx.create_sandbox('second');
	SELECT nx.push('first', pg_read_binary_file('/usr/bin/true'));
	ALTER EXTENSION nx_sandbox UPDATE;
});
$node->safe_psql('fresh', 'CREATE EXTENSION nx_sandbox');

is($node->safe_psql('upgraded', q{SELECT extversion FROM pg_extension WHERE extname = 'nx_sandbox'}),
	$node->safe_psql('fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'nx_sandbox'}),
	'upgraded to the current version');
my $upgraded = $node->safe_psql('upgraded', $describe);
my $fresh = $node->safe_psql('fresh', $describe);
is($upgraded, $fresh, 'upgraded schema is identical to a fresh install');
if ($upgraded ne $fresh)
{
	my %u = map { $_ => 1 } split /\n/, $upgraded;
	my %f = map { $_ => 1 } split /\n/, $fresh;
	diag("only after upgrade: $_") for grep { !$f{$_} } sort keys %u;
	diag("only in fresh install: $_") for grep { !$u{$_} } sort keys %f;
}
is($node->safe_psql('upgraded', q{SELECT string_agg(name || '=' || uid_offset, ',' ORDER BY name) FROM nx.sandboxes}),
	'first=1,second=2', 'existing sandboxes got distinct uid offsets');
is($node->safe_psql('upgraded', q{SELECT count(*) FROM nx.deployments}), '1', 'rows kept');
$node->safe_psql('upgraded', q{SELECT nx.create_sandbox('third')});
is($node->safe_psql('upgraded', q{SELECT uid_offset FROM nx.sandboxes WHERE name = 'third'}), '3',
	'new sandboxes continue the offsets');

# the newest released version, straight to the current one
$node->safe_psql('postgres', 'CREATE DATABASE upgraded_020');
$node->safe_psql('upgraded_020', q{
	CREATE EXTENSION nx_sandbox VERSION '0.2.0';
	SELECT nx.create_sandbox('first');
	SELECT nx.push('first', pg_read_binary_file('/usr/bin/true'));
	ALTER EXTENSION nx_sandbox UPDATE;
});
my $upgraded_020 = $node->safe_psql('upgraded_020', $describe);
is($upgraded_020, $fresh, 'upgraded from 0.2.0: schema identical to a fresh install');
if ($upgraded_020 ne $fresh)
{
	my %u = map { $_ => 1 } split /\n/, $upgraded_020;
	my %f = map { $_ => 1 } split /\n/, $fresh;
	diag("only after upgrade from 0.2.0: $_") for grep { !$f{$_} } sort keys %u;
	diag("only in fresh install: $_") for grep { !$u{$_} } sort keys %f;
}
is($node->safe_psql('upgraded_020', q{SELECT count(*) FROM nx.deployments}), '1', 'rows kept from 0.2.0');

$node->stop;
done_testing();
