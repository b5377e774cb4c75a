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
	return ($rc, $out, $e // $err, $err);
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
	ALTER ROLE CURRENT_USER IN DATABASE nx_alice SET work_mem = '2GB';
	ALTER ROLE CURRENT_USER RESET idle_in_transaction_session_timeout;
	ALTER ROLE CURRENT_USER PASSWORD 'mine-now-12345'}, 'the tenant changes its own password and role settings, for all databases and for its own');
ok($node->poll_query_until('postgres', "SELECT count(*) > $repaired FROM nx.events WHERE action = 'role_repaired' AND sandbox = 'alice'"),
	'the supervisor repairs the role (event role_repaired)');
my ($rc, $out, $err) = tenant('alice', 'SELECT 1', 'mine-now-12345');
like($err, qr/password authentication failed/, 'the password the tenant chose no longer works');
is(tenant_ok('alice', 'SELECT 1', 'the platform password works again'), '1', 'the sandbox\'s own password is back');
is(tenant_ok('alice', 'SHOW work_mem', 'work_mem'), '4MB', 'the tenant\'s role settings are gone (a per-database one would win)');
is(query(q{SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
	WHERE r.rolname = 'nx_alice' AND s.setdatabase <> 0}), '0', 'no setting of the role is left for its database');
is(tenant_ok('alice', 'SHOW idle_in_transaction_session_timeout', 'idle'), '5min', 'and the platform\'s is back');
is(query(q{SELECT details->>'password' || ',' || (details->>'settings') FROM nx.events WHERE action = 'role_repaired' AND sandbox = 'alice' ORDER BY id DESC LIMIT 1}),
	'true,true', 'the event says what was repaired');
is(events('role_repaired', 'bob'), '0', 'an untouched role is not "repaired"');

# --- 2. database quota: one long INSERT past it is stopped, then writes
# are refused until the tenant is back under
my $quota = 48 * 1024 * 1024;
tenant_ok('alice', 'CREATE TABLE big (id int, pad text); CREATE TABLE small (x int)', 'the tenant creates tables');
my $before = query(q{SELECT pg_database_size('nx_alice')});
my $t0 = time;
($rc, $out, $err) = tenant('alice',
	q{INSERT INTO big SELECT g, repeat('x', 1000) FROM (SELECT generate_series(1, 1000000) AS g) s});
my $took = time - $t0;
like($err, qr/^53400: database "nx_alice" is over its quota: writing refused/,
	'one INSERT of 1 GB is stopped by the quota while it runs');
my $size = query(q{SELECT pg_database_size('nx_alice')});
my $overshoot = $size - $quota;
diag(sprintf('quota %d MB: the INSERT wrote %.1f MB in %.2f s (%.0f MB/s) and was stopped at %.1f MB, %.1f MB past the quota',
	$quota >> 20, ($size - $before) / 1048576, $took, ($size - $before) / 1048576 / $took, $size / 1048576,
	$overshoot / 1048576));
ok($overshoot < 64 * 1024 * 1024, sprintf('it overshot the quota by less than 64 MB (%.1f MB)', $overshoot / 1048576));
ok($node->poll_query_until('postgres', q{SELECT database_over_quota FROM nx.sandbox_info WHERE sandbox = 'alice'}),
	'the supervisor finds the sandbox over quota (nx.sandbox_info)');
is(events('database_over_quota', 'alice'), '1', 'event database_over_quota');
like(query(q{SELECT database_size FROM nx.sandbox_info WHERE sandbox = 'alice'}), qr/^\d+ MB$/,
	'with the size its databases use');

my $refused = qr/^53400: database "nx_alice" is over its quota: /;
like(tenant_err('alice', 'INSERT INTO small VALUES (1)'), qr/${refused}INSERT refused/, 'INSERT is refused (53400)');
my $full;
($rc, $out, $err, $full) = tenant('alice', 'INSERT INTO small VALUES (1)');
like($full, qr/HINT:  DELETE, TRUNCATE and DROP are allowed/s, 'with a hint that says how to get back under')
  or diag($err);
like(tenant_err('alice', q{SET default_transaction_read_only = off; SET transaction_read_only = off;
	INSERT INTO small VALUES (1)}), qr/${refused}INSERT refused/, 'no setting of the tenant lifts it');
like(tenant_err('alice', 'UPDATE small SET x = 2'), qr/${refused}UPDATE refused/, 'UPDATE is refused');
like(tenant_err('alice', 'WITH w AS (INSERT INTO small VALUES (1) RETURNING x) SELECT * FROM w'),
	qr/${refused}INSERT refused/, 'INSERT inside WITH is refused');
like(tenant_err('alice', "COPY small FROM STDIN;\n1\n\\.\n"), qr/${refused}COPY FROM refused/, 'COPY FROM is refused');
like(tenant_err('alice', 'CREATE TABLE more (x int)'), qr/${refused}CREATE TABLE refused/, 'CREATE TABLE is refused');
like(tenant_err('alice', 'CREATE TABLE copy AS SELECT * FROM big'), qr/${refused}CREATE TABLE AS refused/,
	'CREATE TABLE AS is refused');
like(tenant_err('alice', 'CREATE INDEX ON big (id)'), qr/${refused}CREATE INDEX refused/, 'CREATE INDEX is refused');
like(tenant_err('alice', 'DO $$ BEGIN INSERT INTO small VALUES (1); END $$'), qr/${refused}INSERT refused/,
	'INSERT inside a function is refused');
is(tenant_ok('alice', 'SELECT count(*) FROM small', 'SELECT works over quota'), '0', 'SELECT still works');
tenant_ok('alice', 'DELETE FROM big WHERE id < 10; VACUUM big; DROP TABLE small', 'DELETE, VACUUM and DROP are allowed');
tenant_ok('alice', 'TRUNCATE big', 'TRUNCATE is allowed');
ok($node->poll_query_until('postgres', q{SELECT NOT database_over_quota FROM nx.sandbox_info WHERE sandbox = 'alice'}),
	'back under quota, the sandbox is no longer over');
is(events('database_under_quota', 'alice'), '1', 'event database_under_quota');
is(tenant_ok('alice', q{CREATE TABLE again (x int); INSERT INTO again VALUES (1); SELECT count(*) FROM again},
	'writes work again'), '1', 'INSERT and CREATE work again');
is(tenant_ok('bob', q{CREATE TABLE t (x int); INSERT INTO t VALUES (1); SELECT count(*) FROM t}, 'bob writes'), '1',
	'another tenant was never refused');

# --- 3. the aggregate cap on tenant logins (5 here)
my @held;
push @held, tenant_session('alice') for 1 .. 3;
push @held, tenant_session('bob') for 1 .. 2;
($rc, $out, $err) = tenant('bob', 'SELECT 1');
like($err, qr/FATAL:  too many connections for tenant roles/, 'a sixth tenant login is refused');
($rc, $out, $err) = tenant('bob', 'SELECT 1');
like($err, qr/HINT:  Close idle connections/, 'with a hint');
is(query('SELECT 1'), '1', 'the superuser still logs in');
query(q{ALTER ROLE nx_router PASSWORD 'router-pw-123'});
{
	local $ENV{PGPASSWORD} = 'router-pw-123';
	is($node->safe_psql('postgres', 'SELECT count(*) >= 0 FROM nx.router_routes()', extra_params => [ '-U', 'nx_router' ]),
		't', 'a login that is not a tenant (the router\'s) still works');
}
is(query(q{SELECT count(*) FROM nx.events WHERE at > now() - interval '1 hour'}) > 0, 1, 'the supervisor still writes');
(shift @held)->quit;
is(tenant_ok('bob', 'SELECT 1', 'a login after one ended'), '1', 'once one session ends, a tenant logs in again');
$_->quit for @held;

# --- 5. other tenants' sessions in the statistics views
my $bob_session = tenant_session('bob');
my $hidden;
for (1 .. 100)
{
	$hidden = tenant_err('alice', 'SELECT count(*) FROM pg_stat_activity');
	last if $hidden ne '';
	usleep(100_000);
}
like($hidden, qr/^42501: permission denied for view pg_stat_activity/,
	'pg_stat_activity is closed to the tenant in its database');
like(tenant_err('alice', 'SELECT * FROM pg_stat_get_activity(NULL)'),
	qr/^42501: permission denied for function pg_stat_get_activity/, 'so is pg_stat_get_activity()');
like(tenant_err('alice', 'SELECT pg_stat_get_backend_userid(s) FROM pg_stat_get_backend_idset() s'),
	qr/^42501: permission denied for function pg_stat_get_backend_/, 'and the pg_stat_get_backend_* functions');
for my $view (qw(pg_stat_database pg_locks pg_stat_database_conflicts pg_stat_ssl pg_stat_progress_vacuum))
{
	like(tenant_err('alice', "SELECT * FROM $view"), qr/^42501: permission denied/, "and $view");
}
tenant('alice', 'GRANT SELECT ON pg_stat_activity TO PUBLIC; GRANT EXECUTE ON FUNCTION pg_stat_get_activity(integer) TO nx_alice');
like(tenant_err('alice', 'SELECT count(*) FROM pg_stat_activity'), qr/^42501: permission denied/,
	'the tenant cannot grant them back to itself');
is(tenant_ok('bob', 'SELECT 1', 'bob'), '1', 'the other tenant is unaffected');
# documented in docs/security.md: the shared catalogs still name every role and database
is(tenant_ok('alice', q{SELECT count(*) FROM pg_roles WHERE rolname = 'nx_bob'}, 'pg_roles'), '1',
	'what stays visible (docs/security.md): other tenants\' role names in pg_roles');
$bob_session->quit;

done_testing();
