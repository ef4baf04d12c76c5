/*-------------------------------------------------------------------------
 *
 * fuzz_openai.c
 *	  libFuzzer harness for openai_ops.parse (src/provider_openai.c); input
 *	  format and checks in fuzz_provider.h.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_provider.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_provider_parse(&openai_ops, data, size);
}
