/*-------------------------------------------------------------------------
 *
 * prompt.h
 *	  What the model reads: the fixed instructions, the ad and platform,
 *	  and one batch of personas.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PROMPT_H
#define CTR_PROMPT_H

#include "postgres.h"
#include "lib/stringinfo.h"

#include "answer.h"

/* settings owned here */
extern char *ctr_ad;
extern char *ctr_platform;

extern void prompt_define_settings(void);

/* "Ad: ...\nPlatform: ...\n": the part every batch of a call shares */
extern char *prompt_call_text(const char *ad, const char *platform);

/* The system instruction; object_root selects {"clicks":[...]} over [...] */
extern const char *prompt_system(bool object_root, AnswerKind kind);

/*
 * Append a batch of n personas: values[i * ncols + c] is the text of
 * column c of persona i, or NULL, and lens[i * ncols + c] its strlen (or
 * lens is NULL: measured here); plain[c] says column c's values never hold
 * a byte that needs escaping (numbers, dates).  Chooses per batch between
 * a shared header over compact rows and "name: value" lines, whichever is
 * shorter.
 */
extern void prompt_personas(StringInfo out, int n, int ncols,
							char *const *names, char *const *values,
							const size_t *lens, const bool *plain);

/* Escape one value so that it stays on one line and inside its field */
extern void prompt_escape(StringInfo out, const char *s);

#endif							/* CTR_PROMPT_H */
