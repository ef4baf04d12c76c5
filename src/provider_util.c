/*-------------------------------------------------------------------------
 *
 * provider_util.c
 *	  Pure helpers shared by the response parsers: failure outcomes and
 *	  the servers' "wait this long" hints.
 *
 * Everything here reads untrusted bytes, needs no backend and never
 * allocates, so the fuzz harnesses can call it directly.
 *
 * Whatever a provider sends that ends up in a message or a row (failure
 * reasons, model names) is cut to printable ASCII here, so that it is valid
 * text in every server encoding, however the provider encoded it.
 *
 *-------------------------------------------------------------------------
 */
#include "provider.h"

#include <ctype.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Replace every byte that is not printable ASCII with '?' */
void
keep_printable_ascii(char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
			*s = '?';
}

/*
 * A failure and why.  The reason is printable ASCII and never ends in a
 * full stop, since messages put it inside sentences of their own ("... the
 * last error was %s.").
 */
void
outcome_fail(Outcome *out, OutcomeClass cls, const char *fmt,...)
{
	va_list		ap;
	size_t		len;

	out->cls = cls;
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
	keep_printable_ascii(out->reason);
	len = strlen(out->reason);
	while (len > 0 && (out->reason[len - 1] == '.' || out->reason[len - 1] == ' '))
		out->reason[--len] = '\0';
	if (len == 0)
		snprintf(out->reason, sizeof(out->reason), "no reason given");
}

/* Classes by status alone; parsers refine (quota 429s, Gemini bad keys) */
OutcomeClass
classify_http_status(int status)
{
	if (status >= 200 && status < 300)
		return OUTCOME_OK;
	if (status == 429)
		return OUTCOME_THROTTLE;
	if (status == 408 || status == 409 || status >= 500)
		return OUTCOME_TRANSIENT;
	if (status == 401 || status == 402 || status == 403 || status == 404)
		return OUTCOME_FATAL;
	return OUTCOME_BUG;
}

static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* days from 1970-01-01 to y-m-d (proleptic Gregorian) */
static long
days_from_civil(long y, int m, int d)
{
	long		era;
	long		yoe;
	long		doy;
	long		doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Retry-After: delta seconds (possibly fractional) or an IMF-fixdate such
 * as "Wed, 21 Oct 2015 07:28:00 GMT".  Returns seconds to wait from
 * now_epoch, or -1 when the value is unusable.
 */
double
parse_retry_after(const char *value, double now_epoch)
{
	char	   *end;
	double		secs;
	char		mon[4];
	int			day,
				year,
				hh,
				mm,
				ss;

	if (value == NULL)
		return -1;
	while (*value == ' ')
		value++;
	if (*value == '\0')
		return -1;
	if (isdigit((unsigned char) *value))
	{
		/* delta-seconds: digits and a decimal point only (no hex, no exponent) */
		if (strspn(value, "0123456789. ") != strlen(value))
			return -1;
		secs = strtod(value, &end);
		while (*end == ' ')
			end++;
		if (*end != '\0' || !isfinite(secs) || secs < 0)
			return -1;
		return secs;
	}
	if (sscanf(value, "%*3s, %2d %3s %4d %2d:%2d:%2d GMT",
			   &day, mon, &year, &hh, &mm, &ss) == 6)
	{
		for (int m = 0; m < 12; m++)
		{
			if (strcmp(mon, months[m]) == 0)
			{
				double		when;

				if (day < 1 || day > 31 || year < 1970 || hh < 0 || hh > 23 ||
					mm < 0 || mm > 59 || ss < 0 || ss > 60)
					return -1;
				when = (double) days_from_civil(year, m + 1, day) * 86400.0 +
					hh * 3600.0 + mm * 60.0 + ss;
				return when > now_epoch ? when - now_epoch : 0;
			}
		}
	}
	return -1;
}

/*
 * Every parser's last step.  A throttled or transient outcome waits as the
 * response's headers say when they say anything, whatever the body was
 * (empty, HTML, JSON): retry-after-ms, else retry-after (seconds or an HTTP
 * date).  Only then does a hint from the body count (Gemini's RetryInfo,
 * OpenAI's "try again in"), which the parser has put in out->retry_after.
 */
void
outcome_header_hints(Outcome *out, const HttpHints *hints, double now_epoch)
{
	const char *ms = hints->retry_after_ms;
	double		wait = -1;

	if (out->cls != OUTCOME_THROTTLE && out->cls != OUTCOME_TRANSIENT)
		return;
	while (*ms == ' ')
		ms++;
	/* milliseconds are a number; parse_retry_after would also take a date */
	if (isdigit((unsigned char) *ms))
	{
		wait = parse_retry_after(ms, 0);
		if (wait >= 0)
			wait /= 1000.0;
	}
	if (wait < 0)
		wait = parse_retry_after(hints->retry_after, now_epoch);
	if (wait >= 0)
		out->retry_after = wait;
}

/*
 * Go-style durations ("1s", "6m0s", "14h29m11.04s", "12ms") and protobuf
 * Durations ("47s", "0.512s").  Returns seconds, or -1.
 */
double
parse_duration_text(const char *s)
{
	double		total = 0;
	bool		any = false;

	if (s == NULL)
		return -1;
	while (*s == ' ' || *s == '"')
		s++;
	while (*s && *s != '"' && *s != ' ')
	{
		char	   *end;
		double		v;

		/* each part starts with a digit: no signs, spaces, hex or exponents */
		if (!isdigit((unsigned char) *s))
			return -1;
		v = strtod(s, &end);
		if (end == s || !isfinite(v) || v < 0 || memchr(s, 'x', end - s) ||
			memchr(s, 'e', end - s) || memchr(s, 'E', end - s))
			return -1;
		s = end;
		if (strncmp(s, "ms", 2) == 0)
		{
			total += v / 1000.0;
			s += 2;
		}
		else if (*s == 'h')
		{
			total += v * 3600.0;
			s++;
		}
		else if (*s == 'm')
		{
			total += v * 60.0;
			s++;
		}
		else if (*s == 's')
		{
			total += v;
			s++;
		}
		else
			return -1;
		any = true;
	}
	return any && isfinite(total) ? total : -1;
}

static void
copy_header_value(char *dst, size_t dstlen, const char *src, size_t len)
{
	while (len > 0 && (*src == ' ' || *src == '\t'))
	{
		src++;
		len--;
	}
	while (len > 0 && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
		len--;
	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* One raw response header line ("Name: value\r\n"): keep what parsers use */
void
hints_from_header_line(HttpHints *hints, const char *line, size_t len)
{
	static const struct
	{
		const char *name;
		size_t		offset;
		size_t		size;
	}			wanted[] = {
		{"retry-after:", offsetof(HttpHints, retry_after), sizeof(((HttpHints *) 0)->retry_after)},
		{"retry-after-ms:", offsetof(HttpHints, retry_after_ms), sizeof(((HttpHints *) 0)->retry_after_ms)},
		{"x-ratelimit-limit-requests:", offsetof(HttpHints, ratelimit_limit_requests), sizeof(((HttpHints *) 0)->ratelimit_limit_requests)},
		{"x-ratelimit-remaining-requests:", offsetof(HttpHints, ratelimit_remaining_requests), sizeof(((HttpHints *) 0)->ratelimit_remaining_requests)},
		{"x-ratelimit-reset-requests:", offsetof(HttpHints, ratelimit_reset_requests), sizeof(((HttpHints *) 0)->ratelimit_reset_requests)},
	};

	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
	{
		size_t		nlen = strlen(wanted[i].name);

		if (len > nlen && strncasecmp(line, wanted[i].name, nlen) == 0)
			copy_header_value((char *) hints + wanted[i].offset, wanted[i].size,
							  line + nlen, len - nlen);
	}
}

/* OpenAI: "... Please try again in 1.574s. ..." or "in 20ms" */
double
parse_try_again_text(const char *message)
{
	const char *p;
	char		buf[32];
	size_t		len = 0;

	if (message == NULL || (p = strstr(message, "try again in ")) == NULL)
		return -1;
	p += strlen("try again in ");
	while (len < sizeof(buf) - 1 && (isdigit((unsigned char) p[len]) ||
									 p[len] == '.' || isalpha((unsigned char) p[len])))
		len++;
	/* a trailing sentence dot ("1.574s.") is not part of the duration */
	while (len > 0 && p[len - 1] == '.')
		len--;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return parse_duration_text(buf);
}
