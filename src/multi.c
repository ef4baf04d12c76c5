/*-------------------------------------------------------------------------
 *
 * multi.c
 *	  curl multi driven from a WaitEventSet: sockets, timer, signals.
 *
 * curl tells us which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs a call (CURLMOPT_TIMERFUNCTION).  On Linux the
 * socket callback keeps curl's sockets in an epoll set of our own, and the
 * WaitEventSet -- built once -- holds the latch, postmaster death and that
 * one epoll descriptor, which is readable while any of curl's sockets is
 * ready: a request costs one epoll_ctl per change of what curl waits for,
 * where rebuilding the WaitEventSet on every change cost an epoll_create,
 * an epoll_ctl per socket and a close.  Elsewhere the sockets are kept in
 * an array and the WaitEventSet is rebuilt when they change.  multi_wait()
 * sleeps until something fires or the timer is due and hands the events to
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
#ifdef HAVE_SYS_EPOLL_H
#include <sys/epoll.h>
#endif
#include <unistd.h>

#include "compat.h"
#include "miscadmin.h"
#include "multi.h"

/* ---- callbacks: record only ---- */

#ifdef HAVE_SYS_EPOLL_H
/*
 * What curl wants of fd, in the epoll set.  curl_multi_assign() marks the
 * sockets registered; a socket curl closed without saying so left the set
 * when it closed (the kernel drops it), so a stale mark or a reused number
 * is put right by trying the other operation once.
 */
static int
watch_epoll(CurlMulti *m, curl_socket_t fd, int what, bool registered)
{
	struct epoll_event ev;
	int			op;

	if (what == CURL_POLL_REMOVE)
	{
		if (registered)
		{
			(void) epoll_ctl(m->epfd, EPOLL_CTL_DEL, fd, NULL);
			curl_multi_assign(m->multi, fd, NULL);
		}
		return 0;
	}
	memset(&ev, 0, sizeof(ev));
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	ev.data.fd = fd;
	op = registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(m->epfd, op, fd, &ev) != 0)
	{
		op = (errno == EEXIST) ? EPOLL_CTL_MOD : (errno == ENOENT) ? EPOLL_CTL_ADD : -1;
		if (op < 0 || epoll_ctl(m->epfd, op, fd, &ev) != 0)
		{
			/* curl then fails the transfer; multi_wait raises the error */
			m->watch_errno = errno;
			return -1;
		}
	}
	if (!registered)
		curl_multi_assign(m->multi, fd, m);
	return 0;
}
#endif

static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	CurlMulti  *m = (CurlMulti *) userp;
	int			i;

#ifdef HAVE_SYS_EPOLL_H
	if (m->epoll_open)
		return watch_epoll(m, fd, what, socketp != NULL);
#endif
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
	if (m->watch_errno != 0)
	{
		int			e = m->watch_errno;

		errno = e;
		ereport(ERROR,
				(errcode(e == ENOMEM ? ERRCODE_OUT_OF_MEMORY :
						 e == ENOSPC ? ERRCODE_CONFIGURATION_LIMIT_EXCEEDED :
						 ERRCODE_INTERNAL_ERROR),
				 errmsg("could not watch an HTTP connection: %m"),
				 e == ENOSPC ? errhint("The kernel's fs.epoll.max_user_watches is reached.") : 0));
	}
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

/* A socket curl should act on, and how it is ready */
typedef struct ReadySocket
{
	curl_socket_t fd;
	int			flags;			/* CURL_CSELECT_* */
} ReadySocket;

static inline void
add_ready(ReadySocket *ready, int *nready, curl_socket_t fd, bool in, bool out, bool err)
{
	ready[*nready].fd = fd;
	ready[*nready].flags = (in ? CURL_CSELECT_IN : 0) | (out ? CURL_CSELECT_OUT : 0) |
		(err ? CURL_CSELECT_ERR : 0);
	(*nready)++;
}

/*
 * curl_multi_socket_action for each of ready[0..n), with every signal
 * blocked once around them all (see the top); the mask is back before any
 * error is raised
 */
static void
socket_actions(CurlMulti *m, const ReadySocket *ready, int n)
{
	sigset_t	all;
	sigset_t	old;
	int			running;
	CURLMcode	rc = CURLM_OK;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int i = 0; i < n && rc == CURLM_OK; i++)
		rc = curl_multi_socket_action(m->multi, ready[i].fd, ready[i].flags, &running);
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
#ifdef HAVE_SYS_EPOLL_H
	m->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (m->epfd < 0)
		ereport(ERROR,
				(errcode_for_socket_access(),
				 errmsg("could not create an epoll set for HTTP connections: %m")));
	m->epoll_open = true;
#endif
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

CURL *
multi_easy(CurlMulti *m)
{
	if (m->nidle > 0)
		return m->idle[--m->nidle];
	return curl_easy_init();
}

void
multi_retire(CurlMulti *m, CURL *easy, bool reuse)
{
	if (m->multi)
		(void) curl_multi_remove_handle(m->multi, easy);
	else
		reuse = false;			/* released: nothing may be kept */
	if (reuse && m->nidle < MULTI_IDLE_EASY)
	{
		/* forgets every option, so nothing points at the transfer's memory */
		curl_easy_reset(easy);
		m->idle[m->nidle++] = easy;
	}
	else
		curl_easy_cleanup(easy);
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
	m->wes = ctr_create_wait_event_set(m->cxt, m->nsockets + 3);
	AddWaitEventToSet(m->wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	/* a stand-alone backend (postgres --single) has no postmaster to watch */
	if (IsUnderPostmaster)
		AddWaitEventToSet(m->wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (m->epoll_open)
		AddWaitEventToSet(m->wes, WL_SOCKET_READABLE, m->epfd, NULL, NULL);
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
	ReadySocket ready[32];
	int			nready = 0;
#ifdef HAVE_SYS_EPOLL_H
	bool		epoll_ready = false;
#endif
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
#ifdef HAVE_SYS_EPOLL_H
		else if (m->epoll_open && events[i].fd == m->epfd)
			epoll_ready = true;
#endif
		else if (events[i].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			add_ready(ready, &nready, events[i].fd,
					  (events[i].events & WL_SOCKET_READABLE) != 0,
					  (events[i].events & WL_SOCKET_WRITEABLE) != 0, false);
	}
#ifdef HAVE_SYS_EPOLL_H
	if (epoll_ready)
	{
		struct epoll_event ev[lengthof(ready)];
		int			n = epoll_wait(m->epfd, ev, lengthof(ev) - nready, 0);

		if (n < 0 && errno != EINTR)
			ereport(ERROR,
					(errcode_for_socket_access(),
					 errmsg("could not wait for HTTP connections: %m")));
		/* more than fit stay ready (level-triggered): the next wait returns */
		for (int i = 0; i < n; i++)
		{
			/* as the WaitEventSet does: an error or hang-up wakes either side */
			bool		err = (ev[i].events & (EPOLLERR | EPOLLHUP)) != 0;

			add_ready(ready, &nready, ev[i].data.fd,
					  err || (ev[i].events & EPOLLIN), err || (ev[i].events & EPOLLOUT), err);
		}
	}
#endif
	if (nready > 0)
		socket_actions(m, ready, nready);
	if (m->deadline != 0 && (curl_due || m->deadline <= GetCurrentTimestamp()))
	{
		ReadySocket timer = {CURL_SOCKET_TIMEOUT, 0};

		m->deadline = 0;
		socket_actions(m, &timer, 1);
	}
}

/* The release path: after every easy handle was removed; never raises */
void
multi_release(CurlMulti *m)
{
	while (m->nidle > 0)
		curl_easy_cleanup(m->idle[--m->nidle]);
	if (m->multi)
		curl_multi_cleanup(m->multi);
	m->multi = NULL;
	if (m->wes)
		FreeWaitEventSet(m->wes);
	m->wes = NULL;
#ifdef HAVE_SYS_EPOLL_H
	if (m->epoll_open)
		close(m->epfd);
	m->epoll_open = false;
#endif
	free(m->sockets);
	m->sockets = NULL;
	m->nsockets = m->maxsockets = 0;
}
