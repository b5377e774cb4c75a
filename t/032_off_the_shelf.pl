# t/032_off_the_shelf.pl
#   Programs nobody here wrote, pushed exactly as their documentation says
#   to run them: no shell wrapper, no sandbox named after the program.
#   busybox httpd (Debian's busybox-static, a multi-call binary that picks
#   its applet from argv[0]) pushed as /bin/busybox with the arguments
#   "httpd -f -p $PORT -h /usr/share/doc/busybox-static" answers through
#   the router; so does Caddy (Debian's caddy, a Go server) pushed with
#   "respond --listen :$PORT ...", the issue's example of an argument that
#   needs $PORT.  It fails, never skips, without busybox-static or caddy
#   (scripts/install-deps.sh installs them).
use strict;
use warnings FATAL => 'all';

use FindBin;
use lib $FindBin::RealBin;
use NxTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $busybox = '/bin/busybox';
ok(-x $busybox, "$busybox is installed (Debian package busybox-static)")
  or BAIL_OUT('busybox-static is missing: run scripts/install-deps.sh');

my $node = nx_node('off_the_shelf');
nx_require_host_setup($node);
$node->safe_psql('postgres', q{SELECT nx.create_sandbox('site')});
my $id = $node->safe_psql('postgres', qq{
	SELECT deployment FROM nx.push('site', pg_read_binary_file('$busybox'), name => 'busybox',
		args => ARRAY['httpd', '-f', '-p', '\$PORT', '-h', '/usr/share/doc/busybox-static'])});
is($node->safe_psql('postgres', "SELECT binary_name || ' ' || array_to_string(args, ' ') FROM nx.status WHERE deployment = $id"),
	'busybox httpd -f -p $PORT -h /usr/share/doc/busybox-static', 'pushed with its name and its arguments as written');
nx_wait_state($node, $id, 'ready', 'busybox httpd listens on its $PORT');
$node->safe_psql('postgres', "SELECT nx.promote('site', $id)");

my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($router, $log) = nx_start_router($node, $port);
my $page = '';
for (my $until = time + 30; time < $until; usleep(100_000))
{
	$page = nx_http_get($port, 'site.localhost', '/copyright', 5);
	last if $page =~ /^HTTP\/1\.[01] 200/;
}
like($page, qr/^HTTP\/1\.[01] 200/, 'busybox httpd answers through the router');
like($page, qr/Copyright|copyright/, 'with the file from /usr/share/doc/busybox-static');
like($node->safe_psql('postgres', "SELECT string_agg(line, ' ') FROM nx.logs('site', $id)"),
	qr/^(?!.*applet not found)/s, 'busybox found its applet from argv[0]');

# caddy: the respond directive, its listen address built from $PORT
my $caddy = '/usr/bin/caddy';
ok(-x $caddy, "$caddy is installed (Debian package caddy)") or BAIL_OUT('caddy is missing: run scripts/install-deps.sh');
$node->safe_psql('postgres', q{SELECT nx.create_sandbox('hello')});
my $cid = $node->safe_psql('postgres', qq{
	SELECT deployment FROM nx.push('hello', pg_read_binary_file('$caddy'), name => 'caddy',
		args => ARRAY['respond', '--listen', ':\$PORT', 'hello from caddy in \${NX_SANDBOX}'])});
nx_wait_state($node, $cid, 'ready', 'caddy respond listens on its $PORT');
$node->safe_psql('postgres', "SELECT nx.promote('hello', $cid)");
my $hello = '';
for (my $until = time + 30; time < $until; usleep(100_000))
{
	$hello = nx_http_get($port, 'hello.localhost', '/', 5);
	last if $hello =~ /hello from caddy/;
}
like($hello, qr/hello from caddy in hello/, 'caddy answers through the router, its arguments expanded');

$router->kill_kill;
$node->stop;
done_testing();
