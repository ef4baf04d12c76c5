/*-------------------------------------------------------------------------
 *
 * fuzz_mock.c
 *	  libFuzzer harness for mock_answer() (src/mock.c), the offline
 *	  predictor's reader of the persona lines that src/prompt.c writes.
 *
 * Input: 2-byte header (fuzz_common.h) giving N (1..1000; the high nibble
 * is unused), then
 *		line 1: the ad
 *		line 2: the platform
 *		the rest: the batch text, header form ("fields: a|b" then "[k] x|y")
 *		  or labelled form ("[k] a: x; b: y")
 * each as an exact-size heap C string.
 *
 * Checks, besides ASan/UBSan/LeakSanitizer: answers are 0/1 and only N are
 * written; mock_answer returns true exactly when the text holds persona
 * lines [1]..[N] (counted here the way mock.c's comment describes); and
 * every persona answers the same when asked alone as "[1] ..." under the
 * same header, since mock.h promises an answer never depends on the batch
 * or the position.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include "mock.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size;
	const uint8_t *p;
	int			n;
	char	   *ad;
	char	   *platform;
	char	   *text;
	uint8_t    *clicks;
	bool		ok;
	const char *line;
	const char *header = NULL;
	size_t		header_len = 0;
	int			k = 0;

	if (size < FUZZ_HEADER_LEN)
		return 0;
	n = fuzz_n(data);
	p = fuzz_take_line_dup(data + FUZZ_HEADER_LEN, end, &ad);
	p = fuzz_take_line_dup(p, end, &platform);
	text = fuzz_dup_cstring(p, (size_t) (end - p));
	clicks = malloc((size_t) n);
	memset(clicks, 0xAA, (size_t) n);

	ok = mock_answer(ad, platform, text, n, ANSWER_CLICK, clicks);

	/* walk the persona lines as mock.c does, and ask each one alone */
	line = text;
	while (line && *line)
	{
		const char *eol = strchr(line, '\n');

		if (eol == NULL)
			eol = line + strlen(line);
		if (header == NULL && strncmp(line, "fields: ", 8) == 0)
		{
			header = line;
			header_len = (size_t) (eol - line);
		}
		else if (line[0] == '[')
		{
			char	   *after;
			long		num = strtol(line + 1, &after, 10);

			if (after < eol && after[0] == ']' && after[1] == ' ' && num == k + 1 && k < n)
			{
				const char *row = after + 2;
				size_t		row_len = (size_t) (eol - row);
				char	   *single = malloc(header_len + 1 + 4 + row_len + 1);
				size_t		off = 0;
				uint8_t		alone = 0xAA;
				bool		alone_ok;

				if (header)
				{
					memcpy(single, header, header_len);
					off = header_len;
					single[off++] = '\n';
				}
				memcpy(single + off, "[1] ", 4);
				off += 4;
				memcpy(single + off, row, row_len);
				off += row_len;
				single[off] = '\0';

				alone_ok = mock_answer(ad, platform, single, 1, ANSWER_CLICK, &alone);
				FUZZ_CHECK(alone_ok, "persona %d not read when alone", k + 1);
				FUZZ_CHECK(alone <= 1, "persona %d alone answered %u", k + 1, alone);
				/* mock.c writes each answer as it reads the line, ok or not */
				FUZZ_CHECK(clicks[k] == alone,
						   "persona %d answers %u in the batch, %u alone", k + 1, clicks[k], alone);
				free(single);
				k++;
			}
		}
		line = *eol ? eol + 1 : NULL;
	}
	FUZZ_CHECK(ok == (k == n), "mock_answer says %d, but %d of %d persona lines", ok, k, n);
	if (ok)
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(clicks[i] <= 1, "answer %d of %d is %u", i + 1, n, clicks[i]);

	free(ad);
	free(platform);
	free(text);
	free(clicks);
	return 0;
}
