# t/045_create_path.pl
#   nx.create_sandbox -> its role and database (issue 12, create path):
#   - the supervisor keeps roles made ahead (role_pool.c): NOLOGIN, in no
#     role, nx.database_pool_size of them, and none before the extension
#     exists; a new sandbox's role is one of
#     them renamed, its password the one nx.create_sandbox stored, and no
#     password serves twice;
#   - the role (with LOGIN, nx_tenant and its settings) and the database
#     from the pool appear in one commit: never a database whose role has
#     no temp_file_limit yet;
#   - when a pool database cannot be taken (someone is connected to it) or
#     the pool is empty, the database is created instead, and the tenant
#     still logs in;
#   - pool roles nothing accounts for are dropped (left by a previous
#     supervisor, or extras of a smaller pool), and a restarted supervisor
#     makes new ones; creates rolled back never make it create roles past
#     the pool's size; a pool role someone changed is neither taken nor
#     dropped;
#   - a database merely named like a pool database (a DBA's, or a preview
#     database of a sandbox named "pool", nx_pool_<deployment>) is never
#     taken or dropped as one;
#   - nx.check_setup's advice on autovacuum_naptime against the number of
#     databases.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(time usleep);

my $node = nx_node('createpath', q{
nx.database_pool_size = 2
nx.tenant_temp_file_limit = '3MB'
}, undef, 1);

sub query { return $node->safe_psql('postgres', $_[0]); }

# wait_for(SQL, WANT, WHAT): poll SQL until it returns WANT (60 s at most)
sub wait_for
{
	my ($sql, $want, $what) = @_;
	my $got;
	for (1 .. 600)
	{
		$got = query($sql);
		last if $got eq $want;
		usleep(100_000);
	}
	is($got, $want, $what);
}

my $pool_roles_sql = q{SELECT count(*) FROM pg_roles WHERE rolname LIKE 'nx\_\_role\_pool\_%'};
my $pool_dbs_sql = q{SELECT count(*) FROM pg_database WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$' AND datdba = 10};

# tenant_login(SANDBOX): what the tenant's role sees when it logs in to its
# database with the password nx.sandbox_secrets holds
sub tenant_login
{
	my ($sandbox) = @_;
	local $ENV{PGPASSWORD} = query("SELECT db_password FROM nx.sandbox_secrets WHERE sandbox = '$sandbox'");
	my ($rc, $out, $err) = $node->psql("nx_$sandbox", 'SELECT current_user, current_setting(\'temp_file_limit\')',
		extra_params => [ '-U', "nx_$sandbox" ]);
	return $rc == 0 ? $out : "error: $err";
}

# 0. nothing is made ahead before the extension exists
usleep(2_000_000);
is(query($pool_roles_sql), '0', 'no pool roles in a cluster without the extension');
query('CREATE EXTENSION nx_sandbox');

# 1. the pools, once the supervisor ran
wait_for($pool_roles_sql, '2', 'two roles made ahead');
wait_for($pool_dbs_sql, '2', 'two pool databases');
is(query(q{SELECT string_agg(rolcanlogin::text || '/' || (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid), ',')
		   FROM pg_roles r WHERE rolname LIKE 'nx\_\_role\_pool\_%'}),
	'false/0,false/0', 'pool roles cannot log in and are members of nothing');

# 2. a create takes a pool role and a pool database, together
my %pool_oids = map { $_ => 1 } split /\n/,
  query(q{SELECT oid FROM pg_roles WHERE rolname LIKE 'nx\_\_role\_pool\_%'});
query(q{SELECT nx.create_sandbox('alpha')});
my ($apart, $seen) = (0, '');
for (1 .. 3000)
{
	# one snapshot: the database, and the role's settings and membership
	$seen = query(q{SELECT (SELECT count(*) FROM pg_database WHERE datname = 'nx_alpha') || ' '
		|| (SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
			WHERE r.rolname = 'nx_alpha' AND s.setconfig::text LIKE '%temp_file_limit=3072%') || ' '
		|| (SELECT count(*) FROM pg_roles r WHERE r.rolname = 'nx_alpha' AND r.rolcanlogin
			AND pg_has_role(r.oid, 'nx_tenant', 'MEMBER'))});
	$apart++ if $seen eq '1 0 1' || $seen eq '1 1 0' || $seen eq '1 0 0';
	last if $seen eq '1 1 1';
	usleep(5_000);
}
is($seen, '1 1 1', 'the database is there, its role logs in, in nx_tenant, with its settings');
is($apart, 0, 'the database never appeared before its role was complete');
my $alpha_oid = query(q{SELECT oid FROM pg_roles WHERE rolname = 'nx_alpha'});
ok($pool_oids{$alpha_oid}, 'the role is one made ahead, renamed');
is(tenant_login('alpha'), 'nx_alpha|3MB', 'the tenant logs in with the stored password');
wait_for($pool_roles_sql, '2', 'the role pool is refilled');
is(scalar(grep { !$pool_oids{$_} } split /\n/,
		query(q{SELECT oid FROM pg_roles WHERE rolname LIKE 'nx\_\_role\_pool\_%'})),
	1, 'a new role in place of the one taken');

# 3. a burst bigger than the pool: every tenant logs in, no password twice
query(q{SELECT count(nx.create_sandbox(n)) FROM unnest(ARRAY['b1', 'b2', 'b3', 'b4', 'b5']) n});
wait_for(q{SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
		   WHERE d.datname IN ('nx_b1', 'nx_b2', 'nx_b3', 'nx_b4', 'nx_b5') AND r.rolname = d.datname},
	'5', 'five databases for five sandboxes made in one statement');
is(join(',', map { tenant_login($_) } qw(b1 b2 b3 b4 b5)),
	'nx_b1|3MB,nx_b2|3MB,nx_b3|3MB,nx_b4|3MB,nx_b5|3MB', 'each tenant logs in');
is(query(q{SELECT count(DISTINCT db_password) = count(*) FROM nx.sandbox_secrets}), 't',
	'no two sandboxes share a password');
is(query(q{SELECT count(DISTINCT rolpassword) = count(*) FROM pg_authid WHERE rolname LIKE 'nx\_%' AND rolpassword IS NOT NULL}),
	't', 'nor a verifier');

# 4. a pool database someone is connected to is not taken: created instead
wait_for($pool_dbs_sql, '2', 'the database pool is refilled');
my @held = map { $node->background_psql($_) }
  split /\n/, query(q{SELECT datname FROM pg_database WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$'});
query(q{SELECT nx.create_sandbox('beta')});
wait_for(q{SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = 'nx_beta' AND r.rolname = 'nx_beta'},
	'1', 'a sandbox gets its database while every pool database is in use');
like(slurp_file($node->logfile), qr/could not take a pool database/, 'the failed take is logged');
is(tenant_login('beta'), 'nx_beta|3MB', 'and its tenant logs in');
$_->quit for @held;

# 5. a pool role nothing accounts for (as a previous supervisor leaves) is dropped
query(q{CREATE ROLE nx__role_pool_1_1 NOLOGIN});
query(q{SELECT pg_reload_conf()});
wait_for(q{SELECT count(*) FROM pg_roles WHERE rolname = 'nx__role_pool_1_1'}, '0',
	'a stale pool role is dropped by the next pass');

# 6. a restarted cluster's supervisor drops the pool roles of the one before and makes its own
my %before = map { $_ => 1 } split /\n/,
  query(q{SELECT rolname FROM pg_roles WHERE rolname LIKE 'nx\_\_role\_pool\_%'});
$node->restart;
wait_for(q{SELECT count(*) FROM pg_roles WHERE rolname IN ('} . join(q{','}, keys %before) . q{')}, '0',
	'the pool roles of the supervisor before are dropped after its restart');
wait_for($pool_roles_sql, '2', 'and new ones made');
query(q{SELECT nx.create_sandbox('gamma')});
wait_for(q{SELECT count(*) FROM pg_database WHERE datname = 'nx_gamma'}, '1', 'a create after the restart');
is(tenant_login('gamma'), 'nx_gamma|3MB', 'and its tenant logs in');

# 7. names like a pool database's are not enough
query(q{CREATE ROLE dba NOLOGIN});
query(q{CREATE DATABASE nx_pool_77 OWNER dba});
query(q{CREATE DATABASE nx_pool_1_2 OWNER dba});
my %lookalike = map { $_ => 1 } split /\n/,
  query(q{SELECT oid FROM pg_database WHERE datname IN ('nx_pool_77', 'nx_pool_1_2')});
query(q{SELECT nx.create_sandbox(n) FROM unnest(ARRAY['d1', 'd2', 'd3']) n});
wait_for(q{SELECT count(*) FROM pg_database WHERE datname IN ('nx_d1', 'nx_d2', 'nx_d3')}, '3',
	'three more sandboxes get databases');
is(join(',', grep { $lookalike{$_} } split /\n/,
	query(q{SELECT oid FROM pg_database WHERE datname IN ('nx_d1', 'nx_d2', 'nx_d3')})), '',
	'none of them is a database named like a pool database');

# 8. creates rolled back take passwords, but never make the supervisor
# create roles past the pool's size
wait_for($pool_roles_sql, '2', 'the role pool is full again');
query(qq{BEGIN; SELECT nx.create_sandbox('rb$_'); ROLLBACK;}) for 1 .. 20;
my $most = 0;
for (1 .. 20)
{
	my $n = query($pool_roles_sql);
	$most = $n if $n > $most;
	usleep(50_000);
}
cmp_ok($most, '<=', 2, "20 rolled-back creates: at most 2 pool roles at any time (saw $most)");

# 9. a pool role someone changed is neither taken nor dropped
my $changed = query(q{SELECT min(rolname) FROM pg_roles WHERE rolname LIKE 'nx\_\_role\_pool\_%'});
query(qq{ALTER ROLE $changed LOGIN});
query(q{SELECT count(nx.create_sandbox(n)) FROM unnest(ARRAY['e1', 'e2']) n});
wait_for(q{SELECT count(*) FROM pg_database WHERE datname IN ('nx_e1', 'nx_e2')}, '2', 'two creates after a pool role was changed');
is(join(',', map { tenant_login($_) } qw(e1 e2)), 'nx_e1|3MB,nx_e2|3MB', 'both tenants log in');
query(q{SELECT pg_reload_conf()});
usleep(1_500_000);
is(query(qq{SELECT count(*) FROM pg_roles WHERE rolname = '$changed' AND rolcanlogin}), '1',
	'the changed role is left alone: no longer the pool\'s to take or drop');
query(qq{DROP ROLE $changed});

# 10. pool size 0: no roles or databases kept, creates still work
query(q{ALTER SYSTEM SET nx.database_pool_size = 0});
query(q{SELECT pg_reload_conf()});
wait_for($pool_roles_sql, '0', 'pool size 0: the pool roles are dropped');
wait_for($pool_dbs_sql, '0', 'and the pool databases');
is(query(q{SELECT count(*) FROM pg_database WHERE datname IN ('nx_pool_77', 'nx_pool_1_2')}), '2',
	'but not the databases merely named like them');
query(q{SELECT nx.create_sandbox('delta')});
wait_for(q{SELECT count(*) FROM pg_database WHERE datname = 'nx_delta'}, '1', 'a create with no pool');
is(tenant_login('delta'), 'nx_delta|3MB', 'its tenant logs in (role created, password hashed)');

# 11. nx.check_setup's advice on autovacuum: a worker starts every
# autovacuum_naptime / databases, whatever the tenant databases do
my $dbs = query(q{SELECT count(*) FROM pg_database WHERE datallowconn});
query(q{ALTER SYSTEM SET autovacuum_naptime = 2});
query(q{SELECT pg_reload_conf()});
like(query(q{SELECT ok::text || '|' || required::text || '|' || detail FROM nx.check_setup() WHERE check_name = 'autovacuum visits'}),
	qr/^false\|false\|$dbs databases, autovacuum_naptime = 2s: a worker starts every 0\.\d\d s$/,
	"autovacuum visits: $dbs databases at a 2 s naptime is past the advice");
my $advised = 60 * POSIX::ceil($dbs * 1.2 / 60);
like(query(q{SELECT fix FROM nx.check_setup() WHERE check_name = 'autovacuum visits'}),
	qr/^ALTER SYSTEM SET autovacuum_naptime = '${advised}s'; SELECT pg_reload_conf\(\);/,
	'and the fix names a naptime of 1.2 s per database, in whole minutes');
query(q{ALTER SYSTEM RESET autovacuum_naptime});
query(q{SELECT pg_reload_conf()});

done_testing();
