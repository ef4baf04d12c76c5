/*-------------------------------------------------------------------------
 *
 * fuzz_provider.h
 *	  The body of the three provider response-parser harnesses
 *	  (fuzz_openai.c, fuzz_deepseek.c, fuzz_gemini.c).
 *
 * Input:
 *		2-byte header (fuzz_common.h): HTTP status (high nibble of byte 0,
 *		  fuzz_status_table: 200 400 401 402 403 404 408 409 422 429 500
 *		  502 503 504 201 302) and N (1..1000)
 *		line 1: the Retry-After header value     (up to '\n', cut to 63 bytes)
 *		line 2: the retry-after-ms header value  (same)
 *		the rest: the response body, passed to ops->parse WITHOUT a
 *		  terminating NUL in an exact-size heap block
 *
 * Checks, besides ASan/UBSan/LeakSanitizer: the class is a known one; a
 * non-2xx status never gives OUTCOME_OK; OUTCOME_OK writes all N answers
 * and only 0/1; a failure has a reason; reason and model are C strings
 * inside their arrays, of printable ASCII only (valid text in any server
 * encoding), and the reason does not end in a full stop; retry_after is -1
 * or >= 0; a throttled or transient outcome with a numeric retry-after-ms
 * waits exactly that long, whatever the body says; token counts >= 0.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_PROVIDER_H
#define FUZZ_PROVIDER_H

#include "fuzz_common.h"

#include "provider.h"

static bool
fuzz_printable_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || (unsigned char) *s > 0x7e)
			return false;
	return true;
}

static int
fuzz_provider_parse(const ProviderOps *ops, const uint8_t *data, size_t size)
{
	const uint8_t *p;
	const uint8_t *end = data + size;
	int			status;
	int			n;
	HttpHints	hints;
	Outcome		out;
	char	   *body;
	size_t		len;
	uint8_t    *clicks;

	if (size < FUZZ_HEADER_LEN)
		return 0;
	status = fuzz_status_table[fuzz_mode(data)];
	n = fuzz_n(data);

	memset(&hints, 0, sizeof(hints));
	p = fuzz_take_line(data + FUZZ_HEADER_LEN, end, hints.retry_after, sizeof(hints.retry_after));
	p = fuzz_take_line(p, end, hints.retry_after_ms, sizeof(hints.retry_after_ms));
	len = (size_t) (end - p);
	body = fuzz_dup_exact(p, len);

	clicks = malloc((size_t) n);
	memset(clicks, 0xAA, (size_t) n);
	memset(&out, 0, sizeof(out));
	out.n = n;
	out.clicks = clicks;
	out.retry_after = -1;		/* as engine.c sets it */

	ops->parse(status, body, len, &hints, &out);

	FUZZ_CHECK(out.cls >= OUTCOME_OK && out.cls <= OUTCOME_BUG, "unknown class %d", (int) out.cls);
	FUZZ_CHECK(fuzz_is_cstring(out.reason, sizeof(out.reason)), "reason not NUL-terminated");
	FUZZ_CHECK(fuzz_is_cstring(out.model, sizeof(out.model)), "model not NUL-terminated");
	FUZZ_CHECK(out.n == n && out.clicks == clicks, "parse changed n or clicks");
	FUZZ_CHECK(out.tokens_in >= 0 && out.tokens_out >= 0, "negative token count %lld/%lld",
			   (long long) out.tokens_in, (long long) out.tokens_out);
	FUZZ_CHECK(fuzz_valid_wait(out.retry_after), "retry_after %g", out.retry_after);
	FUZZ_CHECK(fuzz_printable_ascii(out.reason), "reason \"%s\" is not printable ASCII", out.reason);
	FUZZ_CHECK(fuzz_printable_ascii(out.model), "model \"%s\" is not printable ASCII", out.model);
	FUZZ_CHECK(out.reason[0] == '\0' || out.reason[strlen(out.reason) - 1] != '.',
			   "reason \"%s\" ends in a full stop", out.reason);
	if ((out.cls == OUTCOME_THROTTLE || out.cls == OUTCOME_TRANSIENT) &&
		hints.retry_after_ms[strspn(hints.retry_after_ms, " ")] >= '0' &&
		hints.retry_after_ms[strspn(hints.retry_after_ms, " ")] <= '9')
	{
		double		ms = parse_retry_after(hints.retry_after_ms, 0);

		if (ms >= 0)
			FUZZ_CHECK(out.retry_after == ms / 1000.0, "retry-after-ms \"%s\" but a wait of %g s",
					   hints.retry_after_ms, out.retry_after);
	}
	if (status < 200 || status >= 300)
		FUZZ_CHECK(out.cls != OUTCOME_OK, "HTTP %d classified ok", status);
	if (out.cls == OUTCOME_OK)
	{
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(clicks[i] <= 1, "answer %d of %d is %u", i + 1, n, clicks[i]);
	}
	else
		FUZZ_CHECK(out.reason[0] != '\0', "class %d without a reason", (int) out.cls);

	free(body);
	free(clicks);
	return 0;
}

#endif							/* FUZZ_PROVIDER_H */
