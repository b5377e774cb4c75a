# t/044_preview_db.pl
#   Preview databases, made by the supervisor: a branch preview starts on
#   a copy of production's data, and its writes never reach production;
#   production keeps its connections and serves during the copy; a
#   production ALTER TABLE waits at most about a second for the copy's
#   locks (the copy yields and starts again); a copy that fails shows
#   failed with the reason and an event; empty mode; promote of a branch
#   preview moves production onto a new deployment on the production
#   database with no failed request, the preview still running; nx.remove
#   and nx.drop_sandbox drop the branch databases and their roles; a kill
#   -9 of the supervisor during a copy makes it start again from scratch.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $node = nx_node('previewdb');
nx_require_host_setup($node);
my $dbapp = nx_build_app($node, 'dbapp', '-lpq');

sub sql { return $node->safe_psql('postgres', $_[0]); }
sub dbsql { my ($db, $q) = @_; return $node->safe_psql($db, $q); }

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port);
sub get { return nx_http_get($port, $_[0], $_[1], 15); }

# get_ok(HOST): one request until it is answered 200 (the router may not
# know a new route yet); the response
sub get_ok
{
	my ($host) = @_;
	my $r = '';
	for (1 .. 100)
	{
		$r = get($host);
		return $r if $r =~ /^HTTP\/1.1 200 /;
		usleep(100_000);
	}
	return $r;
}

# --- production: dbapp on the sandbox's database, with visits, a large
# table, and a small one whose check constraint takes a millisecond a row:
# its data comes first in the dump, and while pg_restore checks it, pg_dump
# waits on the full pipe holding its locks (a copy of a few seconds)
sql(q{SELECT nx.create_sandbox('shop')});
my $v1 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v1')});
nx_wait_state($node, $v1, 'ready', 'production starts');
sql(qq{SELECT nx.promote('shop', $v1)});
like(get_ok('shop.localhost'), qr/visit 1 from deployment $v1\n/, 'production serves');
get_ok('shop.localhost') for 2 .. 5;
dbsql('nx_shop', q{SET ROLE nx_shop;
	CREATE TABLE big (id int PRIMARY KEY, pad text);
	INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400000) g;
	CREATE TABLE pair_a (k int PRIMARY KEY, v int); CREATE TABLE pair_b (k int PRIMARY KEY, v int);
	INSERT INTO pair_a SELECT g, 0 FROM generate_series(1, 10) g; INSERT INTO pair_b SELECT g, 0 FROM generate_series(1, 10) g;
	CREATE FUNCTION slow_ok(int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN true; END $$;
	CREATE TABLE a_slow (x int CHECK (slow_ok(x)));
	INSERT INTO a_slow SELECT generate_series(1, 2500);});
my $app_backend = sql(q{SELECT pid || ' ' || backend_start FROM pg_stat_activity WHERE datname = 'nx_shop' AND usename = 'nx_shop'});
ok($app_backend, 'production holds its database connection');

# --- a branch preview, while production serves and a writer keeps an
# invariant (sum(pair_a) = sum(pair_b), updated in one transaction)
my $writer = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('nx_shop') . ' application_name=nx_test_writer', '-c',
	  q{DO $$ BEGIN FOR i IN 1..100000 LOOP
	      UPDATE pair_a SET v = v + 1 WHERE k = i % 10 + 1; UPDATE pair_b SET v = v + 1 WHERE k = (i * 7) % 10 + 1;
	      COMMIT; PERFORM pg_sleep(0.002); END LOOP; END $$} ],
	'<', '/dev/null', '>', '/dev/null', '2>', '/dev/null');
my $t0 = time();
my $v2 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v2', database => 'branch')});
ok($node->poll_query_until('postgres',
		qq{SELECT state = 'branching' AND branch_bytes_total > 0 FROM nx.status WHERE deployment = $v2}),
	'the branch preview shows branching, with the size of what it copies');
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'nx branch %/dump'}),
	'pg_dump is connected');
is(sql(q{SELECT usename FROM pg_stat_activity WHERE application_name LIKE 'nx branch %/dump'}), 'nx_shop',
	'pg_dump connects as the production tenant role, not a superuser');
like(get('shop.localhost'), qr/^HTTP\/1.1 200 /, 'production serves during the copy');

# a production migration waits at most about a second for the copy's locks
my $alter_t0 = time();
dbsql('nx_shop', q{SET lock_timeout = '10s'; ALTER TABLE big ADD COLUMN note text});
my $alter_wait = time() - $alter_t0;
note(sprintf('ALTER TABLE during the copy waited %.3f s', $alter_wait));
cmp_ok($alter_wait, '<', 1.5, 'a production ALTER TABLE waits at most ~1 s: the copy yields');
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) > 0 FROM nx.event_log WHERE action = 'branch_retry' AND deployment = $v2}),
	'the yield is an event (branch_retry)');

nx_wait_state($node, $v2, 'ready', 'the branch preview starts once its copy is complete');
note(sprintf('push to branch preview ready: %.1f s (with one yield)', time() - $t0));
sql(q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nx_test_writer'});
$writer->finish;
is(sql(qq{SELECT state || ' ' || (attempts >= 2) FROM nx.branches WHERE deployment = $v2}), 'ready true',
	'nx.branches: ready, after more than one attempt');
is(sql(qq{SELECT branch_bytes_copied = branch_bytes_total FROM nx.status WHERE deployment = $v2}), 't', 'progress complete');
is(sql(q{SELECT pid || ' ' || backend_start FROM pg_stat_activity WHERE datname = 'nx_shop' AND usename = 'nx_shop'
	AND application_name NOT LIKE 'nx branch%'}), $app_backend, 'production\'s connection was never terminated');
is(sql(q{SELECT count(*) FROM pg_database WHERE datname LIKE 'nx\_\_branch\_%'}), '0', 'no temporary database left');

my $bdb = "nx_shop_$v2";
is(dbsql($bdb, 'SELECT count(*) FROM big'), '400000', 'the branch has production\'s large table');
is(dbsql($bdb, q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'big'::regclass AND attname = 'note'}), '1',
	'copied again after the migration: the branch has its column');
is(dbsql($bdb, 'SELECT (SELECT sum(v) FROM pair_a) = (SELECT sum(v) FROM pair_b)'), 't',
	'the invariant production\'s writer keeps holds in the branch');
is(dbsql($bdb, 'SELECT tableowner FROM pg_tables WHERE tablename = \'big\''), $bdb, 'the branch role owns the copy');
my $prod_visits = dbsql('nx_shop', 'SELECT count(*) FROM visits');
cmp_ok(dbsql($bdb, 'SELECT count(*) FROM visits'), '>=', 5, 'the preview starts with production\'s visits');
like(join("\n", split /\n/, sql(qq{SELECT string_agg(line, E'\\n') FROM nx.logs('shop', $v2)})),
	qr/database $bdb, user $bdb/, 'the preview connects to its branch as its own role');

# its writes stay in the branch
my $slug2 = sql(qq{SELECT slug FROM nx.deployments WHERE id = $v2});
like(get_ok("$slug2.preview.localhost"), qr/from deployment $v2\n/, 'the preview serves');
get_ok("$slug2.preview.localhost") for 1 .. 3;
is(dbsql($bdb, qq{SELECT count(*) FROM starts WHERE deployment = '$v2'}), '1', 'the preview recorded its start in the branch');
is(dbsql('nx_shop', qq{SELECT count(*) FROM starts WHERE deployment = '$v2'}), '0', 'and not in production');
is(dbsql('nx_shop', 'SELECT count(*) FROM visits'), $prod_visits, 'production has none of the preview\'s visits');

# its role and environment are its own
my $bpw = sql(qq{SELECT db_password FROM nx.deployment_secrets WHERE deployment = $v2});
is(sql(qq{SELECT count(*) FROM nx._desired_deployments('/tmp', '5432') d, unnest(d.envp) e, nx.sandbox_secrets p
	WHERE d.deployment = $v2 AND p.sandbox = 'shop' AND (e LIKE '%' || p.db_password || '%' OR e = 'PGUSER=nx_shop')}),
	'0', 'the preview\'s environment holds no production credentials');
{
	local $ENV{PGPASSWORD} = $bpw;
	my ($rc, $out, $err) = $node->psql('nx_shop', 'SELECT 1', extra_params => [ '-U', $bdb ]);
	isnt($rc, 0, 'the branch role cannot connect to production\'s database');
	($rc, $out, $err) = $node->psql($bdb, 'SELECT 1', extra_params => [ '-U', $bdb ]);
	is($out, '1', 'it can connect to its own');
}

# --- a copy that fails: production holds a table its role cannot read
dbsql('nx_shop', 'CREATE TABLE not_yours (x int)');
my $v3 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v3', database => 'branch')});
nx_wait_state($node, $v3, 'failed', 'a failing copy shows failed');
like(sql(qq{SELECT last_error FROM nx.status WHERE deployment = $v3}), qr/copying the production database failed: .*permission denied/s,
	'with the reason in last_error');
like(sql(qq{SELECT details->>'error' FROM nx.event_log WHERE action = 'branch_failed' AND deployment = $v3}),
	qr/permission denied/, 'and a branch_failed event');
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) = 0 FROM pg_database WHERE datname LIKE 'nx\\_\\_branch\\_%' OR datname = 'nx_shop_$v3'}),
	'its temporary database is dropped, no final one made');
dbsql('nx_shop', 'DROP TABLE not_yours');
sql(qq{SELECT nx.restart('shop', $v3)});
nx_wait_state($node, $v3, 'ready', 'nx.restart copies a failed branch again');
sql(qq{SELECT nx.remove('shop', $v3)});

# --- empty mode
my $v4 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v4', database => 'empty')});
nx_wait_state($node, $v4, 'ready', 'an empty preview starts');
is(dbsql("nx_shop_$v4", q{SELECT count(*) FROM pg_tables WHERE tablename = 'big'}), '0', 'its database has none of production\'s tables');
is(dbsql("nx_shop_$v4", 'SELECT count(*) FROM starts'), '1', 'only what the preview wrote');

# --- promote the branch preview: a new deployment on the production
# database becomes production once ready, no request fails meanwhile
my $loop_file = $node->basedir . '/promote_loop';
my $loop = fork() // die "fork: $!";
if ($loop == 0)
{
	my ($ok, $bad, $first_bad) = (0, 0, '');
	my $until = time() + 60;
	while (time() < $until && !-e "$loop_file.stop")
	{
		my $r = nx_http_get($port, 'shop.localhost', '/', 10);
		if ($r =~ /^HTTP\/1.1 200 /) { $ok++ } else { $bad++; $first_bad ||= $r; }
	}
	open my $fh, '>', $loop_file or POSIX::_exit(1);
	print $fh "$ok $bad\n$first_bad";
	close $fh;
	POSIX::_exit(0);
}
my $p = sql(qq{SELECT deployment FROM nx.promote('shop', $v2)});
isnt($p, $v2, 'promote of a branch preview returns a new deployment');
is(sql(qq{SELECT state FROM nx.status WHERE deployment = $p}) =~ /^(promoting|starting|ready)$/ ? 1 : 0, 1,
	'in state promoting until ready');
ok($node->poll_query_until('postgres', qq{SELECT production_deployment = $p FROM nx.sandbox_info WHERE sandbox = 'shop'}),
	'the new deployment becomes production once ready (the supervisor completes the promotion)');
sleep(1);
open my $fh, '>', "$loop_file.stop" or die;
close $fh;
waitpid($loop, 0);
my ($counts, $first_bad) = split /\n/, slurp_file($loop_file), 2;
my ($ok_n, $bad_n) = split / /, $counts;
note("requests during the promote: $ok_n answered, $bad_n failed");
is($bad_n, 0, 'no request failed during the promote') or diag($first_bad);
cmp_ok($ok_n, '>', 5, 'requests flowed during the promote');
like(get_ok('shop.localhost'), qr/from deployment $p\n/, 'production is answered by the new deployment');
is(dbsql('nx_shop', qq{SELECT count(*) FROM starts WHERE deployment = '$p'}), '1', 'which runs on the production database');
is(sql(qq{SELECT database_mode || ' ' || promote_from FROM nx.status WHERE deployment = $p}), "production $v2", 'nx.status says so');
is(sql(qq{SELECT state FROM nx.status WHERE deployment = $v2}), 'ready', 'the preview keeps running on its branch');
like(get_ok("$slug2.preview.localhost"), qr/from deployment $v2\n/, 'and serves');
is(sql(qq{SELECT count(*) FROM nx.event_log WHERE action = 'promote' AND deployment = $p}), '1', 'a promote event');

# --- a v6 whose migration drops and recreates its table at start: as a
# branch preview it changes only its branch; promoted, it runs (and
# migrates) on the production database
my $before_v6 = dbsql('nx_shop', 'SELECT count(*) FROM visits');
cmp_ok($before_v6, '>', 1, "production has $before_v6 visits");
my $v6 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v6',
	args => ARRAY['migrate'], database => 'branch')});
nx_wait_state($node, $v6, 'ready', 'a preview with a destructive migration starts on its branch');
my $slug6 = sql(qq{SELECT slug FROM nx.deployments WHERE id = $v6});
like(get_ok("$slug6.preview.localhost"), qr/visit 1 from deployment $v6\n/, 'its migration emptied its own table');
is(dbsql('nx_shop', 'SELECT count(*) FROM visits'), $before_v6, 'production\'s table is untouched');
my $p6 = sql(qq{SELECT deployment FROM nx.promote('shop', $v6)});
ok($node->poll_query_until('postgres', qq{SELECT production_deployment = $p6 FROM nx.sandbox_info WHERE sandbox = 'shop'}),
	'promoted: a new deployment of v6 becomes production');
like(get_ok('shop.localhost'), qr/visit 1 from deployment $p6\n/, 'and its migration ran on the production database');
is(dbsql('nx_shop', qq{SELECT count(*) FROM starts WHERE deployment = '$p6'}), '1', 'where it runs');

# --- removal: the branch database and role go with their deployment
sql(qq{SELECT nx.remove('shop', $v2)});
ok($node->poll_query_until('postgres',
		qq{SELECT (SELECT count(*) FROM pg_database WHERE datname = '$bdb') + (SELECT count(*) FROM pg_roles WHERE rolname = '$bdb')
		   + (SELECT count(*) FROM nx.branches WHERE deployment = $v2)}, '0'),
	'nx.remove drops the branch database, its role and its nx.branches row');
# --- kill -9 of the supervisor during a copy: after the crash restart, the
# copy starts again from scratch; no half-copied database is used
my $v5 = sql(qq{SELECT deployment FROM nx.push('shop', pg_read_binary_file('$dbapp'), label => 'v5', database => 'branch')});
ok($node->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'nx branch %/restore'}),
	'a copy runs');
my $sup = sql('SELECT nx._supervisor_pid()');
kill 'KILL', $sup;
ok($node->poll_query_until('postgres', "SELECT nx._supervisor_pid() NOT IN (0, $sup)"), 'the supervisor is back after kill -9');
nx_wait_state($node, $v5, 'ready', 'the branch preview becomes ready after the crash');
is(sql(qq{SELECT attempts >= 2 FROM nx.branches WHERE deployment = $v5}), 't', 'its copy was made again from scratch');
is(dbsql("nx_shop_$v5", 'SELECT count(*) FROM big'), '400000', 'complete');
is(sql(q{SELECT count(*) FROM pg_database WHERE datname LIKE 'nx\_\_branch\_%'}), '0', 'no temporary database left');

sql(q{SELECT nx.drop_sandbox('shop')});
ok($node->poll_query_until('postgres',
		q{SELECT (SELECT count(*) FROM pg_database WHERE datname LIKE 'nx\_shop%' OR datname LIKE 'nx\_\_branch%')
		   + (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'nx\_shop%' OR rolname LIKE 'nx\_\_branch%')
		   + (SELECT count(*) FROM nx.branches)}, '0'),
	'nx.drop_sandbox drops every branch and empty database and role');

$router->kill_kill;
$node->stop;
done_testing();
