/*-------------------------------------------------------------------------
 *
 * multi.c
 *	  curl multi driven from a WaitEventSet: sockets, timer, signals.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs a call (CURLMOPT_TIMERFUNCTION).  multi_wait()
 * puts those sockets, the latch and postmaster death in one WaitEventSet,
 * sleeps until one fires or the timer is due, and hands the events to
 * curl.  The callbacks only record: they never ereport and never palloc.
 *
 * curl resolves host names on threads of its own, which it starts from
 * inside curl_multi_socket_action().  A thread inherits the signal mask of
 * the thread that starts it, so every call into curl that may start one
 * runs with all signals blocked: PostgreSQL's handlers then only ever run
 * on the backend's own thread.  Signals that arrive meanwhile stay pending
 * and are delivered when the mask is restored, a few microseconds later.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>
#include <pthread.h>

#include "compat.h"
#include "miscadmin.h"
#include "multi.h"

/* ---- callbacks: record only ---- */

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	CurlMulti  *m = (CurlMulti *) userp;
	int			i;

	for (i = 0; i < m->nsockets; i++)
		if (m->sockets[i].fd == fd)
			break;

	if (what == CURL_POLL_REMOVE)
	{
		if (i < m->nsockets)
			m->sockets[i] = m->sockets[--m->nsockets];
	}
	else if (i < m->nsockets)
	{
		if (m->sockets[i].what == what)
			return 0;
		m->sockets[i].what = what;
	}
	else
	{
		if (m->nsockets == m->maxsockets)
		{
			int			newmax = Max(m->maxsockets * 2, 16);
			WatchedSocket *p = realloc(m->sockets, sizeof(WatchedSocket) * newmax);

			if (p == NULL)
			{
				/* curl then fails its transfers; multi_wait raises the error */
				m->out_of_memory = true;
				return -1;
			}
			m->sockets = p;
			m->maxsockets = newmax;
		}
		m->sockets[m->nsockets].fd = fd;
		m->sockets[m->nsockets].what = what;
		m->nsockets++;
	}
	m->sockets_changed = true;
	return 0;
}

static int
timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	CurlMulti  *m = (CurlMulti *) userp;

	if (timeout_ms < 0)
		m->deadline = 0;
	else
		m->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/* ---- calls into curl ---- */

static void
check_multi(CurlMulti *m, CURLMcode rc, bool starting)
{
	if (m->out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not keep track of an HTTP connection.")));
	if (rc != CURLM_OK && starting)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not start an HTTP request"),
				 errdetail("libcurl: %s", curl_multi_strerror(rc))));
	if (rc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not drive the HTTP requests"),
				 errdetail("libcurl: %s", curl_multi_strerror(rc))));
}

/* curl_multi_socket_action with every signal blocked (see the top) */
static void
socket_action(CurlMulti *m, curl_socket_t fd, int flags)
{
	sigset_t	all;
	sigset_t	old;
	int			running;
	CURLMcode	rc;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = curl_multi_socket_action(m->multi, fd, flags, &running);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	check_multi(m, rc, false);
}

void
multi_init(CurlMulti *m, MemoryContext cxt, long max_connections)
{
	memset(m, 0, sizeof(*m));
	m->cxt = cxt;
	m->multi = curl_multi_init();
	if (m->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, max_connections);
}

void
multi_add(CurlMulti *m, CURL *easy)
{
	/* curl asks for an immediate call through the timer callback */
	check_multi(m, curl_multi_add_handle(m->multi, easy), true);
}

/* Never raises: called on every path that ends a transfer, abort included */
void
multi_remove(CurlMulti *m, CURL *easy)
{
	if (m->multi)
		(void) curl_multi_remove_handle(m->multi, easy);
}

CURL *
multi_next_done(CurlMulti *m, CURLcode *result)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(m->multi, &left)) != NULL)
	{
		if (msg->msg == CURLMSG_DONE)
		{
			*result = msg->data.result;
			return msg->easy_handle;
		}
	}
	return NULL;
}

static void
rebuild_wait_set(CurlMulti *m)
{
	if (m->wes)
		FreeWaitEventSet(m->wes);
	m->wes = NULL;
	m->wes = ctr_create_wait_event_set(m->cxt, m->nsockets + 2);
	AddWaitEventToSet(m->wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	/* a stand-alone backend (postgres --single) has no postmaster to watch */
	if (IsUnderPostmaster)
		AddWaitEventToSet(m->wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < m->nsockets; i++)
	{
		uint32		events = 0;

		if (m->sockets[i].what & CURL_POLL_IN)
			events |= WL_SOCKET_READABLE;
		if (m->sockets[i].what & CURL_POLL_OUT)
			events |= WL_SOCKET_WRITEABLE;
		AddWaitEventToSet(m->wes, events, m->sockets[i].fd, NULL, NULL);
	}
	m->sockets_changed = false;
}

void
multi_wait(CurlMulti *m, long timeout_ms, uint32 wait_event_info)
{
	WaitEvent	events[16];
	int			nevents;
	long		timeout = timeout_ms;
	bool		curl_due = false;

	if (m->deadline != 0)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		ms = m->deadline <= now ? 0 :
			(long) ((m->deadline - now + 999) / 1000);

		if (timeout < 0 || ms <= timeout)
		{
			timeout = ms;
			curl_due = true;
		}
	}

	if (m->wes == NULL || m->sockets_changed)
		rebuild_wait_set(m);

	nevents = WaitEventSetWait(m->wes, timeout, events, lengthof(events),
							   wait_event_info);
	for (int i = 0; i < nevents; i++)
	{
		if (events[i].events & WL_LATCH_SET)
			ResetLatch(MyLatch);
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
		{
			int			flags = 0;

			if (events[i].events & WL_SOCKET_READABLE)
				flags |= CURL_CSELECT_IN;
			if (events[i].events & WL_SOCKET_WRITEABLE)
				flags |= CURL_CSELECT_OUT;
			socket_action(m, events[i].fd, flags);
		}
	}
	if (m->deadline != 0 && (curl_due || m->deadline <= GetCurrentTimestamp()))
	{
		m->deadline = 0;
		socket_action(m, CURL_SOCKET_TIMEOUT, 0);
	}
}

/* The release path: after every easy handle was removed; never raises */
void
multi_release(CurlMulti *m)
{
	if (m->multi)
		curl_multi_cleanup(m->multi);
	m->multi = NULL;
	if (m->wes)
		FreeWaitEventSet(m->wes);
	m->wes = NULL;
	free(m->sockets);
	m->sockets = NULL;
	m->nsockets = m->maxsockets = 0;
}
