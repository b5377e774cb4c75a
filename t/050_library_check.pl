# t/050_library_check.pl
#   The library check (src/elf/nx_libcheck.c) on a real host, through
#   nx.verify_binary, nx.push and the nx client, with binaries built here
#   by gcc against the host fixtures of t/fixtures/ld-fixtures.sh (which
#   scripts/test-all.sh installs as root before the suites):
#     - an app linked against libnxconf.so.1, found only through
#       /etc/ld.so.conf.d/nx-test.conf + ldconfig in /usr/local/lib/nx-test:
#       accepted, and it really runs in a sandbox (its answer comes from the
#       library, fetched through nx-router);
#     - one linked against libnxhidden.so.1, cached in /opt/nx-test/lib,
#       which sandboxes do not see: refused, saying so;
#     - one needing a library that is nowhere: refused, "not found anywhere";
#     - RUNPATH $ORIGIN/lib and an RPATH in /opt: refused with those reasons;
#     - one built against a newer libnxconf (version NXCONF_2.0 from a
#       version script; the host's has NXCONF_1.0 only): refused with the
#       version, the host's newest and a hint;
#     - one needing GLIBC_2.99: a program built here, whose GLIBC_2.34
#       requirement (__libc_start_main) is renamed GLIBC_2.99 in place (same
#       length; glibc's own loader then refuses it too, which is checked):
#       refused at push with 58P01 and "this host has glibc 2.NN".
#   Fails (rather than skips) when the fixtures are missing.
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use IPC::Run;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $nx_bin = 'build/nx';
BAIL_OUT("$nx_bin is missing: make build/nx") unless -x $nx_bin;
my $conf_lib = '/usr/local/lib/nx-test/libnxconf.so.1';
my $hidden_lib = '/opt/nx-test/lib/libnxhidden.so.1';
BAIL_OUT('the library fixtures are missing: run t/fixtures/ld-fixtures.sh install as root '
	  . '(scripts/test-all.sh does)')
  unless system('sh', 't/fixtures/ld-fixtures.sh', 'status') == 0;

my $node = nx_node('libcheck');
nx_require_host_setup($node);
my $dir = $node->basedir;

sub sql { return $node->safe_psql('postgres', $_[0]); }

# build(NAME, GCC ARGS...): a program in the node's directory
sub build
{
	my ($name, @args) = @_;
	my $out = "$dir/$name";
	system('gcc', '-O2', '-o', $out, @args) == 0 or die "cannot build $name";
	return $out;
}

# refusal(FILE): what nx.push says about FILE: SQLSTATE, message, hint
sub refusal
{
	my ($file) = @_;
	return sql(qq{SELECT push_error(pg_read_binary_file('$file'))});
}

# nx(ARGS...): the client; (exit code, stdout, stderr)
sub nx
{
	my (@args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ $nx_bin, @args ], '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(60));
	return ($? >> 8, $out, $err);
}

sql(q{SELECT nx.create_sandbox('libs')});
sql(q{CREATE FUNCTION push_error(b bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; hnt text;
BEGIN
	PERFORM nx.push('libs', b);
	RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
	RETURN st || E'\n' || msg || E'\n' || hnt;
END $$});

# --- found through ld.so.conf.d: accepted, and it runs
my $conf_app = build('conf_app', 't/fixtures/conf_app.c', $conf_lib);
is(sql(qq{SELECT ok, problems, missing_libraries, missing_versions
	FROM nx.verify_binary(pg_read_binary_file('$conf_app'))}),
	't|{}|{}|{}', 'a library found only through ld.so.conf.d is accepted');
my ($rc, $out, $err) = nx('verify', $conf_app);
is($rc, 0, 'nx verify accepts it too') or diag("$out$err");

my $d = sql(qq{SELECT deployment FROM nx.push('libs', pg_read_binary_file('$conf_app'))});
nx_wait_state($node, $d, 'ready', 'the app linked against it starts in a sandbox');
my $slug = sql(qq{SELECT slug FROM nx.deployments WHERE id = $d});
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $router_log) = nx_start_router($node, $port);
my $got = '';
for (1 .. 100)
{
	$got = nx_http_get($port, "$slug.preview.localhost", '/', 10);
	last if $got =~ /200 OK/;
	usleep(100_000);
}
like($got, qr{200 OK.*nxconf answer 42 from deployment $d\n}s,
	'it answers with what the library returns') or diag(slurp_file($router_log));
$router->kill_kill;

# --- cached in a directory the sandbox does not see
my $hidden_app = build('hidden_app', 't/fixtures/conf_app.c', $hidden_lib);
my $hidden_msg = 'library libnxhidden.so.1 cannot be loaded in the sandbox: found in /opt/nx-test/lib '
  . '(listed in /etc/ld.so.cache) but the sandbox does not see that directory';
is(refusal($hidden_app),
	"58P01\nbinary cannot run on this host: $hidden_msg\n"
	  . 'link statically (CGO_ENABLED=0, -static, or a musl target) or install the missing files on the server',
	'a library cached in /opt is refused with that reason');
is(sql(qq{SELECT missing_libraries FROM nx.verify_binary(pg_read_binary_file('$hidden_app'))}),
	'{libnxhidden.so.1}', 'missing_libraries names it');
($rc, $out, $err) = nx('verify', '--json', $hidden_app);
is($rc, 3, 'nx verify refuses it (exit 3)');
like($out, qr{"problems": \["\Q$hidden_msg\E"\].*"missing_libraries": \["libnxhidden.so.1"\]},
	'nx verify --json says the same');

# --- not anywhere
mkdir("$dir/gone");
system('gcc', '-shared', '-fPIC', '-Wl,-soname,libnxgone.so.1', '-o', "$dir/gone/libnxgone.so.1",
	't/fixtures/libnxconf.c') == 0 or die 'cannot build libnxgone';
my $gone_app = build('gone_app', 't/fixtures/conf_app.c', "$dir/gone/libnxgone.so.1");
like(refusal($gone_app),
	qr{^58P01\nbinary cannot run on this host: library libnxgone\.so\.1 is not found anywhere: not in /etc/ld\.so\.cache, nor in /lib/\S+, /usr/lib/\S+, /lib or /usr/lib\n}s,
	'a missing library is refused: not found anywhere');

# --- RUNPATH $ORIGIN (the sandbox's /app has only the binary), RPATH /opt
my $origin_app = build('origin_app', 't/fixtures/conf_app.c', "$dir/gone/libnxgone.so.1",
	'-Wl,--enable-new-dtags', '-Wl,-rpath,$ORIGIN/lib');
like(refusal($origin_app),
	qr{\nbinary cannot run on this host: library libnxgone\.so\.1 cannot be loaded in the sandbox: RUNPATH \$ORIGIN/lib: the sandbox's /app holds only the binary\n},
	'RUNPATH $ORIGIN/lib: the reason is /app');
my $rpath_app = build('rpath_app', 't/fixtures/conf_app.c', "$dir/gone/libnxgone.so.1",
	'-Wl,--disable-new-dtags', '-Wl,-rpath,/opt/nx-test/lib');
like(refusal($rpath_app),
	qr{library libnxgone\.so\.1 cannot be loaded in the sandbox: RPATH /opt/nx-test/lib: the sandbox does not see that directory\n},
	'RPATH /opt/nx-test/lib: the reason is /opt');

# --- built against a newer libnxconf (NXCONF_2.0, from a version script)
mkdir("$dir/v2");
system('gcc', '-shared', '-fPIC', '-DNXCONF_V2', '-Wl,-soname,libnxconf.so.1',
	'-Wl,--version-script=t/fixtures/libnxconf2.map', '-o', "$dir/v2/libnxconf.so.1",
	't/fixtures/libnxconf.c') == 0 or die 'cannot build the newer libnxconf';
my $v2_app = build('v2_app', '-DNXCONF_V2', 't/fixtures/conf_app.c', "$dir/v2/libnxconf.so.1");
is(refusal($v2_app),
	"58P01\nbinary cannot run on this host: the binary needs NXCONF_2.0 from libnxconf.so.1, which this host's "
	  . "/usr/local/lib/nx-test/libnxconf.so.1 does not define (its newest is NXCONF_1.0)\n"
	  . 'built against a newer libnxconf.so.1 (NXCONF_2.0; this host has NXCONF_1.0): build against the version this host has, or link it statically',
	'a version the host library does not define is refused, with the hint');
is(sql(qq{SELECT missing_versions FROM nx.verify_binary(pg_read_binary_file('$v2_app'))}),
	'{"libnxconf.so.1 (NXCONF_2.0)"}', 'missing_versions names it');

# --- GLIBC_2.99
my $plain = build('plain', 't/fixtures/conf_app.c', $conf_lib);
my $bytes = slurp_file($plain);
ok($bytes =~ s/GLIBC_2\.34\0/GLIBC_2.99\0/, 'the program needs GLIBC_2.34 (renamed GLIBC_2.99)');
my $glibc99 = "$dir/glibc99_app";
open my $fh, '>:raw', $glibc99 or die;
print $fh $bytes;
close $fh;
chmod 0755, $glibc99;
IPC::Run::run([$glibc99], '<', \undef, '>', \my $o99, '2>', \my $e99, IPC::Run::timeout(10));
like($e99, qr{version .GLIBC_2\.99' not found}, "glibc's own loader refuses it too");
my $r = refusal($glibc99);
like($r,
	qr{^58P01\nbinary cannot run on this host: the binary needs GLIBC_2\.99 from libc\.so\.6, which this host's /lib/\S+/libc\.so\.6 does not define \(its newest is GLIBC_2\.\d+\)\nbuilt against glibc 2\.99; this host has glibc 2\.\d+: build on a system with glibc 2\.\d+ or older, or link statically},
	'a binary needing GLIBC_2.99 is refused at push');
($rc, $out, $err) = nx('verify', $glibc99);
is($rc, 3, 'nx verify refuses it');
like($err, qr{cannot run here: the binary needs GLIBC_2\.99}, 'nx verify says why');

# nothing of the refusals was stored
is(sql(q{SELECT count(*) FROM nx.deployments}), '1', 'only the accepted app is a deployment');
is(sql(q{SELECT count(*) FROM nx.blobs}), '1', 'and only its blob is stored');

sql(q{SELECT nx.drop_sandbox('libs')});
$node->stop;
done_testing();
