/*-------------------------------------------------------------------------
 *
 * provider_json.h
 *	  Small cJSON helpers for the provider modules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PROVIDER_JSON_H
#define CTR_PROVIDER_JSON_H

#include <cjson/cJSON.h>

#include "provider.h"

/* pure: NULL-safe lookups that never allocate */
extern const char *json_string(const cJSON *object, const char *name);
extern int64_t json_int(const cJSON *object, const char *name);
extern void json_copy_string(const cJSON *object, const char *name,
							 char *dst, size_t dstlen);
extern bool json_body_is_blank(const char *body, size_t len);

#endif							/* CTR_PROVIDER_JSON_H */
