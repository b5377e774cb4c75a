/*
 * src/runtime/seccomp.c
 *	  The sandbox's system-call filter: a denylist at least as strict as
 *	  Flatpak's default, compiled with libseccomp into classic BPF and
 *	  written to a memfd that nx-spawn hands to bwrap (--seccomp FD).
 *	  bwrap installs it (with no_new_privs) right before it execs nx-init,
 *	  so nx-init and the app both run under it.
 *
 *	  The program is the same for every sandbox, so the supervisor has it
 *	  compiled once (nx-spawn --export-seccomp into a memfd it then seals)
 *	  and hands that memfd to every nx-spawn (--seccomp-fd), which reopens
 *	  it for bwrap (NxSeccompReopen) instead of compiling it again: a
 *	  fraction of a millisecond per start.  Without one, nx-spawn compiles.
 *
 * What is denied and why (EPERM unless noted):
 *	  - the mount family and namespace creation (mount, umount2, pivot_root,
 *		the new mount API, unshare, setns, clone with any CLONE_NEW* flag;
 *		clone3 gets ENOSYS because its flags live in memory a filter cannot
 *		read, and libc falls back to clone on ENOSYS);
 *	  - kernel attack surface a service never needs: keyrings, bpf,
 *		perf_event_open, userfaultfd, io_uring (ENOSYS, so runtimes fall back
 *		to epoll), module loading, kexec, swap, reboot, syslog, acct, quotas,
 *		file handles (open_by_handle_at can escape a bind mount);
 *	  - looking into or reaching into other processes: ptrace,
 *		process_vm_readv/writev, pidfd_getfd (taking another process's
 *		descriptors), process_madvise, kcmp (comparing another process's
 *		descriptors and memory).  nx-init is not dumpable, so the kernel
 *		refuses these against it already; this is the second wall;
 *	  - personality other than PER_LINUX (or the 0xffffffff query);
 *	  - ioctl TIOCSTI / TIOCLINUX (typing into a terminal), compared on the
 *		low 32 bits only, as the kernel does;
 *	  - socket() of families other than unix, inet, inet6, netlink:
 *		EAFNOSUPPORT, as if the kernel lacked them.
 *	  Any system call made through another ABI (i386 int 0x80, x32) kills
 *	  the process: the rules are written for the native ABI only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_int.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

/* system calls denied outright, with the errno they fail with */
typedef struct DenyRule
{
	const char *name;
	int			err;
} DenyRule;

static const DenyRule deny_rules[] = {
	/* mount family */
	{"mount", EPERM}, {"umount", EPERM}, {"umount2", EPERM},
	{"pivot_root", EPERM}, {"move_mount", EPERM}, {"open_tree", EPERM},
	{"fsopen", EPERM}, {"fsconfig", EPERM}, {"fsmount", EPERM},
	{"fspick", EPERM}, {"mount_setattr", EPERM},
	/* namespaces (clone is filtered on its flags below) */
	{"unshare", EPERM}, {"setns", EPERM}, {"clone3", ENOSYS},
	/* keyrings */
	{"keyctl", EPERM}, {"add_key", EPERM}, {"request_key", EPERM},
	/* kernel attack surface */
	{"bpf", EPERM}, {"perf_event_open", EPERM}, {"userfaultfd", EPERM},
	{"io_uring_setup", ENOSYS}, {"io_uring_enter", ENOSYS},
	{"io_uring_register", ENOSYS},
	/* other processes */
	{"ptrace", EPERM}, {"process_vm_readv", EPERM},
	{"process_vm_writev", EPERM}, {"pidfd_getfd", EPERM},
	{"process_madvise", EPERM}, {"kcmp", EPERM},
	/* the machine */
	{"kexec_load", EPERM}, {"kexec_file_load", EPERM},
	{"init_module", EPERM}, {"finit_module", EPERM},
	{"delete_module", EPERM}, {"swapon", EPERM}, {"swapoff", EPERM},
	{"reboot", EPERM}, {"syslog", EPERM}, {"acct", EPERM},
	{"quotactl", EPERM}, {"quotactl_fd", EPERM}, {"lookup_dcookie", EPERM},
	{"nfsservctl", EPERM},
	/* file handles bypass path permissions and bind-mount boundaries */
	{"open_by_handle_at", EPERM}, {"name_to_handle_at", EPERM},
	/* legacy */
	{"vm86", EPERM}, {"vm86old", EPERM}, {"uselib", EPERM},
};

/* clone flags that create namespaces (CLONE_NEWTIME only exists for clone3) */
static const unsigned long clone_ns_flags[] = {
	CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
	CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
};

/* socket families allowed, ascending */
static const int allowed_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

#define lengthof(a) (sizeof(a) / sizeof((a)[0]))

/*
 * add_deny_rules adds the outright denials.  A name the native ABI does not
 * have (umount and vm86 on x86_64) is skipped; any other failure is fatal.
 */
static int
add_deny_rules(scmp_filter_ctx ctx, const char **what)
{
	size_t		i;

	for (i = 0; i < lengthof(deny_rules); i++)
	{
		int			nr = seccomp_syscall_resolve_name(deny_rules[i].name);
		int			rc;

		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(deny_rules[i].err), nr, 0);
		if (rc != 0)
		{
			*what = deny_rules[i].name;
			return rc;
		}
	}
	return 0;
}

/*
 * add_arg_rules adds the denials that depend on arguments: clone's flags,
 * personality, ioctl's request and socket's family.
 */
static int
add_arg_rules(scmp_filter_ctx ctx, const char **what)
{
	size_t		i;
	int			rc;
	int			next;

	*what = "clone";
	for (i = 0; i < lengthof(clone_ns_flags); i++)
	{
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
							  SCMP_A0(SCMP_CMP_MASKED_EQ, clone_ns_flags[i],
									  clone_ns_flags[i]));
		if (rc != 0)
			return rc;
	}

	/*
	 * personality: allow exactly 0 (PER_LINUX) and 0xffffffff (the query).
	 * libseccomp allows one comparison per argument and rule, so the
	 * complement is written as a union: anything above 32 bits, or any
	 * 32-bit value with a 1 bit followed (cyclically) by a 0 bit, which is
	 * every 32-bit value except all zeros and all ones.
	 */
	*what = "personality";
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
						  SCMP_A0(SCMP_CMP_GT, 0xffffffffUL));
	for (i = 0; rc == 0 && i < 32; i++)
	{
		scmp_datum_t one = (scmp_datum_t) 1 << i;
		scmp_datum_t zero = (scmp_datum_t) 1 << ((i + 1) % 32);

		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
							  SCMP_A0(SCMP_CMP_MASKED_EQ, one | zero, one));
	}
	if (rc != 0)
		return rc;

	*what = "ioctl";
	rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
						  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL,
								  (unsigned long) TIOCSTI));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
							  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL,
									  (unsigned long) TIOCLINUX));
	if (rc != 0)
		return rc;

	/* socket: every family below, between and above the allowed ones */
	*what = "socket";
	next = 0;
	for (i = 0; i <= lengthof(allowed_families); i++)
	{
		int			limit = i < lengthof(allowed_families) ? allowed_families[i] : -1;
		int			f;

		if (limit < 0)
			return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
									SCMP_SYS(socket), 1,
									SCMP_A0(SCMP_CMP_GE, (scmp_datum_t) next));
		for (f = next; f < limit; f++)
		{
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT),
								  SCMP_SYS(socket), 1,
								  SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) f));
			if (rc != 0)
				return rc;
		}
		next = limit + 1;
	}
	return 0;
}

/*
 * NxSeccompBuild makes the filter context (native ABI only, everything not
 * denied allowed, other ABIs killed).  NULL with err set on failure.
 */
static scmp_filter_ctx
NxSeccompBuild(char *err, size_t errlen)
{
	scmp_filter_ctx ctx;
	const char *what = "?";
	int			rc;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
	{
		NxSetErr(err, errlen, "seccomp_init failed");
		return NULL;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc == 0)
		rc = add_deny_rules(ctx, &what);
	if (rc == 0)
		rc = add_arg_rules(ctx, &what);
	if (rc != 0)
	{
		NxSetErr(err, errlen, "seccomp rule for %s: %s", what, strerror(-rc));
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * NxSeccompMemfd compiles the filter and returns a memfd (not close-on-exec,
 * positioned at 0) holding its BPF program, for bwrap --seccomp.  -1 with
 * err set on failure.
 */
int
NxSeccompMemfd(char *err, size_t errlen)
{
	scmp_filter_ctx ctx = NxSeccompBuild(err, errlen);
	int			fd;
	int			rc;

	if (ctx == NULL)
		return -1;
	fd = memfd_create("nx-seccomp", MFD_ALLOW_SEALING);
	if (fd < 0)
	{
		NxSetErr(err, errlen, "memfd_create: %s", strerror(errno));
		seccomp_release(ctx);
		return -1;
	}
	rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (rc != 0)
	{
		NxSetErr(err, errlen, "seccomp_export_bpf: %s", strerror(-rc));
		close(fd);
		return -1;
	}
	if (lseek(fd, 0, SEEK_SET) != 0)
	{
		NxSetErr(err, errlen, "lseek on the filter memfd: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * NxSeccompExportBpf writes the compiled program to fd (nx-spawn
 * --export-seccomp, for the supervisor to keep); false with err set.
 */
bool
NxSeccompExportBpf(int fd, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = NxSeccompBuild(err, errlen);
	int			rc;

	if (ctx == NULL)
		return false;
	rc = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (rc != 0)
	{
		NxSetErr(err, errlen, "seccomp_export_bpf: %s", strerror(-rc));
		return false;
	}
	return true;
}

/*
 * NxSeccompReopen returns a new descriptor (not close-on-exec, at offset 0)
 * of the program in the sealed memfd fd, for bwrap --seccomp: bwrap reads
 * it to its end, and starts running at once must not share one offset.
 * The memfd must be sealed against any change (written once, by the
 * supervisor) and hold whole BPF instructions.  -1 with err set otherwise.
 */
int
NxSeccompReopen(int fd, char *err, size_t errlen)
{
	const int	needed = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	char		path[64];
	struct stat st;
	int			seals = fcntl(fd, F_GET_SEALS);
	int			copy;

	if (seals < 0 || (seals & needed) != needed)
	{
		NxSetErr(err, errlen, "the filter descriptor %d is not a sealed memfd", fd);
		return -1;
	}
	if (fstat(fd, &st) != 0 || st.st_size <= 0 ||
		st.st_size % sizeof(struct sock_filter) != 0)
	{
		NxSetErr(err, errlen, "the filter descriptor %d does not hold a BPF program", fd);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	copy = open(path, O_RDONLY);
	if (copy < 0)
		NxSetErr(err, errlen, "reopen %s: %s", path, strerror(errno));
	return copy;
}

/*
 * NxSeccompExportPfc writes the filter in libseccomp's readable form to fd
 * (for the README and for debugging); false with err set on failure.
 */
bool
NxSeccompExportPfc(int fd, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = NxSeccompBuild(err, errlen);
	int			rc;

	if (ctx == NULL)
		return false;
	rc = seccomp_export_pfc(ctx, fd);
	seccomp_release(ctx);
	if (rc != 0)
	{
		NxSetErr(err, errlen, "seccomp_export_pfc: %s", strerror(-rc));
		return false;
	}
	return true;
}
