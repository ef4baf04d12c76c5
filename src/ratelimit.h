/*-------------------------------------------------------------------------
 *
 * ratelimit.h
 *	  Client-side limits per provider: requests and tokens per window,
 *	  and requests in flight.
 *
 * With shared_preload_libraries = 'ctr_dist' the schedule lives in shared
 * memory and every session shares it; without, each process keeps its
 * own, which makes the limits hold per call (one process runs a provider
 * for a call).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_RATELIMIT_H
#define CTR_RATELIMIT_H

#include "postgres.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "provider.h"

extern void ratelimit_define_settings(void);
extern GucContext ratelimit_settings_context(void);
extern void ratelimit_shmem_request(void);
extern void ratelimit_shmem_startup(void);
extern bool ratelimit_is_global(void);
extern int	ratelimit_window_ms(void);

/*
 * Try to start a request of est_tokens: true when it may go now (the slot
 * and the tokens are taken); else false with *wait_ms until it might.
 */
extern bool ratelimit_acquire(const ProviderConfig *cfg, int window_ms,
							  int64 est_tokens, long *wait_ms);
/* A request ended: give back its slot and correct the token estimate */
extern void ratelimit_release(const ProviderConfig *cfg, int window_ms,
							  int64 est_tokens, int64 used_tokens);
/* The server asked for a pause (429 or x-ratelimit-remaining 0) */
extern void ratelimit_pause(ProviderId provider, long ms);

/* Learning a request limit no setting gives (zero-configuration limits) */
extern void ratelimit_learn_429(ProviderId provider, double retry_after_s, int window_ms,
								long max_wait_ms, TimestampTz sent_at);
extern void ratelimit_learn_announced(ProviderId provider, double limit, int window_ms);
extern void ratelimit_learn_answer(ProviderId provider, TimestampTz sent_at);
extern bool ratelimit_holds_back(ProviderId provider);

#endif							/* CTR_RATELIMIT_H */
