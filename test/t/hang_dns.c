/*
 * hang_dns.c: an LD_PRELOAD shim for the TAP tests.  getaddrinfo() of the
 * host name in CTR_HANG_DNS_HOST (default "hang.ctr-dist.test") sleeps
 * CTR_HANG_DNS_SECONDS (default 30) and then resolves to 127.0.0.1, like a
 * DNS server that does not answer; every other name goes to the real
 * getaddrinfo.  Built by the test that uses it:
 *
 *   cc -shared -fPIC -o hang_dns.so hang_dns.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn) (const char *, const char *,
							   const struct addrinfo *, struct addrinfo **);

int
getaddrinfo(const char *node, const char *service,
			const struct addrinfo *hints, struct addrinfo **res)
{
	static getaddrinfo_fn real = NULL;
	const char *hang = getenv("CTR_HANG_DNS_HOST");

	if (real == NULL)
		real = (getaddrinfo_fn) dlsym(RTLD_NEXT, "getaddrinfo");
	if (hang == NULL)
		hang = "hang.ctr-dist.test";
	if (node != NULL && strcmp(node, hang) == 0)
	{
		const char *s = getenv("CTR_HANG_DNS_SECONDS");

		sleep(s ? (unsigned) atoi(s) : 30);
		node = "127.0.0.1";
	}
	return real(node, service, hints, res);
}
