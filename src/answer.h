/*-------------------------------------------------------------------------
 *
 * answer.h
 *	  Turn a model's text into exactly N 0/1 answers, or say why not.
 *
 * Pure C: no backend needed, so the extractor can be fuzzed on its own.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_ANSWER_H
#define CTR_ANSWER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* What a model is asked for, per persona */
typedef enum AnswerKind
{
	ANSWER_CLICK = 0,			/* would click: 0 or 1 */
	ANSWER_PROBABILITY			/* chance of a click in percent: 0 .. 100 */
} AnswerKind;

/* the largest value an answer of this kind may have */
static inline int
answer_max(AnswerKind kind)
{
	return kind == ANSWER_PROBABILITY ? 100 : 1;
}

/*
 * Accepts a bare JSON array, or an object with exactly one array member,
 * optionally wrapped in one Markdown fence, with surrounding whitespace.
 * Every element must be an integer from 0 to answer_max(kind), and there
 * must be exactly n.  On failure returns false and writes a short reason
 * to why.
 */
extern bool answer_extract(const char *text, size_t len, int n, AnswerKind kind,
						   uint8_t *values, char *why, size_t whylen);

/*
 * The same through cJSON alone, without the fast path for the usual
 * shapes: the fuzzer checks that both agree on every input.
 */
extern bool answer_extract_reference(const char *text, size_t len, int n, AnswerKind kind,
									 uint8_t *values, char *why, size_t whylen);

#endif							/* CTR_ANSWER_H */
