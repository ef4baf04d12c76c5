/*-------------------------------------------------------------------------
 *
 * window.h
 *	  One ctr_predict call: a sliding window of batches from the personas
 *	  to the providers and back, rows out in ord order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_WINDOW_H
#define CTR_WINDOW_H

#include "postgres.h"
#include "funcapi.h"

#include "channel.h"
#include "engine.h"
#include "personas.h"
#include "plan.h"
#include "provider.h"
#include "report.h"

typedef enum SlotState
{
	SLOT_FREE = 0,
	SLOT_SENT,
	SLOT_DONE
} SlotState;

typedef struct BatchSlot
{
	SlotState	state;
	int64		batch_no;
	MemoryContext cxt;
	PersonaBatch batch;
	int			play;			/* index in the play list it was sent to */
	uint32		tried;			/* bitmask of play indexes tried */
	bool		answered;
	uint8	   *clicks;
	char	   *model;
} BatchSlot;

typedef struct CallState
{
	int			nplay;
	ProviderConfig play[NUM_PROVIDERS];
	ProviderTally tally[NUM_PROVIDERS];
	BatchPlan	plan;
	int			next_pick;		/* plan's pick for the next batch, -1: none yet */
	int			window;
	BatchSlot  *slots;
	int64		next_read;
	int64		next_emit;
	int64		failovers;
	int64		null_rows;
	int64		personas;
	int64		emitted;		/* personas already emitted */
	char		last_failure[CTR_REASON_MAX + 32];

	/* channels start with the first batch: no worker for an empty table */
	ChannelSet *channels;
	EngineSettings settings;
	const char *ad;
	const char *platform;
	MemoryContext rowcxt;		/* per emitted row */
} CallState;

extern void window_define_settings(void);

/* Run the call whose providers are in play (cs->play): rows into rsinfo */
extern void window_run(CallState *cs, Oid relid, int batch_size, const char *ad,
					   const char *platform, ReturnSetInfo *rsinfo);

#endif							/* CTR_WINDOW_H */
