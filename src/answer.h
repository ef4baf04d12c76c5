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

/*
 * Accepts a bare JSON array, or an object with exactly one array member,
 * optionally wrapped in one Markdown fence, with surrounding whitespace.
 * Every element must be the integer 0 or 1, and there must be exactly n.
 * On failure returns false and writes a short reason to why.
 */
extern bool answer_extract(const char *text, size_t len, int n,
						   uint8_t *clicks, char *why, size_t whylen);

#endif							/* CTR_ANSWER_H */
