/*-------------------------------------------------------------------------
 *
 * fuzz_json_string.c
 *	  libFuzzer harness for json_put_string() (src/request_json.c): a
 *	  prompt as a JSON string literal, nearly the whole of every request
 *	  body.
 *
 * Input: the text, any bytes.  Checks: no memory error or UB; the output's
 * length is what was written and it is NUL-terminated; up to the first NUL
 * byte of the input (cJSON's strings end there) the literal is byte for
 * byte what cJSON prints for the same string, which the providers' JSON
 * parsers read back as the input; and a NUL byte is written as \u0000.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include <cjson/cJSON.h>

char	   *fuzz_json_string(const char *s, size_t len, size_t *outlen);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text = fuzz_dup_exact(data, size);
	size_t		clean = strnlen(text, size);
	size_t		outlen;
	char	   *got = fuzz_json_string(text, clean, &outlen);
	char	   *cstr = malloc(clean + 1);
	cJSON	   *item;
	char	   *want;

	FUZZ_CHECK(strlen(got) == outlen, "length %zu, strlen %zu", outlen, strlen(got));
	memcpy(cstr, text, clean);
	cstr[clean] = '\0';
	item = cJSON_CreateString(cstr);
	want = item ? cJSON_PrintUnformatted(item) : NULL;
	if (want)
		FUZZ_CHECK(strcmp(got, want) == 0, "json_put_string wrote %s, cJSON prints %s", got, want);
	free(want);
	cJSON_Delete(item);
	free(got);

	/* the whole input, NULs included: each one is \u0000 */
	got = fuzz_json_string(text, size, &outlen);
	{
		size_t		nuls = 0;

		for (size_t i = 0; i < size; i++)
			nuls += text[i] == '\0';
		FUZZ_CHECK(strlen(got) == outlen, "length %zu, strlen %zu", outlen, strlen(got));
		FUZZ_CHECK(outlen >= size + 2 + 5 * nuls, "%zu bytes for %zu with %zu NULs", outlen, size, nuls);
		FUZZ_CHECK(nuls == 0 || strstr(got, "\\u0000") != NULL, "a NUL byte is not written as \\u0000");
	}
	free(got);
	free(cstr);
	free(text);
	return 0;
}
