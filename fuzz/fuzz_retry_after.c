/*-------------------------------------------------------------------------
 *
 * fuzz_retry_after.c
 *	  libFuzzer harness for parse_retry_after() (src/provider_util.c): a
 *	  Retry-After / retry-after-ms header value, delta seconds or an
 *	  IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT").
 *
 * Input: the whole input is the header value, as a C string (an exact-size
 * heap copy plus NUL; an embedded NUL ends it early).
 *
 * Checks: the result is -1 or >= 0 (never NaN or another negative), and a
 * later "now" never means a longer wait: parsing with now = 0 (as the
 * retry-after-ms path does) gives at least the wait for a fixed 2025 now.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include "provider.h"

#define FUZZ_NOW 1764340000.0	/* 2025-11-28 14:26:40 UTC */

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *value = fuzz_dup_cstring(data, size);
	double		now_wait = parse_retry_after(value, FUZZ_NOW);
	double		epoch_wait = parse_retry_after(value, 0);

	FUZZ_CHECK(fuzz_valid_wait(now_wait), "wait %g for \"%s\"", now_wait, value);
	FUZZ_CHECK(fuzz_valid_wait(epoch_wait), "wait %g for \"%s\" at now 0", epoch_wait, value);
	FUZZ_CHECK((now_wait < 0) == (epoch_wait < 0), "usable at one now only: %g / %g", now_wait, epoch_wait);
	FUZZ_CHECK(epoch_wait >= now_wait, "earlier now, shorter wait: %g < %g", epoch_wait, now_wait);
	free(value);
	return 0;
}
