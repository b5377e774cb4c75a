/*
 * src/runtime/test_init_stub.c
 *	  A stand-in for nx-init in the runtime tests when build/nx-init does
 *	  not exist: "test_init_stub [OPTIONS] -- PROGRAM ARGS..." ignores the
 *	  options and execs PROGRAM, which so becomes pid 1 of the sandbox.
 *	  Linked statically, like nx-init.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* main execs everything after the first "--". */
int
main(int argc, char **argv)
{
	int			i;

	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			break;
	if (i + 1 >= argc)
	{
		fprintf(stderr, "test_init_stub: usage: test_init_stub [OPTIONS] -- PROGRAM ARGS...\n");
		return 125;
	}
	execv(argv[i + 1], argv + i + 1);
	perror(argv[i + 1]);
	return 127;
}
