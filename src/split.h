/*-------------------------------------------------------------------------
 *
 * split.h
 *	  A request in halves, each a request of its own (split.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_SPLIT_H
#define CTR_SPLIT_H

#include "postgres.h"

typedef struct RequestHalves
{
	char	   *first;			/* personas 1..n1 (palloc'd) */
	int			first_len;
	char	   *second;			/* personas n1+1..n, numbered from 1 */
	int			second_len;
} RequestHalves;

/*
 * Render the halves of a request of n personas, the first with n1 of them;
 * false when the text is not shaped as a request (then nothing is made).
 */
extern bool request_split(const char *text, int len, int n, int n1, RequestHalves *halves);

#endif							/* CTR_SPLIT_H */
