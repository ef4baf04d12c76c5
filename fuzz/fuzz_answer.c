/*-------------------------------------------------------------------------
 *
 * fuzz_answer.c
 *	  libFuzzer harness for answer_extract() (src/answer.c): a model's text
 *	  to exactly N 0/1 answers.
 *
 * Input: 2-byte header (fuzz_common.h): N, and in the high nibble the size
 * of the "why" buffer (0: 256, 1: none, 2: 1 byte, 3: 7 bytes, 4-15: 256);
 * the rest is the model text, passed WITHOUT a terminating NUL in an
 * exact-size heap block, so any read past len is an ASan report.
 *
 * Checks: no memory error or UB; the answer does not depend on the why
 * buffer; on success every value is 0 or 1; on failure the reason is a
 * non-empty C string that fits its buffer; and the fast path for the usual
 * shapes agrees with cJSON alone (answer_extract_reference), for 0/1 and
 * for percentages, in the result and in every value.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include "answer.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t why_sizes[16] = {256, 0, 1, 7, 256, 256, 256, 256,
	256, 256, 256, 256, 256, 256, 256, 256};
	int			n;
	size_t		whylen;
	size_t		len;
	char	   *text;
	char	   *why;
	uint8_t    *clicks;
	uint8_t    *clicks2;
	uint8_t    *percent;
	bool		ok;
	bool		ok2;
	bool		ok_percent;

	if (size < FUZZ_HEADER_LEN)
		return 0;
	n = fuzz_n(data);
	whylen = why_sizes[fuzz_mode(data)];
	len = size - FUZZ_HEADER_LEN;
	text = fuzz_dup_exact(data + FUZZ_HEADER_LEN, len);
	why = whylen ? malloc(whylen) : NULL;
	if (why)
		memset(why, 'X', whylen);
	clicks = malloc((size_t) n);
	clicks2 = malloc((size_t) n);
	percent = malloc((size_t) n);
	memset(clicks, 0xAA, (size_t) n);
	memset(clicks2, 0xAA, (size_t) n);
	memset(percent, 0xAA, (size_t) n);

	ok = answer_extract(text, len, n, ANSWER_CLICK, clicks, why, whylen);
	ok2 = answer_extract(text, len, n, ANSWER_CLICK, clicks2, NULL, 0);
	ok_percent = answer_extract(text, len, n, ANSWER_PROBABILITY, percent, NULL, 0);

	/* every valid 0/1 answer is a valid percentage answer, with the same values */
	FUZZ_CHECK(!ok || ok_percent, "a valid 0/1 answer is not a valid percentage answer");
	if (ok_percent)
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(percent[i] <= 100 && (!ok || percent[i] == clicks[i]),
					   "percentage %d of %d is %u", i + 1, n, percent[i]);

	/* the fast path says what cJSON alone says */
	{
		uint8_t    *ref = malloc((size_t) n);
		bool		ok_ref;

		for (int k = 0; k < 2; k++)
		{
			AnswerKind	kind = k ? ANSWER_PROBABILITY : ANSWER_CLICK;
			const uint8_t *got = k ? percent : clicks;
			bool		ok_got = k ? ok_percent : ok;

			ok_ref = answer_extract_reference(text, len, n, kind, ref, NULL, 0);
			FUZZ_CHECK(ok_ref == ok_got, "kind %d: %d, cJSON alone %d", k, ok_got, ok_ref);
			if (ok_ref)
				for (int i = 0; i < n; i++)
					FUZZ_CHECK(ref[i] == got[i], "kind %d, answer %d of %d: %u, cJSON alone %u",
							   k, i + 1, n, got[i], ref[i]);
		}
		free(ref);
	}

	FUZZ_CHECK(ok == ok2, "result depends on the why buffer (%d vs %d)", ok, ok2);
	if (ok)
	{
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(clicks[i] <= 1 && clicks[i] == clicks2[i],
					   "answer %d of %d is %u/%u", i + 1, n, clicks[i], clicks2[i]);
	}
	else if (why)
	{
		FUZZ_CHECK(fuzz_is_cstring(why, whylen), "reason not NUL-terminated in %zu bytes", whylen);
		FUZZ_CHECK(whylen == 1 || why[0] != '\0', "failure without a reason");
	}

	free(text);
	free(why);
	free(clicks);
	free(clicks2);
	free(percent);
	return 0;
}
