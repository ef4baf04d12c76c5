/*-------------------------------------------------------------------------
 *
 * split.c
 *	  A request in halves: the first personas, and the rest.
 *
 * A request's text is what prompt.c and the window write: "Personas: N",
 * perhaps a "fields: ..." header, N lines "[k] ..." numbered 1..N (one
 * persona each: values are escaped so that none spans lines), then the ad
 * part ("Ad: ...", "Platform: ...").  A half keeps the header and the ad
 * part and its own persona lines, numbered from 1, so that it reads as any
 * request does -- to a model, to the test server and to the mock.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "split.h"

/* the end of the line at p (after its '\n'), or NULL if there is none */
static const char *
line_end(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', end - p);

	return nl ? nl + 1 : NULL;
}

/* "[k] ": the number k, and where the persona's text starts; 0 if none */
static int
persona_number(const char *p, const char *end, const char **rest)
{
	int			k = 0;

	if (p >= end || *p != '[')
		return 0;
	for (p++; p < end && *p >= '0' && *p <= '9' && k < 100000; p++)
		k = k * 10 + (*p - '0');
	if (end - p < 2 || p[0] != ']' || p[1] != ' ')
		return 0;
	*rest = p + 2;
	return k;
}

static void
append_half(StringInfo out, int count, const char *header, size_t header_len,
			const char *const *lines, const char *const *rests, int from,
			const char *tail, size_t tail_len)
{
	appendStringInfo(out, "Personas: %d\n", count);
	appendBinaryStringInfo(out, header, header_len);
	for (int i = 0; i < count; i++)
	{
		const char *rest = rests[from + i];
		const char *next = lines[from + i + 1];

		appendStringInfo(out, "[%d] ", i + 1);
		appendBinaryStringInfo(out, rest, next - rest);
	}
	appendBinaryStringInfo(out, tail, tail_len);
}

bool
request_split(const char *text, int len, int n, int n1, RequestHalves *halves)
{
	const char *end = text + len;
	const char *p = text;
	const char *header;
	const char *tail;
	const char **lines;
	const char **rests;
	char		first_line[32];
	StringInfoData buf;

	if (n < 2 || n1 < 1 || n1 >= n)
		return false;
	snprintf(first_line, sizeof(first_line), "Personas: %d\n", n);
	if ((size_t) len < strlen(first_line) || strncmp(text, first_line, strlen(first_line)) != 0)
		return false;
	p += strlen(first_line);
	header = p;
	if (end - p >= 8 && strncmp(p, "fields: ", 8) == 0 && (p = line_end(p, end)) == NULL)
		return false;

	/* lines[i]: where persona i starts; lines[n]: where the ad part starts */
	lines = palloc(sizeof(char *) * (n + 1));
	rests = palloc(sizeof(char *) * n);
	for (int i = 0; i < n; i++)
	{
		lines[i] = p;
		if (persona_number(p, end, &rests[i]) != i + 1 || (p = line_end(p, end)) == NULL)
		{
			pfree(lines);
			pfree(rests);
			return false;
		}
	}
	lines[n] = tail = p;

	initStringInfo(&buf);
	append_half(&buf, n1, header, lines[0] - header, lines, rests, 0, tail, end - tail);
	halves->first = buf.data;
	halves->first_len = buf.len;
	initStringInfo(&buf);
	append_half(&buf, n - n1, header, lines[0] - header, lines, rests, n1, tail, end - tail);
	halves->second = buf.data;
	halves->second_len = buf.len;
	pfree(lines);
	pfree(rests);
	return true;
}
