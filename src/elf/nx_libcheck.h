/*
 * src/elf/nx_libcheck.h
 *	  The library check: would the dynamic loader inside a sandbox find
 *	  every library a binary needs, and does each one define the symbol
 *	  versions that are needed from it?  Shared by the server (nx.push,
 *	  nx.verify_binary in src/api/verify.c) and the nx client (nx verify).
 *
 * Two parts:
 *	  nx_view.c		the sandbox's file system, seen from the host: a path
 *					inside the sandbox is resolved component by component,
 *					following symlinks as the sandbox would, to a host file
 *					or to the reason it is not there.  The sandbox sees
 *					/usr (read-only), /lib, /lib64, /bin, /sbin as symlinks
 *					into /usr, /app/<binary> and nothing else of the host's
 *					files (src/runtime/launch.c), so only host paths under
 *					/usr are ever looked at: the check cannot be used to
 *					probe for other host files.
 *	  nx_libcheck.c	glibc's loader, modelled: breadth-first over DT_NEEDED
 *					(the binary's, then each library's), each name searched
 *					in DT_RPATH (the loader chain's), DT_RUNPATH,
 *					/etc/ld.so.cache and the default directories, with
 *					$ORIGIN, $LIB and $PLATFORM expanded as the sandbox would
 *					($ORIGIN of the binary is /app); then every object's
 *					needed versions against the definitions of the library
 *					they name.
 *
 * All file access goes through NxHostOps, so the server can use its own
 * file functions, the client plain POSIX, and the unit test a fake root.
 * Plain C, no allocation: the caller allocates one NxLibCheck (about
 * 500 KB) per check.
 *
 * Glossary:
 *	  object	the binary, its interpreter, or a library the loader loads.
 *	  loader	of an object: the object whose DT_NEEDED brought it in.
 *	  view		the sandbox's file system (see above).
 *	  visible	a directory the sandbox sees (under /usr, or /lib etc.
 *				resolving there).
 *	  reason	why one place the loader looks did not give the library,
 *				when that is worth telling ("found in /opt/x/lib (listed in
 *				/etc/ld.so.cache) but the sandbox does not see that
 *				directory").
 */
#ifndef NX_LIBCHECK_H
#define NX_LIBCHECK_H

#include "nx_elf.h"
#include "nx_elf_lib.h"

#define NX_VIEW_PATH_MAX	4096
#define NX_LIB_MAX_OBJECTS	256
#define NX_LIB_MAX_NEEDED	8192	/* DT_NEEDED names of all objects */
#define NX_LIB_MAX_VERSIONS 16384	/* verdef + verneed of all objects */
#define NX_LIB_MAX_MISSING	64
#define NX_LIB_POOL			(512 * 1024)
#define NX_LIB_MAX_LOOKUPS	100000	/* host lstat calls per check: a
									 * hostile RUNPATH cannot make the
									 * check slow */
#define NX_LIB_NONE			UINT32_MAX

#if defined(__x86_64__)
#define NX_LIB_MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define NX_LIB_MULTIARCH "aarch64-linux-gnu"
#elif defined(__riscv)
#define NX_LIB_MULTIARCH "riscv64-linux-gnu"
#endif

/* --- host file access */

typedef enum NxHostKind
{
	NX_HOST_MISSING,
	NX_HOST_FILE,
	NX_HOST_DIR,
	NX_HOST_SYMLINK,
	NX_HOST_OTHER
} NxHostKind;

typedef struct NxHostOps
{
	void	   *ctx;
	/* lstat(path): its kind, and the size of a regular file */
	NxHostKind	(*lstat) (void *ctx, const char *path, uint64_t *size);
	/* readlink(path) into buf, NUL-terminated; its length, or -1 when it
	 * fails or does not fit */
	int			(*readlink) (void *ctx, const char *path, char *buf, size_t len);
	/* open a regular file for reading: a handle >= 0, or -1 */
	int			(*open) (void *ctx, const char *path);
	/* read exactly n bytes at off; false on error or a short read */
	bool		(*pread) (void *ctx, int handle, uint64_t off, void *buf, size_t n);
	void		(*close) (void *ctx, int handle);
} NxHostOps;

/* NxHostPosixOps fills *ops with the POSIX implementations
 * (nx_host_posix.c); root is a prefix for every path ("" or NULL: the
 * real root), which the unit test points at a fake tree. */
extern void NxHostPosixOps(NxHostOps *ops, const char *root);

/* --- the sandbox's view */

typedef enum NxViewKind
{
	NX_VIEW_FILE,				/* a regular file: host_path */
	NX_VIEW_DIR,				/* a directory: host_path */
	NX_VIEW_MISSING,			/* nothing there (where: the first missing
								 * part) */
	NX_VIEW_HIDDEN,				/* outside what the sandbox sees (where: the
								 * path from the point it left) */
	NX_VIEW_APP,				/* under /app, which holds only the binary */
	NX_VIEW_EMPTY,				/* under /tmp, /run, /etc, /proc, /dev or /nx
								 * (where: that directory): no libraries
								 * there when the app starts */
	NX_VIEW_OTHER,				/* a special file */
	NX_VIEW_LOOP				/* too many symlinks, or too long */
} NxViewKind;

typedef struct NxViewResult
{
	NxViewKind	kind;
	bool		via_symlink;	/* a symlink on the host was followed */
	int			lookups;		/* host lookups (lstat) it made */
	uint64_t	size;			/* of a regular file */
	char		host_path[NX_VIEW_PATH_MAX];
	char		where[NX_VIEW_PATH_MAX];
} NxViewResult;

/*
 * NxViewResolve resolves the absolute sandbox path (a relative one is
 * taken from the sandbox's working directory, /tmp) as the sandbox would
 * see it.  Anything under /app is NX_VIEW_APP: /app holds only the
 * binary, which is no library.
 */
extern void NxViewResolve(const NxHostOps *ops, const char *path,
						  NxViewResult *out);

/* --- the loader model */

typedef struct NxLibEnv
{
	const NxHostOps *ops;
	const char *app_name;		/* the binary's name in /app */
	uint16_t	machine;		/* NX_ELF_HOST_MACHINE */
	const unsigned char *cache; /* the host's /etc/ld.so.cache, or NULL */
	size_t		cache_len;
	const char *platform;		/* $PLATFORM (AT_PLATFORM), or NULL */
} NxLibEnv;

typedef struct NxLibObject
{
	uint32_t	path;			/* sandbox path, e.g. /usr/lib/x/libc.so.6 */
	uint32_t	host_path;		/* where it was read on the host */
	uint32_t	name;			/* the name it was loaded for */
	uint32_t	soname;
	uint32_t	rpath;			/* DT_RPATH (none when it has DT_RUNPATH) */
	uint32_t	runpath;
	int			loader;			/* index of its loader, -1 for the binary
								 * and the interpreter */
	bool		nodeflib;
	bool		is_interpreter;
	bool		has_verdef;
	int			first_needed,
				n_needed;		/* into NxLibCheck.needed */
	int			first_def,
				n_def;			/* into NxLibCheck.versions */
	int			first_need,
				n_need;			/* into NxLibCheck.versions */
} NxLibObject;

typedef struct NxLibVersion
{
	uint32_t	file;			/* needs: the library named */
	uint32_t	name;
	uint32_t	hash;
	uint16_t	flags;
} NxLibVersion;

typedef struct NxLibCheck
{
	/* results */
	bool		interpreter_found;
	int			n_missing;		/* names of the libraries not reachable */
	uint32_t	missing[NX_LIB_MAX_MISSING];
	int			n_missing_versions; /* "libc.so.6 (GLIBC_2.99)" */
	uint32_t	missing_versions[NX_LIB_MAX_MISSING];
	bool		incomplete;		/* some part could not be checked: note */
	char		note[NX_ELF_MESSAGE_LEN];

	/* the objects found, in the loader's order (0 is the binary) */
	int			n_objects;
	NxLibObject objects[NX_LIB_MAX_OBJECTS];

	/* working storage */
	int			n_needed;
	uint32_t	needed[NX_LIB_MAX_NEEDED];
	int			n_versions;
	NxLibVersion versions[NX_LIB_MAX_VERSIONS];
	size_t		pool_used;
	char		pool[NX_LIB_POOL];
	NxElfLibrary lib;			/* one library being read */
	NxViewResult view;			/* one path being resolved */
	char		path[NX_VIEW_PATH_MAX]; /* one candidate path */
} NxLibCheck;

/*
 * NxLibCheckRun checks the binary described by *binary (read by NxElfRead
 * from the bytes it points into) and adds a problem to *binary for each
 * thing the sandbox's loader would fail on: NX_ELF_INTERPRETER_MISSING,
 * NX_ELF_LIBRARY_MISSING, NX_ELF_VERSION_MISSING (the last with its own
 * hint).  Fills the results in *work.  Does nothing for a static binary.
 */
extern void NxLibCheckRun(const NxLibEnv *env, NxElfInfo *binary,
						  NxLibCheck *work);

/* NxLibString: a pool string of work, "" for NX_LIB_NONE */
extern const char *NxLibString(const NxLibCheck *work, uint32_t off);

#endif							/* NX_LIBCHECK_H */
