# t/030_cli.pl
#   The nx command-line client (build/nx) against a cluster with the
#   supervisor: push waits until ready and promotes; status, ls, logs
#   (also followed), env, promote/rollback, stop/start/restart; a binary
#   that cannot run is refused locally before any connection; a deployment
#   that crashloops exits 4 with its logs; a progress bar on a terminal;
#   a plain nx_user sees only its own; db url/psql/dump/restore; every
#   error path prints exactly one "nx: error:" line and exits non-zero;
#   --json output parses.
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
# usual libpq variables); returns (exit code, stdout, stderr).
sub nx
{
	my (@args) = @_;
	my $extra = ref $args[0] eq 'HASH' ? shift @args : {};
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	local @ENV{ keys %$extra } = values %$extra;
	IPC::Run::run([ $nx_bin, @args ], '<', \undef, '>', \$out, '2>', \$err,
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
like(nx_ok('db dump', 'db', 'dump', 'app', "$dir/app.dump"), qr/dumped database nx_app/, 'db dump');
ok(-s "$dir/app.dump", 'the dump file exists');
nx_ok('create copy', 'create', 'copy');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'nx_copy'}, '1'),
	'the supervisor created nx_copy');
like(nx_ok('db restore', 'db', 'restore', 'copy', "$dir/app.dump"), qr/restored .* into database nx_copy/, 'db restore');
is(sql('nx_copy', q{SELECT string_agg(deployment, ',' ORDER BY at, deployment) FROM starts}), $rows,
	'the restored database has the same rows');
is(sql('nx_copy', q{SELECT tableowner FROM pg_tables WHERE tablename = 'starts'}), 'nx_copy',
	'restored tables belong to the sandbox role');

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
