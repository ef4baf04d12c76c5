/*-------------------------------------------------------------------------
 *
 * provider_json.c
 *	  NULL-safe cJSON lookups shared by the parsers, the chat message list
 *	  shared by the OpenAI-compatible request builders, and the prompt as a
 *	  JSON string, written fast because it is nearly the whole body.  Pure C.
 *
 *-------------------------------------------------------------------------
 */
#include "provider_json.h"

#include <stdlib.h>
#include <string.h>

#include "textscan.h"

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

/*
 * text as a JSON string literal, quotes included, in malloc'd memory (what
 * cJSON_AddRawToObject copies); NULL when out of memory.  cJSON escapes a
 * byte at a time, twice; a prompt is tens of kilobytes of which nearly all
 * bytes pass unchanged, so clean runs are measured and copied whole.
 */
static char *
json_quote(const char *text)
{
	static const char hex[] = "0123456789abcdef";
	size_t		len = strlen(text);
	size_t		size = 2;
	char	   *out;
	char	   *o;

	/* measure: an escape is 2 bytes, \u00XX 6, DEL passes as it is */
	for (size_t i = 0; i < len; i++)
	{
		size_t		run = textscan_plain(text + i, len - i, '"', '\\', '"', '"');
		unsigned char ch;

		size += run;
		i += run;
		if (i >= len)
			break;
		ch = (unsigned char) text[i];
		if (ch == 0x7f)
			size += 1;
		else if (ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' ||
				 ch == '\t' || ch == '\b' || ch == '\f')
			size += 2;
		else
			size += 6;
	}
	out = malloc(size + 1);
	if (out == NULL)
		return NULL;

	o = out;
	*o++ = '"';
	for (size_t i = 0; i < len; i++)
	{
		size_t		run = textscan_plain(text + i, len - i, '"', '\\', '"', '"');
		unsigned char ch;

		memcpy(o, text + i, run);
		o += run;
		i += run;
		if (i >= len)
			break;
		ch = (unsigned char) text[i];
		switch (ch)
		{
			case 0x7f:
				*o++ = (char) ch;
				continue;
			case '"':
			case '\\':
				break;
			case '\n':
				ch = 'n';
				break;
			case '\r':
				ch = 'r';
				break;
			case '\t':
				ch = 't';
				break;
			case '\b':
				ch = 'b';
				break;
			case '\f':
				ch = 'f';
				break;
			default:
				*o++ = '\\';
				*o++ = 'u';
				*o++ = '0';
				*o++ = '0';
				*o++ = hex[ch >> 4];
				*o++ = hex[ch & 0xf];
				continue;
		}
		*o++ = '\\';
		*o++ = (char) ch;
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

cJSON *
json_add_text(cJSON *object, const char *name, const char *text)
{
	char	   *quoted = json_quote(text);
	cJSON	   *item;

	if (quoted == NULL)
		return NULL;
	item = cJSON_AddRawToObject(object, name, quoted);
	free(quoted);
	return item;
}

void
json_add_chat_messages(cJSON *root, const char *model,
					   const char *system, const char *user)
{
	cJSON	   *messages;
	cJSON	   *msg;

	cJSON_AddStringToObject(root, "model", model);
	messages = cJSON_AddArrayToObject(root, "messages");
	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "role", "system");
	cJSON_AddStringToObject(msg, "content", system);
	cJSON_AddItemToArray(messages, msg);
	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "role", "user");
	json_add_text(msg, "content", user);
	cJSON_AddItemToArray(messages, msg);
	cJSON_AddNumberToObject(root, "temperature", 0);
}
