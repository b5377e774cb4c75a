# t/003_notify.pl
#   Control actions notify nx_events (and routing changes nx_routes) when
#   they commit, with a payload that names only the event id; failed or
#   rolled-back actions notify nothing.
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('notify');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'nx_sandbox'\nnx.supervisor = off");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION nx_sandbox');

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN nx_events; LISTEN nx_routes;');

# poll_notifications runs an empty query in the listening session until
# psql has printed at least $n notification lines, and returns them all
sub poll_notifications
{
	my ($n) = @_;
	my @lines;
	for (my $i = 0; $i < 100 && @lines < $n; $i++)
	{
		my $out = $listener->query_safe('SELECT 1');
		push @lines, grep { /Asynchronous notification/ } split /\n/, $out;
		usleep(50_000) if @lines < $n;
	}
	return @lines;
}

$node->safe_psql('postgres', q{SELECT nx.create_sandbox('app')});
my @got = poll_notifications(1);
is(scalar(@got), 1, 'create_sandbox sent one notification');
like($got[0], qr/"nx_events" with payload "\{"id" : 1\}"/, 'payload is only the event id');

$node->safe_psql('postgres', q{SELECT nx.push('app', pg_read_binary_file('/usr/bin/true'))});
@got = poll_notifications(2);
is(scalar(@got), 2, 'push sent two notifications');
ok((grep { /"nx_routes"/ } @got), 'push notified nx_routes');
ok((grep { /"nx_events" with payload "\{"id" : 2\}"/ } @got), 'push notified nx_events');

# a failed action and a rolled-back one notify nothing
$node->psql('postgres', q{SELECT nx.push('app', '\x00'::bytea)});
$node->safe_psql('postgres', q{BEGIN; SELECT nx.set_env('app', 'A', 'b'); ROLLBACK;});
$node->safe_psql('postgres', q{SELECT nx.set_env('app', 'C', 'd')});
my $committed = $node->safe_psql('postgres', q{SELECT id FROM nx.events WHERE action = 'set_env'});
@got = poll_notifications(1);
is(scalar(@got), 1, 'only the committed set_env notified');
like($got[0], qr/"nx_events" with payload "\{"id" : $committed\}"/, 'the notification names the committed event');

$listener->quit;
$node->stop;
done_testing();
