/*-------------------------------------------------------------------------
 *
 * fuzz_deepseek.c
 *	  libFuzzer harness for deepseek_ops.parse (src/provider_deepseek.c); input
 *	  format and checks in fuzz_provider.h.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_provider.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_provider_parse(&deepseek_ops, data, size);
}
