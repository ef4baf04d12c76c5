/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Dynamic background workers, one per provider in play.
 *
 * The calling backend (the leader) creates one DSM segment per call.  It
 * holds the call's settings and provider configurations, and two shm_mq
 * queues per worker: batches go out on one; results, errors and notices
 * come back on the other, which the worker installs as its protocol
 * channel (pq_redirect_to_shm_mq), so a worker's ereport reaches the
 * leader as a real error with the worker's SQLSTATE.
 *
 * Workers need no database: they attach to the segment, run the engine
 * for their provider, and exit when the leader detaches.  If the leader's
 * transaction aborts (cancel, statement_timeout, error), the segment's
 * detach callback terminates the workers, whose latch-driven wait loop
 * notices at once and abandons any transfer in flight.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "libpq/pqmq.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "budget.h"
#include "wait_events.h"
#include "worker.h"

#define CTR_DSM_MAGIC		0x63747264	/* "ctrd" */
#define CTR_QUEUE_SIZE		(256 * 1024)
#define KEY_HEADER			0
#define KEY_BUDGET			1
#define KEY_QUEUES			10	/* worker i: 10 + 2i out to it, 11 + 2i back */
#define MAX_WORKERS			NUM_PROVIDERS

static int	ctr_max_workers = 3;

typedef struct CallHeader
{
	pid_t		leader_pid;
	int			nworkers;
	EngineSettings settings;
	ProviderConfig configs[MAX_WORKERS];	/* worker i runs configs[i] */
} CallHeader;

typedef struct WorkerSlot
{
	ProviderId	provider;
	BackgroundWorkerHandle *handle;
	shm_mq_handle *out;			/* leader -> worker: batches */
	shm_mq_handle *in;			/* worker -> leader: results, errors */
	List	   *unsent;			/* batches not in the worker's queue yet */
	int			in_worker;		/* batches in its queue or engine */
	int			burst;			/* see flush_due */
	TimestampTz unsent_since;	/* when the oldest unsent was queued */
	bool		blocked;		/* the queue was full: push at every chance */
} WorkerSlot;

struct WorkerPool
{
	MemoryContext cxt;			/* the pool, its handles, batches kept back;
								 * see worker_pool_start */
	dsm_segment *seg;
	CallHeader *header;
	CallBudget *budget;			/* the call's ledger, in the segment */
	int			nworkers;
	WorkerSlot	workers[MAX_WORKERS];
	int			next_poll;		/* round-robin over workers when receiving */
};

void
worker_define_settings(void)
{
	DefineCustomIntVariable("ctr_dist.max_workers",
							"Background workers one ctr_predict call may start (one per provider).",
							"0 runs every request in the calling backend.",
							&ctr_max_workers,
							3, 0, MAX_WORKERS,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}

/* PostgreSQL 15 has no initReadOnlyStringInfo */
static void
read_only_string(StringInfo str, void *data, Size len)
{
	str->data = data;
	str->len = (int) len;
	str->maxlen = (int) len;
	str->cursor = 0;
}

/* ---- leader side ---- */

/* The keys in shared memory are needed only until each worker copied its own */
static void
wipe_keys(WorkerPool *pool)
{
	for (int i = 0; i < MAX_WORKERS; i++)
		explicit_bzero(pool->header->configs[i].api_key, CTR_KEY_MAX);
}

/* Runs on abort too: make sure no worker outlives the call, wipe keys */
static void
pool_on_detach(dsm_segment *seg, Datum arg)
{
	WorkerPool *pool = (WorkerPool *) DatumGetPointer(arg);

	for (int i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].handle)
			TerminateBackgroundWorker(pool->workers[i].handle);
	wipe_keys(pool);
}

static bool
register_worker(WorkerPool *pool, int index, const char *provider)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "ctr_dist");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "ctr_dist_worker_main");
	snprintf(worker.bgw_type, BGW_MAXLEN, "ctr_dist worker");
	snprintf(worker.bgw_name, BGW_MAXLEN, "ctr_dist worker for %s (leader pid %d)",
			 provider, MyProcPid);
	worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(pool->seg));
	memcpy(worker.bgw_extra, &index, sizeof(index));
	worker.bgw_notify_pid = MyProcPid;

	return RegisterDynamicBackgroundWorker(&worker, &pool->workers[index].handle);
}

WorkerPool *
worker_pool_start(const ProviderConfig *configs, int nconfigs,
				  const EngineSettings *settings, double max_cost_usd)
{
	WorkerPool *pool;
	MemoryContext old;
	shm_toc_estimator e;
	shm_toc    *toc;
	int			nwanted = 0;
	int			want[MAX_WORKERS];
	Size		size;
	StringInfoData failed;

	/*
	 * The pool and the worker handles must outlive the call's memory: on
	 * abort the segment's detach callback runs when the resource owner is
	 * released, and the call's memory may already be gone by then.  A
	 * context of their own under the (sub)transaction's, which lasts until
	 * after that; a normal end deletes it, so that a subtransaction that
	 * ran a call leaves nothing behind.
	 */
	MemoryContext cxt = AllocSetContextCreate(CurTransactionContext, "ctr_dist workers",
											  ALLOCSET_SMALL_SIZES);

	pool = MemoryContextAllocZero(cxt, sizeof(WorkerPool));
	pool->cxt = cxt;
	for (int i = 0; i < nconfigs && nwanted < ctr_max_workers; i++)
		if (configs[i].id != PROVIDER_MOCK)
			want[nwanted++] = i;
	if (nwanted == 0)
		return pool;

	initStringInfo(&failed);	/* in the call's memory: only for the NOTICE */
	old = MemoryContextSwitchTo(cxt);

	shm_toc_initialize_estimator(&e);
	shm_toc_estimate_chunk(&e, sizeof(CallHeader));
	shm_toc_estimate_chunk(&e, sizeof(CallBudget));
	for (int i = 0; i < 2 * nwanted; i++)
		shm_toc_estimate_chunk(&e, CTR_QUEUE_SIZE);
	shm_toc_estimate_keys(&e, 2 + 2 * nwanted);
	size = shm_toc_estimate(&e);

	pool->seg = dsm_create(size, 0);
	toc = shm_toc_create(CTR_DSM_MAGIC, dsm_segment_address(pool->seg), size);

	pool->header = shm_toc_allocate(toc, sizeof(CallHeader));
	memset(pool->header, 0, sizeof(CallHeader));
	pool->header->leader_pid = MyProcPid;
	pool->header->nworkers = nwanted;
	pool->header->settings = *settings;
	shm_toc_insert(toc, KEY_HEADER, pool->header);
	pool->budget = shm_toc_allocate(toc, sizeof(CallBudget));
	budget_init(pool->budget, max_cost_usd);
	shm_toc_insert(toc, KEY_BUDGET, pool->budget);

	on_dsm_detach(pool->seg, pool_on_detach, PointerGetDatum(pool));

	for (int w = 0; w < nwanted; w++)
	{
		WorkerSlot *slot = &pool->workers[w];
		shm_mq	   *out;
		shm_mq	   *in;
		const char *name = provider_ops(configs[want[w]].id)->name;

		pool->header->configs[w] = configs[want[w]];
		slot->provider = configs[want[w]].id;
		slot->burst = Max(configs[want[w]].max_concurrency / 2, 1);
		out = shm_mq_create(shm_toc_allocate(toc, CTR_QUEUE_SIZE), CTR_QUEUE_SIZE);
		shm_toc_insert(toc, KEY_QUEUES + 2 * w, out);
		shm_mq_set_sender(out, MyProc);
		in = shm_mq_create(shm_toc_allocate(toc, CTR_QUEUE_SIZE), CTR_QUEUE_SIZE);
		shm_toc_insert(toc, KEY_QUEUES + 2 * w + 1, in);
		shm_mq_set_receiver(in, MyProc);

		if (!register_worker(pool, w, name))
		{
			appendStringInfo(&failed, "%s%s", failed.len ? ", " : "", name);
			slot->handle = NULL;
			continue;
		}
		pool->nworkers = w + 1;
		slot->out = shm_mq_attach(out, pool->seg, slot->handle);
		slot->in = shm_mq_attach(in, pool->seg, slot->handle);
	}
	pool->nworkers = nwanted;
	MemoryContextSwitchTo(old);

	if (failed.len > 0)
		ereport(NOTICE,
				(errmsg("no background worker slot is free: running the %s requests in this backend", failed.data),
				 errhint("Raise max_worker_processes (now %d) or lower ctr_dist.max_workers.",
						 max_worker_processes)));
	return pool;
}

bool
worker_pool_runs(WorkerPool *pool, ProviderId provider)
{
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].provider == provider && pool->workers[i].handle)
			return true;
	return false;
}

CallBudget *
worker_pool_budget(WorkerPool *pool)
{
	return pool->budget;
}

static WorkerSlot *
worker_for(WorkerPool *pool, ProviderId provider)
{
	for (int i = 0; i < pool->nworkers; i++)
		if (pool->workers[i].provider == provider && pool->workers[i].handle)
			return &pool->workers[i];
	elog(ERROR, "no worker runs provider %d", (int) provider);
	return NULL;
}

static void
worker_died(WorkerSlot *slot)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
			 errmsg("ctr_dist worker for provider \"%s\" exited unexpectedly",
					provider_ops(slot->provider)->name),
			 errhint("A worker that cannot start may mean max_worker_processes (now %d) is too low; see the server log.",
					 max_worker_processes)));
}

/*
 * Batches go to a worker in bursts, because waking it (a signal, two context
 * switches) costs more than a batch's own bookkeeping: while the worker has
 * half as much again as its concurrency to do, new batches wait here until
 * there are half its concurrency of them, or the oldest has waited
 * BATCH_HOLD_MS (the worker's jobs may be waiting out a backoff or an open
 * breaker, and a batch that would bounce must not wait for them).  The
 * worker's answers come back in bursts of the same size (HeldResults) and
 * bring the leader back.  Only the last of a burst wakes the worker: shm_mq
 * publishes the others with it, or by itself past a quarter of the ring, or
 * (once the worker has attached) when the ring is full; after a full ring
 * everything goes at every chance.  Returns the ms until it is due, 0 if it
 * is, -1 if nothing waits.
 */
#define BATCH_HOLD_MS 20

static long
flush_due(const WorkerSlot *slot, TimestampTz now)
{
	long		waited;

	if (slot->unsent == NIL || slot->handle == NULL)
		return -1;
	if (slot->blocked || slot->in_worker < 3 * slot->burst ||
		list_length(slot->unsent) >= slot->burst)
		return 0;
	waited = now < slot->unsent_since ? BATCH_HOLD_MS :
		TimestampDifferenceMilliseconds(slot->unsent_since, now);
	return waited >= BATCH_HOLD_MS ? 0 : BATCH_HOLD_MS - waited;
}

/* Push queued batches into the worker's queue without blocking */
static void
flush_unsent(WorkerSlot *slot)
{
	while (slot->unsent != NIL)
	{
		StringInfo	msg = (StringInfo) linitial(slot->unsent);
		bool		last = list_length(slot->unsent) == 1;
		shm_mq_result res = shm_mq_send(slot->out, msg->len, msg->data, true, last);

		if (res == SHM_MQ_WOULD_BLOCK)
		{
			slot->blocked = true;
			return;
		}
		if (res == SHM_MQ_DETACHED)
			worker_died(slot);
		slot->in_worker++;
		slot->unsent = list_delete_first(slot->unsent);
		pfree(msg->data);
		pfree(msg);
	}
	slot->blocked = false;
}

void
worker_pool_send(WorkerPool *pool, const JobSpec *spec)
{
	WorkerSlot *slot = worker_for(pool, spec->provider);
	MemoryContext old = MemoryContextSwitchTo(pool->cxt);
	StringInfo	msg = makeStringInfo();

	/* room for the header's 26 bytes and the text at once, not by regrowing */
	enlargeStringInfo(msg, 26 + spec->text_len + spec->tail_len);
	pq_sendint64(msg, spec->batch_no);
	pq_sendint32(msg, spec->ad_no);
	pq_sendint32(msg, spec->n);
	pq_sendbyte(msg, (uint8) spec->kind);
	pq_sendbyte(msg, spec->last_resort ? 1 : 0);
	pq_sendint64(msg, (int64) spec->cache_key);
	pq_sendbytes(msg, spec->text, spec->text_len);
	if (spec->tail_len > 0)
		pq_sendbytes(msg, spec->tail, spec->tail_len);
	if (slot->unsent == NIL)
		slot->unsent_since = GetCurrentTimestamp();
	slot->unsent = lappend(slot->unsent, msg);
	MemoryContextSwitchTo(old);
	/* a burst is ready, or the worker is all but idle: do not keep it back */
	if (list_length(slot->unsent) >= slot->burst || slot->in_worker < slot->burst)
		flush_unsent(slot);
}

/*
 * Hand the batches that are due (flush_due), or all of them, to their
 * workers; returns the ms until the next are due, or -1
 */
long
worker_pool_flush(WorkerPool *pool, bool all)
{
	TimestampTz now = 0;
	long		next = -1;

	for (int i = 0; i < pool->nworkers; i++)
	{
		WorkerSlot *slot = &pool->workers[i];
		long		due;

		if (slot->unsent == NIL || slot->handle == NULL)
			continue;
		if (now == 0)
			now = GetCurrentTimestamp();
		due = all ? 0 : flush_due(slot, now);
		if (due == 0)
		{
			/*
			 * This empties the list or finds the ring full; what a full ring
			 * keeps back goes when the worker has read, and its reading wakes
			 * us: the worker always reads its queue until it is empty, and
			 * shm_mq then tells the sender what it consumed.  No timer.
			 */
			flush_unsent(slot);
			due = -1;
		}
		if (due >= 0 && (next < 0 || due < next))
			next = due;
	}
	return next;
}

/* A worker's ErrorResponse or NoticeResponse, rethrown here */
static void
rethrow(WorkerSlot *slot, StringInfo msg)
{
	ErrorData	edata;

	pq_parse_errornotice(msg, &edata);
	/* a worker's FATAL is this call's ERROR, not the session's end */
	edata.elevel = Min(edata.elevel, ERROR);
	if (edata.context)
		edata.context = psprintf("%s\nctr_dist worker for provider \"%s\"", edata.context,
								 provider_ops(slot->provider)->name);
	else
		edata.context = psprintf("ctr_dist worker for provider \"%s\"",
								 provider_ops(slot->provider)->name);
	ThrowErrorData(&edata);
}

static bool
receive_from(WorkerSlot *slot, ChannelResult *res)
{
	for (;;)
	{
		Size		nbytes;
		void	   *data;
		StringInfoData msg;
		shm_mq_result r;
		char		type;

		if (slot->handle == NULL)
			return false;
		/* what the worker sent first: a worker that failed sent its error */
		r = shm_mq_receive(slot->in, &nbytes, &data, true);
		if (r == SHM_MQ_WOULD_BLOCK)
		{
			if (flush_due(slot, GetCurrentTimestamp()) == 0)
				flush_unsent(slot);
			return false;
		}
		if (r == SHM_MQ_DETACHED)
			worker_died(slot);

		read_only_string(&msg, data, nbytes);
		type = pq_getmsgbyte(&msg);
		switch (type)
		{
			case 'R':
				slot->in_worker--;
				res->batch_no = pq_getmsgint64(&msg);
				res->ad_no = pq_getmsgint(&msg, 4);
				res->provider = slot->provider;
				res->cls = (OutcomeClass) pq_getmsgint(&msg, 4);
				res->exhausted = pq_getmsgbyte(&msg) != 0;
				res->n = pq_getmsgint(&msg, 4);
				res->clicks = (const uint8 *) pq_getmsgbytes(&msg, res->n);
				res->tokens_in = pq_getmsgint64(&msg);
				res->tokens_out = pq_getmsgint64(&msg);
				res->retries = pq_getmsgint(&msg, 4);
				memcpy(&res->counters, pq_getmsgbytes(&msg, sizeof(JobCounters)),
					   sizeof(JobCounters));
				res->model = pq_getmsgrawstring(&msg);
				res->reason = pq_getmsgrawstring(&msg);
				return true;
			case 'E':
			case 'N':
				rethrow(slot, &msg);
				break;
			default:
				/* other protocol messages a backend might send: ignore */
				break;
		}
	}
}

bool
worker_pool_receive(WorkerPool *pool, ChannelResult *res)
{
	for (int k = 0; k < pool->nworkers; k++)
	{
		int			i = (pool->next_poll + k) % pool->nworkers;

		if (receive_from(&pool->workers[i], res))
		{
			pool->next_poll = (i + 1) % pool->nworkers;
			return true;
		}
	}
	return false;
}

/* Normal end: detach, so workers see the queues close, and wait for them */
void
worker_pool_finish(WorkerPool *pool)
{
	if (pool->seg != NULL)
	{
		wipe_keys(pool);
		cancel_on_dsm_detach(pool->seg, pool_on_detach, PointerGetDatum(pool));
		for (int i = 0; i < pool->nworkers; i++)
		{
			if (pool->workers[i].out)
				shm_mq_detach(pool->workers[i].out);
			if (pool->workers[i].in)
				shm_mq_detach(pool->workers[i].in);
		}
		dsm_detach(pool->seg);
		pool->seg = NULL;
		for (int i = 0; i < pool->nworkers; i++)
			if (pool->workers[i].handle)
				(void) WaitForBackgroundWorkerShutdown(pool->workers[i].handle);
	}
	/*
	 * what may be left unsent is a copy nobody needs (a twin of an answered
	 * ad, or the original its twin beat): it goes with the pool's memory
	 */
	MemoryContextDelete(pool->cxt);
}

/* ---- worker side ---- */

/*
 * Results a worker has not sent yet.  Every wakeup of the leader costs a
 * signal and two context switches, more than a result is worth, so answers
 * go back a few at a time: a result waits only while all held are answers,
 * fewer than half the concurrency are held, none for RESULT_HOLD_MS, and
 * the worker still has its concurrency's worth of other jobs (the leader
 * refills it on results, so a worker running short speaks at once; see
 * flush_due).  A failure, which the leader may fail over, goes at once with
 * the rest.
 *
 * Owner: the worker's main loop; payloads in cxt, reset by held_flush (the
 * only release path; at exit they are dropped with the process).  out is
 * the handle pq_redirect_to_shm_mq was given: pqmq detaches it only when an
 * error interrupts its own send, and that error ends the worker.
 */
#define RESULT_HOLD_MS 10

typedef struct HeldResults
{
	shm_mq_handle *out;			/* the protocol channel's queue (pq_mq) */
	MemoryContext cxt;
	List	   *msgs;			/* StringInfo payloads of 'R' messages */
	bool		urgent;			/* one is not an answer */
	TimestampTz since;			/* when the oldest was held */
} HeldResults;

static void
hold_result(HeldResults *held, EngineJob *job)
{
	MemoryContext old = MemoryContextSwitchTo(held->cxt);
	StringInfo	buf = makeStringInfo();

	if (held->msgs == NIL)
		held->since = GetCurrentTimestamp();
	held->msgs = lappend(held->msgs, buf);
	MemoryContextSwitchTo(old);
	if (job->cls != OUTCOME_OK)
		held->urgent = true;

	pq_sendint64(buf, job->batch_no);
	pq_sendint32(buf, job->ad_no);
	pq_sendint32(buf, (int32) job->cls);
	pq_sendbyte(buf, job->exhausted ? 1 : 0);
	pq_sendint32(buf, job->n);
	pq_sendbytes(buf, (char *) job->clicks, job->n);
	pq_sendint64(buf, job->tokens_in);
	pq_sendint64(buf, job->tokens_out);
	pq_sendint32(buf, job->retries);
	pq_sendbytes(buf, (char *) &job->counters, sizeof(JobCounters));
	pq_sendstring(buf, job->model);
	pq_sendstring(buf, job->reason);
}

/*
 * Send what is held; only the last wakes the leader.  The others go without
 * blocking; should the queue be full, the rest go through pq_endmessage,
 * which waits for room safely (an error while it waits detaches the queue
 * rather than interleave two messages) and resumes a message begun here
 * (shm_mq takes the same bytes again).
 */
static void
held_flush(HeldResults *held)
{
	ListCell   *lc;
	bool		blocked = false;

	foreach(lc, held->msgs)
	{
		StringInfo	buf = (StringInfo) lfirst(lc);

		if (!blocked && lnext(held->msgs, lc) != NULL)
		{
			shm_mq_iovec iov[2] = {{"R", 1}, {buf->data, buf->len}};
			shm_mq_result r = shm_mq_sendv(held->out, iov, 2, true, false);

			if (r == SHM_MQ_SUCCESS)
				continue;
			if (r == SHM_MQ_DETACHED)
				break;			/* the leader is gone: so is its answer */
			blocked = true;
		}
		buf->cursor = 'R';		/* the message type, as pq_beginmessage sets it */
		pq_endmessage(buf);
	}
	MemoryContextReset(held->cxt);
	held->msgs = NIL;
	held->urgent = false;
}

static void
worker_exit(int code, Datum arg)
{
	engine_destroy((Engine *) DatumGetPointer(arg));
}

void
ctr_dist_worker_main(Datum main_arg)
{
	dsm_segment *seg;
	shm_toc    *toc;
	CallHeader *header;
	int			index;
	shm_mq_handle *in;
	shm_mq_handle *out;
	shm_mq	   *mq;
	Engine	   *engine;
	ProviderConfig config;
	MemoryContext jobcxt;
	HeldResults held;
	int64		jobs = 0;		/* submitted and not yet done */
	bool		leader_done = false;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	CurrentResourceOwner = ResourceOwnerCreate(NULL, "ctr_dist worker");
	seg = dsm_attach(DatumGetUInt32(main_arg));
	if (seg == NULL)
	{
		/* the call ended (cancelled) before we started: nothing to do */
		ereport(DEBUG1,
				(errmsg("ctr_dist worker started after its call ended")));
		proc_exit(0);
	}
	toc = shm_toc_attach(CTR_DSM_MAGIC, dsm_segment_address(seg));
	if (toc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("invalid magic number in the ctr_dist dynamic shared memory segment")));
	memcpy(&index, MyBgworkerEntry->bgw_extra, sizeof(index));
	header = shm_toc_lookup(toc, KEY_HEADER, false);

	/* from here on, our errors and notices travel to the leader */
	mq = shm_toc_lookup(toc, KEY_QUEUES + 2 * index + 1, false);
	shm_mq_set_sender(mq, MyProc);
	out = shm_mq_attach(mq, seg, NULL);
	pq_redirect_to_shm_mq(seg, out);
	mq = shm_toc_lookup(toc, KEY_QUEUES + 2 * index, false);
	shm_mq_set_receiver(mq, MyProc);
	in = shm_mq_attach(mq, seg, NULL);

	/* no database: this just makes us visible in pg_stat_activity */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	/* take our copy of the configuration and wipe the key from shared memory */
	config = header->configs[index];
	explicit_bzero(header->configs[index].api_key, CTR_KEY_MAX);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("%s requests for ctr_predict in pid %d",
									provider_ops(config.id)->name, (int) header->leader_pid));

	/* a worker never runs the mock: no ad and no platform needed */
	engine = engine_create(&config, 1, &header->settings, "",
						   shm_toc_lookup(toc, KEY_BUDGET, false));
	/* on any exit (SIGTERM too), abort transfers and give back rate-limit slots */
	before_shmem_exit(worker_exit, PointerGetDatum(engine));
	explicit_bzero(config.api_key, CTR_KEY_MAX);
	jobcxt = AllocSetContextCreate(TopMemoryContext, "ctr_dist worker jobs",
								   ALLOCSET_DEFAULT_SIZES);
	memset(&held, 0, sizeof(held));
	held.out = out;
	held.cxt = AllocSetContextCreate(TopMemoryContext, "ctr_dist worker results",
									 ALLOCSET_SMALL_SIZES);

	for (;;)
	{
		EngineJob  *job;
		long		timeout;

		CHECK_FOR_INTERRUPTS();

		/*
		 * take every batch waiting in the queue; the leader bounds how many,
		 * and counts on our reading until it is empty (worker_pool_flush)
		 */
		while (!leader_done)
		{
			Size		nbytes;
			void	   *data;
			shm_mq_result r = shm_mq_receive(in, &nbytes, &data, true);
			StringInfoData msg;
			JobSpec		spec;
			int			text_len;
			char	   *text;

			if (r == SHM_MQ_WOULD_BLOCK)
				break;
			if (r == SHM_MQ_DETACHED)
			{
				leader_done = true;
				break;
			}
			read_only_string(&msg, data, nbytes);
			memset(&spec, 0, sizeof(spec));
			spec.provider = config.id;
			spec.batch_no = pq_getmsgint64(&msg);
			spec.ad_no = pq_getmsgint(&msg, 4);
			spec.n = pq_getmsgint(&msg, 4);
			spec.kind = (AnswerKind) pq_getmsgbyte(&msg);
			spec.last_resort = pq_getmsgbyte(&msg) != 0;
			spec.cache_key = (uint64) pq_getmsgint64(&msg);
			text_len = msg.len - msg.cursor;
			text = MemoryContextAlloc(jobcxt, text_len + 1);
			memcpy(text, pq_getmsgbytes(&msg, text_len), text_len);
			text[text_len] = '\0';
			spec.text = text;
			spec.text_len = text_len;
			engine_submit(engine, engine_new_job(engine, &spec));
			jobs++;
		}

		while ((job = engine_next_done(engine)) != NULL)
		{
			jobs--;
			if (!leader_done)
				hold_result(&held, job);
			pfree((char *) job->text);
			engine_free_job(job);
		}

		if (leader_done)
			break;				/* nobody to answer to: drop what is in flight */

		timeout = -1;
		if (held.msgs != NIL)
		{
			TimestampTz now = GetCurrentTimestamp();
			/* a clock set back counts as the hold being over */
			long		waited = now < held.since ? RESULT_HOLD_MS :
				TimestampDifferenceMilliseconds(held.since, now);

			if (held.urgent || jobs < config.max_concurrency ||
				list_length(held.msgs) >= Max(config.max_concurrency / 2, 1) ||
				waited >= RESULT_HOLD_MS)
			{
				held_flush(&held);
			}
			else
				timeout = RESULT_HOLD_MS - waited;
		}
		engine_wait(engine, timeout, ctr_wait_event(CTR_WAIT_WORKER_REQUESTS));
	}

	proc_exit(0);
}
