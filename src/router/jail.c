/*
 * src/router/jail.c
 *	  Locks nx-router down once it listens: no new privileges, and a
 *	  seccomp filter that refuses (EPERM) the system calls a relay of bytes
 *	  never needs.  The router parses every byte clients send; if a bug
 *	  there ever let an attacker run code in it, that code could not start
 *	  a program, create a process, debug another one, change mounts or
 *	  namespaces, or load kernel code.
 *
 * What it keeps: sockets of every kind (libpq reconnects, over TCP or a
 * unix socket), files (libpq reads its service file, DNS its
 * configuration), epoll, timers, memory.  It runs as the cluster's OS user
 * because it must reach each sandbox's hand-off socket under $PGDATA; the
 * filter is what it gives up instead (a separate user or namespace jail is
 * not done).  --no-jail turns it off (for debugging).
 */
#define _GNU_SOURCE				/* CLONE_THREAD */

#include "router.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>

/*
 * The sanitizer build (build/nx-router-asan) keeps the filter but leaves
 * clone and ptrace alone: LeakSanitizer checks for leaks at exit from a
 * task it clones, which ptrace-attaches to the router.
 */
#ifdef NX_ROUTER_SANITIZER_BUILD
#define JAIL_DENIES_CLONE_AND_PTRACE 0
#else
#define JAIL_DENIES_CLONE_AND_PTRACE 1
#endif

/* system calls the router never makes once it is running */
static const char *const denied[] = {
	"execve", "execveat", "fork", "vfork",
#if JAIL_DENIES_CLONE_AND_PTRACE
	"ptrace",
#endif
	"process_vm_readv", "process_vm_writev", "pidfd_getfd",
	"mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
	"fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
	"unshare", "setns",
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
	"personality", "acct", "swapon", "swapoff", "reboot", "quotactl",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "open_by_handle_at", "name_to_handle_at",
	"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
	"setgroups", "setfsuid", "setfsgid", "memfd_create",
};

/*
 * RouterJail applies no_new_privs and the filter.  Returns 0, or -1 after
 * logging why not (the router then refuses to run: it says so rather than
 * serve unjailed).
 */
int
RouterJail(void)
{
	scmp_filter_ctx ctx;
	size_t		i;
	int			rc;
	int			n = 0;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
	{
		RouterLog("error: cannot set no_new_privs: %s", strerror(errno));
		return -1;
	}
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (ctx == NULL)
	{
		RouterLog("error: seccomp_init failed");
		return -1;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	for (i = 0; rc == 0 && i < sizeof(denied) / sizeof(denied[0]); i++)
	{
		int			nr = seccomp_syscall_resolve_name(denied[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;			/* not on this architecture */
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		n++;
	}
	/* threads are fine (none today), new processes are not */
	if (rc == 0 && JAIL_DENIES_CLONE_AND_PTRACE)
	{
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
							  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
		n++;
	}
	/* clone3 passes its flags in memory: ENOSYS makes libc fall back to clone */
	if (rc == 0)
	{
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
		n++;
	}
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc != 0)
	{
		RouterLog("error: cannot install the seccomp filter: %s", strerror(-rc));
		return -1;
	}
	RouterLog("jailed: no new privileges; %d system calls refused (seccomp)%s", n,
			  JAIL_DENIES_CLONE_AND_PTRACE ? "" : "; clone and ptrace left to LeakSanitizer");
	return 0;
}
