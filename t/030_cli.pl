# t/030_cli.pl
#   The nx command-line client (build/nx) against a cluster with the
#   supervisor: push waits until ready and promotes; status, ls, logs
#   (also followed), env, promote/rollback, stop/start/restart; a binary
#   that cannot run is refused locally before any connection; a deployment
#   that crashloops exits 4 with its logs; a progress bar on a terminal;
#   a plain nx_user sees only its own; db url/psql/dump/restore; every
#   error path prints exactly one "nx: error:" line and exits non-zero;
#   --json output parses.  New in 0.4.0: start/stop/restart by sandbox name,
#   remove, alter (limits in info/ls), create --database-quota/--owner,
#   domains add/ls/check/approve/rm, push --name and -- ARGS with $PORT
#   expanded by the platform, did you mean, errors as JSON, CLI hints, the
#   wrong database and a service file (PGSERVICE).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use Digest::SHA qw(sha256_hex);
use File::Copy qw(copy);
use IPC::Run;
use JSON::PP;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $nx_bin = 'build/nx';
BAIL_OUT("$nx_bin is missing: make build/nx") unless -x $nx_bin;

my $node = nx_node('cli');
nx_require_host_setup($node);

my $dbapp = nx_build_app($node, 'dbapp', '-lpq');
my $dir = $node->basedir;
my $json = JSON::PP->new;

# nx(ARGS...) runs the client with the connection in the environment (the
# usual libpq variables); returns (exit code, stdout, stderr).  With
# NX_CLI_VALGRIND=1 it runs under valgrind: a memory error or a leak (lost
# blocks) makes the run exit 99 and its check fail, with valgrind's report
# in the diagnostics.
my @valgrind = $ENV{NX_CLI_VALGRIND}
  ? ('valgrind', '-q', '--leak-check=full', '--show-leak-kinds=definite,indirect',
	'--errors-for-leak-kinds=definite,indirect', '--error-exitcode=99')
  : ();
sub nx
{
	my (@args) = @_;
	my $extra = ref $args[0] eq 'HASH' ? shift @args : {};
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	local @ENV{ keys %$extra } = values %$extra;
	IPC::Run::run([ @valgrind, $nx_bin, @args ], '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(180));
	return ($? >> 8, $out, $err);
}

# nx_ok: exit 0 and no error line
sub nx_ok
{
	my ($name, @args) = @_;	# args may start with a hash of environment variables
	my ($rc, $out, $err) = nx(@args);
	is($rc, 0, "$name: exit 0") or diag("stdout: $out\nstderr: $err");
	unlike($err, qr/nx: error:/, "$name: no error");
	return $out;
}

# nx_fails: the exit code, and exactly one "nx: error:" line, first on stderr
sub nx_fails
{
	my ($name, $want_rc, @args) = @_;
	my ($rc, $out, $err) = nx(@args);
	is($rc, $want_rc, "$name: exit $want_rc") or diag("stdout: $out\nstderr: $err");
	my @errors = ($err =~ /^nx: error: /mg);
	is(scalar(@errors), 1, "$name: exactly one error line");
	like($err, qr/\Anx: error: /, "$name: stderr starts with the error line");
	return $err;
}

sub sql { return $node->safe_psql(@_ > 1 ? @_ : ('postgres', $_[0])); }

# --- help and version
like(nx_ok('--help', '--help'), qr/push.*status.*logs/s, '--help lists the commands');
like(nx_ok('help push', 'help', 'push'), qr/--promote/, 'help push describes --promote');
like(nx_ok('--version', '--version'), qr/^nx \d+\.\d+/, '--version');
like(nx_ok('push --help', 'push', '--help'), qr/^Usage: nx push SANDBOX FILE/, 'push --help');
nx_fails('help of an unknown command', 1, 'help', 'frob');

# --- create
like(nx_ok('create', 'create', 'app', '--memory', '256MB', '--pids', '128',
		'--idle-timeout', '10 min', '--connection-limit', '5', '--open-files=512',
		'--cpu-weight', '200', '--tmp-size', '32MB'),
	qr/created sandbox app/, 'create prints the sandbox');
is(sql(q{SELECT concat_ws(' ', memory_limit, pids_limit, connection_limit, idle_timeout, open_files_limit,
	cpu_weight, tmp_size) FROM nx.sandboxes WHERE name = 'app'}),
	'268435456 128 5 00:10:00 512 200 33554432', 'create passed every limit');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_app'}, '1'),
	'the supervisor created nx_app');

# --- push with --promote waits until ready
my $out = nx_ok('push --promote', 'push', 'app', $dbapp, '--label', 'v1', '--promote',
	'--env', 'GREETING=hi "there"', '--arg', 'plain', '--arg', 'a "quoted" \\ arg',
	'--arg', '', '--arg', '-x');
my ($d1) = $out =~ /pushed deployment (\d+) \(label v1\) to sandbox app/;
ok($d1, "push printed the deployment id ($d1)");
like($out, qr{^preview: http://[a-z2-7]{16}\.preview\.}m, 'push printed the preview URL');
like($out, qr/deployment $d1 is ready/, 'push waited until ready');
like($out, qr{promoted: http://app\.}, 'push promoted it');
is(sql("SELECT state || ' ' || production FROM nx.status WHERE deployment = $d1"), 'ready true',
	'the deployment is ready and production');
is(sql("SELECT env->>'GREETING' FROM nx.deployments WHERE id = $d1"), 'hi "there"', '--env is passed as jsonb');
is(sql("SELECT args = ARRAY['plain', 'a \"quoted\" \\ arg', '', '-x'] FROM nx.deployments WHERE id = $d1"),
	't', '--arg values arrive verbatim as text[]');
is(sql("SELECT b.bytes = pg_read_binary_file('$dbapp') FROM nx.deployments d JOIN nx.blobs b ON b.sha256 = d.blob WHERE d.id = $d1"),
	't', 'the stored blob is the file, byte for byte');

# --- push --json --no-wait
$out = nx_ok('push --json --no-wait', '--json', 'push', 'app', $dbapp, '--label', 'v2', '--no-wait');
my $pushed = eval { $json->decode($out) };
ok($pushed, 'push --json prints JSON') or diag($out);
my $d2 = $pushed->{deployment};
ok($d2 && $d2 > $d1, 'push --json: the new deployment id');
is($pushed->{label}, 'v2', 'push --json: label');
like($pushed->{preview_url}, qr{^http://}, 'push --json: preview_url');
ok(JSON::PP::is_bool($pushed->{production}) && !$pushed->{production}, 'push --json: production is a JSON boolean');
nx_wait_state($node, $d2, 'ready', 'the second deployment becomes ready');

# --- status
$out = nx_ok('status', 'status');
like($out, qr/^SANDBOX\s+DEPLOYMENT\s+LABEL\s+STATE/m, 'status: header');
like($out, qr/^app\s+$d1\s+v1\s+ready/m, 'status: first deployment');
like($out, qr/^app\s+$d2\s+v2\s+ready/m, 'status: second deployment');
my $st = $json->decode(nx_ok('status --json', 'status', 'app', '--json'));
is(scalar(@$st), 2, 'status --json: two rows');
is($st->[0]{deployment}, $d1, 'status --json: ordered by deployment');
ok($st->[0]{production} && !$st->[1]{production}, 'status --json: production flags');
is($st->[1]{state}, 'ready', 'status --json: state');

# --- ls
$out = nx_ok('ls', 'ls');
like($out, qr/^SANDBOX\s+OWNER/m, 'ls: header');
like($out, qr/^app\s+\S+\s+$d1\s+http:/m, 'ls: the sandbox and its production deployment');
my $ls = $json->decode(nx_ok('ls --json', 'ls', '--json'));
is(scalar(@$ls), 1, 'ls --json: one sandbox');
is($ls->[0]{sandbox}, 'app', 'ls --json: name');
is($ls->[0]{production_deployment}, $d1, 'ls --json: production deployment as a number');
is($ls->[0]{pids_limit}, 128, 'ls --json: limits');

# --- logs
like(nx_ok('logs', 'logs', 'app'), qr/^dbapp: started as uid \d+, database nx_app/m, 'logs: the app output');
my $lines = $json->decode(nx_ok('logs --json', 'logs', 'app', $d2, '-n', '5', '--json'));
ok(ref $lines eq 'ARRAY' && grep({ /dbapp: started/ } @$lines), 'logs --json: an array of lines');
$lines = $json->decode(nx_ok('logs -n 1', 'logs', 'app', $d2, '-n', '1', '--json'));
is(scalar(@$lines), 1, 'logs -n 1: one line');

# logs -f prints the start once, then only the new start after a restart
{
	my ($fout, $ferr) = ('', '');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my $t = IPC::Run::timer(60);
	my $h = IPC::Run::start([ $nx_bin, 'logs', 'app', $d1, '-f' ], '<', \undef, '>', \$fout, '2>', \$ferr, $t);
	$h->pump until $fout =~ /dbapp: started/ || $t->is_expired;
	like($fout, qr/dbapp: started/, 'logs -f: the existing lines');
	my $pid = sql("SELECT pid FROM nx.status WHERE deployment = $d1");
	like(nx_ok('restart', 'restart', $d1), qr/deployment $d1 of sandbox app restarted/, 'restart');
	ok($node->poll_query_until('postgres', "SELECT pid <> $pid AND state = 'ready' FROM nx.status WHERE deployment = $d1"),
		'restart gives a new process');
	$h->pump until (() = $fout =~ /dbapp: started/g) >= 2 || $t->is_expired;
	for (1 .. 3) { sleep 1; $h->pump_nb; }	# anything printed twice would show up here
	$h->kill_kill;
	my $starts = () = $fout =~ /dbapp: started/g;
	is($starts, 2, 'logs -f: the new line once, the old one not again') or diag($fout);
	is($ferr, '', 'logs -f: nothing on stderr');
}

# --- env
like(nx_ok('env set', 'env', 'app', 'set', 'SECRET=s3cr=t'), qr/set SECRET/, 'env set');
$out = nx_ok('env list', 'env', 'app', 'list');
like($out, qr/^SECRET\s+\*\*\*/m, 'env list: the value is hidden');
unlike($out, qr/s3cr=t/, 'env list: the value is not printed');
my $env = $json->decode(nx_ok('env list --json', 'env', 'app', 'list', '--json'));
is_deeply([ map { [ $_->{name}, $_->{value} ] } @$env ], [ [ 'SECRET', '***' ] ], 'env list --json: hidden');
like(nx_ok('env list --show', 'env', 'app', 'list', '--show'), qr/^SECRET\s+s3cr=t/m, 'env list --show');
$env = $json->decode(nx_ok('env list --show --json', 'env', 'app', 'list', '--show', '--json'));
is($env->[0]{value}, 's3cr=t', 'env list --show --json');
like(nx_ok('env unset', 'env', 'app', 'unset', 'SECRET'), qr/unset SECRET/, 'env unset');
is(sql(q{SELECT count(*) FROM nx.env}), '0', 'env unset removed it');
like(nx_ok('env unset again', 'env', 'app', 'unset', 'SECRET'), qr/SECRET was not set/, 'env unset of an unset variable');
$env = $json->decode(nx_ok('env list empty', 'env', 'app', 'list', '--json'));
is_deeply($env, [], 'env list --json: empty array');

# --- promote, rollback
like(nx_ok('promote', 'promote', 'app', $d2), qr/deployment $d2 of sandbox app is production/, 'promote');
is(sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'}), $d2, 'promote moved production');
like(nx_ok('rollback', 'rollback', 'app'), qr/deployment $d1 of sandbox app is production again/, 'rollback');
is(sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'}), $d1, 'rollback moved production back');
my $prom = $json->decode(nx_ok('promote --json', 'promote', 'app', '--json'));
is($prom->{deployment}, $d2, 'promote without a deployment: the newest, as JSON');

# --- stop, start, restart
like(nx_ok('stop', 'stop', $d2), qr/deployment $d2 of sandbox app stopped \(desired state stopped/, 'stop');
nx_wait_state($node, $d2, 'stopped', 'stop stops it');
like(nx_ok('start', 'start', $d2), qr/started \(desired state running/, 'start');
nx_wait_state($node, $d2, 'ready', 'start starts it');
my $pid2 = sql("SELECT pid FROM nx.status WHERE deployment = $d2");
nx_ok('restart d2', 'restart', $d2);
ok($node->poll_query_until('postgres', "SELECT pid <> $pid2 AND state = 'ready' FROM nx.status WHERE deployment = $d2"),
	'restart of the second deployment');

# --- verify, and a 32-bit ELF refused locally, before connecting
my $bad = "$dir/dbapp32";
copy($dbapp, $bad) or die "copy: $!";
open my $fh, '+<', $bad or die "$bad: $!";
binmode $fh;
seek $fh, 4, 0;
print $fh "\x01";
close $fh;
like(nx_ok('verify', 'verify', $dbapp), qr/: ok$/m, 'verify: ok');
my $rep = $json->decode(nx_ok('verify --json', 'verify', $dbapp, '--json'));
ok($rep->{ok} && $rep->{linkage} eq 'dynamic' && grep({ $_ eq 'libpq.so.5' } @{ $rep->{needed} }),
	'verify --json: the report');
is($rep->{sha256}, sha256_hex(slurp_file($dbapp)), 'verify --json: the sha256 of the file');
is($rep->{sha256}, sql("SELECT blob FROM nx.deployments WHERE id = $d1"), 'verify: the same sha256 as the server');
my $err = nx_fails('verify of a 32-bit ELF', 3, 'verify', $bad);
like($err, qr/32-bit/, 'verify: says why');
my ($rc, $vout) = nx('verify', $bad, '--json');
is($json->decode($vout)->{ok}, JSON::PP::false, 'verify --json: ok false');

my $before = sql('SELECT count(*) FROM nx.deployments');
$err = nx_fails('push of a 32-bit ELF', 3, '-d', "host=$dir/no-such-socket-dir port=1", 'push', 'app', $bad);
like($err, qr/^nx: error: \S+ cannot run here: file is a 32-bit ELF/m, 'push: the problem');
like($err, qr/^  hint: build a 64-bit Linux/m, 'push: the hint');
unlike($err, qr/connect/, 'push: refused before connecting (the server is unreachable)');
is(sql('SELECT count(*) FROM nx.deployments'), $before, 'nothing was pushed');

# --- a deployment that crashloops: exit 4 with its last lines
$err = nx_fails('push of a crashing app', 4, 'push', 'app', '/bin/sh', '--arg', '-c',
	'--arg', 'echo boom-$NX_DEPLOYMENT; exit 3', '--timeout', '90');
like($err, qr/^nx: error: deployment \d+ is in state crashloop: exited 5 times/m, 'crashloop: the error');
like($err, qr/^  \| boom-\d+$/m, 'crashloop: the last log lines');

# --- a progress bar on a terminal for files over 1 MiB, none otherwise
my $big = "$dir/dbapp-big";
copy($dbapp, $big) or die "copy: $!";
open my $bh, '>>', $big or die "$big: $!";
print $bh "\0" x (3 * 1024 * 1024);
close $bh;
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my $tout = `script -qec '$nx_bin push app $big --label big --no-wait' /dev/null 2>&1`;
	is($? >> 8, 0, 'push on a terminal: exit 0') or diag($tout);
	like($tout, qr{sending\s+[\d.]+ MiB / 3\.0 MiB 100%}, 'push on a terminal: the progress bar reaches 100%');
	my ($dbig) = $tout =~ /pushed deployment (\d+) \(label big\)/;
	ok($dbig, 'push on a terminal: the deployment');
	is(sql("SELECT b.bytes = pg_read_binary_file('$big') FROM nx.deployments d JOIN nx.blobs b ON b.sha256 = d.blob WHERE d.id = $dbig"),
		't', 'push with the progress bar: the blob is the file, byte for byte');
}
($rc, $out, $err) = nx('push', 'app', $big, '--label', 'big2', '--no-wait');
is($rc, 0, 'push of a large file, not on a terminal');
is($err, '', 'no progress bar when stderr is not a terminal');

# --- db url, psql (password in the environment only), dump and restore
my $password = sql(q{SELECT db_password FROM nx.sandbox_secrets WHERE sandbox = 'app'});
like(nx_ok('db url', 'db', 'url', 'app'), qr{^postgresql://nx_app:$password@/nx_app\?host=}, 'db url');
is(nx_ok('db psql', 'db', 'psql', 'app', '--', '-XAtc', 'SELECT current_user'), "nx_app\n",
	'db psql connects as the sandbox role');
{
	my $fake = "$dir/fakebin";
	mkdir $fake;
	open my $ph, '>', "$fake/psql" or die;
	print $ph "#!/bin/sh\necho \"ARGS: \$*\"\necho \"PW: \$PGPASSWORD\"\necho \"USER: \$PGUSER\"\n";
	close $ph;
	chmod 0755, "$fake/psql";
	local $ENV{PATH} = "$fake:$ENV{PATH}";
	my $fout = nx_ok('db psql (fake)', 'db', 'psql', 'app', '--', '-c', 'x');
	like($fout, qr/^ARGS: -c x$/m, 'db psql: only the given arguments');
	unlike((split /\n/, $fout)[0], qr/\Q$password\E/, 'db psql: no password on the command line');
	like($fout, qr/^PW: \Q$password\E$/m, 'db psql: the password in PGPASSWORD');
	like($fout, qr/^USER: nx_app$/m, 'db psql: the sandbox role in PGUSER');
}
sql('nx_app', q{INSERT INTO starts (deployment) VALUES ('marker ''quoted''')});
my $rows = sql('nx_app', q{SELECT string_agg(deployment, ',' ORDER BY at, deployment) FROM starts});
# the supervisor's hardening of every tenant database (revokes on
# pg_catalog's statistics functions) goes into the dump: wait for it, so
# that the restore below meets those entries
ok($node->poll_query_until('nx_app', q{SELECT proacl IS NOT NULL FROM pg_proc WHERE proname = 'pg_blocking_pids'}),
	'the tenant database is hardened');
like(nx_ok('db dump', 'db', 'dump', 'app', "$dir/app.dump"), qr/dumped database nx_app/, 'db dump');
ok(-s "$dir/app.dump", 'the dump file exists');
{
	my $list = '';
	IPC::Run::run([ 'pg_restore', '--list', "$dir/app.dump" ], '>', \$list);
	like($list, qr/ACL pg_catalog FUNCTION pg_blocking_pids/, 'the dump has the revokes on pg_catalog');
}
nx_ok('create copy', 'create', 'copy');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_copy'}, '1'),
	'the supervisor created nx_copy');
mkdir "$dir/tmp";
{
	local $ENV{TMPDIR} = "$dir/tmp";
	like(nx_ok('db restore', 'db', 'restore', 'copy', "$dir/app.dump"), qr/restored .* into database nx_copy/, 'db restore');
}
is(sql('nx_copy', q{SELECT string_agg(deployment, ',' ORDER BY at, deployment) FROM starts}), $rows,
	'the restored database has the same rows');
is(sql('nx_copy', q{SELECT tableowner FROM pg_tables WHERE tablename = 'starts'}), 'nx_copy',
	'restored tables belong to the sandbox role');
is(join(',', glob("$dir/tmp/nx-restore-*")), '', 'db restore: no list file left behind');

# --- a plain nx_user, connecting with PGUSER and a password from PGPASSFILE
# (scram over the socket): sees only its own sandboxes
sql(q{CREATE ROLE alice LOGIN PASSWORD 'alice-pw' IN ROLE nx_user});
{
	my $hba = $node->data_dir . '/pg_hba.conf';
	my @rules = split /^/, slurp_file($hba);
	splice @rules, 2, 0, "local postgres alice scram-sha-256\n";	# after the tenant lines
	open my $hh, '>', $hba or die "$hba: $!";
	print $hh @rules;
	close $hh;
	$node->reload;
	open my $pp, '>', "$dir/pgpass" or die;
	print $pp "*:*:*:alice:alice-pw\n";
	close $pp;
	chmod 0600, "$dir/pgpass";
}
my %alice = (PGUSER => 'alice', PGPASSFILE => "$dir/pgpass");
is_deeply($json->decode(nx_ok('alice: ls', \%alice, 'ls', '--json')), [], 'alice sees no sandbox of others');
$err = nx_fails('alice: status of another user\'s sandbox', 2, \%alice, 'status', 'app');
like($err, qr/sandbox "app" does not exist/, 'alice: another user\'s sandbox does not exist for her');
nx_fails('alice: stop of another user\'s deployment', 2, \%alice, 'stop', $d1);
nx_ok('alice: create', \%alice, 'create', 'alices');
my $mine = $json->decode(nx_ok('alice: ls again', \%alice, 'ls', '--json'));
is_deeply([ map { "$_->{sandbox}/$_->{owner}" } @$mine ], ['alices/alice'], 'alice: her own sandbox only');
nx_ok('alice: destroy', \%alice, 'destroy', 'alices');

# --- errors: one line each, non-zero exit
$err = nx_fails('unknown sandbox (status)', 2, 'status', 'nosuch');
like($err, qr/sandbox "nosuch" does not exist/, 'unknown sandbox: message');
$err = nx_fails('unknown sandbox (push)', 2, 'push', 'nosuch', $dbapp, '--no-wait');
like($err, qr/^nx: error: sandbox "nosuch" does not exist\n  hint: /, 'unknown sandbox: the server message and hint');
nx_fails('unknown sandbox (logs)', 2, 'logs', 'nosuch');
nx_fails('unknown sandbox (env list)', 2, 'env', 'nosuch', 'list');
nx_fails('unknown sandbox (db url)', 2, 'db', 'url', 'nosuch');
$err = nx_fails('bad name', 2, 'create', 'MyApp');
like($err, qr/^nx: error: sandbox name "MyApp" contains uppercase letters\n  detail: A sandbox name is/, 'bad name: message and detail');
like($err, qr/^  hint: Use "myapp"\.$/m, 'bad name: hint');
nx_fails('reserved env name', 2, 'env', 'app', 'set', 'PORT=1');
nx_fails('unknown deployment', 2, 'stop', '999999');
nx_fails('unknown command', 1, 'frob');
nx_fails('no command', 1);
nx_fails('unknown option', 1, 'ls', '--frob');
nx_fails('missing argument (push)', 1, 'push', 'app');
nx_fails('missing argument (stop)', 1, 'stop');
nx_fails('missing argument (env)', 1, 'env', 'app');
nx_fails('missing argument (logs)', 1, 'logs');
nx_fails('missing argument (create)', 1, 'create');
nx_fails('missing option value', 1, 'push', 'app', $dbapp, '--label');
nx_fails('bad deployment id', 1, 'restart', '12x');
nx_fails('bad -n', 1, 'logs', 'app', '-n', '0');
nx_fails('missing file', 1, 'push', 'app', "$dir/no-such-file");
$err = nx_fails('no server', 2, '-d', "host=$dir/no-such-socket-dir port=1", 'ls');
like($err, qr/^nx: error: cannot connect to the control database: .*No such file or directory/, 'no server: the reason on one line');

# --- -d overrides the environment
my $viad = $json->decode(nx_ok('-d CONNSTR', { PGHOST => "$dir/no-such-socket-dir" },
	'-d', $node->connstr('postgres'), 'ls', '--json'));
is(scalar(@$viad), 2, '-d CONNSTR: connected to the cluster despite PGHOST');
$viad = $json->decode(nx_ok('--dbname=CONNSTR', { PGHOST => "$dir/no-such-socket-dir" },
	'status', 'app', '--dbname=' . $node->connstr('postgres'), '--json'));
ok(scalar(@$viad) >= 2, '--dbname=CONNSTR after the command');

# --- start, stop, restart by sandbox name: the production deployment
# (else the newest), or SANDBOX DEPLOYMENT; the id form still works
{
	my $prod = sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'});
	my $pid = sql("SELECT pid FROM nx.status WHERE deployment = $prod");
	like(nx_ok('restart SANDBOX', 'restart', 'app'),
		qr/^deployment $prod of sandbox app restarted \(desired state running/m, 'restart SANDBOX: the production deployment');
	ok($node->poll_query_until('postgres', "SELECT pid <> $pid AND state = 'ready' FROM nx.status WHERE deployment = $prod"),
		'restart SANDBOX: a new process');
	like(nx_ok('stop SANDBOX', 'stop', 'app'), qr/^deployment $prod of sandbox app stopped/m, 'stop SANDBOX');
	nx_wait_state($node, $prod, 'stopped', 'stop SANDBOX stops production');
	my $row = $json->decode(nx_ok('start SANDBOX --json', 'start', 'app', '--json'));
	is($row->{deployment}, $prod, 'start SANDBOX --json: the status row of production');
	nx_wait_state($node, $prod, 'ready', 'start SANDBOX starts it');
	my $other = $prod == $d1 ? $d2 : $d1;
	like(nx_ok('restart SANDBOX DEPLOYMENT', 'restart', 'app', $other),
		qr/^deployment $other of sandbox app restarted/m, 'restart SANDBOX DEPLOYMENT');
	nx_wait_state($node, $other, 'ready', 'the other deployment is ready again');
	$err = nx_fails('restart SANDBOX with another sandbox\'s deployment', 2, 'restart', 'app', '999999');
	like($err, qr/^nx: error: deployment 999999 is not a deployment of sandbox "app"\n  hint: "nx status app" lists its deployments$/m,
		'restart SANDBOX DEPLOYMENT: a deployment of another sandbox is refused, in CLI terms');
	$err = nx_fails('restart of an unknown sandbox', 2, 'restart', 'nosuch');
	like($err, qr/sandbox "nosuch" does not exist/, 'restart SANDBOX: unknown sandbox');
	nx_fails('restart: an id with a deployment', 1, 'restart', $other, $other);
	nx_fails('restart: a bad DEPLOYMENT', 1, 'restart', 'app', 'x1');
	$err = nx_fails('start of a sandbox without deployments', 2, 'start', 'copy');
	like($err, qr/^nx: error: sandbox "copy" has no deployment\n  hint: push one first: "nx push copy FILE"$/m,
		'start SANDBOX: no deployment to start');
}

# --- push --name, arguments after -- with $PORT expanded by the platform
{
	$out = nx_ok('push --name -- ARGS', 'push', 'app', '/bin/sh', '--name', 'shell', '--label', 'sh', '--no-wait',
		'--', '-c', 'echo "port=$PORT argv0=$$0 sandbox=${NX_SANDBOX}"; exec sleep 600');
	my ($dsh) = $out =~ /pushed deployment (\d+) \(label sh\)/;
	ok($dsh, 'push --name: the deployment');
	like($out, qr/^command: shell -c 'echo "port=\$PORT argv0=\$\$0 sandbox=\$\{NX_SANDBOX\}"; exec sleep 600'$/m,
		'push: prints the command line as stored');
	is(sql("SELECT binary_name || ' ' || array_to_string(args, '|') FROM nx.deployments WHERE id = $dsh"),
		'shell -c|echo "port=$PORT argv0=$$0 sandbox=${NX_SANDBOX}"; exec sleep 600',
		'push: --name and the arguments after -- arrive verbatim');
	my $port = sql("SELECT port FROM nx.status WHERE deployment = $dsh");
	ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM nx.logs('app', $dsh) l WHERE l = 'port=$port argv0=/app/shell sandbox=app'"),
		'push: $PORT, $$ and ${NX_SANDBOX} expanded by the platform at the start; argv[0] from --name')
	  or diag(nx('logs', 'app', $dsh));

	# a refused promote exits 2 (docs/cli.md), with the hint in CLI terms
	$err = nx_fails('promote of a deployment that is not ready', 2, 'promote', 'app', $dsh);
	like($err, qr/^nx: error: cannot promote deployment $dsh: it is not ready/m, 'refused promote: the message');
	like($err, qr/^  hint: .*"nx logs app $dsh"; add --force to promote it anyway$/m, 'refused promote: --force, not force => true');
	unlike($err, qr/force =>|nx\.logs\(/, 'refused promote: no SQL in the hint');

	# the default name: the file's base name, made of the allowed characters
	my $odd = "$dir/my app+v2";
	copy($dbapp, $odd) or die "copy: $!";
	chmod 0755, $odd;
	my ($rc2, $o2, $e2) = nx('push', 'app', $odd, '--no-wait', '--label', 'odd');
	is($rc2, 0, 'push of "my app+v2": exit 0') or diag($e2);
	like($e2, qr/^nx: note: binary name "my_app_v2"/m, 'push: a note says which name it made');
	my ($dodd) = $o2 =~ /pushed deployment (\d+)/;
	is(sql("SELECT binary_name FROM nx.deployments WHERE id = $dodd"), 'my_app_v2', 'push: the sanitised base name');
	is(sql("SELECT binary_name FROM nx.deployments WHERE id = $d1"), 'dbapp', 'push: the base name by default');
	$err = nx_fails('push --name with a slash', 2, 'push', 'app', $dbapp, '--name', '../x', '--no-wait');
	like($err, qr/^nx: error: invalid binary name '\.\.\/x'/m, 'push --name: the server refuses a bad name');
	like($err, qr/^  hint: choose it with --name NAME/m, 'push --name: the hint in CLI terms');
	$err = nx_fails('push: a variable the platform does not expand', 2, 'push', 'app', $dbapp, '--no-wait', '--', '$HOME');
	like($err, qr/uses \$HOME, which is not a variable the platform expands/, 'push: unknown $NAME refused at push');
	nx_fails('push: --arg and -- together', 1, 'push', 'app', $dbapp, '--arg', 'a', '--', 'b');
	copy($dbapp, "$dir/+++") or die "copy: $!";
	$err = nx_fails('push: a base name with nothing usable', 1, 'push', 'app', "$dir/+++", '--no-wait');
	like($err, qr/cannot make a binary name from .*give one with --name NAME/, 'push: says why, and what to do');

	# --- remove SANDBOX DEPLOYMENT
	like(nx_ok('remove', 'remove', 'app', $dodd), qr/^deployment $dodd of sandbox app removed/m, 'remove');
	is(sql("SELECT desired_state FROM nx.deployments WHERE id = $dodd"), 'removed', 'remove: removed');
	is(sql("SELECT count(*) FROM nx.status WHERE deployment = $dodd"), '0', 'remove: gone from nx.status');
	$err = nx_fails('remove again', 2, 'remove', 'app', $dodd);
	like($err, qr/^nx: error: deployment $dodd of sandbox "app" was removed$/m, 'remove again: says it was removed');
	my $prod = sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'});
	$err = nx_fails('remove production', 2, 'remove', 'app', $prod);
	like($err, qr/it is the production deployment of sandbox "app"\n  hint: promote another deployment first \("nx promote app DEPLOYMENT" or "nx rollback app"\)/,
		'remove production: refused, with the CLI hint');
	$err = nx_fails('remove by id alone', 1, 'remove', $dsh);
	like($err, qr/give the sandbox too: nx remove SANDBOX $dsh/, 'remove needs the sandbox');
	nx_fails('remove without DEPLOYMENT', 1, 'remove', 'app');
	my $rm = $json->decode(nx_ok('remove --json', 'remove', 'app', $dsh, '--json'));
	is_deeply($rm, { sandbox => 'app', deployment => $dsh, removed => JSON::PP::true }, 'remove --json');
}

# --- databases of previews: push --database, create/alter --preview-database,
# db --deployment, and the promotion of a preview with a database of its own
# (a new deployment on the production database, production once ready)
{
	# four dbapp deployments hold a connection of role nx_app each (limit
	# 5); a promotion below starts one more, and a second one replaces the
	# first while its process may still hold a connection: room for both,
	# or the new deployment's connects fail until the replaced one is gone
	nx_ok('alter --connection-limit: room for the promotions', 'alter', 'app', '--connection-limit', '10');
	ok($node->poll_query_until('postgres', q{SELECT rolconnlimit FROM pg_roles WHERE rolname = 'nx_app'}, '10'),
		'the supervisor applied the connection limit');
	$out = nx_ok('push --database empty', 'push', 'app', $dbapp, '--database', 'empty', '--label', 'own', '--no-wait');
	my ($dempty) = $out =~ /pushed deployment (\d+) \(label own\)/;
	like(nx_ok('status shows the database mode', 'status', 'app'), qr/^app\s+$dempty\s+own\s+\S+\s+running\s+no\s+empty\s/m,
		'status: the DATABASE MODE column');
	like(nx_ok('db url --deployment', 'db', 'url', 'app', '--deployment', $dempty),
		qr{^postgresql://nx_app_$dempty:[a-z2-7]+@/nx_app_$dempty\?host=}, 'db url --deployment: the preview\'s own database');
	$err = nx_fails('push --database bogus', 2, 'push', 'app', $dbapp, '--database', 'bogus', '--no-wait');
	like($err, qr/^nx: error: invalid database 'bogus'\n.*\n  hint: use branch \(a copy of the production database\), empty, or production/m,
		'push --database: a bad mode, the hint in CLI terms');
	$out = nx_ok('promote of a preview with its own database, --no-wait', 'promote', 'app', $dempty, '--no-wait');
	my ($dnew) = $out =~ /as deployment (\d+), which becomes production once ready/;
	ok($dnew, 'promote --no-wait: says which new deployment becomes production') or diag($out);
	like($out, qr/^deployment $dnew of sandbox app becomes production once ready \(desired state running/m,
		'promote --no-wait: the new deployment\'s row');
	is(sql("SELECT promote_from || ' ' || database_mode FROM nx.status WHERE deployment = $dnew"), "$dempty production",
		'promote: the new deployment runs the preview on the production database');
	{
		my ($prc, $pout, $perr) = nx('promote', 'app', $dempty, '--timeout', '30');
		is($prc, 0, 'promote waits until the new deployment is production') or diag($perr);
		my $pnew = sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'});
		is(sql("SELECT promote_from || ' ' || database_mode FROM nx.status WHERE deployment = $pnew"), "$dempty production",
			'promote: production is a new deployment of the preview on the production database');
	}
	my $prod = sql(q{SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app'});
	for my $d (sort { $a <=> $b } split /\n/, sql(q{SELECT deployment FROM nx.status WHERE sandbox = 'app' AND NOT production
		AND (promote_from IS NOT NULL OR database_mode <> 'production')}))
	{
		nx_ok("remove $d", 'remove', 'app', $d);
	}
	like(nx_ok('alter --preview-database', 'alter', 'app', '--preview-database', 'empty'),
		qr/^  preview database\s+production -> empty\s+\(for the next push\)$/m, 'alter --preview-database: for the next push');
	is(sql(q{SELECT preview_database FROM nx.sandbox_info WHERE sandbox = 'app'}), 'empty', 'alter --preview-database');
	nx_ok('alter --preview-database back', 'alter', 'app', '--preview-database', 'production');
	nx_fails('db kept --deployment', 1, 'db', 'kept', '--deployment', '1');
}

# --- alter, and the new limits in nx info / nx ls / nx.sandbox_info
{
	$out = nx_ok('alter', 'alter', 'app', '--memory', '300MB', '--pids', '100', '--open-files', '600',
		'--cpu-weight', '50', '--tmp', '16MB', '--idle-timeout', '20min', '--connection-limit', '7',
		'--database-quota', '200MB');
	like($out, qr/^  memory\s+256 MB -> 300 MB\s+\(at each deployment's next start\)$/m, 'alter: memory, old and new, next start');
	like($out, qr/^  idle timeout\s+00:10:00 -> 00:20:00\s+\(now\)$/m, 'alter: idle timeout applies now');
	like($out, qr/"nx restart app \[DEPLOYMENT\]" applies the new limits/, 'alter: how to apply them now');
	is(sql(q{SELECT concat_ws(' ', memory_limit, pids_limit, open_files_limit, cpu_weight, tmp_size,
		idle_timeout, connection_limit, database_quota) FROM nx.sandbox_info WHERE sandbox = 'app'}),
		'300 MB 100 600 50 16 MB 00:20:00 7 200 MB', 'alter: every limit in nx.sandbox_info');
	my $info = $json->decode(nx_ok('info --json', 'info', 'app', '--json'));
	is($info->{memory_limit}, '300 MB', 'info --json: the new memory limit');
	is($info->{pids_limit}, 100, 'info --json: the new pids limit');
	like(nx_ok('info', 'info', 'app'), qr/^memory limit:\s+300 MB$/m, 'info: the new memory limit');
	my ($app) = grep { $_->{sandbox} eq 'app' } @{ $json->decode(nx_ok('ls --json', 'ls', '--json')) };
	is($app->{memory_limit}, '300 MB', 'ls --json: the new memory limit');
	my $alt = $json->decode(nx_ok('alter --json', 'alter', 'app', '--memory', '256MB', '--json'));
	is($alt->{memory_limit}, '256 MB', 'alter --json: the nx.sandbox_info row');
	$err = nx_fails('alter without a limit', 1, 'alter', 'app');
	like($err, qr/nothing to change: give one or more of --memory/, 'alter: nothing to change');
	$err = nx_fails('alter out of range', 2, 'alter', 'app', '--memory', '8MB');
	like($err, qr/^nx: error: memory_limit 8192 kB is out of range\n  detail: .*\n  hint: give --memory a value in that range$/m,
		'alter out of range: the server\'s message, the option in the hint');
	nx_fails('alter: not an integer', 1, 'alter', 'app', '--pids', 'lots');
	$err = nx_fails('alter: a mistyped option', 1, 'alter', 'app', '--memroy', '1GB');
	like($err, qr/^  hint: did you mean "--memory"\?$/m, 'alter: did you mean --memory');
	nx_fails('alter of an unknown sandbox', 2, 'alter', 'nosuch', '--pids', '64');
}

# --- create with --database-quota, --owner and --tmp
{
	my $q = $json->decode(nx_ok('create with every option', 'create', 'quota', '--database-quota', '64MB',
		'--owner', 'postgres', '--tmp', '8MB', '--json'));
	is(join(' ', @$q{qw(database_quota owner tmp_size)}), '64 MB postgres 8192 kB', 'create: --database-quota, --owner, --tmp');
	$err = nx_fails('create --owner nx_user', 2, 'create', 'shared', '--owner', 'nx_user');
	like($err, qr/^  hint: .*pass --owner team$/m, 'create --owner: the hint speaks CLI');
	unlike($err, qr/owner =>/, 'create --owner: no SQL in the hint');
	nx_ok('destroy quota', 'destroy', 'quota');
}

# --- domains add / ls / check / approve / rm
{
	$out = nx_ok('domains add', 'domains', 'add', 'app', 'App.Example.com');
	my $txt = sql(q{SELECT txt_name || '.  TXT  "' || txt_value || '"' FROM nx.domain_info WHERE domain = 'app.example.com'});
	like($out, qr/^claimed domain app\.example\.com for sandbox app: pending$/m, 'domains add: claimed, pending');
	like($out, qr/^  \Q$txt\E$/m, 'domains add: the TXT record to create');
	like($out, qr/routes once verified/, 'domains add: says it routes once verified');
	like(nx_ok('domains ls', 'domains', 'ls'), qr/^app\.example\.com\s+app\s+pending/m, 'domains ls: pending');
	is_deeply($json->decode(nx_ok('alice: domains ls', \%alice, 'domains', 'ls', '--json')), [],
		'alice: domains ls shows none of another user\'s');
	nx_fails('alice: domains rm of another user\'s domain', 2, \%alice, 'domains', 'rm', 'app.example.com');
	nx_fails('alice: alter of another user\'s sandbox', 2, \%alice, 'alter', 'app', '--pids', '64');
	my $dl = $json->decode(nx_ok('domains ls --json', 'domains', 'ls', 'app', '--json'));
	is_deeply([ map { "$_->{domain} $_->{state}" } @$dl ], ['app.example.com pending'], 'domains ls SANDBOX --json');
	my $chk = $json->decode(nx_ok('domains check', 'domains', 'check', 'app', 'app.example.com', '--timeout', '0.5', '--json'));
	is($chk->{state}, 'pending', 'domains check: still pending without the record');
	like(nx_ok('domains approve', 'domains', 'approve', 'app', 'app.example.com'),
		qr/^approved domain app\.example\.com for sandbox app: verified$/m, 'domains approve (nx_admin)');
	is(sql(q{SELECT count(*) FROM nx.routes WHERE host = 'app.example.com'}), '1', 'the verified domain routes');
	nx_ok('domains add copy', 'domains', 'add', 'copy', 'shared.example.com');
	nx_ok('domains add app', 'domains', 'add', 'app', 'shared.example.com');
	like(nx_ok('domains rm SANDBOX of a name two sandboxes claim', 'domains', 'rm', 'app', 'shared.example.com'),
		qr/^domain shared\.example\.com removed from sandbox app$/m, 'domains rm SANDBOX DOMAIN: only that claim');
	is(sql(q{SELECT string_agg(sandbox, ',') FROM nx.domains WHERE domain = 'shared.example.com'}), 'copy',
		'domains rm SANDBOX DOMAIN: the other sandbox keeps its claim');
	nx_ok('domains add app again', 'domains', 'add', 'app', 'shared.example.com');
	like(nx_ok('domains rm DOMAIN', 'domains', 'rm', 'shared.example.com'),
		qr/^domain shared\.example\.com removed from sandbox app, copy$/m, 'domains rm DOMAIN: every claim');
	like(nx_ok('domains rm SANDBOX DOMAIN', 'domains', 'rm', 'app', 'app.example.com'),
		qr/^domain app\.example\.com removed from sandbox app$/m, 'domains rm SANDBOX DOMAIN');
	is(sql(q{SELECT count(*) FROM nx.domains}), '0', 'domains rm: no claim left');
	$err = nx_fails('domains rm of an unknown domain', 2, 'domains', 'rm', 'nope.example.com');
	like($err, qr/^nx: error: domain "nope\.example\.com" does not exist\n  hint: "nx domains ls" lists yours$/m,
		'domains rm: unknown domain, CLI hint');
	$err = nx_fails('domains check of an unclaimed domain', 2, 'domains', 'check', 'nope.example.com');
	like($err, qr/hint: claim it first: "nx domains add SANDBOX nope\.example\.com"/, 'domains check: unclaimed, CLI hint');
	$err = nx_fails('domains add of a reserved name', 2, 'domains', 'add', 'app', 'x.localhost');
	like($err, qr/is reserved/, 'domains add: reserved name');
	$err = nx_fails('domains: mistyped action', 1, 'domains', 'ad', 'app', 'x.example.com');
	like($err, qr/^  hint: did you mean "add"\?$/m, 'domains: did you mean add');
	nx_fails('domains add without DOMAIN', 1, 'domains', 'add', 'app');
}

# --- did you mean
$err = nx_fails('mistyped command', 1, 'stauts');
like($err, qr/^nx: error: unknown command "stauts"\n  hint: did you mean "status"\?\n  hint: see "nx --help"$/,
	'mistyped command: did you mean');
like(nx_fails('a synonym', 1, 'deploy', 'app', $dbapp), qr/did you mean "push"\?/, 'deploy: did you mean push');
like(nx_fails('mistyped option', 1, 'push', 'app', $dbapp, '--lable=v3'), qr/did you mean "--label"\?/,
	'mistyped option: did you mean');
like(nx_fails('mistyped env action', 1, 'env', 'app', 'lsit'), qr/did you mean "list"\?/, 'env: did you mean list');
like(nx_fails('mistyped sandbox', 2, 'status', 'ap'), qr/^  hint: did you mean "app"\?$/m, 'mistyped sandbox: did you mean');
unlike(nx_fails('nothing close', 1, 'xyzzy'), qr/did you mean/, 'no suggestion when nothing is close');

# --- errors under --json: one JSON object on stderr
sub json_error
{
	my ($name, $want_rc, @args) = @_;
	my ($rc, $out, $err) = nx(@args);
	is($rc, $want_rc, "$name: exit $want_rc");
	is(scalar(() = $err =~ /\n/g), 1, "$name: one line on stderr") or diag($err);
	my $e = eval { $json->decode($err) };
	ok($e, "$name: stderr is JSON") or diag($err);
	is($e->{exit_code}, $want_rc, "$name: exit_code in the JSON") if $e;
	return $e // {};
}
my $je = json_error('--json: server error', 2, '--json', 'promote', 'app', '999999');
is($je->{sqlstate}, '42704', '--json: the SQLSTATE');
is($je->{message}, 'deployment 999999 is not a deployment of sandbox "app"', '--json: the message');
is($je->{hint}, '"nx status app" lists its deployments', '--json: the CLI hint');
like($je->{server_hint}, qr/nx\.status lists the deployments/, '--json: the server\'s hint kept');
ok(exists $je->{detail}, '--json: detail (null)');
$je = json_error('--json: usage error', 1, 'stauts', '--json');
is($je->{sqlstate}, undef, '--json usage error: no SQLSTATE');
like($je->{hint}, qr/did you mean "status"/, '--json usage error: the hint');
$je = json_error('--json: connection error', 2, '--json', '-d', "host=$dir/no-such-socket-dir port=1", 'ls');
is($je->{sqlstate}, '08001', '--json connection error: SQLSTATE 08001');
$je = json_error('--json: not ready', 4, '--json', 'push', 'app', '/bin/sh', '--timeout', '90', '--', '-c', 'echo bye; exit 1');
like($je->{message}, qr/is in state crashloop/, '--json exit 4: the message');
ok(grep({ $_ eq 'bye' } @{ $je->{log} // [] }), '--json exit 4: the log lines in the object');
nx_ok('remove the crashing one', 'remove', 'app', sql(q{SELECT max(deployment) FROM nx.status WHERE sandbox = 'app'}));
$je = json_error('--json: refused locally', 3, '--json', 'push', 'app', $bad);
like($je->{detail}, qr/32-bit/, '--json exit 3: the problems as detail');

# --- the wrong database: say which one was reached and how to pick another
sql('CREATE DATABASE other');
$err = nx_fails('a database without the extension', 2, { PGDATABASE => 'other' }, 'ls');
like($err, qr/^nx: error: database "other" is not an nx control database: it has no nx_sandbox extension$/m,
	'no extension: says so');
like($err, qr/^  detail: relation "nx\.sandbox_info" does not exist$/m, 'no extension: the server\'s message kept');
like($err, qr/^  detail: connected to database "other" as role/m, 'no extension: where it connected');
like($err, qr/^  hint: .*-d 'dbname=NAME', PGDATABASE=NAME, or PGSERVICE=NAME/m, 'no extension: how to pick another');
$je = json_error('--json: no extension', 2, { PGDATABASE => 'other' }, 'create', 'x', '--json');
is($je->{sqlstate}, '3F000', 'no extension (a function): schema nx does not exist');
$err = nx_fails('a database that does not exist', 2, { PGDATABASE => 'nosuchdb' }, 'ls');
like($err, qr/database "nosuchdb" does not exist.*\n  hint: connect to the database where CREATE EXTENSION/,
	'no database: the hint');

# --- a saved connection: libpq's service file (PGSERVICE, PGSERVICEFILE)
{
	open my $sf, '>', "$dir/pg_service.conf" or die;
	printf $sf "[nx-test]\nhost=%s\nport=%s\ndbname=postgres\n", $node->host, $node->port;
	close $sf;
	my $viasvc = $json->decode(nx_ok('PGSERVICE', { PGSERVICEFILE => "$dir/pg_service.conf", PGSERVICE => 'nx-test',
		PGDATABASE => 'other' }, 'ls', '--json'));
	ok(grep({ $_->{sandbox} eq 'app' } @$viasvc), 'PGSERVICE: the service file\'s database, over PGDATABASE');
	$viasvc = $json->decode(nx_ok('-d service=', { PGSERVICEFILE => "$dir/pg_service.conf", PGDATABASE => 'other' },
		'-d', 'service=nx-test', 'ls', '--json'));
	ok(grep({ $_->{sandbox} eq 'app' } @$viasvc), '-d service=NAME');
}

# --- destroy
my $kept = $json->decode(nx_ok('create kept', 'create', 'kept', '--json'));
is($kept->{database_name}, 'nx_kept', 'create --json: the sandbox_info row');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_kept'}, '1'),
	'the supervisor created nx_kept');
nx_ok('destroy --keep-database', 'destroy', 'kept', '--keep-database');
is(sql(q{SELECT count(*) FROM nx.kept_databases WHERE sandbox = 'kept'}), '1', '--keep-database keeps the database');
nx_fails('create with a kept name', 2, 'create', 'kept');
like(nx_ok('destroy', 'destroy', 'copy'), qr/destroyed sandbox copy/, 'destroy');
is(sql(q{SELECT count(*) FROM nx.sandboxes WHERE name = 'copy'}), '0', 'destroy dropped the sandbox');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_copy'}, '0'),
	'destroy: its database is dropped');
nx_fails('destroy again', 2, 'destroy', 'copy');

$node->stop('fast');
done_testing();
