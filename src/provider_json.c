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
 * text as a JSON string literal, quotes included, in cJSON's memory (what a
 * raw item's string is freed with); NULL when out of memory.  cJSON escapes
 * a byte at a time, twice; a prompt is tens of kilobytes of which nearly all
 * bytes pass unchanged, so clean runs are found 16 bytes at a time and
 * copied whole, in one pass: the buffer starts a little larger than the
 * text and grows if escapes need more.
 */
static char *
json_quote(const char *text)
{
	static const char hex[] = "0123456789abcdef";
	size_t		len = strlen(text);
	size_t		size = len + len / 16 + 16;
	char	   *out = cJSON_malloc(size);
	size_t		o = 0;

	if (out == NULL)
		return NULL;
	out[o++] = '"';
	for (size_t i = 0; i < len; i++)
	{
		size_t		run = textscan_plain(text + i, len - i, '"', '\\', '"', '"');
		unsigned char ch;

		/* the run, the longest escape (6) and the closing quote and NUL */
		if (o + run + 8 > size)
		{
			size_t		want = (size * 2 > o + run + 8) ? size * 2 : o + run + 8;
			char	   *grown = cJSON_malloc(want);

			if (grown == NULL)
			{
				cJSON_free(out);
				return NULL;
			}
			memcpy(grown, out, o);
			cJSON_free(out);
			out = grown;
			size = want;
		}
		memcpy(out + o, text + i, run);
		o += run;
		i += run;
		if (i >= len)
			break;
		ch = (unsigned char) text[i];
		switch (ch)
		{
			case 0x7f:			/* DEL passes as it is */
				out[o++] = (char) ch;
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
				out[o++] = '\\';
				out[o++] = 'u';
				out[o++] = '0';
				out[o++] = '0';
				out[o++] = hex[ch >> 4];
				out[o++] = hex[ch & 0xf];
				continue;
		}
		out[o++] = '\\';
		out[o++] = (char) ch;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* The quoted text becomes the raw item's own string instead of a copy of it */
cJSON *
json_add_text(cJSON *object, const char *name, const char *text)
{
	char	   *quoted = json_quote(text);
	cJSON	   *item;

	if (quoted == NULL)
		return NULL;
	item = cJSON_CreateRaw("");
	if (item == NULL || !cJSON_AddItemToObject(object, name, item))
	{
		cJSON_Delete(item);
		cJSON_free(quoted);
		return NULL;
	}
	cJSON_free(item->valuestring);
	item->valuestring = quoted;
	return item;
}

void
json_add_chat_messages(cJSON *root, const char *model,
					   const char *system, const char *user, bool temperature)
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
	if (temperature)
		cJSON_AddNumberToObject(root, "temperature", 0);
}
