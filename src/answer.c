/*-------------------------------------------------------------------------
 *
 * answer.c
 *	  Extract the answers (0/1, or 0..100 percent) from what a model wrote.
 *
 * The rule is strict on purpose: the old tool padded short answers with
 * zeros and trimmed long ones, which silently shifted predictions onto the
 * wrong personas.  Here an answer is either exactly right or a failed
 * attempt with a reason; nothing is padded, trimmed or guessed.
 *
 *-------------------------------------------------------------------------
 */
#include "answer.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>

static void set_why(char *why, size_t whylen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static void
set_why(char *why, size_t whylen, const char *fmt,...)
{
	va_list		ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim whitespace at both ends of [*start, *end) */
static void
trim(const char **start, const char **end)
{
	while (*start < *end && is_space(**start))
		(*start)++;
	while (*end > *start && is_space((*end)[-1]))
		(*end)--;
}

/*
 * If the text is one Markdown fence (```json ... ```), narrow it to the
 * fence's content.  Returns false for an unterminated fence.
 */
static bool
strip_fence(const char **start, const char **end)
{
	const char *s = *start;
	const char *e = *end;

	if (e - s < 3 || strncmp(s, "```", 3) != 0)
		return true;
	/* skip the info string (e.g. "json") up to the end of the line */
	s += 3;
	while (s < e && *s != '\n')
		s++;
	if (e - s < 3 || strncmp(e - 3, "```", 3) != 0)
		return false;
	e -= 3;
	*start = s;
	*end = e;
	trim(start, end);
	return true;
}

static const cJSON *
answer_array(const cJSON *root, char *why, size_t whylen)
{
	const cJSON *member;
	const cJSON *found = NULL;
	int			narrays = 0;

	if (cJSON_IsArray(root))
		return root;
	if (!cJSON_IsObject(root))
	{
		set_why(why, whylen, "answer is neither a JSON array nor an object");
		return NULL;
	}
	cJSON_ArrayForEach(member, root)
	{
		if (cJSON_IsArray(member))
		{
			found = member;
			narrays++;
		}
	}
	if (narrays != 1)
	{
		set_why(why, whylen, "answer object has %d array members, expected 1", narrays);
		return NULL;
	}
	return found;
}

/* JSON's own whitespace: a subset of what cJSON skips (every byte <= 0x20) */
static inline const char *
skip_json_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
		p++;
	return p;
}

/* the same, backwards: end moved back over JSON whitespace, not past start */
static inline const char *
skip_json_space_back(const char *start, const char *end)
{
	while (end > start && (end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return end;
}

/*
 * The answer as models nearly always write it -- [1,0,...] or {"k":[...]}
 * with small integers in plain decimal and JSON whitespace -- read without
 * building a cJSON tree (an allocation and a strtod per value).  Accepts
 * only texts that parse_json accepts with the same values; anything else
 * (an error, 1.0, 01, other members, escapes) returns false, and
 * parse_json decides and says why.
 */
static bool
parse_plain(const char *p, const char *end, int n, int max, uint8_t *values)
{
	int			i = 0;

	if (*p == '{')
	{
		/* one member, a key without escapes, whose value is the array */
		p = skip_json_space(p + 1, end);
		if (p == end || *p != '"')
			return false;
		for (p++; p < end && *p != '"'; p++)
			if (*p == '\\' || (unsigned char) *p < 0x20)
				return false;
		if (p == end)
			return false;
		p = skip_json_space(p + 1, end);
		if (p == end || *p != ':')
			return false;
		p = skip_json_space(p + 1, end);
		/* the closing brace: the last byte (the text is trimmed) */
		if (end - p < 2 || end[-1] != '}')
			return false;
		end = skip_json_space_back(p, end - 1);
	}
	if (p == end || *p != '[' || end[-1] != ']')
		return false;
	p = skip_json_space(p + 1, end - 1);
	for (;;)
	{
		int			v;

		if (p == end - 1 || *p < '0' || *p > '9' || i == n)
			return false;
		v = *p++ - '0';
		/* no leading zeros (cJSON would read 01 as 1: it decides) */
		if (v == 0 && p < end && *p >= '0' && *p <= '9')
			return false;
		while (p < end && *p >= '0' && *p <= '9')
		{
			v = v * 10 + (*p++ - '0');
			if (v > max)
				return false;
		}
		if (v > max)
			return false;
		values[i++] = (uint8_t) v;
		p = skip_json_space(p, end - 1);
		if (p == end - 1)
			break;
		if (*p != ',')
			return false;
		p = skip_json_space(p + 1, end - 1);
	}
	return i == n;
}

/* The answer through cJSON: what parse_plain accepts, and everything else */
static bool
parse_json(const char *start, const char *end, int n, int max,
		   uint8_t *values, char *why, size_t whylen)
{
	const char *parse_end = NULL;
	cJSON	   *root;
	const cJSON *array;
	const cJSON *item;
	int			count;
	int			i = 0;
	bool		ok = false;

	root = cJSON_ParseWithLengthOpts(start, (size_t) (end - start), &parse_end, false);
	if (root == NULL)
	{
		set_why(why, whylen, "answer is not valid JSON");
		return false;
	}
	if (parse_end != end)
	{
		set_why(why, whylen, "answer has text after the JSON value");
		goto done;
	}

	array = answer_array(root, why, whylen);
	if (array == NULL)
		goto done;

	count = cJSON_GetArraySize(array);
	if (count != n)
	{
		set_why(why, whylen, "answer has %d values for %d personas", count, n);
		goto done;
	}
	cJSON_ArrayForEach(item, array)
	{
		double		v = cJSON_IsNumber(item) ? item->valuedouble : -1;

		/* integers only, in range: 0.5 or 101 are as wrong as a string */
		if (!cJSON_IsNumber(item) || v < 0 || v > max || v != (double) (int) v)
		{
			if (max == 1)
				set_why(why, whylen, "answer value %d is not 0 or 1", i + 1);
			else
				set_why(why, whylen, "answer value %d is not an integer from 0 to %d", i + 1, max);
			goto done;
		}
		values[i++] = (uint8_t) v;
	}
	ok = true;

done:
	cJSON_Delete(root);
	return ok;
}

/* Trim and unfence the text; false with a reason if it cannot be JSON */
static bool
answer_bounds(const char *text, size_t len, const char **start, const char **end,
			  char *why, size_t whylen)
{
	if (text == NULL)
	{
		set_why(why, whylen, "answer is empty");
		return false;
	}
	*start = text;
	*end = text + len;
	trim(start, end);
	if (*start == *end)
	{
		set_why(why, whylen, "answer is empty or whitespace");
		return false;
	}
	if (!strip_fence(start, end))
	{
		set_why(why, whylen, "answer has an unterminated Markdown fence");
		return false;
	}
	if (*start == *end || (**start != '[' && **start != '{'))
	{
		set_why(why, whylen, "answer is not JSON");
		return false;
	}
	return true;
}

/* The answer, through the fast path first if fast, else through cJSON alone */
static bool
extract(const char *text, size_t len, int n, AnswerKind kind,
		uint8_t *values, char *why, size_t whylen, bool fast)
{
	const char *start;
	const char *end;

	if (!answer_bounds(text, len, &start, &end, why, whylen))
		return false;
	if (fast && parse_plain(start, end, n, answer_max(kind), values))
		return true;
	return parse_json(start, end, n, answer_max(kind), values, why, whylen);
}

bool
answer_extract(const char *text, size_t len, int n, AnswerKind kind,
			   uint8_t *values, char *why, size_t whylen)
{
	return extract(text, len, n, kind, values, why, whylen, true);
}

bool
answer_extract_reference(const char *text, size_t len, int n, AnswerKind kind,
						 uint8_t *values, char *why, size_t whylen)
{
	return extract(text, len, n, kind, values, why, whylen, false);
}
