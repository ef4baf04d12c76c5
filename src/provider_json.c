/*-------------------------------------------------------------------------
 *
 * provider_json.c
 *	  NULL-safe cJSON lookups shared by the parsers.  Pure C.  (Request
 *	  bodies are written without cJSON: request_json.c.)
 *
 *-------------------------------------------------------------------------
 */
#include "provider_json.h"

#include <stdlib.h>
#include <string.h>


const char *
json_string(const cJSON *object, const char *name)
{
	const cJSON *item;

	if (object == NULL || !cJSON_IsObject(object))
		return NULL;
	item = cJSON_GetObjectItemCaseSensitive(object, name);
	return cJSON_IsString(item) ? item->valuestring : NULL;
}

int64_t
json_int(const cJSON *object, const char *name)
{
	const cJSON *item;

	if (object == NULL || !cJSON_IsObject(object))
		return 0;
	item = cJSON_GetObjectItemCaseSensitive(object, name);
	if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0 && item->valuedouble < 1e15))
		return 0;
	return (int64_t) item->valuedouble;
}

void
json_copy_string(const cJSON *object, const char *name, char *dst, size_t dstlen)
{
	const char *s = json_string(object, name);
	size_t		len;

	if (s == NULL || dstlen == 0)
		return;
	len = strlen(s);
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	/* it goes into rows and messages, in whatever the server encoding is */
	keep_printable_ascii(dst);
}

bool
json_body_is_blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (body[i] != ' ' && body[i] != '\n' && body[i] != '\r' && body[i] != '\t')
			return false;
	return true;
}
