/*
 * src/elf/test_elf.h
 *	  What the two files of the ELF unit test (test_elf.c, test_libcheck.c)
 *	  share: the CHECK macro and its counters, and the test groups.
 */
#ifndef TEST_ELF_H
#define TEST_ELF_H

#include <stdbool.h>
#include <stddef.h>

extern bool verbose;

/* check: count a pass, or print and count a failure */
extern void check(bool ok, const char *file, int line, const char *fmt,...)
			__attribute__((format(printf, 4, 5)));

#define CHECK(cond, ...) check((cond), __FILE__, __LINE__, __VA_ARGS__)

/* read_whole: a whole file into malloc'd memory (exits on failure) */
extern unsigned char *read_whole(const char *path, size_t *len);

/* test_libcheck.c */
extern void test_libraries(const char *seeds, const char *binary);
extern void test_ldcache(const char *ldcache_seeds);
extern void test_libcheck(const char *seeds);

#endif							/* TEST_ELF_H */
