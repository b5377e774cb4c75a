#!/usr/bin/perl
# scripts/check-supervisor-calls.pl - no call circle between the files of
# src/supervisor/ (docs/supervisor.md, "The code, one concern per file").
#
# A file calls another when its code (comments left out) names a function
# defined there (an Nx... function at the start of a line: PostgreSQL's
# layout).  Prints every circle found (a strongly connected set of files)
# and exits 1; with -v it also prints each file's callees.  Run by
# scripts/test-all.sh.
use strict;
use warnings;
use File::Basename qw(dirname basename);

my $dir = dirname(__FILE__) . '/../src/supervisor';
my $verbose = grep { $_ eq '-v' } @ARGV;

# read every file, with and without its comments
my (%text, %code);
for my $path (sort glob("$dir/*.c"))
{
	open(my $fh, '<', $path) or die "$path: $!\n";
	local $/;
	my $name = basename($path);
	$text{$name} = <$fh>;
	($code{$name} = $text{$name}) =~ s{/\*.*?\*/}{}gs;
}
die "no C files in $dir\n" unless %text;

# which file defines each function, then who names whose functions
my %defined_in;
for my $name (keys %text)
{
	$defined_in{$1} = $name while $text{$name} =~ /^(Nx\w+)\(/mg;
}
my %calls = map { $_ => {} } keys %text;
for my $name (keys %code)
{
	for my $fn (keys %defined_in)
	{
		my $where = $defined_in{$fn};
		$calls{$name}{$where} = 1
		  if $where ne $name && $code{$name} =~ /\b\Q$fn\E\b/;
	}
}

# Tarjan's strongly connected components; those of two or more are circles
my ($counter, %index, %low, @stack, %on_stack, @circles) = (0);
my $visit;
$visit = sub {
	my ($v) = @_;
	$index{$v} = $low{$v} = $counter++;
	push @stack, $v;
	$on_stack{$v} = 1;
	for my $w (sort keys %{ $calls{$v} })
	{
		if (!exists $index{$w})
		{
			$visit->($w);
			$low{$v} = $low{$w} if $low{$w} < $low{$v};
		}
		elsif ($on_stack{$w})
		{
			$low{$v} = $index{$w} if $index{$w} < $low{$v};
		}
	}
	if ($low{$v} == $index{$v})
	{
		my @component;
		while (1)
		{
			my $w = pop @stack;
			delete $on_stack{$w};
			push @component, $w;
			last if $w eq $v;
		}
		push @circles, [ sort @component ] if @component > 1;
	}
};
for my $v (sort keys %calls)
{
	$visit->($v) unless exists $index{$v};
}

if ($verbose)
{
	printf "%s -> %s\n", $_, join(' ', sort keys %{ $calls{$_} }) for sort keys %calls;
}
print "call circle between: ", join(', ', @$_), "\n" for @circles;
printf "src/supervisor: %d files, no call circle\n", scalar(keys %calls) unless @circles;
exit(@circles ? 1 : 0);
