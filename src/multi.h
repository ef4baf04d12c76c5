/*-------------------------------------------------------------------------
 *
 * multi.h
 *	  A curl multi handle driven from a WaitEventSet with the latch.
 *
 * curl says which sockets it wants watched and when it next needs a
 * call; multi_wait() sleeps on those sockets, the process latch and
 * postmaster death together, so interrupts are served mid-request, and
 * hands what happened back to curl.  It knows nothing of jobs or
 * providers: the engine adds easy handles and reads finished ones.
 *
 * Resources (one owner each, one release path):
 *
 *	what			created by		freed by, on every path
 *	CURLM			multi_init		multi_release
 *	epoll set		multi_init		multi_release (Linux: curl's sockets,
 *									added and removed by the socket callback)
 *	sockets array	socket callback	multi_release (without epoll; malloc:
 *									grown inside a curl callback, which
 *									must not ereport)
 *	WaitEventSet	multi_wait		multi_release (17+: owned by no
 *									ResourceOwner, so freed only here);
 *									without epoll also multi_wait, when
 *									the sockets change
 *	idle easy		multi_retire,	multi_easy hands one to a transfer
 *	handles			after curl		(transfer.h, which retires it again);
 *					reported a		multi_release frees those left
 *					transfer done
 *					(any result)
 *
 * multi_release runs from the engine's release path, before the engine's
 * memory goes away (see engine.h).  An easy handle in use belongs to its
 * transfer and must be retired before multi_release.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_MULTI_H
#define CTR_MULTI_H

#include "postgres.h"

#include <curl/curl.h>

#include "storage/latch.h"
#include "utils/timestamp.h"

typedef struct WatchedSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN/OUT/INOUT */
} WatchedSocket;

/*
 * Idle easy handles kept for the next transfers.  A new handle costs an
 * allocation of curl's state and of its download buffer, and freeing them
 * again, on every request; a reset one costs neither.  More than the
 * usual concurrency are freed: a wide call does not keep hundreds.
 */
#define MULTI_IDLE_EASY		32

typedef struct CurlMulti
{
	CURLM	   *multi;
	MemoryContext cxt;			/* where the wait set lives before 17 */
	int			epfd;			/* curl's sockets, if epoll_open */
	bool		epoll_open;
	int			watch_errno;	/* epoll_ctl failed in a callback */
	WatchedSocket *sockets;		/* malloc'd; without epoll only */
	int			nsockets;
	int			maxsockets;
	bool		sockets_changed;
	bool		out_of_memory;	/* a callback could not record a socket */
	TimestampTz deadline;		/* curl's timer; 0: none */
	WaitEventSet *wes;
	/* easy handles of finished transfers, reset: no option of ours is left */
	CURL	   *idle[MULTI_IDLE_EASY];
	int			nidle;
} CurlMulti;

extern void multi_init(CurlMulti *m, MemoryContext cxt, long max_connections);
/* An easy handle with no options set (NULL: out of memory) */
extern CURL *multi_easy(CurlMulti *m);
extern void multi_add(CurlMulti *m, CURL *easy);

/*
 * The transfer of easy is over: take it out of the multi, and keep it for
 * multi_easy if reuse (curl reported its transfer done, whatever the
 * result: the reset forgets it), else free it.  Never
 * raises: called on every path that ends a transfer, abort included.
 */
extern void multi_retire(CurlMulti *m, CURL *easy, bool reuse);

/*
 * Sleep until the latch is set, a socket is ready, curl's timer is due or
 * timeout_ms passes (-1: no limit; 0: just poll), and let curl act.  The
 * latch is reset here: the caller checks interrupts and its own queues
 * after each call.
 */
extern void multi_wait(CurlMulti *m, long timeout_ms, uint32 wait_event_info);

/* The next finished transfer (CURLMSG_DONE), or NULL */
extern CURL *multi_next_done(CurlMulti *m, CURLcode *result);

extern void multi_release(CurlMulti *m);

#endif							/* CTR_MULTI_H */
