/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Where API keys come from, and what keeps them secret.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_KEYS_H
#define CTR_KEYS_H

#include "postgres.h"

#include "provider.h"

/* the key settings, key files and environment; the log hook */
extern void keys_init(void);

/* A provider's key into key (CTR_KEY_MAX bytes), empty if none; may ereport */
extern void keys_get(ProviderId id, char *key);

/* "name: key" as a request header, with no other copy of the key left */
extern char *keys_header(const char *name_colon_space, const char *key);

/* Wipe the keys of configs[0..n-1] when cxt is reset or deleted, on error too */
extern void keys_wipe_at_reset(MemoryContext cxt, ProviderConfig *configs, int n);

#endif							/* CTR_KEYS_H */
