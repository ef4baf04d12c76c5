/*-------------------------------------------------------------------------
 *
 * fuzz_try_again.c
 *	  libFuzzer harness for parse_try_again_text() (src/provider_util.c):
 *	  the wait in an OpenAI 429 message, "... Please try again in 1.574s.
 *	  Visit ..." or "... in 20ms.".
 *
 * Input: the whole input is the error message, as a C string (an
 * exact-size heap copy plus NUL; an embedded NUL ends it early).
 *
 * Checks: the result is -1 or >= 0 (never NaN or another negative).
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include "provider.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *message = fuzz_dup_cstring(data, size);
	double		secs = parse_try_again_text(message);

	FUZZ_CHECK(fuzz_valid_wait(secs), "wait %g for \"%s\"", secs, message);
	free(message);
	return 0;
}
