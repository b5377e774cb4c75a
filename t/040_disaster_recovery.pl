# t/040_disaster_recovery.pl
#   Disaster recovery, exactly as docs/disaster-recovery.md tells a DBA:
#   cluster A runs three sandboxes (two with a database-using production
#   app that has written rows, preview deployments, env vars, a promotion
#   history, one dropped with keep_database); the DBA dumps the roles, the
#   control database and every sandbox database, A is lost, and a brand-new
#   cluster B on the same machine is restored in the documented order
#   (roles, tenant databases, then the control database in one
#   transaction).  B's supervisor converges without dropping or recreating
#   anything: the same sandboxes, the same production and preview hosts,
#   the same answers through nx-router, the tenant rows intact, the apps
#   writing on, the rollback history usable.  A crashlooping and an asleep
#   deployment are there too: the documented wait (step 5) must finish with
#   them, and they come back crashlooping and asleep.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node_a = nx_node('dr_a');
nx_require_host_setup($node_a);

my $dbapp = nx_build_app($node_a, 'dbapp', '-lpq');
my $hello = nx_build_app($node_a, 'hello_app');
my $envapp = nx_build_app($node_a, 'env_app', '-static');
my $misbehave = nx_build_app($node_a, 'misbehave', '-lpq');

# --- cluster A: the platform in use
$node_a->safe_psql('postgres', q{CREATE ROLE alice LOGIN IN ROLE nx_user});
$node_a->safe_psql('postgres', qq{
	SELECT nx.create_sandbox(name, owner => 'alice') FROM unnest(ARRAY['shop', 'blog', 'old']) name;
	SELECT nx.set_env('shop', 'GREETING', 'hello from shop''s env');
	SELECT nx.set_env('blog', 'EMPTY', '');
});
my %id;
for my $step (
	[ shop_v1 => 'shop', $dbapp, 'v1', '{}' ],
	[ shop_v2 => 'shop', $dbapp, 'v2', '{"FLAVOUR": "two"}' ],
	[ shop_pre => 'shop', $envapp, 'preview', '{}' ],
	[ blog_v1 => 'blog', $dbapp, 'b1', '{}' ],
	[ blog_pre => 'blog', $hello, 'b2', '{}' ],
	[ old_v1 => 'old', $dbapp, 'o1', '{}' ],
	[ blog_sleepy => 'blog', $hello, 'zz', '{}' ])
{
	my ($key, $sandbox, $bin, $label, $env) = @$step;
	$id{$key} = $node_a->safe_psql('postgres',
		qq{SELECT deployment FROM nx.push('$sandbox', pg_read_binary_file('$bin'), '$label', env => '$env')});
}
nx_wait_state($node_a, $id{$_}, 'ready', "A: $_ is ready") for sort keys %id;
# one deployment asleep (as idle stop leaves it), one crashlooping
$node_a->safe_psql('postgres', "UPDATE nx.deployments SET asleep_since = now() WHERE id = $id{blog_sleepy}");
nx_wait_state($node_a, $id{blog_sleepy}, 'asleep', 'A: one deployment is asleep');
my $crashy = $node_a->safe_psql('postgres',
	qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$misbehave'), 'crashy', ARRAY['exit'])});
nx_wait_state($node_a, $crashy, 'crashloop', 'A: one deployment crashloops');
$node_a->safe_psql('postgres', qq{
	SELECT nx.promote('shop', $id{shop_v1});
	SELECT nx.promote('shop', $id{shop_v2});
	SELECT nx.promote('blog', $id{blog_v1});
	SELECT nx.promote('old', $id{old_v1});
});

# tenant data the apps did not write: a table owned by the sandbox role
for my $db (qw(nx_shop nx_blog nx_old))
{
	my $role = $db;		# the sandbox role has its database's name
	$node_a->safe_psql($db, qq{
		CREATE TABLE orders (id int PRIMARY KEY, item text, at timestamptz DEFAULT now());
		ALTER TABLE orders OWNER TO $role;
		INSERT INTO orders SELECT g, md5('$db' || g) FROM generate_series(1, 1000) g;
	});
}

# the router's port, the same for A and B (same URLs); reserved against
# concurrent test runs
my $router_port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log);

# start_router(NODE) runs build/nx-router for NODE on $router_port
sub start_router
{
	my ($node) = @_;
	($router, $router_log) = nx_start_router($node, $router_port);
}

# get_ok(HOST, PATTERN): the router answers HOST with 200 matching PATTERN
# (retried for up to 15 s while routes load and apps start)
sub get_ok
{
	my ($host, $pattern) = @_;
	my $r = '';
	for (1 .. 150)
	{
		$r = nx_http_get($router_port, $host);
		return $r if $r =~ /^HTTP\/1.1 200 OK/ && $r =~ $pattern;
		usleep(100_000);
	}
	return $r;
}

# body of a response
sub body { my ($r) = @_; $r =~ s/^.*?\r\n\r\n//s; return $r; }

start_router($node_a);
my %slug = map { $_ => $node_a->safe_psql('postgres', "SELECT slug FROM nx.deployments WHERE id = $id{$_}") } keys %id;
# a few visits through production and preview hosts: rows in nx_shop and nx_blog
for my $i (1 .. 3)
{
	like(get_ok('shop.localhost', qr/visit/), qr/visit \d+ from deployment $id{shop_v2}\n/, "A: shop production, visit $i");
	like(get_ok('blog.localhost', qr/visit/), qr/visit \d+ from deployment $id{blog_v1}\n/, "A: blog production, visit $i");
	like(get_ok("$slug{shop_v1}.preview.localhost", qr/visit/), qr/from deployment $id{shop_v1}\n/,
		"A: shop v1 preview, visit $i");
}
# a preview with a database of its own: a branch of shop's data, which
# then counts its own visits
my $branch = $node_a->safe_psql('postgres',
	qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), 'branchy', database => 'branch')});
nx_wait_state($node_a, $branch, 'ready', 'A: a branch preview of shop is ready');
my $branch_db = "nx_shop_$branch";
my $branch_slug = $node_a->safe_psql('postgres', "SELECT slug FROM nx.deployments WHERE id = $branch");
my $branch_visit;
for my $i (1 .. 2)
{
	($branch_visit) = get_ok("$branch_slug.preview.localhost", qr/visit/) =~ /visit (\d+) from deployment $branch\n/;
	ok(defined $branch_visit, "A: branch preview, visit $i");
}
my %answer_a = (
	shop_pre => body(get_ok("$slug{shop_pre}.preview.localhost", qr/GREETING/)),
	blog_pre => body(get_ok("$slug{blog_pre}.preview.localhost", qr/hello/)),
);
is($answer_a{shop_pre}, "GREETING=hello from shop's env from deployment $id{shop_pre}\n",
	'A: the preview deployment sees the sandbox env');

# the kept database: dropped sandbox, database left in place
$node_a->safe_psql('postgres', q{SELECT nx.drop_sandbox('old', keep_database => true)});
ok($node_a->poll_query_until('postgres', "SELECT count(*) FROM nx.status WHERE sandbox = 'old'", '0'),
	'A: sandbox old dropped');
ok($node_a->poll_query_until('postgres', "SELECT count(*) FROM nx.runtime WHERE deployment = $id{old_v1}", '0'),
	'A: its deployment is gone');

# what B must reproduce
my %q = (
	sandboxes => 'SELECT s::text FROM nx.sandboxes s ORDER BY name',
	deployments => 'SELECT d::text FROM nx.deployments d ORDER BY id',
	promotions => 'SELECT p::text FROM nx.promotions p ORDER BY id',
	env => 'SELECT e::text FROM nx.env e ORDER BY sandbox, name',
	kept => 'SELECT k::text FROM nx.kept_databases k ORDER BY database_name',
	routes => 'SELECT host, kind, sandbox, deployment, port, desired_state FROM nx.routes ORDER BY host',
);
my %rows_a = map { $_ => $node_a->safe_psql('postgres', $q{$_}) } keys %q;
my $tenant_q = q{SELECT (SELECT count(*) || ' ' || coalesce(max(n), 0) FROM visits) || ' / '
	|| (SELECT string_agg(deployment, ',' ORDER BY at) FROM starts) || ' / '
	|| (SELECT md5(string_agg(id || item || at, ',' ORDER BY id)) FROM orders) || ' / '
	|| (SELECT string_agg(tablename || ':' || tableowner, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public')};
my %tenant_a = map { $_ => $node_a->safe_psql($_, $tenant_q) } (qw(nx_shop nx_blog nx_old), $branch_db);
like($tenant_a{nx_shop}, qr/^[1-9]\d* /, "A: shop's app wrote visits ($tenant_a{nx_shop})");

# --- the backup, as in docs/disaster-recovery.md (A online)
my $backup = $PostgreSQL::Test::Utils::tmp_check . '/dr_backup';
mkdir $backup;
$node_a->command_ok([ 'pg_dumpall', '--globals-only', '-d', $node_a->connstr('postgres'), '-f', "$backup/globals.sql" ],
	'backup: pg_dumpall --globals-only');
$node_a->command_ok([ 'pg_dump', '-Fc', '-d', $node_a->connstr('postgres'), '-f', "$backup/control.dump" ],
	'backup: pg_dump -Fc of the control database');
my @tenant_dbs = split /\n/, $node_a->safe_psql('postgres',
	q{SELECT database_name FROM nx.sandboxes UNION SELECT database_name FROM nx.kept_databases
	  UNION SELECT database_name FROM nx.branches WHERE state = 'ready' ORDER BY 1});
is(join(' ', @tenant_dbs), "nx_blog nx_old nx_shop $branch_db",
	'the databases to dump: every sandbox, kept one and preview database');
$node_a->command_ok([ 'pg_dump', '-Fc', '-d', $node_a->connstr($_), '-f', "$backup/$_.dump" ], "backup: pg_dump -Fc $_")
  for @tenant_dbs;

# --- A is lost
$router->signal('TERM');
$router->finish;
my @a_inits = map { nx_init_pid($node_a, $id{$_}) } grep { $_ ne 'old_v1' && $_ ne 'blog_sleepy' } sort keys %id;
$node_a->stop('fast');
ok(!grep({ kill 0, $_ } @a_inits), "A's sandboxes are gone with it");

# --- B: a brand-new cluster, extension preloaded, nothing created yet
my $node_b = nx_node('dr_b', undef, undef, 1);

# 1. roles: the tenant roles (with their password verifiers), owners
# (plain psql, which goes on after an error: the bootstrap superuser
# exists already)
my ($ret, $out, $err) = $node_b->psql('postgres', undef, on_error_stop => 0,
	extra_params => [ '-X', '-f', "$backup/globals.sql" ]);
my @errors = grep { /ERROR/ } split /\n/, $err;
is_deeply(\@errors, [ grep { /role "postgres" already exists/ } @errors ],
	'restore globals: the only error is the bootstrap role that already exists')
  or diag($err);
is($node_b->safe_psql('postgres', q{SELECT string_agg(rolname, ' ' ORDER BY rolname) FROM pg_roles
	WHERE pg_has_role(oid, 'nx_tenant', 'MEMBER') AND rolname <> 'nx_tenant' AND NOT rolsuper}),
	"nx_blog nx_old nx_shop $branch_db", 'restore globals: tenant roles are back, in nx_tenant');

# 2. the tenant databases, with their owner and CONNECT grants
$node_b->command_ok([ 'pg_restore', '--create', '--exit-on-error', '-d', $node_b->connstr('postgres'), "$backup/$_.dump" ],
	"restore $_ (pg_restore --create)") for @tenant_dbs;

# 3. the control database, in one transaction: the supervisor sees the
# extension and all its rows at once
$node_b->command_ok([ 'pg_restore', '--single-transaction', '--exit-on-error', '-d', $node_b->connstr('postgres'),
	"$backup/control.dump" ], 'restore the control database (pg_restore --single-transaction)');

# --- B converges.  Step 5 as docs/disaster-recovery.md writes it: wait
# until no deployment is on its way; it finishes with a crashlooping and an
# asleep one present
ok($node_b->poll_query_until('postgres', q{SELECT count(*) FROM nx.status
	WHERE state IN ('pending', 'branching', 'promoting', 'starting')}, '0'),
	'B: the documented wait (step 5) finishes');
my @running = grep { $_ ne 'old_v1' && $_ ne 'blog_sleepy' } sort keys %id;
is($node_b->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $id{$_}"), 'ready',
	"B: $_ is ready") for @running;
is($node_b->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $id{blog_sleepy}"), 'asleep',
	'B: the asleep deployment is asleep');
nx_wait_state($node_b, $crashy, 'crashloop', 'B: the crashlooping deployment crashloops again, as on A');
is($node_b->safe_psql('postgres', "SELECT state FROM nx.status WHERE deployment = $branch"), 'ready',
	'B: the branch preview is ready, on its restored database');
for my $what (sort keys %q)
{
	is($node_b->safe_psql('postgres', $q{$what}), $rows_a{$what}, "B: $what identical");
}
is($node_b->safe_psql('postgres', q{SELECT string_agg(d.datname || ':' || r.rolname, ' ' ORDER BY d.datname)
	FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname !~ '^nx_pool_[0-9]+_[0-9]+$' AND d.datname LIKE 'nx\_%'}),
	"nx_blog:nx_blog nx_old:nx_old nx_shop:nx_shop $branch_db:$branch_db", 'B: each tenant database owned by its role');
is($node_b->safe_psql('postgres', q{SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a
	WHERE d.datname LIKE 'nx\_%' AND d.datname !~ '^nx_pool_[0-9]+_[0-9]+$' AND a.grantee = 0 AND a.privilege_type = 'CONNECT'}),
	'0', 'B: PUBLIC may not connect to the tenant databases');
unlike(slurp_file($node_b->logfile), qr/dropped (database|role) "nx_(shop|blog|old)(_\d+)?"/,
	'B: the supervisor dropped no tenant database or role');

# the tenant rows, before the new apps' own writes: starts got one row per
# start on B, visits and orders are untouched
for my $db (@tenant_dbs)
{
	my ($visits_a, $starts_a, $orders_a, $owners_a) = split / \/ /, $tenant_a{$db};
	my ($visits_b, $starts_b, $orders_b, $owners_b) = split / \/ /, $node_b->safe_psql($db, $tenant_q);
	is($visits_b, $visits_a, "B: $db visits intact ($visits_a)");
	is(substr($starts_b, 0, length($starts_a)), $starts_a, "B: $db starts rows intact");
	is($orders_b, $orders_a, "B: $db orders identical (1000 rows, md5)");
	is($owners_b, $owners_a, "B: $db tables keep their owners ($owners_a)");
}

# --- the same answers through a router on B (same port, same hosts)
start_router($node_b);
my ($shop_visits) = $tenant_a{nx_shop} =~ /^\d+ (\d+)/;
my ($blog_visits) = $tenant_a{nx_blog} =~ /^\d+ (\d+)/;
like(get_ok('shop.localhost', qr/visit/), qr/^HTTP\/1.1 200 OK.*visit @{[$shop_visits + 1]} from deployment $id{shop_v2}\n/s,
	'B: shop production answers, and its app keeps counting in the restored table');
like(get_ok('blog.localhost', qr/visit/), qr/visit @{[$blog_visits + 1]} from deployment $id{blog_v1}\n/,
	'B: blog production answers and keeps counting');
like(get_ok("$slug{shop_v1}.preview.localhost", qr/visit/), qr/visit @{[$shop_visits + 2]} from deployment $id{shop_v1}\n/,
	'B: the preview of shop v1 answers');
is(body(get_ok("$slug{shop_pre}.preview.localhost", qr/GREETING/)), $answer_a{shop_pre},
	'B: the env preview gives the same answer (env restored)');
is(body(get_ok("$slug{blog_pre}.preview.localhost", qr/hello/)), $answer_a{blog_pre},
	'B: the hello preview gives the same answer');
like(get_ok("$branch_slug.preview.localhost", qr/visit/), qr/visit @{[$branch_visit + 1]} from deployment $branch\n/,
	'B: the branch preview answers and counts on in its restored database');
like(nx_http_get($router_port, "$slug{old_v1}.preview.localhost"), qr/^HTTP\/1.1 404 /,
	'B: the dropped sandbox has no route');
is($node_b->safe_psql('nx_shop', 'SELECT count(*) FROM visits'), $shop_visits + 2, 'B: the app wrote the new visits');

# --- the promotion history goes on where A left it
is($node_b->safe_psql('postgres', q{SELECT deployment FROM nx.rollback('shop')}), $id{shop_v1},
	'B: rollback returns to the previous production deployment');
like(get_ok('shop.localhost', qr/deployment $id{shop_v1}\n/), qr/from deployment $id{shop_v1}\n/,
	'B: the router follows the rollback');

# --- the platform works on: a new push and sandbox get new ids and ports
$node_b->safe_psql('postgres', q{SELECT nx.create_sandbox('fresh', owner => 'alice')});
my $new = $node_b->safe_psql('postgres', qq{SELECT deployment FROM nx.push('fresh', pg_read_binary_file('$hello'))});
cmp_ok($new, '>', (sort { $a <=> $b } values %id)[-1], 'B: deployment ids continue');
nx_wait_state($node_b, $new, 'ready', 'B: a new sandbox runs');
is($node_b->safe_psql('postgres', 'SELECT count(*) = count(DISTINCT port) FROM nx.deployments WHERE port IS NOT NULL'),
	't', 'B: ports unique');

$router->signal('TERM');
$router->finish;
my @b_inits = map { nx_init_pid($node_b, $_) } (map({ $id{$_} } @running), $new);
$node_b->stop('fast');
ok(!grep({ kill 0, $_ } @b_inits), "B's sandboxes stop with it");
done_testing();
