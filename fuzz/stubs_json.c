/*-------------------------------------------------------------------------
 *
 * stubs_json.c
 *	  fuzz_json_string's way into src/request_json.c (over the StringInfo of
 *	  stubs_prompt.c): the harness itself cannot include postgres.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"

#include "request_json.h"

char	   *fuzz_json_string(const char *s, size_t len, size_t *outlen);

/* What request_json.c writes for s[0..len): a malloc'd C string, and its length */
char *
fuzz_json_string(const char *s, size_t len, size_t *outlen)
{
	StringInfoData out;

	initStringInfo(&out);
	json_put_string(&out, s, len);
	*outlen = (size_t) out.len;
	return out.data;
}
