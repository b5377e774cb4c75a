# t/NxInvariants.pm
#   The platform's promise, as checks: the rows are consistent, and the
#   machine (roles, databases, blob files, logs, cgroups, processes) holds
#   nothing that no row wants.  Used by the concurrency hammer
#   (t/041_hammer.pl) while it runs and after it, and by anything else that
#   wants to know whether a cluster has converged (chaos runs).
#
#   nx_row_violations(NODE)           rows only: always true, even mid-run
#   nx_stale_processes(NODE, GRACE)   processes of deployments no row has
#                                     wanted running for more than GRACE s
#   nx_machine_violations(NODE)       after convergence: every piece of
#                                     derived state matches the rows exactly
# Each returns a list of sentences, empty when all is well.
package NxInvariants;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use PostgreSQL::Test::Utils;

our @EXPORT = qw(nx_row_violations nx_stale_processes nx_machine_violations
  nx_our_cgroups nx_supervisor_children);

# rows that break an invariant, one query per invariant: each returns the
# offending rows as text
my @row_checks = (
	[ 'more than one production deployment in a sandbox' =>
		  q{SELECT sandbox || ': ' || string_agg(id::text, ',') FROM nx.deployments
			WHERE is_production GROUP BY sandbox HAVING count(*) > 1} ],
	[ 'a removed deployment is production' =>
		  q{SELECT id::text FROM nx.deployments WHERE is_production AND desired_state = 'removed'} ],
	[ 'a port held twice' =>
		  q{SELECT port || ': ' || string_agg(id::text, ',') FROM nx.deployments
			WHERE desired_state <> 'removed' GROUP BY port HAVING count(*) > 1} ],
	[ 'a live deployment without a port, or a removed one with one' =>
		  q{SELECT id::text FROM nx.deployments WHERE (desired_state = 'removed') <> (port IS NULL)} ],
	[ 'a port outside nx.port_range' =>
		  q{SELECT id || ': ' || port FROM nx.deployments WHERE port IS NOT NULL
			AND port NOT BETWEEN split_part(current_setting('nx.port_range'), '-', 1)::int
							 AND split_part(current_setting('nx.port_range'), '-', 2)::int} ],
	[ 'a blob no deployment uses' =>
		  q{SELECT sha256 FROM nx.blobs b WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob = b.sha256)} ],
	[ 'a promotion of a deployment of another sandbox' =>
		  q{SELECT p.id::text FROM nx.promotions p JOIN nx.deployments d ON d.id = p.deployment
			WHERE d.sandbox <> p.sandbox} ],
	[ 'a sandbox over nx.max_deployments_per_sandbox' =>
		  q{SELECT sandbox || ': ' || count(*) FROM nx.deployments WHERE desired_state <> 'removed'
			GROUP BY sandbox HAVING count(*) > current_setting('nx.max_deployments_per_sandbox')::int} ],
	[ 'two sandboxes with one uid offset' =>
		  q{SELECT uid_offset::text FROM nx.sandboxes GROUP BY uid_offset HAVING count(*) > 1} ],
);

# nx_row_violations: the invariants that hold in every snapshot
sub nx_row_violations
{
	my ($node) = @_;
	my @v;
	for my $c (@row_checks)
	{
		my $bad = $node->safe_psql('postgres', "SELECT string_agg(x, '; ') FROM ($c->[1]) q(x)");
		push @v, "$c->[0]: $bad" if $bad ne '';
	}
	return @v;
}

my %sysid;

# cgroup_dirs: every cgroup directory of this cluster's deployments, as
# [path, deployment id], in every hierarchy the host has
sub cgroup_dirs
{
	my ($node) = @_;
	$sysid{ $node->name } //= $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
	my $prefix = sprintf('c%016x_d', $sysid{ $node->name });
	my @dirs;
	for my $parent (map { "/sys/fs/cgroup/$_/nx_sandbox" } qw(pids memory cpu unified .))
	{
		opendir(my $dh, $parent) or next;
		for my $e (readdir $dh)
		{
			push @dirs, [ "$parent/$e", $1 ] if $e =~ /^\Q$prefix\E(\d+)$/;
		}
		closedir $dh;
	}
	return @dirs;
}

# nx_our_cgroups(NODE): deployment id => [pids] of every cgroup of ours
# that holds a process
sub nx_our_cgroups
{
	my ($node) = @_;
	my %procs;
	for my $d (cgroup_dirs($node))
	{
		my $list = eval { slurp_file("$d->[0]/cgroup.procs") } // '';
		my @pids = grep { /^\d+$/ } split /\n/, $list;
		push @{ $procs{ $d->[1] } }, @pids if @pids;
	}
	return %procs;
}

# nx_supervisor_children(NODE): pid => [deployment id from its cgroup, or
# undef; its command] of every live child process of the supervisor
sub nx_supervisor_children
{
	my ($node) = @_;
	my $sup = $node->safe_psql('postgres', 'SELECT nx._supervisor_pid()');
	my %children;
	opendir(my $dh, '/proc') or return %children;
	for my $pid (grep { /^\d+$/ } readdir $dh)
	{
		my $stat = eval { slurp_file("/proc/$pid/stat") } // next;
		# a zombie (a retired bwrap monitor the supervisor is about to
		# reap, slots.c) runs nothing
		next unless $stat =~ /\)\s+([^Z])\s+(\d+)/ && $2 == $sup;
		my $cg = eval { slurp_file("/proc/$pid/cgroup") } // '';
		my ($d) = $cg =~ /nx_sandbox\/c[0-9a-f]{16}_d(\d+)/;
		my $cmd = eval { slurp_file("/proc/$pid/cmdline") } // '';
		$cmd =~ s/\0/ /g;
		$children{$pid} = [ $d, $cmd ];
	}
	closedir $dh;
	return %children;
}

# nx_stale_processes(NODE, GRACE): processes in cgroups of deployments that
# no row has wanted running for more than GRACE seconds (the supervisor
# may lag; it must not lag forever).  A deployment's history is read from
# nx.events, which outlives dropped sandboxes.
sub nx_stale_processes
{
	my ($node, $grace) = @_;
	my %procs = nx_our_cgroups($node);
	return () unless %procs;
	my $ids = join(',', sort { $a <=> $b } keys %procs);
	my $stale = $node->safe_psql('postgres', qq{
		SELECT string_agg(i::text, ',') FROM unnest('{$ids}'::bigint[]) i
		WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id = i AND d.desired_state = 'running')
		  AND coalesce((SELECT max(e.at) FROM nx.events e
						WHERE (e.deployment = i AND e.action IN ('stop', 'remove'))
						   OR (e.action = 'drop_sandbox' AND e.sandbox =
							   (SELECT p.sandbox FROM nx.events p WHERE p.action = 'push' AND p.deployment = i))),
					   '-infinity') < now() - interval '$grace seconds'});
	return () if $stale eq '';
	return map { "deployment $_ unwanted for over ${grace}s still has processes: @{$procs{$_}}" } split /,/, $stale;
}

# ids(NODE, SQL): the query's single column as a hash set
sub ids
{
	my ($node, $sql) = @_;
	return map { $_ => 1 } grep { $_ ne '' } split /\n/, $node->safe_psql('postgres', $sql);
}

# diff(WHAT, HAVE, WANT): sentences for what is in one set and not the other
sub diff
{
	my ($what, $have, $want) = @_;
	my @v;
	my @extra = sort grep { !$want->{$_} } keys %$have;
	my @missing = sort grep { !$have->{$_} } keys %$want;
	push @v, "$what that no row wants: @extra" if @extra;
	push @v, "$what missing: @missing" if @missing;
	return @v;
}

# nx_machine_violations(NODE): after convergence, the machine is the rows:
# tenant roles and databases = sandboxes (and kept databases, and ready
# branch and empty preview databases), blob files
# = nx.blobs, logs and run directories only of live deployments, cgroups
# with processes and the supervisor's children = desired-running
# deployments (one each), nx.runtime rows only of live deployments.
sub nx_machine_violations
{
	my ($node) = @_;
	my @v;
	my $tenant = q{pg_has_role(r.oid, 'nx_tenant', 'MEMBER') AND r.rolname <> 'nx_tenant' AND NOT r.rolsuper};
	# and the databases of branch and empty previews, once made (ready)
	my %want_roles = ids($node, q{SELECT role_name FROM nx.sandboxes UNION SELECT role_name FROM nx.kept_databases
		UNION SELECT database_name FROM nx.branches WHERE state = 'ready'});
	my %have_roles = ids($node, "SELECT rolname FROM pg_roles r WHERE $tenant");
	push @v, diff('tenant roles', \%have_roles, \%want_roles);

	my %want_dbs = ids($node, q{SELECT database_name || ':' || role_name FROM nx.sandboxes
		UNION SELECT database_name || ':' || role_name FROM nx.kept_databases
		UNION SELECT database_name || ':' || database_name FROM nx.branches WHERE state = 'ready'});
	my %have_dbs = ids($node, "SELECT d.datname || ':' || r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE $tenant");
	push @v, diff('tenant databases (name:owner)', \%have_dbs, \%want_dbs);
	my $pool = $node->safe_psql('postgres', q{SELECT count(*) || ' of ' || current_setting('nx.database_pool_size')
		FROM pg_database WHERE datname ~ '^nx_pool_[0-9]+_[0-9]+$' AND datdba = 10});
	push @v, "pool databases: $pool" unless $pool =~ /^(\d+) of \1$/;

	my $dir = $node->data_dir . '/nx';
	my %files;
	for my $sub (qw(blobs logs run))
	{
		opendir(my $dh, "$dir/$sub") or next;
		$files{$sub} = { map { $_ => 1 } grep { !/^\.\.?$/ } readdir $dh };
		closedir $dh;
	}
	my %want_blobs = ids($node, 'SELECT sha256 FROM nx.blobs');
	my @bad_blobs = sort grep { !$want_blobs{$_} } keys %{ $files{blobs} // {} };
	push @v, "blob files that no row wants: @bad_blobs" if @bad_blobs;
	my %live = ids($node, q{SELECT id FROM nx.deployments WHERE desired_state <> 'removed'});
	my @bad_logs = sort grep { !(/^d(\d+)\.log(\.1)?$/ && $live{$1}) } keys %{ $files{logs} // {} };
	push @v, "log files of no live deployment: @bad_logs" if @bad_logs;
	my @bad_run = sort grep { !(/^d(\d+)$/ && $live{$1}) } keys %{ $files{run} // {} };
	push @v, "run directories of no live deployment: @bad_run" if @bad_run;

	my %running = ids($node, q{SELECT id FROM nx.deployments WHERE desired_state = 'running'});
	my %procs = nx_our_cgroups($node);
	push @v, diff('deployments with processes in their cgroup', { map { $_ => 1 } keys %procs }, \%running);
	my @bad_cg = sort map { $_->[0] } grep { !$live{ $_->[1] } } cgroup_dirs($node);
	push @v, "cgroups of no live deployment: @bad_cg" if @bad_cg;

	my %children = nx_supervisor_children($node);
	my %per;
	for my $pid (sort keys %children)
	{
		my ($d, $cmd) = @{ $children{$pid} };
		if (!defined $d)
		{
			push @v, "supervisor child $pid outside any deployment cgroup: $cmd";
			next;
		}
		push @{ $per{$d} }, $pid;
	}
	push @v, diff('supervisor children (by deployment)', { map { $_ => 1 } keys %per }, \%running);
	push @v, map { "deployment $_ has " . scalar(@{ $per{$_} }) . " supervisor children: @{$per{$_}}" }
	  grep { @{ $per{$_} } > 1 } sort keys %per;

	my $bad_runtime = $node->safe_psql('postgres', q{SELECT string_agg(r.deployment::text, ' ') FROM nx.runtime r
		WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id = r.deployment AND d.desired_state <> 'removed')});
	push @v, "nx.runtime rows of no live deployment: $bad_runtime" if $bad_runtime ne '';
	return @v;
}

1;
