/*-------------------------------------------------------------------------
 *
 * window.h
 *	  One call: a sliding window of batches from the personas to the
 *	  providers and back, every ad of a batch answered, batches out in ord
 *	  order.
 *
 * ctr_predict asks one ad; a comparison asks several ads of the same
 * personas.  Each batch's persona block is read once and sent with each
 * ad (block first, so providers' prompt caches discount it for every ad
 * after the first), all ads of a batch to the same provider, back to back.
 * What happens to a finished batch is the caller's (a CallSink): rows of
 * ctr_predict, detail rows or running sums of a comparison.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_WINDOW_H
#define CTR_WINDOW_H

#include "postgres.h"
#include "funcapi.h"

#include "answer.h"
#include "channel.h"
#include "engine.h"
#include "hedge.h"
#include "personas.h"
#include "plan.h"
#include "provider.h"
#include "report.h"

#define CTR_MAX_ADS 32
/* Requests out per provider (in flight or queued), as a multiple of its concurrency */
#define WINDOW_PER_SLOT 2

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_SENT,
	SLOT_DONE
} SlotState;

/* One ad of one batch: a request, its failovers, its answers */
typedef struct AdAnswer
{
	SlotState	state;
	int			play;			/* index in the play list it was sent to */
	uint32		tried;			/* bitmask of play indexes tried */
	bool		answered;
	uint8	   *values;			/* n answers when answered (0/1 or percent) */
	char	   *model;
	double		cost_usd;		/* what its requests cost, at the prices */
	int			inflight;		/* its requests out now: 2 while a twin is */
	bool		twinned;		/* a twin went out: no round trip to learn */
	TimestampTz sent_at;		/* when its latest request went out */
} AdAnswer;

typedef struct BatchSlot
{
	SlotState	state;			/* SENT until every ad is done */
	int64		batch_no;
	MemoryContext cxt;
	PersonaBatch batch;			/* keys and the persona block */
	uint64		cache_key;		/* hash of the block: one per batch, not per send */
	int			pending;		/* ads not done yet */
	AdAnswer   *ads;			/* one per ad of the call */
} BatchSlot;

struct CallState;

/* What becomes of a batch whose every ad is done, in ord order */
typedef struct CallSink
{
	void		(*batch_done) (struct CallState *cs, const BatchSlot *slot, void *arg);
	void	   *arg;
} CallSink;

typedef struct CallState
{
	/* the providers in play, and what they did */
	int			nplay;
	ProviderConfig play[NUM_PROVIDERS];
	ProviderTally tally[NUM_PROVIDERS];
	BatchPlan	plan;
	int			next_pick;		/* plan's pick for the next batch, -1: none yet */

	/* what is asked */
	const char *what;			/* "ctr_predict" or "ctr_compare", for messages */
	int			nads;
	const char *const *ads;		/* the ads, in UTF-8 */
	char	  **ad_texts;		/* their part of the prompt, after the block */
	int		   *ad_text_lens;
	const char *platform;
	AnswerKind	kind;
	CallSink	sink;
	int			min_prefix_tokens;	/* grow batches to at least this block, or 0 */

	/* the window */
	int			batch_size;		/* personas per batch */
	int			window;
	BatchSlot  *slots;
	int64		next_read;
	int64		next_emit;
	int64		failovers;
	int64		null_answers;	/* persona x ad answers that stay NULL */
	int64		personas;
	int64		text_bytes;		/* prompt text held: WINDOW_MAX_TEXT_BYTES */
	HedgeClock	hedge;			/* when a request is slow: send a twin */
	bool		resent;			/* a failover or twin was sent since the
								 * last flush: it goes at once */
	int64		strays;			/* results still to come for done ads: the
								 * losers of twins */
	int64		emitted;		/* personas already emitted */
	char		last_failure[CTR_REASON_MAX + 32];

	/* channels start with the first batch: no worker for an empty table */
	ChannelSet *channels;
	EngineSettings settings;
} CallState;

extern void window_define_settings(void);

/* for hedge.c: send one ad of a batch to a provider; has the budget said stop? */
extern void window_send_ad(CallState *cs, BatchSlot *slot, int a, int play);
extern bool window_over_budget(CallState *cs);

/*
 * Run the call: cs->play, plan, what, nads, ads, platform, kind and sink
 * are set by the caller.
 */
extern void window_run(CallState *cs, Oid relid, int batch_size);

#endif							/* CTR_WINDOW_H */
