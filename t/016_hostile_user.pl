# t/016_hostile_user.pl
#   Another developer as the attacker: an ordinary nx_user ("mallory")
#   against another ("victim"), through the SQL API and the router.  Each
#   attack found on 0.3.0 is repeated as it was made and must fail:
#
#   1. planner statistics: EXPLAIN row estimates of every relation mallory
#      can read (enumerated from the catalog, so a new table or view is
#      covered without editing this test), after ANALYZE with
#      default_statistics_target at its maximum, must not depend on the
#      victim's secrets: what mallory observes is the same whatever the
#      victim stored.  A plain row-level-security table, the 0.3.0 design,
#      is the control that shows the observation does detect a leak, and
#      the binary search over it recovers something, over ours nothing;
#   6. locks: an open BEGIN; nx.wake(...), nx.push(...), nx.create_sandbox(...)
#      or a held advisory lock of the victim delays none of mallory's
#      wakes, routes, pushes or creates by more than 1 s;
#   7. domains: IP literals and reserved names are refused; a claim routes
#      nowhere and /.nx/ask does not approve it until a DNS TXT record with
#      the claimant's token (a real DNS server, dnsmasq, started here) or an
#      nx_admin verifies it; the rightful owner wins the name;
#   8. limits above the default ceilings are refused;
#   11. owner => 'nx_user' is refused, and promote answers the same for a
#      missing and a foreign deployment id.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = nx_node('hostile_user', "nx.dns_resolver = '127.0.0.1:" . (my $dns_port = PostgreSQL::Test::Cluster::get_free_port()) . "'\n");
nx_require_host_setup($node);
my $hello = nx_build_app($node, 'hello_app');

# sql(ROLE, SQL): run SQL as ROLE (SET ROLE: the API acts for the outer
# user, exactly as for a login), return its output.
sub sql
{
	my ($role, $sql) = @_;
	return $node->safe_psql('postgres', "SET ROLE $role; $sql");
}

# timed(ROLE, SQL): run it and return (seconds, exit code, stderr).
sub timed
{
	my ($role, $sql) = @_;
	my $t0 = time;
	my ($rc, $out, $err) = $node->psql('postgres', "SET ROLE $role; $sql");
	return (time - $t0, $rc, $err);
}

$node->safe_psql('postgres', qq{
	CREATE ROLE victim LOGIN IN ROLE nx_user;
	CREATE ROLE mallory LOGIN IN ROLE nx_user;
	CREATE ROLE carol LOGIN IN ROLE nx_user;
	CREATE TABLE public.bins AS SELECT pg_read_binary_file('$hello') AS hello;
	GRANT SELECT ON public.bins TO PUBLIC;
});
sql('mallory', q{SELECT nx.create_sandbox('mal'); SELECT nx.push('mal', hello) FROM bins});

# ---------------------------------------------------------------------
# 1. planner statistics
# ---------------------------------------------------------------------

# observe(REL): what mallory learns of REL from the planner and the
# executor: for each column whose type has a btree order, the estimated
# rows of "col < probe" and "col = probe" for probes across the range, and
# the estimate and the actual rows of the whole relation.  Runs as mallory
# (SECURITY INVOKER).
$node->safe_psql('postgres', q{
CREATE SCHEMA attack;
GRANT USAGE ON SCHEMA attack TO PUBLIC;
CREATE FUNCTION attack.estimate(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO plan;
	RETURN plan->0->'Plan'->>'Plan Rows';
END $$;
CREATE FUNCTION attack.observe(rel regclass) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	c record;
	p text;
	probes text[];
	plan json;
	seen text := '';
BEGIN
	EXECUTE format('EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT * FROM %s', rel) INTO plan;
	seen := format('all: est %s actual %s', plan->0->'Plan'->>'Plan Rows', plan->0->'Plan'->>'Actual Rows');
	FOR c IN SELECT a.attname, format_type(a.atttypid, NULL) AS typ FROM pg_attribute a
			 WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum LOOP
		probes := CASE
			WHEN c.typ IN ('text', 'name', 'character varying')
				THEN ARRAY['', '0', 'a', 'b', 'h', 'm', 'nx-verify=', 'q', 't', 'x', 'z', '~']
			WHEN c.typ IN ('integer', 'bigint', 'smallint')
				THEN ARRAY['0', '1', '3', '10', '1000', '20000', '20010', '25000', '65535', '2000000000']
			WHEN c.typ = 'timestamp with time zone'
				THEN ARRAY['2000-01-01', '2026-01-01', '2026-12-01', '2100-01-01']
			WHEN c.typ = 'interval' THEN ARRAY['0', '1 minute', '1 day']
			ELSE NULL END;
		CONTINUE WHEN probes IS NULL;
		FOREACH p IN ARRAY probes LOOP
			seen := seen || format(E'\n%s < %s: %s', c.attname, p,
				attack.estimate(format('SELECT * FROM %s WHERE %I < %L::%s', rel, c.attname, p, c.typ)));
			seen := seen || format(E'\n%s = %s: %s', c.attname, p,
				attack.estimate(format('SELECT * FROM %s WHERE %I = %L::%s', rel, c.attname, p, c.typ)));
		END LOOP;
	END LOOP;
	RETURN seen;
END $$;
-- bisect(REL, COL, LO, HI): the binary search of the 0.3.0 attack: the
-- smallest string between LO and HI (8 characters of a-z) at which the
-- estimate of "col < x" steps up from its value at LO; NULL when it never
-- does.  Against a leaky relation the step sits next to a hidden value.
CREATE FUNCTION attack.bisect(rel regclass, col name, lo text, hi text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	base text := attack.estimate(format('SELECT * FROM %s WHERE %I < %L', rel, col, lo));
	a bigint := 0;
	b bigint := 26::bigint ^ 8 - 1;
	m bigint;
	s text;
	v bigint;
BEGIN
	IF attack.estimate(format('SELECT * FROM %s WHERE %I < %L', rel, col, hi)) = base THEN
		RETURN NULL;
	END IF;
	WHILE a < b LOOP
		m := (a + b) / 2;
		s := '';
		v := m;
		FOR i IN 1..8 LOOP
			s := chr(97 + (v % 26)::integer) || s;
			v := v / 26;
		END LOOP;
		IF attack.estimate(format('SELECT * FROM %s WHERE %I < %L', rel, col, s)) <> base THEN
			b := m;
		ELSE
			a := m + 1;
		END IF;
	END LOOP;
	s := '';
	v := a;
	FOR i IN 1..8 LOOP
		s := chr(97 + (v % 26)::integer) || s;
		v := v / 26;
	END LOOP;
	RETURN s;
END $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA attack TO PUBLIC;

-- the control: a table secured the way 0.3.0 secured its tables
CREATE TABLE attack.control (owner name, value text);
ALTER TABLE attack.control ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON attack.control FOR SELECT USING (owner = current_user);
GRANT SELECT ON attack.control TO mallory;
INSERT INTO attack.control VALUES ('mallory', 'aardvark'), ('mallory', 'abacus'), ('mallory', 'acorn');
});

# every relation mallory can read, outside the system schemas and the
# attacker's own schema
my @relations = split /\n/, sql('mallory', q{
	SELECT c.oid::regclass FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'attack')
	  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
	  AND has_table_privilege(c.oid, 'SELECT')
	ORDER BY 1});
cmp_ok(scalar(@relations), '>=', 9, 'mallory can read ' . scalar(@relations) . ' relations: ' . join(', ', @relations));

# victim_state(N): the victim's secrets and rows, different for each N
sub victim_state
{
	my ($n) = @_;
	my $secret = $n == 1 ? 'bbbbbbbbsecretone' : 'yyyyyyyysecrettwo';
	$node->safe_psql('postgres', q{
		DELETE FROM attack.control WHERE owner = 'victim';
		INSERT INTO attack.control VALUES ('victim', '} . $secret . q{');
	});
	if ($n == 1)
	{
		sql('victim', q{SELECT nx.create_sandbox('vic');
			SELECT nx.push('vic', hello, label => 'v1') FROM bins;
			SELECT nx.add_domain('vic', 'bank.example.test')});
	}
	else
	{
		# more rows of every kind, other values
		sql('victim', q{SELECT nx.create_sandbox('zzvault', database_quota => '2GB');
			SELECT nx.push('zzvault', hello, label => 'zz9') FROM bins;
			SELECT nx.push('vic', hello, label => 'v2', args => ARRAY['--x=$PORT']) FROM bins;
			SELECT nx.add_domain('zzvault', 'zz.example.test');
			SELECT nx.set_env('zzvault', 'K' || i, md5(i::text)) FROM generate_series(1, 40) i});
	}
	sql('victim', "SELECT nx.set_env('vic', 'SECRET', '$secret')");
	# statistics as detailed as PostgreSQL makes them
	$node->safe_psql('postgres', q{
		SET default_statistics_target = 10000;
		ANALYZE nx.sandboxes, nx.sandbox_secrets, nx.blobs, nx.deployments, nx.promotions,
			nx.env, nx.domains, nx.events, nx.kept_databases, nx.owners, nx.runtime,
			nx.activity, attack.control});
	return $secret;
}

my %seen;
for my $state (1, 2)
{
	victim_state($state);
	for my $rel (@relations, 'attack.control')
	{
		$seen{$state}{$rel} = sql('mallory', "SELECT attack.observe('$rel')");
	}
	$seen{$state}{bisect_control} = sql('mallory', q{SELECT attack.bisect('attack.control', 'value', 'b', 'zz')});
	$seen{$state}{bisect_env} = sql('mallory', q{SELECT attack.bisect('nx.env_vars', 'value', 'b', 'zz')});
}

isnt($seen{1}{'attack.control'}, $seen{2}{'attack.control'},
	'control: on a row-level-security table, the estimates change with the hidden rows');
isnt($seen{1}{bisect_control}, $seen{2}{bisect_control},
	"control: the binary search finds the hidden value's neighbourhood ($seen{1}{bisect_control} vs $seen{2}{bisect_control})");
for my $rel (@relations)
{
	is($seen{1}{$rel}, $seen{2}{$rel}, "$rel: what mallory observes does not depend on the victim's rows");
}
is($seen{1}{bisect_env}, '', 'the binary search over nx.env_vars finds nothing');
is($seen{2}{bisect_env}, '', '... whatever the victim stores');
is(sql('mallory', q{SELECT count(*) FROM pg_stats WHERE schemaname = 'nx'}), '0',
	'pg_stats shows mallory no statistics of the platform');
is(sql('mallory', q{SELECT count(*) FROM nx.env_vars}), '0', 'mallory sees no environment variable');

# ---------------------------------------------------------------------
# 11. owners and oracles
# ---------------------------------------------------------------------
my ($rc, $out, $err) = $node->psql('postgres', q{SET ROLE mallory; SELECT nx.create_sandbox('everyone', owner => 'nx_user')});
like($err, qr/role "nx_user" cannot own a sandbox/, 'owner => nx_user is refused');
my $victim_dep = $node->safe_psql('postgres', q{SELECT min(id) FROM nx.deployments WHERE sandbox = 'vic'});
my (undef, undef, $foreign) = $node->psql('postgres', "SET ROLE mallory; SELECT nx.promote('mal', $victim_dep)");
my (undef, undef, $missing) = $node->psql('postgres', "SET ROLE mallory; SELECT nx.promote('mal', 987654)");
s/\d+/N/g for $foreign, $missing;
is($foreign, $missing, 'promote answers the same for another user\'s deployment and a missing one');

# ---------------------------------------------------------------------
# 8. limits above the default ceilings
# ---------------------------------------------------------------------
for my $ask ("memory_limit => '1TB'", "tmp_size => '64GB'", 'pids_limit => 65536',
	'cpu_weight => 10000', 'connection_limit => 10000')
{
	($rc, $out, $err) = $node->psql('postgres', "SET ROLE mallory; SELECT nx.create_sandbox('greedy', $ask)");
	like($err, qr/is above this cluster's ceiling/, "create_sandbox($ask) is refused under the default ceilings");
}

# ---------------------------------------------------------------------
# 6. locks held by the victim
# ---------------------------------------------------------------------
my $mal_dep = $node->safe_psql('postgres', q{SELECT min(id) FROM nx.deployments WHERE sandbox = 'mal'});
nx_wait_state($node, $mal_dep, 'ready', "mallory's app is ready");
nx_wait_state($node, $victim_dep, 'ready', "the victim's app is ready");
sql('carol', q{SELECT nx.create_sandbox('carol'); SELECT nx.push('carol', hello) FROM bins});
my $carol_dep = $node->safe_psql('postgres', q{SELECT min(id) FROM nx.deployments WHERE sandbox = 'carol'});
nx_wait_state($node, $carol_dep, 'ready', "carol's app is ready");
$node->safe_psql('postgres', "SELECT nx.promote('carol', $carol_dep)");

my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $http_port);
my $routed = 0;
for (my $until = time + 30; time < $until; usleep(100_000))
{
	if (nx_http_get($http_port, 'carol.localhost', '/', 2) =~ /hello from sandbox carol/) { $routed = 1; last; }
}
ok($routed, 'the router serves carol');

# asleep(DEPLOYMENT): put a deployment to sleep the way idle stop does
sub asleep
{
	my ($d) = @_;
	$node->safe_psql('postgres', "UPDATE nx.deployments SET asleep_since = now() WHERE id = $d");
	$node->poll_query_until('postgres', "SELECT state FROM nx.status WHERE deployment = $d", 'asleep');
}

# the attacks, each as a session of the victim holding its locks; the
# first round holds nothing and measures what each call costs anyway
my @holds = (
	[ undef, 'no lock held (baseline)' ],
	[ 'BEGIN; SELECT nx.wake(VICTIM)', 'an open nx.wake' ],
	[ q{BEGIN; SELECT nx.push('vic', hello) FROM bins}, 'an open nx.push' ],
	[ q{BEGIN; SELECT nx.create_sandbox('held')}, 'an open nx.create_sandbox' ],
	[ q{SELECT pg_advisory_lock(28280, 1), pg_advisory_lock(28280, 2), pg_advisory_lock(1), pg_advisory_lock(0)},
		'held advisory locks' ],
);
my %base;
my $n = 0;
for my $hold (@holds)
{
	my ($sql, $what) = @$hold;
	my %took;
	$n++;
	asleep($victim_dep);
	asleep($mal_dep);
	asleep($carol_dep);
	my $victim;
	if (defined $sql)
	{
		$sql =~ s/VICTIM/$victim_dep/;
		$victim = $node->background_psql('postgres');
		$victim->query_safe("SET ROLE victim; $sql");
	}

	my ($t, $rc2, $err2) = timed('mallory', "SELECT nx.wake($mal_dep)");
	ok($rc2 == 0, "$what: mallory wakes her app") or diag($err2);
	$took{wake} = $t;
	my $t0 = time;
	my $answer = nx_http_get($http_port, 'carol.localhost', '/', 10);
	$took{route} = time - $t0;
	ok($answer =~ /hello from sandbox carol/, "$what: a request wakes and reaches carol's asleep app")
	  or diag($answer);
	($t, $rc2, $err2) = timed('mallory', "SELECT nx.push('mal', hello, label => 'p$n') FROM bins");
	ok($rc2 == 0, "$what: mallory pushes") or diag($err2);
	$took{push} = $t;
	($t, $rc2, $err2) = timed('mallory', "SELECT nx.create_sandbox('mal$n')");
	ok($rc2 == 0, "$what: mallory creates a sandbox") or diag($err2);
	$took{create} = $t;
	if (!defined $sql)
	{
		%base = %took;
	}
	else
	{
		for my $op (qw(wake route push create))
		{
			ok($took{$op} < $base{$op} + 1.0,
				sprintf('%s: delays mallory\'s %s by less than 1 s (%.3f s, %.3f s without it)',
					$what, $op, $took{$op}, $base{$op}));
		}
	}
	if (defined $sql && $sql =~ /create_sandbox\('held'\)/)
	{
		($t, $rc2, $err2) = timed('mallory', "SELECT nx.create_sandbox('held')");
		ok($rc2 != 0 && $t < $base{create} + 1.5 && $err2 =~ /being taken by another transaction/,
			sprintf('%s: the same name gets a clear error in %.3f s, not a wait', $what, $t)) or diag($err2);
	}
	if (defined $victim)
	{
		$victim->query_safe('ROLLBACK') if $sql =~ /^BEGIN/;
		$victim->quit;
	}
	sql('mallory', "SELECT nx.drop_sandbox('mal$n')");
}
# the wake of carol's app above needed no nx.wake by carol: the router's
# own wake skipped nothing of hers
ok($node->safe_psql('postgres', "SELECT count(*) FROM nx.events WHERE action = 'wake' AND deployment = $carol_dep") >= 1,
	"the router woke carol's app itself");

# ---------------------------------------------------------------------
# 7. domains
# ---------------------------------------------------------------------
for my $d ('127.0.0.1', '0.0.0.0', 'localhost', 'app.localhost', 'printer.local')
{
	($rc, $out, $err) = $node->psql('postgres', "SET ROLE mallory; SELECT nx.add_domain('mal', '$d')");
	like($err, qr/IP address|reserved|invalid domain|under nx.domain/, "add_domain('$d') is refused");
}
$node->safe_psql('postgres', "SELECT nx.promote('mal', $mal_dep, force => true)");
$node->safe_psql('postgres', "SELECT nx.promote('vic', $victim_dep, force => true)");
sql('mallory', q{SELECT nx.add_domain('mal', 'shop.example.test')});
like(nx_http_get($http_port, 'shop.example.test', '/', 5), qr/^HTTP\/1.1 404/, 'a claimed domain routes nowhere before it is verified');
like(nx_http_get($http_port, 'unknown.example.test', '/.nx/ask?domain=shop.example.test', 5),
	qr/^HTTP\/1.1 404/, '/.nx/ask does not approve it for a certificate');

# the rightful owner publishes the TXT record her claim asks for
my $txt = sql('victim', q{SELECT txt_value FROM nx.add_domain('vic', 'shop.example.test')});
like($txt, qr/^nx-verify=[a-z2-7]{32}$/, 'the claim says which TXT record proves it');
my $dnsmasq = IPC::Run::start(
	[ 'dnsmasq', '--keep-in-foreground', '--no-daemon', "--port=$dns_port", '--listen-address=127.0.0.1',
		'--bind-interfaces', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file=',
		'--local=/test/', "--txt-record=_nx-verify.shop.example.test,$txt" ],
	'<', '/dev/null', '>', $node->basedir . '/dnsmasq.log', '2>&1');
sql('victim', q{SELECT nx.check_domain('shop.example.test')});
ok($node->poll_query_until('postgres',
		q{SELECT state FROM nx._domain_info_rows() WHERE domain = 'shop.example.test' AND sandbox = 'vic'}, 'verified'),
	'the supervisor finds the TXT record and verifies the rightful owner');
my $won = 0;
for (my $until = time + 20; time < $until; usleep(100_000))
{
	if (nx_http_get($http_port, 'shop.example.test', '/', 2) =~ /hello from sandbox vic/) { $won = 1; last; }
}
ok($won, 'the domain routes to the rightful owner');
like(nx_http_get($http_port, 'unknown.example.test', '/.nx/ask?domain=shop.example.test', 5),
	qr/^HTTP\/1.1 200/, '/.nx/ask approves it now');
is(sql('mallory', q{SELECT state FROM nx.domain_info WHERE domain = 'shop.example.test'}), 'taken',
	"mallory's claim shows the name is taken");
sql('mallory', q{SELECT nx.check_domain('shop.example.test')});
sleep 3;
is(sql('mallory', q{SELECT state FROM nx.domain_info WHERE domain = 'shop.example.test'}), 'taken',
	'a check of the squatter\'s claim changes nothing');
like(sql('victim', q{SELECT check_result FROM nx.domain_info WHERE domain = 'shop.example.test'}),
	qr/TXT record found/, 'the check result is shown to the owner');

$dnsmasq->kill_kill;
$router->kill_kill;
$node->stop;
done_testing();
