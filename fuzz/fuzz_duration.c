/*-------------------------------------------------------------------------
 *
 * fuzz_duration.c
 *	  libFuzzer harness for parse_duration_text() (src/provider_util.c):
 *	  Go durations ("6m0s", "14h29m11.04s", "12ms", x-ratelimit-reset-*)
 *	  and protobuf Durations ("47s", "0.512s", Gemini RetryInfo.retryDelay).
 *
 * Input: the whole input is the text, as a C string (an exact-size heap
 * copy plus NUL; an embedded NUL ends it early).
 *
 * Checks: the result is -1 or >= 0 (never NaN or another negative); the
 * same text in double quotes (as a JSON value might keep them) parses the
 * same when it holds no quote or space of its own.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include "provider.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = fuzz_dup_cstring(data, size);
	double		secs = parse_duration_text(text);
	size_t		len = strlen(text);

	FUZZ_CHECK(fuzz_valid_wait(secs), "duration %g for \"%s\"", secs, text);
	if (len > 0 && strpbrk(text, "\" ") == NULL)
	{
		char	   *quoted = malloc(len + 3);
		double		qsecs;

		quoted[0] = '"';
		memcpy(quoted + 1, text, len);
		quoted[len + 1] = '"';
		quoted[len + 2] = '\0';
		qsecs = parse_duration_text(quoted);
		FUZZ_CHECK(qsecs == secs || (isnan(qsecs) && isnan(secs)),
				   "quoted %g vs bare %g for \"%s\"", qsecs, secs, text);
		free(quoted);
	}
	free(text);
	return 0;
}
