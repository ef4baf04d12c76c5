/*-------------------------------------------------------------------------
 *
 * fuzz_gemini.c
 *	  libFuzzer harness for gemini_ops.parse (src/provider_gemini.c); input
 *	  format and checks in fuzz_provider.h.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_provider.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_provider_parse(&gemini_ops, data, size);
}
