/*-------------------------------------------------------------------------
 *
 * request_json.c
 *	  Writing a request's JSON body (see request_json.h).
 *
 *-------------------------------------------------------------------------
 */
#include "request_json.h"

#include "utils/builtins.h"
#include "utils/memutils.h"

#include "textscan.h"

void
json_body_begin(StringInfo out, const ProviderRequest *req, size_t text_len)
{
	MemoryContext cxt = req->body_cxt ? req->body_cxt : CurrentMemoryContext;
	/* the prompt with a few escapes, the system instruction, the members */
	size_t		need = text_len + text_len / 16 + 4096;

	if (need >= MaxAllocSize)
		need = 1024;			/* grows, and fails, as StringInfo does */
	/* one allocation of about the body's size: enlargeStringInfo would double */
	out->data = MemoryContextAlloc(cxt, need);
	out->maxlen = (int) need;
	out->len = 0;
	out->cursor = 0;
	out->data[0] = '\0';
}

void
json_body_end(StringInfo out, ProviderRequest *req)
{
	req->body = out->data;
	req->body_len = out->len;
}

/*
 * cJSON's escapes: '"' and '\\' get a backslash, \b \f \n \r \t their
 * letter, the other control characters \u00XX; DEL and every byte from
 * 0x80 pass as they are.  Clean runs are found 16 bytes at a time and
 * copied whole.
 */
void
json_put_string(StringInfo out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t		i = 0;

	/* the text, a few escapes and the quotes: one enlargement, usually */
	if (len < MaxAllocSize / 2)
		enlargeStringInfo(out, (int) (len + len / 16 + 2));
	appendStringInfoCharMacro(out, '"');
	while (i < len)
	{
		size_t		run = textscan_plain(s + i, len - i, '"', '\\', '"', '"');
		unsigned char ch;
		char		letter;

		appendBinaryStringInfoNT(out, s + i, (int) run);
		i += run;
		if (i >= len)
			break;
		ch = (unsigned char) s[i++];
		switch (ch)
		{
			case 0x7f:
				appendStringInfoCharMacro(out, (char) ch);
				continue;
			case '"':
			case '\\':
				letter = (char) ch;
				break;
			case '\n':
				letter = 'n';
				break;
			case '\r':
				letter = 'r';
				break;
			case '\t':
				letter = 't';
				break;
			case '\b':
				letter = 'b';
				break;
			case '\f':
				letter = 'f';
				break;
			default:
				{
					char		u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 0xf]};

					appendBinaryStringInfoNT(out, u, 6);
					continue;
				}
		}
		appendStringInfoCharMacro(out, '\\');
		appendStringInfoCharMacro(out, letter);
	}
	appendStringInfoCharMacro(out, '"');
	/* the NT appends leave no terminator: strings end here, so does the body */
	out->data[out->len] = '\0';
}

void
json_put_cstring(StringInfo out, const char *s)
{
	json_put_string(out, s, strlen(s));
}

void
json_put_int(StringInfo out, int64 v)
{
	char		buf[MAXINT8LEN + 1];
	int			len = pg_lltoa(v, buf);

	appendBinaryStringInfo(out, buf, len);
}

void
json_put_chat_messages(StringInfo out, const char *model, const char *system,
					   const char *user, size_t user_len, bool temperature)
{
	appendStringInfoString(out, "\"model\":");
	json_put_cstring(out, model);
	appendStringInfoString(out, ",\"messages\":[{\"role\":\"system\",\"content\":");
	json_put_cstring(out, system);
	appendStringInfoString(out, "},{\"role\":\"user\",\"content\":");
	json_put_string(out, user, user_len);
	appendStringInfoString(out, "}]");
	if (temperature)
		appendStringInfoString(out, ",\"temperature\":0");
}
