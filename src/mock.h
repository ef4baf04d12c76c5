/*-------------------------------------------------------------------------
 *
 * mock.h
 *	  The offline predictor that answers when no provider has a key.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_MOCK_H
#define CTR_MOCK_H

#include <stdint.h>
#include <stdbool.h>

#include "answer.h"

#define MOCK_MODEL "ctr-mock-1"

/*
 * Answer the n personas of a batch text built by prompt.c: a 0/1 draw, or
 * the click probability in percent.  A persona's answer depends only on
 * the ad, the platform and that persona's fields, never on the batch it
 * came in or its position.  Returns false if the text does not hold
 * exactly n personas.
 */
extern bool mock_answer(const char *ad, const char *platform,
						const char *text, int n, AnswerKind kind, uint8_t *values);

#endif							/* CTR_MOCK_H */
