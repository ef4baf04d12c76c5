/*-------------------------------------------------------------------------
 *
 * resolve.c
 *	  Look a provider's host up on a detached thread (see resolve.h).
 *
 * Plain C and libc: the thread never touches PostgreSQL's memory or
 * state, and starts with every signal blocked, so PostgreSQL's handlers
 * only ever run on the backend's own thread.
 *
 *-------------------------------------------------------------------------
 */
#include "resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ENTRY_MAX 1024

struct Lookup
{
	pthread_mutex_t mutex;
	int			refs;			/* the thread's and the engine's */
	LookupState state;
	char		host[256];
	char		port[8];
	char		entry[ENTRY_MAX];
};

static void
lookup_unref(Lookup *l)
{
	int			refs;

	pthread_mutex_lock(&l->mutex);
	refs = --l->refs;
	pthread_mutex_unlock(&l->mutex);
	if (refs == 0)
	{
		pthread_mutex_destroy(&l->mutex);
		free(l);
	}
}

static void *
lookup_thread(void *arg)
{
	Lookup	   *l = (Lookup *) arg;
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	char		entry[ENTRY_MAX];
	size_t		len;
	int			naddrs = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	len = (size_t) snprintf(entry, sizeof(entry), "%s:%s:", l->host, l->port);
	if (getaddrinfo(l->host, l->port, &hints, &res) == 0)
	{
		for (struct addrinfo *a = res; a != NULL && naddrs < 8; a = a->ai_next)
		{
			char		addr[INET6_ADDRSTRLEN + 2];
			char		text[INET6_ADDRSTRLEN];
			const void *src = a->ai_family == AF_INET6 ?
				(const void *) &((struct sockaddr_in6 *) a->ai_addr)->sin6_addr :
				(const void *) &((struct sockaddr_in *) a->ai_addr)->sin_addr;

			if ((a->ai_family != AF_INET && a->ai_family != AF_INET6) ||
				inet_ntop(a->ai_family, src, text, sizeof(text)) == NULL)
				continue;
			/* curl wants IPv6 addresses in brackets */
			snprintf(addr, sizeof(addr), a->ai_family == AF_INET6 ? "[%s]" : "%s", text);
			if (len + strlen(addr) + 2 >= sizeof(entry))
				break;
			len += (size_t) snprintf(entry + len, sizeof(entry) - len, "%s%s",
									 naddrs ? "," : "", addr);
			naddrs++;
		}
		freeaddrinfo(res);
	}

	pthread_mutex_lock(&l->mutex);
	if (naddrs > 0)
	{
		memcpy(l->entry, entry, len + 1);
		l->state = LOOKUP_DONE;
	}
	else
		l->state = LOOKUP_FAILED;
	pthread_mutex_unlock(&l->mutex);
	lookup_unref(l);
	return NULL;
}

/* host and port of an http(s) URL; false for a numeric host or a bad URL */
static bool
url_host(const char *url, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *p;
	const char *end;
	const char *colon;
	struct in_addr a4;
	bool		https = strncmp(url, "https://", 8) == 0;

	if (!https && strncmp(url, "http://", 7) != 0)
		return false;
	p = url + (https ? 8 : 7);
	if (*p == '[')
		return false;			/* an IPv6 literal: nothing to look up */
	end = p + strcspn(p, "/?#");
	colon = memchr(p, ':', (size_t) (end - p));
	if ((colon ? colon : end) - p >= (long) hostlen || colon == p || end == p)
		return false;
	memcpy(host, p, (size_t) ((colon ? colon : end) - p));
	host[(colon ? colon : end) - p] = '\0';
	if (colon)
	{
		if (end - colon - 1 <= 0 || end - colon - 1 >= (long) portlen)
			return false;
		memcpy(port, colon + 1, (size_t) (end - colon - 1));
		port[end - colon - 1] = '\0';
	}
	else
		snprintf(port, portlen, "%s", https ? "443" : "80");
	return inet_pton(AF_INET, host, &a4) != 1;
}

Lookup *
lookup_start(const char *url)
{
	Lookup	   *l = calloc(1, sizeof(Lookup));
	pthread_attr_t attr;
	pthread_t	thread;
	sigset_t	all;
	sigset_t	old;
	int			rc;

	if (l == NULL)
		return NULL;
	if (!url_host(url, l->host, sizeof(l->host), l->port, sizeof(l->port)))
	{
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mutex, NULL);
	l->refs = 2;
	l->state = LOOKUP_PENDING;

	/* the thread inherits this mask: no signal is ever delivered to it */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&thread, &attr, lookup_thread, l);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		pthread_mutex_destroy(&l->mutex);
		free(l);
		return NULL;
	}
	return l;
}

LookupState
lookup_state(Lookup *l)
{
	LookupState s;

	pthread_mutex_lock(&l->mutex);
	s = l->state;
	pthread_mutex_unlock(&l->mutex);
	return s;
}

const char *
lookup_resolve_entry(Lookup *l)
{
	/* written once, before the state says DONE, and never again */
	return l->entry;
}

void
lookup_abandon(Lookup *l)
{
	if (l)
		lookup_unref(l);
}
