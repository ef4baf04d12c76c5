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

/* building requests (cJSON only) */
/* like cJSON_AddStringToObject, for long texts: the prompt */
extern cJSON *json_add_text(cJSON *object, const char *name, const char *text);
extern void json_add_chat_messages(cJSON *root, const char *model,
								   const char *system, const char *user,
								   bool temperature);

/* backend: print the body into req (palloc) and free the cJSON tree */
extern void json_finish_request(cJSON *root, ProviderRequest *req);

#endif							/* CTR_PROVIDER_JSON_H */
