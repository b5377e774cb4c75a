/*
 * src/dnscheck/nx_dnscheck.c
 *	  nx-dnscheck: does a DNS TXT record prove a custom domain?  The
 *	  supervisor runs it for each claimed, unverified domain
 *	  (src/supervisor/domains.c): DNS answers are bytes from the network,
 *	  and nothing that parses those runs inside a postmaster child (I8).
 *
 *	  nx-dnscheck [--resolver ADDR[:PORT]] [--timeout SECONDS] NAME EXPECTED
 *
 * Looks up the TXT records of NAME (e.g. _nx-verify.shop.example.com)
 * with glibc's resolver, from /etc/resolv.conf or, with --resolver, from
 * that IPv4 server only (tests run their own), and says whether one of
 * them is exactly EXPECTED (e.g. nx-verify=<owner's token>).  A TXT record
 * may be split into several character-strings: they are joined, as RFC
 * 7208 does for SPF.
 *
 * Exit status: 0 found, 1 not found (no record, or none matches), 2 the
 * lookup failed (timeout, SERVFAIL, bad arguments).  One line on stdout
 * says what was found, for nx.domain_info.check_result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_FOUND 0
#define EXIT_NOT_FOUND 1
#define EXIT_FAILED 2

/*
 * usage_fail reports bad arguments and exits 2: the supervisor only ever
 * calls this with arguments it built, so this is a bug there.
 */
static void __attribute__((noreturn))
usage_fail(const char *why)
{
	printf("bad arguments: %s\n", why);
	exit(EXIT_FAILED);
}

/*
 * parse_resolver parses ADDR[:PORT] (IPv4, port default 53) into sin;
 * false when it is not that.
 */
static bool
parse_resolver(const char *spec, struct sockaddr_in *sin)
{
	char		addr[64];
	const char *colon = strchr(spec, ':');
	long		port = 53;

	if (strlen(spec) >= sizeof(addr))
		return false;
	strcpy(addr, spec);
	if (colon != NULL)
	{
		char	   *end;

		addr[colon - spec] = '\0';
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || port < 1 || port > 65535)
			return false;
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((unsigned short) port);
	return inet_pton(AF_INET, addr, &sin->sin_addr) == 1;
}

/*
 * txt_matches joins the character-strings of one TXT record's data (each
 * a length byte and that many bytes) and compares the result with
 * expected; malformed data never matches.
 */
static bool
txt_matches(const unsigned char *data, size_t len, const char *expected)
{
	char		joined[4096];
	size_t		used = 0;
	size_t		pos = 0;

	while (pos < len)
	{
		size_t		n = data[pos++];

		if (n > len - pos || used + n >= sizeof(joined))
			return false;
		memcpy(joined + used, data + pos, n);
		used += n;
		pos += n;
	}
	joined[used] = '\0';
	return strlen(joined) == used && strcmp(joined, expected) == 0;
}

int
main(int argc, char **argv)
{
	struct __res_state state;
	unsigned char answer[8192];
	const char *resolver = NULL;
	long		timeout = 3;
	ns_msg		msg;
	int			len,
				i,
				n,
				txt = 0;
	int			argi = 1;

	while (argi < argc && strncmp(argv[argi], "--", 2) == 0)
	{
		if (strcmp(argv[argi], "--resolver") == 0 && argi + 1 < argc)
			resolver = argv[argi + 1];
		else if (strcmp(argv[argi], "--timeout") == 0 && argi + 1 < argc)
		{
			timeout = strtol(argv[argi + 1], NULL, 10);
			if (timeout < 1 || timeout > 30)
				usage_fail("--timeout must be 1..30 seconds");
		}
		else
			usage_fail("unknown option");
		argi += 2;
	}
	if (argc - argi != 2 || strlen(argv[argi]) > 253 || argv[argi + 1][0] == '\0')
		usage_fail("want NAME EXPECTED");

	memset(&state, 0, sizeof(state));
	if (res_ninit(&state) != 0)
	{
		printf("cannot initialise the resolver\n");
		return EXIT_FAILED;
	}
	state.retrans = (int) timeout;
	state.retry = 1;
	if (resolver != NULL && resolver[0] != '\0')
	{
		if (!parse_resolver(resolver, &state.nsaddr_list[0]))
			usage_fail("--resolver must be an IPv4 address, optionally with :PORT");
		state.nscount = 1;
	}

	len = res_nquery(&state, argv[argi], ns_c_in, ns_t_txt, answer, sizeof(answer));
	if (len < 0)
	{
		/* h_errno-style reason: NXDOMAIN and NODATA mean "no record" */
		int			herr = state.res_h_errno;

		res_nclose(&state);
		if (herr == HOST_NOT_FOUND || herr == NO_DATA)
		{
			printf("no TXT record at %s\n", argv[argi]);
			return EXIT_NOT_FOUND;
		}
		printf("DNS lookup of %s failed: %s\n", argv[argi],
			   herr == TRY_AGAIN ? "timeout or server failure" : "no answer");
		return EXIT_FAILED;
	}
	res_nclose(&state);
	if (ns_initparse(answer, len, &msg) != 0)
	{
		printf("malformed DNS answer for %s\n", argv[argi]);
		return EXIT_FAILED;
	}
	n = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < n; i++)
	{
		ns_rr		rr;

		if (ns_parserr(&msg, ns_s_an, i, &rr) != 0)
			continue;
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		txt++;
		if (txt_matches(ns_rr_rdata(rr), ns_rr_rdlen(rr), argv[argi + 1]))
		{
			printf("TXT record found at %s\n", argv[argi]);
			return EXIT_FOUND;
		}
	}
	if (txt == 0)
		printf("no TXT record at %s\n", argv[argi]);
	else
		printf("%d TXT record%s at %s, none holds this owner's token\n",
			   txt, txt == 1 ? "" : "s", argv[argi]);
	return EXIT_NOT_FOUND;
}
