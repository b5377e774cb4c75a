# t/013_nx_setup.pl
#   control/nx-setup on a plain initdb data directory (the cluster steps;
#   the host steps need root and are run by scripts/test-all.sh): --check
#   changes nothing and lists what is missing, the first run fixes it, the
#   second changes nothing, and the result satisfies nx.check_setup().
use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('nx_setup');
$node->init;
my $data = $node->data_dir;
# the harness's initdb -A trust: nx-setup must report it, never change it
my $hba = slurp_file("$data/pg_hba.conf");
my $conf = slurp_file("$data/postgresql.conf");

my ($out, $err);
my @setup = ('control/nx-setup', '--no-host', '--pgdata', $data, '--database', 'postgres');
my $rc = IPC::Run::run([ @setup, '--check' ], '>', \$out, '2>', \$err);
ok(!$rc, '--check exits non-zero on an unconfigured cluster');
like($out, qr/^MISSING shared_preload_libraries/m, '--check lists shared_preload_libraries');
like($out, qr/^MISSING .*pg_hba.conf: first lines must be/m, '--check lists the pg_hba lines');
like($out, qr/^MISSING .*'local \.\.\. trust' on line/m, '--check reports local trust lines');
is(slurp_file("$data/postgresql.conf"), $conf, '--check changed nothing in postgresql.conf');
is(slurp_file("$data/pg_hba.conf"), $hba, '--check changed nothing in pg_hba.conf');

IPC::Run::run([@setup], '>', \$out, '2>', \$err);
like($out, qr/^fixed\s+shared_preload_libraries = 'nx_sandbox'/m, 'first run: preload set');
like($out, qr/^fixed\s+.*pg_hba.conf: added the nx_tenant lines/m, 'first run: pg_hba lines added');
like($out, qr/restart the cluster now/, 'first run: says to restart');
like($out, qr/^MISSING .*trust/m, 'first run: still reports, and does not touch, the trust lines');

# the DBA replaces trust by peer, as the report says
my $new = slurp_file("$data/pg_hba.conf");
$new =~ s/^(local\s+\S+\s+\S+\s+)trust/${1}peer/mg;
open my $fh, '>', "$data/pg_hba.conf" or die;
print $fh $new;
close $fh;

my $before_conf = slurp_file("$data/postgresql.conf");
my $before_hba = slurp_file("$data/pg_hba.conf");
$rc = IPC::Run::run([@setup], '>', \$out, '2>', \$err);
ok($rc, 'second run exits 0');
unlike($out, qr/^(fixed|MISSING)/m, 'second run: nothing to fix');
is(slurp_file("$data/postgresql.conf"), $before_conf, 'second run: postgresql.conf unchanged');
is(slurp_file("$data/pg_hba.conf"), $before_hba, 'second run: pg_hba.conf unchanged');

$node->append_conf('postgresql.conf', "nx.supervisor = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION nx_sandbox');
is($node->safe_psql('postgres',
	q{SELECT string_agg(check_name || '=' || ok, ',' ORDER BY check_name) FROM nx.check_setup()
	  WHERE check_name IN ('shared_preload_libraries', 'pg_hba')}),
	'pg_hba=true,shared_preload_libraries=true', 'check_setup agrees');
$node->stop;
done_testing();
